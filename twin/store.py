"""The recorded data, loaded once, and the per-query answers built from it, cached as bytes.

Recorded series are hourly. Coarser bars/periods are resampled from them (OHLC, last value or sum,
as the metric demands) so a client asking for 4H or 1D gets rows spaced as it expects. Sub-hour
bars are answered with the hourly rows: the recording has nothing finer (a known twin limitation).
Documents are keyed by their path under recorded/ without ".json"; the bundled real Coinglass 4h
history sits under its own prefix, coinglass/history/ (cg_history.py merges it with the hourly rows).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from twin.reply import Reply, dumps, json_reply
from twin.timeshift import shift_document

RECORDED = Path(__file__).with_name("recorded")
COINS = ("BTC", "ETH", "SOL")
HOUR = 3_600_000
Reducer = Literal["ohlc", "last", "sum"]
_CACHE_LIMIT = 4096  # distinct (endpoint, params) answers; bounded so odd query mixes cannot grow memory


def period_ms(spelling: str) -> int | None:
    """'1H' / '4h' / '1D' / '1Dutc' / '1w' -> milliseconds; None when not a period."""
    s = spelling.removesuffix("utc")
    if len(s) < 2 or not s[:-1].isdigit():
        return None
    unit = {"m": 60_000, "H": HOUR, "h": HOUR, "D": 24 * HOUR, "d": 24 * HOUR, "W": 168 * HOUR, "w": 168 * HOUR}
    if s[-1] not in unit:
        return None
    return int(s[:-1]) * unit[s[-1]]


def decimals(value: str) -> int:
    _, _, frac = value.partition(".")
    return len(frac)


def _num(x: float, like: str) -> str:
    return f"{x:.{decimals(like)}f}"


def _like(x: float, sample: Any) -> Any:
    """``x`` written as ``sample`` is: a string with as many decimals, an int, or a float (the real
    Coinglass history mixes all three)."""
    if isinstance(sample, str):
        return _num(x, sample)
    if isinstance(sample, int) and not isinstance(sample, bool):
        return round(x)
    return round(x, 8)


def bucket_start(ts: int, period: int, offset: int) -> int:
    return (ts + offset) // period * period - offset


def resample_arrays(rows: list[list[str]], period: int, offset: int, reducer: Reducer) -> list[list[str]]:
    """OKX rows [ts, ...strings], NEWEST FIRST, to coarser buckets (still newest first)."""
    if period <= HOUR:
        return rows
    groups: dict[int, list[list[str]]] = {}
    for row in rows:
        groups.setdefault(bucket_start(int(row[0]), period, offset), []).append(row)
    out: list[list[str]] = []
    for start, group in groups.items():  # insertion order keeps newest first
        newest, oldest = group[0], group[-1]
        if reducer == "last":
            out.append([str(start), *newest[1:]])
        elif reducer == "sum":
            sums = [_num(sum(float(r[k]) for r in group), newest[k]) for k in range(1, len(newest))]
            out.append([str(start), *sums])
        else:  # candles: [ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]
            high = max(float(r[2]) for r in group)
            low = min(float(r[3]) for r in group)
            vols = [_num(sum(float(r[k]) for r in group), newest[k]) for k in (5, 6, 7)]
            out.append(
                [str(start), oldest[1], _num(high, newest[2]), _num(low, newest[3]), newest[4], *vols, newest[8]]
            )
    return out


def resample_dicts(rows: list[dict[str, Any]], period: int, reducer: Reducer, base: int = HOUR) -> list[dict[str, Any]]:
    """Coinglass rows {"time": ms, ...} of ``base`` ms bars, OLDEST FIRST, to coarser UTC buckets
    (still oldest first). ``period`` must be a whole multiple of ``base`` to be exact."""
    if period <= base:
        return rows
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(bucket_start(int(row["time"]), period, 0), []).append(row)
    out: list[dict[str, Any]] = []
    for start, group in groups.items():
        first, last = group[0], group[-1]
        if reducer == "last":
            out.append({**last, "time": start})
        elif reducer == "sum":
            merged: dict[str, Any] = {"time": start}
            for key in first:
                if key != "time":
                    merged[key] = round(sum(float(r[key]) for r in group), 5)  # liquidation, taker volume USD
            out.append(merged)
        else:  # OHLC with numbers as strings, as Coinglass sends them
            high = max(float(r["high"]) for r in group)
            low = min(float(r["low"]) for r in group)
            bar = {
                "time": start,
                "open": first["open"],
                "high": _like(high, last["high"]),
                "low": _like(low, last["low"]),
                "close": last["close"],
            }
            if "volume_usd" in last:  # price history
                bar["volume_usd"] = _like(sum(float(r["volume_usd"]) for r in group), last["volume_usd"])
            out.append(bar)
    return out


class Store:
    """Every recorded JSON document, keyed by its path under recorded/ without ".json".

    ``time_shift_ms`` (a whole number of hours) moves every timestamp of the GENERATED documents
    (timeshift.py); the bundled real history keeps its dates. 0: the documents as recorded.
    """

    def __init__(self, root: Path = RECORDED, *, time_shift_ms: int = 0) -> None:
        self.root = root
        self.time_shift_ms = time_shift_ms
        self.docs: dict[str, Any] = {}
        for path in root.rglob("*.json"):
            key = path.relative_to(root).with_suffix("").as_posix()
            self.docs[key] = shift_document(key, json.loads(path.read_text(encoding="utf-8")), time_shift_ms)
        if not self.docs:
            raise FileNotFoundError(f"no recorded data under {root}: run python -m twin.make_recorded")
        self._bytes: dict[tuple[Any, ...], Reply] = {}
        self._built: dict[tuple[Any, ...], Any] = {}  # derived documents (merged, resampled series)

    def doc(self, key: str) -> Any:
        return self.docs[key]

    def has(self, key: str) -> bool:
        return key in self.docs

    def error(self, key: str) -> Reply:
        """A recorded error body; its HTTP status is in the file name (name.http<status>)."""
        status = int(key.rsplit(".http", 1)[1]) if ".http" in key else 200
        return self.cached(("error", key), lambda: json_reply(self.docs[key], status))

    def cached(self, key: tuple[Any, ...], build: Callable[[], Reply]) -> Reply:
        reply = self._bytes.get(key)
        if reply is None:
            if len(self._bytes) >= _CACHE_LIMIT:
                self._bytes.clear()
            reply = self._bytes[key] = build()
        return reply

    def built(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """A document derived from the recorded ones, built once (callers must not mutate it)."""
        if key not in self._built:
            if len(self._built) >= _CACHE_LIMIT:
                self._built.clear()
            self._built[key] = build()
        return self._built[key]

    def raw_reply(self, key: str, status: int = 200) -> Reply:
        return self.cached(("raw", key, status), lambda: Reply(status, dumps(self.docs[key])))
