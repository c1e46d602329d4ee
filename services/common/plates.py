"""Vehicle plates as printed (苏E·12345, 沪A12345) and their one normal form, shared by the
transport service (permits, positions) and joint operations (violations found at checkpoints)."""

from __future__ import annotations

import re

_PLATE = re.compile(r"^[\u4e00-\u9fff][A-Z][A-Z0-9]{5,6}$")
_PLATE_NOISE = re.compile(r"[\s·•．.\-_]")


def normalise_plate(plate: str) -> str:
    """`苏E·12345`, `苏e 12345`, `苏E-12345` -> `苏E12345`; ValueError if it is not a plate."""
    if not isinstance(plate, str):
        raise ValueError("plate must be a string")
    value = _PLATE_NOISE.sub("", plate).upper()
    if not _PLATE.match(value):
        raise ValueError(f"not a Chinese vehicle plate: {plate!r}")
    return value
