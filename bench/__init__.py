"""Benchmarks: each runnable alone as `python -m bench.<name>`; they report, never pass/fail."""
