"""Forward returns of recorded signals, filled once their horizons have passed.

The definition is the backtest's: the close after the horizon over the decision price, minus 1, in
percent. "The close after the horizon" is the close of the first hourly candle (OKX's public
perpetual swap, no key) that closes at or after ``computed + horizon``; it is used only once that
candle is confirmed, so a return is never filled early. Filling is idempotent (a value already
there is kept) and resumable: the job asks the database what is due every time, so a restart
loses nothing.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from providers.clients import Clients
from providers.errors import ErrorKind, ProviderError
from providers.history import fetch_range, okx_cursors
from records.db import Database
from records.models import HORIZONS
from signals.inputs import HOUR_MS, to_ms

log = logging.getLogger("cryptosignals.history")
OKX_PAGE = 100


def candle_open_for(target_ms: int) -> int:
    """Open time of the hourly candle that closes first at or after ``target_ms``."""
    return -(-target_ms // HOUR_MS) * HOUR_MS - HOUR_MS


async def hourly_closes(clients: Clients, coin: str, first_open_ms: int, last_open_ms: int) -> dict[int, float]:
    """Confirmed hourly closes of ``coin`` by candle open time, over [first, last]."""

    async def page(a: int, b: int) -> list[object]:
        after, before = okx_cursors(a, b)
        return list(await clients.okx.history_candles(coin, "1H", after, before, OKX_PAGE))

    candles = await fetch_range(page, first_open_ms, last_open_ms, HOUR_MS, OKX_PAGE, lambda c: c.time)  # type: ignore[attr-defined]
    return {to_ms(c.time): c.close for c in candles if c.confirmed}  # type: ignore[attr-defined]


async def fill_outcomes(database: Database, clients: Clients, now_ms: int | None = None) -> int:
    """Fill every forward return that is due and can be known now; the number filled."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    filled = 0
    for horizon, seconds in HORIZONS.items():
        due = await database.due_outcomes(horizon, now)
        by_symbol: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
        for row_id, symbol, computed_ms, price in due:
            by_symbol[symbol].append((row_id, computed_ms, price))
        for symbol, rows in by_symbol.items():
            opens = [candle_open_for(computed + seconds * 1000) for _, computed, _ in rows]
            try:
                closes = await hourly_closes(clients, symbol, min(opens), max(opens))
            except ProviderError as error:
                if error.kind is not ErrorKind.NOT_FOUND:
                    log.warning("history: no candles for %s outcomes yet: %s", symbol, error.message)
                continue
            values = [
                (row_id, (closes[candle] / price - 1.0) * 100.0)
                for (row_id, _, price), candle in zip(rows, opens, strict=True)
                # Only a confirmed candle that has closed by now: never filled early.
                if candle in closes and candle + HOUR_MS <= now and price
            ]
            await database.set_return(horizon, values)
            filled += len(values)
    return filled
