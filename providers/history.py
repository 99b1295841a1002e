"""A long history range fetched in pages, all at once, without losing or inventing a bar.

Providers cap a history call (Coinglass 1000 rows, OKX 100), so a range is split into windows of
at most ``page_bars`` bars and every window is asked for at the same time: one backtest costs
ceil(bars / page_bars) calls per series, each cached by the shared HTTP layer like any other call.

    rows = await fetch_range(
        lambda a, b: coinglass.price_history("BTCUSDT", "Binance", "4h", COINGLASS_PAGE_BARS, a, b),
        start_ms, end_ms, bar_ms("4h"), COINGLASS_PAGE_BARS, lambda row: row.time,
    )
    candles = await fetch_range(
        lambda a, b: okx.history_candles("BTC", "4H", *okx_cursors(a, b), limit=OKX_PAGE_BARS),
        start_ms, end_ms, bar_ms("4H"), OKX_PAGE_BARS, lambda c: c.time,
    )

What counts as data: a window answered "no data" (ProviderError kind NOT_FOUND: the clients raise
it for an empty ``data``) contributes nothing, since history may begin later than asked; a range
where no window has data gives []. Every other failure propagates as the ProviderError it is, and
the other windows are cancelled: a backtest must never be computed on part of the data silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from providers.errors import ErrorKind, ProviderError

T = TypeVar("T")

COINGLASS_PAGE_BARS = 1000  # every Coinglass v4 history endpoint: limit max 1000
OKX_PAGE_BARS = 100  # history-candles (and funding-rate-history per the team's reference): max 100

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def bar_ms(interval: str) -> int:
    """Length of one bar in ms: Coinglass (``4h``, ``1d``), OKX (``4H``, ``1D``, ``6Hutc``) or the seed's
    spelling (``h4``, ``d1``). OKX's ``1M`` (month) has no fixed length and is refused."""
    spelling = interval.strip().removesuffix("utc")
    if spelling[:1].isalpha():  # seed spelling: h4 -> 4h
        spelling = spelling[1:] + spelling[0]
    count, unit = spelling[:-1], spelling[-1:]
    if unit == "M" or not count.isdigit() or int(count) < 1 or unit.lower() not in _UNIT_MS:
        raise ValueError(f"not a bar interval: {interval!r}")
    return int(count) * _UNIT_MS[unit.lower()]


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (the clients' ``time`` fields)."""
    return round(moment.timestamp() * 1000)


def windows(start_ms: int, end_ms: int, step_ms: int, page_bars: int) -> list[tuple[int, int]]:
    """The inclusive windows of ``page_bars * step_ms`` ms that cover [start_ms, end_ms], on fixed
    boundaries (multiples of the window's length since the epoch): each holds at most ``page_bars``
    bar opens, so one call of that limit answers it whole.

    Fixed boundaries make pages shared: two backtests whose periods overlap ask for the same windows
    (the same URLs), so the second is served from the cache except for the pages it adds. A window
    starting at the request's own start would make every shifted period a new set of calls.
    """
    if step_ms < 1 or page_bars < 1:
        raise ValueError(f"step_ms and page_bars must be positive, got {step_ms} and {page_bars}")
    if start_ms > end_ms:
        raise ValueError(f"start_ms {start_ms} is after end_ms {end_ms}")
    span = step_ms * page_bars
    first = start_ms - start_ms % span
    return [(a, a + span - 1) for a in range(first, end_ms + 1, span)]


def okx_cursors(window_start_ms: int, window_end_ms: int) -> tuple[int, int]:
    """OKX's exclusive cursors (after, before) for the inclusive window [start, end]: ``after`` asks
    for bars older than it, ``before`` for bars newer than it."""
    return window_end_ms + 1, window_start_ms - 1


async def fetch_range(
    fetch_page: Callable[[int, int], Awaitable[list[T]]],
    start_ms: int,
    end_ms: int,
    step_ms: int,
    page_bars: int,
    time_of: Callable[[T], datetime],
) -> list[T]:
    """Rows with ``start_ms <= time <= end_ms``, oldest first, one per time.

    ``fetch_page(window_start_ms, window_end_ms)`` asks the provider for one window (inclusive
    bounds, ``limit=page_bars``); every window is fetched concurrently. Rows outside the range
    are dropped, a time seen twice keeps the row of the earlier window. A NOT_FOUND window adds
    nothing; any other ProviderError (or exception) is raised and the other windows are cancelled.
    """
    spans = windows(start_ms, end_ms, step_ms, page_bars)

    async def page(window: tuple[int, int]) -> list[T]:
        try:
            return await fetch_page(*window)
        except ProviderError as error:
            if error.kind is ErrorKind.NOT_FOUND:
                return []
            raise

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(page(window)) for window in spans]
    except BaseExceptionGroup as failed:
        raise _first_failure(failed) from None
    by_time: dict[int, T] = {}
    for task in tasks:
        for row in task.result():
            moment = to_ms(time_of(row))
            if start_ms <= moment <= end_ms:
                by_time.setdefault(moment, row)
    return [by_time[moment] for moment in sorted(by_time)]


def _first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to raise for a failed range: the first ProviderError, else the first exception."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        error = pending.pop(0)
        if isinstance(error, BaseExceptionGroup):
            pending[:0] = list(error.exceptions)
        else:
            leaves.append(error)
    return next((e for e in leaves if isinstance(e, ProviderError)), leaves[0])
