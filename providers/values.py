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


def from_epoch(value: Any) -> datetime:
    """Epoch seconds or milliseconds, told apart by size (ms since 1973 are above 1e11; seconds
    stay below it until the year 5138). Coinglass documents fear & greed times in seconds and
    sends milliseconds."""
    number = parse_float(value)
    return datetime.fromtimestamp(number / 1000 if abs(number) >= 100_000_000_000 else number, UTC)


def float_field(row: dict[str, Any], key: str, default: float = 0.0) -> float:
    """``row[key]`` as a float (number or string); ``default`` when absent, null or empty."""
    value = row.get(key)
    if value is None or value == "":
        return default
    return parse_float(value)
