"""How providers write values: numbers as numbers or strings, times as epoch seconds or milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_float(value: Any) -> float:
    """Providers send numbers as numbers or strings ("0.0001"); empty strings mean absent."""
    if isinstance(value, bool):
        raise ValueError("boolean is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip():
        return float(value)
    raise ValueError(f"not a number: {value!r}")


def from_millis(value: Any) -> datetime:
    return datetime.fromtimestamp(parse_float(value) / 1000, UTC)


def from_seconds(value: Any) -> datetime:
    return datetime.fromtimestamp(parse_float(value), UTC)
