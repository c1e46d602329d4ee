"""Liandong contracts: the event envelope, event and HTTP schemas, and reference data."""
