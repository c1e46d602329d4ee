"""Leads (线索移交): validate, deduplicate, route and hand over leads."""
