"""Factor inputs from series that end at a time ``t``: the one place provider history becomes scoring input.

One domain, two clocks. The live desk calls these builders with ``t = now`` on the short series it
just fetched; the replay calls them with ``t = each bar`` on the whole history. Every builder sees
only rows whose ``time`` (a bar's OPEN time, as Coinglass and OKX stamp them) is at or before
``t``, so a replay cannot read the future by construction. Windows ("the last 24 h", "the change
over 4 h") are anchored at the newest visible row, so live (whose newest row may be the bar still
forming) and replay (whose newest row is the bar at ``t``) compute the same quantity.

A builder that cannot read its factor at ``t`` raises :class:`SeriesGap` naming why: too little
history before ``t`` (warm-up), or data older than the series allows (a gap upstream).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from scoring import (
    FearGreedInput,
    FundingInput,
    LiquidationInput,
    LongShortInput,
    MomentumInput,
    OpenInterestInput,
    Provenance,
    ScoringConfig,
    SmartMoneyInput,
)
from scoring.config import horizon_hours

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# The momentum factor's horizons (scoring config keys) in milliseconds; a series whose bars are
# coarser than a horizon cannot resolve it and leaves it out (the factor renormalises).
MOMENTUM_HORIZONS_MS = {"1h": HOUR_MS, "4h": 4 * HOUR_MS, "24h": DAY_MS}


class Timed(Protocol):
    @property
    def time(self) -> datetime: ...


R = TypeVar("R", bound=Timed, covariant=True)


class SeriesGap(Exception):
    """The factor cannot be read at ``t`` from this series (warm-up, or a hole in the data)."""

    def __init__(self, source: str, reason: str, warmup: bool = False) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.warmup = warmup  # True: not enough history BEFORE t yet (the series starts later)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class Series(Generic[R]):
    """Rows of one upstream series, oldest first, with their open times in ms for bisection.

    ``step_ms`` is the bar size. ``max_age_ms`` bounds how much older than ``t`` the newest row (and
    the row a change is measured from) may be: the replay sets two bars, so a series that stopped
    updating is a gap, not the latest reading. ``None`` sets no bound (live: the scorer drops a
    factor whose data is older than its ``[max_age_hours]``, for both clocks).
    """

    __slots__ = ("max_age_ms", "rows", "source", "step_ms", "times")

    # Covariant so a Series[Ohlc] is a Series of anything with a close; rows are never replaced.
    def __init__(self, rows: Sequence[R], source: str, step_ms: int, max_age_ms: int | None = None) -> None:  # type: ignore[misc]
        ordered = sorted(rows, key=lambda r: r.time)
        self.rows: tuple[R, ...] = tuple(ordered)
        self.times: list[int] = [to_ms(r.time) for r in ordered]
        self.source = source
        self.step_ms = step_ms
        self.max_age_ms = max_age_ms if max_age_ms is not None else 1 << 62

    def __len__(self) -> int:
        return len(self.rows)

    def last_index(self, t_ms: int) -> int:
        """Index of the newest row visible at ``t`` (time <= t); SeriesGap if none or too old."""
        end = bisect_right(self.times, t_ms)
        if end == 0:
            raise SeriesGap(self.source, f"no data at or before {from_ms(t_ms):%Y-%m-%d %H:%M}", warmup=True)
        if t_ms - self.times[end - 1] > self.max_age_ms:
            raise SeriesGap(self.source, f"newest data is from {from_ms(self.times[end - 1]):%Y-%m-%d %H:%M}")
        return end - 1

    def index_back(self, last: int, span_ms: int) -> int:
        """Index of the row ``span_ms`` before row ``last`` (the newest at or before that time)."""
        target = self.times[last] - span_ms
        j = bisect_right(self.times, target) - 1
        if j < 0:
            raise SeriesGap(self.source, f"needs {span_ms // HOUR_MS}h of history", warmup=True)
        if target - self.times[j] > self.max_age_ms:
            raise SeriesGap(self.source, f"hole in the data before {from_ms(self.times[last]):%Y-%m-%d %H:%M}")
        return j

    def provenance(self, index: int) -> Provenance:
        return Provenance(self.source, self.rows[index].time)


def pct_change(new: float, old: float) -> float:
    return (new / old - 1.0) * 100.0 if old else 0.0


class _Close(Timed, Protocol):
    @property
    def close(self) -> float: ...


class _LongPct(Timed, Protocol):
    @property
    def long_pct(self) -> float: ...


class _Liquidations(Timed, Protocol):
    @property
    def long_usd(self) -> float: ...
    @property
    def short_usd(self) -> float: ...


class _Value(Timed, Protocol):
    @property
    def value(self) -> float: ...


def liquidations(s: Series[_Liquidations], t_ms: int, window_ms: int = DAY_MS) -> LiquidationInput:
    """Longs and shorts liquidated in the ``window_ms`` ending with the newest visible bar."""
    last = s.last_index(t_ms)
    first_time = s.times[last] - window_ms + s.step_ms  # the window's first bar
    if s.times[0] > first_time:
        raise SeriesGap(s.source, f"needs {window_ms // HOUR_MS}h of history", warmup=True)
    first = bisect_right(s.times, first_time - 1)
    rows = s.rows[first : last + 1]
    return LiquidationInput(sum(r.long_usd for r in rows), sum(r.short_usd for r in rows), s.provenance(last))


def funding(s: Series[_Close], t_ms: int) -> FundingInput:
    """The newest visible funding reading (percent per 8h: the close of its bar)."""
    last = s.last_index(t_ms)
    return FundingInput(s.rows[last].close, s.provenance(last))


def momentum(s: Series[_Close], t_ms: int, horizons_ms: Mapping[str, int] = MOMENTUM_HORIZONS_MS) -> MomentumInput:
    """Percent change of the close over each horizon the series' bars can resolve."""
    last = s.last_index(t_ms)
    close = s.rows[last].close
    changes = {
        name: pct_change(close, s.rows[s.index_back(last, span)].close)
        for name, span in horizons_ms.items()
        if span >= s.step_ms
    }
    if not changes:
        raise SeriesGap(s.source, "bars too coarse for any momentum horizon")
    return MomentumInput(changes, s.provenance(last))


