"""The cases service (案件指派): cases, squads, step history, penalty rules, and the
tamper-evident record."""
