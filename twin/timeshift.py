"""The twin's GENERATED data, moved to the present: every timestamp shifted by one whole number of hours.

The generated recording ends at a fixed hour (``_model.END_MS``, 2025-11-28 03:00 UTC); served as
it is, every factor would be a year old and stale. At twin start the whole generated set is shifted
by ``shift_to(now)``, a whole number of hours that makes its newest hourly bar the current hour.
One offset for every document keeps the providers consistent with each other (a candle, the
Coinglass price bar and the OKX open interest of one hour still share a timestamp; a funding
settlement and the next one are still 8 h apart). Coarser bars are resampled AFTER the shift,
on UTC boundaries, so the newest 4h or 1d bar is a partial one, as upstream.

The bundled REAL history (``recorded/coinglass/history/``) is never shifted: backtests and their
tests depend on its real dates. ``is_generated`` tells them apart.

Which values are times is spelt out, not guessed (a market cap can look like a ms timestamp):
keys ``time``, ``ts``, ``fundingTime``, ``nextFundingTime``, ``next_funding_time``, ``timestamp``,
``generated`` (ms or s, numbers or digit strings, or ISO 8601 for CoinAPI's ``time``), every
element of ``time_list``, the first element of each ``price_candlesticks`` row (Coinglass heatmap)
and of each OKX ``data`` row (``[ts, ...]``). ``tests/test_twin_timeshift.py`` checks that no
time-like value is left behind.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from twin._model import END_MS, HOUR_MS

BUNDLED_PREFIX = "coinglass/history/"
TIME_KEYS = frozenset({"time", "ts", "fundingTime", "nextFundingTime", "next_funding_time", "timestamp", "generated"})
SECONDS_BELOW = 100_000_000_000  # a timestamp under this is in seconds, else milliseconds
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(.*)$")


def shift_to(now_ms: int) -> int:
    """The whole-hour offset (ms) that moves the newest generated bar to the hour containing ``now_ms``."""
    return now_ms - now_ms % HOUR_MS - END_MS


def is_generated(key: str) -> bool:
    """A recorded document's key (its path under recorded/ without .json) is generated data."""
    return not key.startswith(BUNDLED_PREFIX)


def _moment(value: Any, offset_ms: int) -> Any:
    """One timestamp moved by ``offset_ms``, written as it was (int, digit string, ISO string)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value + (offset_ms // 1000 if value < SECONDS_BELOW else offset_ms)
    if isinstance(value, str):
        if value.isdigit():
            return str(_moment(int(value), offset_ms))
        match = _ISO.match(value)
        if match:
            moved = datetime.fromisoformat(match.group(1)) + timedelta(milliseconds=offset_ms)
            return f"{moved:%Y-%m-%dT%H:%M:%S}{match.group(2)}"
    return value


def _row_head(row: Any, offset_ms: int) -> Any:
    if isinstance(row, list) and row:
        return [_moment(row[0], offset_ms), *row[1:]]
    return row


def _walk(node: Any, offset_ms: int, okx: bool, top: bool) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in TIME_KEYS and not isinstance(value, (dict, list)):
                out[key] = _moment(value, offset_ms)
            elif key == "time_list" and isinstance(value, list):
                out[key] = [_moment(v, offset_ms) for v in value]
            elif key == "price_candlesticks" and isinstance(value, list):
                out[key] = [_row_head(row, offset_ms) for row in value]
            elif okx and top and key == "data" and isinstance(value, list):
                out[key] = [_row_head(r, offset_ms) if isinstance(r, list) else _walk(r, offset_ms, okx, False)
                            for r in value]  # fmt: skip
            else:
                out[key] = _walk(value, offset_ms, okx, False)
        return out
    if isinstance(node, list):
        return [_walk(v, offset_ms, okx, False) for v in node]
    return node


def shift_document(key: str, doc: Any, offset_ms: int) -> Any:
    """A copy of recorded document ``key`` with its timestamps moved by ``offset_ms`` (a whole number
    of hours); bundled real history and a zero offset come back as they are."""
    if offset_ms == 0 or not is_generated(key):
        return doc
    if offset_ms % HOUR_MS:
        raise ValueError(f"the twin shifts by whole hours, not {offset_ms} ms")
    return _walk(doc, offset_ms, key.startswith("okx/"), True)