def price_change(s: Series[_Close], t_ms: int, span_ms: int = DAY_MS) -> float:
    """Percent change of the close over ``span_ms`` ending with the newest visible bar."""
    last = s.last_index(t_ms)
    return pct_change(s.rows[last].close, s.rows[s.index_back(last, span_ms)].close)


def open_interest(oi: Series[_Close], t_ms: int, price_change_pct: float, span_ms: int = DAY_MS) -> OpenInterestInput:
    """OI change over ``span_ms`` read together with the price change over the same span."""
    last = oi.last_index(t_ms)
    change = pct_change(oi.rows[last].close, oi.rows[oi.index_back(last, span_ms)].close)
    return OpenInterestInput(change, price_change_pct, oi.provenance(last), span_ms // HOUR_MS)


_SPANS: dict[tuple[str, ...], dict[str, int]] = {}


def momentum_spans(config: ScoringConfig) -> Mapping[str, int]:
    """The profile's momentum horizons (its ``[momentum]`` keys, "24h") in milliseconds."""
    keys = tuple(config.momentum_horizons)
    spans = _SPANS.get(keys)
    if spans is None:
        spans = _SPANS.setdefault(keys, {k: horizon_hours(k) * HOUR_MS for k in keys})
    return spans


def lookback_ms(config: ScoringConfig, factor: str) -> int:
    """A factor's ``[lookback]`` in milliseconds (24 h unless the profile sets it)."""
    return config.lookback(factor) * HOUR_MS


def long_short(s: Series[_LongPct], t_ms: int) -> LongShortInput:
    last = s.last_index(t_ms)
    return LongShortInput(s.rows[last].long_pct, s.provenance(last))


def smart_money(s: Series[_LongPct], t_ms: int) -> SmartMoneyInput:
    last = s.last_index(t_ms)
    return SmartMoneyInput(s.rows[last].long_pct, s.provenance(last))


def fear_greed(s: Series[_Value], t_ms: int) -> FearGreedInput:
    last = s.last_index(t_ms)
    return FearGreedInput(s.rows[last].value, s.provenance(last))
