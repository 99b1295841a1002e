"""Coinglass history in the twin: the generated recent rows and the bundled real 4h history, one series.

Sources, per coin and endpoint file:
- generated: ``recorded/coinglass/<COIN>/<file>.json``, hourly rows recorded 2025-10-29 04:00 ..
  2025-11-28 03:00 UTC (make_recorded.py), moved at twin start so the newest is the current hour
  (timeshift.py: the Store holds them moved), resampled to the interval asked for;
- bundled: ``recorded/coinglass/history/<file>.<COIN>.json``, REAL 4h bars (BTC, 2024-11-14 12:00
  .. 2025-05-13 08:00; price from 2024-11-13 12:00), see that folder's README.md. They are served
  only for intervals that are whole multiples of 4h: 4h as they are, 8h 12h 1d 1w resampled from
  them. A 1h (or 6h) request does not get them: they are 4h bars, not finer ones. Never moved in
  time: they keep their real dates.
Rows are merged by ``time`` (the bar's open, ms), oldest first; on a shared time the generated row
wins (there is none today: the periods do not overlap, the series has a gap between them).

Query semantics, as coinglass-v4.md documents them: ``start_time``/``end_time`` in ms (seconds
are accepted too: the docs mix them), inclusive bounds on a row's ``time``, either may be absent;
``limit`` default 1000, max 1000. When more than ``limit`` rows are in range the NEWEST ``limit``
rows are answered (the twin's rule from the start; what Coinglass does is not documented): ask
for windows of at most ``limit`` bars (providers/history.py) and the rule never matters. Nothing
in range: ``{"code": "0", "data": []}``, as Coinglass answers a symbol it has no data for.
"""

from __future__ import annotations

from typing import Any

from twin.reply import Reply, json_reply
from twin.store import HOUR, Reducer, Store, resample_dicts

BUNDLED_DIR = "coinglass/history"
BUNDLED_BAR = 4 * HOUR
FEAR_GREED = "index_fear-greed-history"
DAY_S = 86_400


def generated_key(coin: str, file: str) -> str:
    return f"coinglass/{coin}/{file}"


def bundled_key(coin: str, file: str) -> str:
    return f"{BUNDLED_DIR}/{file}.{coin}"


def has_series(store: Store, coin: str, file: str) -> bool:
    return store.has(generated_key(coin, file)) or store.has(bundled_key(coin, file))


def series(store: Store, coin: str, file: str, reducer: Reducer, period: int) -> list[dict[str, Any]]:
    """Every row the twin holds for (coin, file) at ``period`` ms bars, oldest first."""

    def build() -> list[dict[str, Any]]:
        rows: dict[int, dict[str, Any]] = {}
        bundled = bundled_key(coin, file)
        if store.has(bundled) and period % BUNDLED_BAR == 0:
            for row in resample_dicts(store.doc(bundled)["data"], period, reducer, base=BUNDLED_BAR):
                rows[int(row["time"])] = row
        generated = generated_key(coin, file)
        if store.has(generated):
            for row in resample_dicts(store.doc(generated)["data"], period, reducer):
                rows[int(row["time"])] = row
        return [rows[t] for t in sorted(rows)]

    rows: list[dict[str, Any]] = store.built(("cg-series", coin, file, period), build)
    return rows


def history_reply(
    store: Store, coin: str, file: str, reducer: Reducer, period: int, limit: int, start: int, end: int
) -> Reply:
    rows = series(store, coin, file, reducer, period)
    if start or end:
        rows = [r for r in rows if (not start or r["time"] >= start) and (not end or r["time"] <= end)]
    return json_reply({"code": "0", "msg": "success", "data": rows[-limit:]})


def _daily(data: Any) -> dict[str, list[Any]]:
    """The parallel lists of a fear & greed ``data``: an object, or a list holding one (both seen)."""
    series = data[0] if isinstance(data, list) and data else data
    return series if isinstance(series, dict) else {}


def fear_greed_reply(store: Store) -> Reply:
    """The generated readings merged with the bundled real ones, in the generated document's shape
    and time unit (a list holding one object; seconds). The bundled file holds ms, since 2018."""
    generated_doc = store.doc(f"coinglass/{FEAR_GREED}")
    bundled = f"{BUNDLED_DIR}/{FEAR_GREED}"
    if not store.has(bundled):
        return store.raw_reply(f"coinglass/{FEAR_GREED}")

    def build() -> Reply:
        generated = _daily(generated_doc["data"])
        in_ms = any(t >= 100_000_000_000 for t in generated.get("time_list", []))
        by_day: dict[int, tuple[int, Any, Any]] = {}
        for source in (_daily(store.doc(bundled)["data"]), generated):  # generated wins a shared day
            for t, value, price in zip(
                source.get("time_list", []), source.get("data_list", []), source.get("price_list", []), strict=False
            ):
                seconds = t // 1000 if t >= 100_000_000_000 else t
                by_day[seconds // DAY_S] = (seconds * 1000 if in_ms else seconds, value, price)
        points = [by_day[day] for day in sorted(by_day)]
        merged = {
            "data_list": [v for _, v, _ in points],
            "price_list": [p for _, _, p in points],
            "time_list": [t for t, _, _ in points],
        }
        data = [merged] if isinstance(generated_doc["data"], list) else merged
        return json_reply({**generated_doc, "data": data})

    return store.cached(("cg", "fear-greed"), build)
