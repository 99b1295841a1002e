"""providers/history.py on its own: windows, concurrency, dedup, bounds, what fails and what does not."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from providers.errors import ErrorKind, ProviderError
from providers.history import bar_ms, fetch_range, okx_cursors, to_ms, windows

H4 = 4 * 3_600_000
T0 = 1_731_585_600_000  # 2024-11-14 12:00 UTC, the first bar of the bundled history
A0 = T0 - T0 % (100 * H4)  # the fixed page boundary of 100-bar pages at or before T0


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def series(first: int, bars: int, step: int = H4) -> list[tuple[datetime, int]]:
    """Rows (time, bar index), oldest first: what a provider holds."""
    return [(at(first + k * step), k) for k in range(bars)]


def time_of(row: tuple[datetime, int]) -> datetime:
    return row[0]


class FakeProvider:
    """Answers a window like the twin: rows in [a, b], at most `limit` (the newest), or NOT_FOUND."""

    def __init__(self, rows: list[tuple[datetime, int]], limit: int) -> None:
        self.rows, self.limit = rows, limit
        self.calls: list[tuple[int, int]] = []

    async def page(self, a: int, b: int) -> list[tuple[datetime, int]]:
        self.calls.append((a, b))
        hits = [r for r in self.rows if a <= to_ms(r[0]) <= b][-self.limit :]
        if not hits:
            raise ProviderError("fake", "/history", ErrorKind.NOT_FOUND, "no data")
        return hits


def test_windows_cover_the_range_on_fixed_boundaries_and_hold_at_most_page_bars_bars() -> None:
    assert windows(0, 2999, 1, 1000) == [(0, 999), (1000, 1999), (2000, 2999)]
    assert windows(0, 2500, 1, 1000) == [(0, 999), (1000, 1999), (2000, 2999)]
    assert windows(1500, 2500, 1, 1000) == [(1000, 1999), (2000, 2999)]
    assert windows(5, 5, H4, 1000) == [(0, 1000 * H4 - 1)]
    end = T0 + 1079 * H4  # the bundled period: 1080 bars
    spans = windows(T0, end, H4, 1000)
    span = 1000 * H4
    assert all(a % span == 0 and b == a + span - 1 for a, b in spans)
    assert spans[0][0] <= T0 and spans[-1][1] >= end
    bars = [T0 + k * H4 for k in range(1080)]
    counts = [sum(a <= t <= b for t in bars) for a, b in spans]
    assert sum(counts) == 1080 and max(counts) <= 1000


def test_a_shifted_period_asks_for_the_same_pages_but_the_ones_it_adds() -> None:
    """Why the boundaries are fixed: overlapping backtests share cached pages."""
    base = set(windows(T0, T0 + 1079 * H4, H4, 1000))
    for shift in (1, 6, 42, 300):
        shifted = set(windows(T0 + shift * H4, T0 + (1079 + shift) * H4, H4, 1000))
        assert len(shifted - base) <= 1, shift


@pytest.mark.parametrize(
    ("start", "end", "step", "page"), [(10, 9, 1, 1), (0, 10, 0, 5), (0, 10, 1, 0), (0, 10, -1, 5)]
)
def test_windows_refuse_an_empty_range_or_a_zero_step(start: int, end: int, step: int, page: int) -> None:
    with pytest.raises(ValueError):
        windows(start, end, step, page)


@pytest.mark.parametrize(
    ("spelling", "ms"),
    [("4h", H4), ("4H", H4), ("h4", H4), ("1d", 86_400_000), ("d1", 86_400_000), ("1Dutc", 86_400_000),
     ("6Hutc", 6 * 3_600_000), ("15m", 900_000), ("1w", 604_800_000), ("1W", 604_800_000)],
)  # fmt: skip
def test_bar_ms_reads_every_spelling(spelling: str, ms: int) -> None:
    assert bar_ms(spelling) == ms


@pytest.mark.parametrize("spelling", ["", "h", "4x", "1M", "0h", "-1h", "hh"])
def test_bar_ms_refuses_what_is_not_a_fixed_bar(spelling: str) -> None:
    with pytest.raises(ValueError):
        bar_ms(spelling)


def test_okx_cursors_are_exclusive_bounds_around_the_window() -> None:
    assert okx_cursors(T0, T0 + 99 * H4) == (T0 + 99 * H4 + 1, T0 - 1)


async def test_every_window_is_fetched_once_and_the_rows_come_back_oldest_first() -> None:
    provider = FakeProvider(series(T0, 1080), limit=1000)
    rows = await fetch_range(provider.page, T0, T0 + 1079 * H4, H4, 1000, time_of)
    assert sorted(provider.calls) == windows(T0, T0 + 1079 * H4, H4, 1000)
    assert [k for _, k in rows] == list(range(1080))


async def test_windows_are_fetched_concurrently() -> None:
    spans = windows(A0, A0 + 999 * H4, H4, 100)
    barrier = asyncio.Barrier(len(spans))  # passes only when every window is in flight at once

    async def page(a: int, b: int) -> list[tuple[datetime, int]]:
        await barrier.wait()
        return [(at(a), a)]

    async with asyncio.timeout(5):  # a sequential fetch would wait at the barrier forever
        rows = await fetch_range(page, A0, A0 + 999 * H4, H4, 100, time_of)
    assert len(rows) == len(spans) == 10


async def test_duplicates_and_rows_outside_the_range_are_dropped() -> None:
    start, end = T0 + 10 * H4, T0 + 29 * H4

    async def sloppy(a: int, b: int) -> list[tuple[datetime, int]]:
        # A provider that ignores the bounds a little and answers newest first, twice over.
        rows = [(at(t), t) for t in range(a - 2 * H4, b + 3 * H4, H4)]
        return list(reversed(rows + rows))

    rows = await fetch_range(sloppy, start, end, H4, 5, time_of)
    times = [to_ms(t) for t, _ in rows]
    assert times == list(range(start, end + 1, H4))


async def test_a_time_seen_in_two_windows_keeps_the_earlier_windows_row() -> None:
    async def page(a: int, b: int) -> list[tuple[datetime, int]]:
        return [(at(T0 + 5 * H4), a)]  # every window claims the same bar

    rows = await fetch_range(page, T0, T0 + 19 * H4, H4, 5, time_of)
    assert rows == [(at(T0 + 5 * H4), windows(T0, T0 + 19 * H4, H4, 5)[0][0])]


async def test_bounds_are_inclusive() -> None:
    provider = FakeProvider(series(T0, 100), limit=1000)
    rows = await fetch_range(provider.page, T0 + 3 * H4, T0 + 7 * H4, H4, 1000, time_of)
    assert [k for _, k in rows] == [3, 4, 5, 6, 7]


async def test_windows_without_data_add_nothing_when_history_begins_later() -> None:
    provider = FakeProvider(series(A0 + 250 * H4, 50), limit=100)  # data only for bars 250..299
    rows = await fetch_range(provider.page, A0, A0 + 399 * H4, H4, 100, time_of)
    assert len(provider.calls) == 4
    assert [k for _, k in rows] == list(range(50))
    assert await fetch_range(provider.page, A0 + 1000 * H4, A0 + 1100 * H4, H4, 100, time_of) == []


@pytest.mark.parametrize("kind", [ErrorKind.UPSTREAM, ErrorKind.RATE_LIMITED, ErrorKind.TIMEOUT, ErrorKind.PLAN])
async def test_any_other_failure_of_one_window_fails_the_range_and_cancels_the_rest(kind: ErrorKind) -> None:
    never = asyncio.Event()
    cancelled: list[int] = []

    async def page(a: int, b: int) -> list[tuple[datetime, int]]:
        if a == A0 + 200 * H4:
            raise ProviderError("fake", "/history", kind, "broken page")
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(a)
            raise
        return []

    with pytest.raises(ProviderError) as caught:
        async with asyncio.timeout(5):
            await fetch_range(page, A0, A0 + 499 * H4, H4, 100, time_of)
    assert caught.value.kind is kind and caught.value.message == "broken page"
    assert sorted(cancelled) == [A0 + k * 100 * H4 for k in (0, 1, 3, 4)]


async def test_a_bug_in_the_page_function_is_raised_as_itself() -> None:
    async def page(a: int, b: int) -> list[tuple[datetime, int]]:
        raise KeyError("time")

    with pytest.raises(KeyError):
        await fetch_range(page, T0, T0 + 10 * H4, H4, 5, time_of)
