"""Is the signal any good? The replay's verdicts against what the price did next, with honest statistics.

Definitions (the API documents the same):
- A bar's ``time`` is the open time of the last closed bar the signal could see; its decision price
  is that bar's close. ``forward_return_pct = (close[t + horizon] / close[t] - 1) * 100``.
- A LONG is a hit when the forward return is > 0, a SHORT when it is < 0; NEUTRAL takes no
  position (its "hit rate" is the share of rises, what a long would have hit: the base rate).
- Bars without enough history for every series are warm-up, not scored; bars whose horizon runs
  past ``end`` have no forward return and are counted nowhere.
- Intervals and p-values respect the overlap of consecutive forward returns (signals/statistics.py).
- Net figures are the position's return after a taker fee per side and the funding paid or received
  at each 8 h settlement inside the hold (signals/costs.py, the research command's cost model): a
  LONG nets ``r - fees - funding``, a SHORT ``-r - fees + funding``. A bar whose funding is unknown
  has no net return and is left out of the net means (``net_count`` says how many are in).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring import FACTOR_NAMES, ScoringConfig
from signals import statistics
from signals.costs import Costs, funding_per_bar, holding_funding, position_returns
from signals.errors import TooFewBarsError
from signals.inputs import Series
from signals.replay import History, ReplayedBar, replay

BOOTSTRAP_DRAWS = 1000
PERMUTATION_DRAWS = 2000
LOOKAHEAD_CUTS = 3
LOOKAHEAD_WINDOW_BARS = 30  # bars before each cut re-scored on the changed data (the service's check)
SIGNIFICANCE = 0.05
METHOD = (
    "Overlapping forward returns are not independent: hit-rate intervals are Wilson intervals at the "
    "effective sample size measured by a circular moving-block bootstrap, and p-values come from "
    "block permutations, with blocks of blockBars bars (at least the horizon)."
)


@dataclass(frozen=True, slots=True)
class OutcomeStats:
    name: str  # a signal class (LONG, SHORT, NEUTRAL) or a baseline's name
    count: int
    hit_rate: float
    hit_rate_ci95_low: float
    hit_rate_ci95_high: float
    mean_forward_return_pct: float  # for positions: the return of the position taken (shorts gain on falls)
    median_forward_return_pct: float
    effective_sample_size: float
    # The position's gross return (LONG: r, SHORT: -r; None for NEUTRAL, which takes none), and its
    # mean net of fees and funding over the ``net_count`` positions whose funding is known.
    mean_position_return_pct: float | None = None
    mean_net_return_pct: float | None = None
    net_count: int = 0


@dataclass(frozen=True, slots=True)
class FactorStats:
    factor: str
    coverage: float  # share of scored bars with data, 0-1
    information_coefficient: float  # Spearman of sub-score vs forward return
    ic_p_value: float
    source: str


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    confidence: str
    count: int
    hit_rate: float


@dataclass(frozen=True, slots=True)
class LookaheadCheck:
    cut_points: int
    mismatches: int
    bars_compared: int


@dataclass(frozen=True, slots=True)
class BacktestBar:
    time_ms: int
    price: float
    score: float
    signal: str
    confidence: str
    forward_return_pct: float | None
    funding_hold_pct: float | None = None  # funding a long pays over the hold (a short receives it), percent


@dataclass(frozen=True)
class BacktestReport:
    interval_ms: int
    start_ms: int
    end_ms: int
    horizon_bars: int
    bars_scored: int
    warmup_bars: int
    bars_without_outcome: int
    classes: tuple[OutcomeStats, ...]
    positions: OutcomeStats  # the signal's LONG and SHORT bars together, as the baselines
    baselines: tuple[OutcomeStats, ...]
    random_entries_draws: int
    random_entries_p_value: float
    factors: tuple[FactorStats, ...]
    confidence_calibration: tuple[CalibrationRow, ...]
    lookahead: LookaheadCheck
    block_bars: int
    effective_sample_size: float
    verdict: str
    notes: tuple[str, ...]
    bars: tuple[BacktestBar, ...]
    fee_bps: float = Costs().fee_bps  # taker fee per side in the net figures
    method: str = METHOD
    bootstrap_draws: int = BOOTSTRAP_DRAWS
    permutation_draws: int = PERMUTATION_DRAWS


MIN_SCORED_BARS = 30


def forward_returns(bars: Sequence[ReplayedBar], history: History, horizon: int, end_ms: int) -> list[float | None]:
    """Percent return from each bar's close to the close ``horizon`` bars later (None past ``end``)."""
    close_at = dict(zip(history.price.times, (r.close for r in history.price.rows), strict=True))
    span = horizon * history.interval_ms
    out: list[float | None] = []
    for bar in bars:
        later = bar.time_ms + span
        future = close_at.get(later) if later <= end_ms else None
        out.append((future / bar.price - 1.0) * 100.0 if future is not None and bar.price else None)
    return out


def _seed(history: History, horizon: int, config: ScoringConfig) -> int:
    """Same request, same data -> same draws: answers are reproducible."""
    times = history.price.times
    key = f"{times[:1]}{times[-1:]}{len(times)}{horizon}{sorted(config.weights.items())}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def bootstrap_draws(n: int) -> int:
    """1000 resamples up to ~4,000 outcomes, fewer beyond (at least 200): the variance of a hit rate
    is known to a few percent either way, and memory and time stay bounded for long records."""
    return max(200, min(BOOTSTRAP_DRAWS, 4_000_000 // max(n, 1)))


@dataclass(frozen=True)
class Summary:
    """Per-class outcomes, the signal's positions and always long, over one sample of outcomes."""

    classes: tuple[OutcomeStats, ...]
    positions: OutcomeStats
    always_long: OutcomeStats
    position_signs: np.ndarray  # +1 long, -1 short, 0 none, per outcome


class Sample:
    """Outcomes in time order (forward returns, percent), with the block bootstrap they share.

    The one place hit rates, intervals and means are computed: the backtest (bars of history) and
    the live track record (recorded signals) both summarise through it.
    """

    def __init__(self, returns: np.ndarray, horizon_bars: int, rng: np.random.Generator) -> None:
        self.r = returns
        self.n = int(returns.size)
        self.horizon_bars = horizon_bars
        self.block = statistics.block_length(horizon_bars, self.n)
        self.draws = bootstrap_draws(self.n)
        self.resamples = statistics.moving_block_resamples(self.n, self.block, self.draws, rng)

    def stats(self, name: str, members: np.ndarray, hits: np.ndarray, signed: np.ndarray) -> OutcomeStats:
        p = statistics.proportion(hits, members, self.resamples, self.horizon_bars)
        chosen = signed[members]
        return OutcomeStats(
            name,
            p.count,
            p.rate,
            p.low,
            p.high,
            float(chosen.mean()) if chosen.size else 0.0,
            float(np.median(chosen)) if chosen.size else 0.0,
            p.effective_n,
        )

    def summarize(self, direction: np.ndarray) -> Summary:
        """``direction``: LONG / SHORT / NEUTRAL per outcome."""
        r = self.r
        rises, falls = r > 0, r < 0
        longs, shorts, neutral = direction == "LONG", direction == "SHORT", direction == "NEUTRAL"
        signs = np.where(longs, 1, np.where(shorts, -1, 0)).astype(np.int8)
        return Summary(
            (
                self.stats("LONG", longs, rises, r),
                self.stats("SHORT", shorts, falls, r),
                self.stats("NEUTRAL", neutral, rises, r),
            ),
            self.stats("signal", longs | shorts, (longs & rises) | (shorts & falls), signs * r),
            self.stats("always_long", np.ones(self.n, dtype=bool), rises, r),
            signs,
        )


def run_backtest(
    history: History,
    config: ScoringConfig,
    start_ms: int,
    end_ms: int,
    horizon_bars: int,
    *,
    notes: Sequence[str] = (),
    lookahead_window_bars: int | None = LOOKAHEAD_WINDOW_BARS,
    replayed: list[ReplayedBar] | None = None,
    stop: threading.Event | None = None,
    costs: Costs | None = None,
) -> BacktestReport:
    """The report of a period at a horizon. ``replayed``: the period's replay when the caller has
    it already (it does not depend on the horizon); ``stop`` ends the work early when set; ``costs``:
    the fee of the net figures (5 bps per side by default)."""
    costs = costs or Costs()
    if replayed is None:
        replayed = replay(history, config, start_ms, end_ms, stop=stop)
    returns = forward_returns(replayed, history, horizon_bars, end_ms)
    scored = [(bar, r) for bar, r in zip(replayed, returns, strict=True) if bar.scored is not None]
    evaluated = [(bar, r) for bar, r in scored if r is not None]
    if len(evaluated) < MIN_SCORED_BARS:
        raise TooFewBarsError(
            f"only {len(evaluated)} bars have both a signal and a {horizon_bars}-bar outcome in this period "
            f"(at least {MIN_SCORED_BARS} are needed): choose a longer period or a shorter horizon_bars"
        )
    rng = np.random.default_rng(_seed(history, horizon_bars, config))
    r = np.array([ret for _, ret in evaluated], dtype=np.float64)
    direction = np.array([bar.scored.direction for bar, _ in evaluated])  # type: ignore[union-attr]
    sample = Sample(r, horizon_bars, rng)
    summary = sample.summarize(direction)
    n, block = sample.n, sample.block
    positions, always_long = summary.positions, summary.always_long
    longs, shorts = direction == "LONG", direction == "SHORT"
    signs = summary.position_signs
    funding = hold_funding(history, [bar.time_ms for bar, _ in evaluated], horizon_bars)
    net = position_returns(signs, r, funding, costs)
    hold = {bar.time_ms: float(f) for (bar, _), f in zip(evaluated, funding, strict=True) if np.isfinite(f)}
    classes = (
        _with_net(summary.classes[0], r[longs], net[longs]),
        _with_net(summary.classes[1], -r[shorts], net[shorts]),
        summary.classes[2],
    )
    positions = _with_net(positions, (signs * r)[signs != 0], net[signs != 0])
    always = np.ones(n, dtype=np.int8)
    always_long = _with_net(always_long, r, position_returns(always, r, funding, costs))
    momentum, momentum_signs = _momentum_only(evaluated, r, config, sample)
    momentum = _with_net(
        momentum, (momentum_signs * r)[momentum_signs != 0], position_returns(momentum_signs, r, funding, costs)
    )
    baselines = [always_long, momentum]
    position_hits = (longs & (r > 0)) | (shorts & (r < 0))
    permutations = statistics.block_permutations(n, block, PERMUTATION_DRAWS, rng)
    randomised = statistics.random_entries(signs, r, permutations)
    random_net, random_net_count = _random_entries_net(signs, r, funding, permutations, costs)
    baselines.append(
        OutcomeStats(
            "random_entries",
            positions.count,
            randomised.hit_rate,
            randomised.hit_rate_low,
            randomised.hit_rate_high,
            randomised.mean_return,
            randomised.median_return,
            positions.effective_sample_size,
            randomised.mean_return,
            random_net,
            random_net_count,
        )
    )
    factors = _factor_stats(evaluated, r, block, permutations, rng)
    confidence = np.array([bar.scored.confidence for bar, _ in evaluated])  # type: ignore[union-attr]
    calibration = []
    for level in ("high", "medium", "low"):
        taken = (confidence == level) & (longs | shorts)
        calibration.append(
            CalibrationRow(level, int(taken.sum()), float(position_hits[taken].mean()) if taken.any() else 0.0)
        )
    lookahead = check_lookahead(history, config, replayed, start_ms, end_ms, lookahead_window_bars, stop=stop)
    return BacktestReport(
        history.interval_ms,
        start_ms,
        end_ms,
        horizon_bars,
        bars_scored=n,
        warmup_bars=sum(1 for bar in replayed if bar.scored is None),
        bars_without_outcome=len(scored) - n,
        classes=classes,
        positions=positions,
        baselines=tuple(baselines),
        random_entries_draws=randomised.draws,
        random_entries_p_value=randomised.p_value,
        factors=factors,
        confidence_calibration=tuple(calibration),
        lookahead=lookahead,
        block_bars=block,
        effective_sample_size=always_long.effective_sample_size,
        verdict=_verdict(positions, always_long, randomised, horizon_bars),
        notes=tuple(notes),
        bars=tuple(_bar(bar, ret, hold.get(bar.time_ms)) for bar, ret in scored),
        fee_bps=costs.fee_bps,
    )


def hold_funding(history: History, entry_bars_ms: Sequence[int], horizon: int) -> np.ndarray:
    """Funding a long pays (percent; a short receives it) when decided at each bar and held
    ``horizon`` bars: the settlements of bars ``t + 1 .. t + horizon`` (signals/costs.py). NaN where
    a settlement has no funding reading recent enough."""
    out = np.full(len(entry_bars_ms), np.nan)
    if not entry_bars_ms or history.funding is None:
        return out
    step = history.interval_ms
    first = min(entry_bars_ms)
    grid = list(range(first, max(entry_bars_ms) + (horizon + 1) * step, step))  # every bar, gaps included
    per_bar = funding_per_bar(history.funding, grid, step)
    for k, t in enumerate(entry_bars_ms):
        out[k] = holding_funding(per_bar, (t - first) // step, horizon)
    return out


def _with_net(o: OutcomeStats, position: np.ndarray, net: np.ndarray) -> OutcomeStats:
    """``o`` with its positions' mean gross return and mean net return (over those whose net is known)."""
    known = net[np.isfinite(net)]
    return dataclasses.replace(
        o,
        mean_position_return_pct=float(position.mean()) if position.size else 0.0,
        mean_net_return_pct=float(known.mean()) if known.size else None,
        net_count=int(known.size),
    )


def _random_entries_net(
    signs: np.ndarray, r: np.ndarray, funding: np.ndarray, permutations: np.ndarray, costs: Costs
) -> tuple[float | None, int]:
    """Mean over the draws of the random positions' mean net return, and the positions per draw with
    a known funding cost (averaged): the same placements as the random-entries test."""
    shuffled = signs[permutations].astype(np.int8)
    known = (shuffled != 0) & np.isfinite(funding)[None, :]
    counts = known.sum(axis=1)
    if not counts.any():
        return None, 0
    net = np.where(known, position_returns(shuffled, r[None, :], funding[None, :], costs), 0.0)
    means = net.sum(axis=1)[counts > 0] / counts[counts > 0]
    return float(means.mean()), round(float(counts.mean()))


def _bar(bar: ReplayedBar, forward_return_pct: float | None, funding_hold_pct: float | None) -> BacktestBar:
    assert bar.scored is not None
    s = bar.scored
    return BacktestBar(bar.time_ms, bar.price, s.score, s.direction, s.confidence, forward_return_pct, funding_hold_pct)


def _momentum_only(
    evaluated: Sequence[tuple[ReplayedBar, float | None]], r: np.ndarray, config: ScoringConfig, sample: Sample
) -> tuple[OutcomeStats, np.ndarray]:
    """The momentum factor alone, read with the signal's thresholds (a trend-following baseline),
    and its positions (+1, -1, 0 per outcome)."""
    sub = np.array([_sub_score(bar, "momentum") for bar, _ in evaluated], dtype=np.float64)
    longs = sub >= config.long_threshold
    shorts = sub <= config.short_threshold
    sign = np.where(longs, 1.0, np.where(shorts, -1.0, 0.0))
    hits = (longs & (r > 0)) | (shorts & (r < 0))
    return sample.stats("momentum_only", longs | shorts, hits, sign * r), sign.astype(np.int8)


def _sub_score(bar: ReplayedBar, factor: str) -> float:
    assert bar.scored is not None
    for f in bar.scored.factors:
        if f.name == factor:
            return f.sub_score
    return float("nan")


def _factor_stats(
    evaluated: Sequence[tuple[ReplayedBar, float | None]],
    r: np.ndarray,
    block: int,
    permutations: np.ndarray,
    rng: np.random.Generator,
) -> tuple[FactorStats, ...]:
    out = []
    for factor in FACTOR_NAMES:
        sub = np.array([_sub_score(bar, factor) for bar, _ in evaluated], dtype=np.float64)
        present = ~np.isnan(sub)
        coverage = float(present.mean())
        source = next(
            (f.source for bar, _ in evaluated for f in bar.scored.factors if f.name == factor),  # type: ignore[union-attr]
            "",
        )
        if present.sum() >= 3:
            # A factor present at only some bars gets permutations of its own length.
            shuffles = (
                permutations
                if present.all()
                else statistics.block_permutations(int(present.sum()), block, PERMUTATION_DRAWS, rng)
            )
            corr = statistics.rank_correlation(sub[present], r[present], shuffles)
            out.append(FactorStats(factor, coverage, corr.coefficient, corr.p_value, source))
        else:
            out.append(FactorStats(factor, coverage, 0.0, 1.0, source))
    return tuple(out)


def _verdict(
    positions: OutcomeStats, always_long: OutcomeStats, randomised: statistics.RandomEntries, horizon: int
) -> str:
    if positions.count == 0:
        return "No edge measurable: the signal took no position (every scored bar was NEUTRAL)."
    figures = (
        f"following the signal returned {positions.mean_forward_return_pct:+.3f}% per {horizon}-bar trade "
        f"({positions.count} LONG/SHORT bars), random entries with the same longs and shorts "
        f"{randomised.mean_return:+.3f}%, always long {always_long.mean_forward_return_pct:+.3f}% "
        f"(block-permutation p = {randomised.p_value:.3f})"
    )
    if randomised.p_value < SIGNIFICANCE and positions.mean_forward_return_pct > 0:
        return f"Edge at the 5% level: {figures}."
    return f"No edge: {figures}; the difference is within what chance produces."


# ---- look-ahead check (freqtrade's lookahead-analysis idea) -------------------------------------


def _changed(row: Any, donor: Any, names: Sequence[str]) -> Any:
    """``row`` with ``donor``'s values scaled (same timestamp): what a different future looks like."""
    values = {}
    for name in names:
        value = getattr(donor, name)
        values[name] = value * 1.25 + 1.0 if isinstance(value, float) else value
    return dataclasses.replace(row, **values)


def change_future(history: History, cut_ms: int) -> History:
    """The same history with every row after ``cut_ms`` changed (timestamps kept)."""
    replaced: dict[str, Series[Any]] = {}
    for name, series in history.series().items():
        keep = [row for t, row in zip(series.times, series.rows, strict=True) if t <= cut_ms]
        future = [row for t, row in zip(series.times, series.rows, strict=True) if t > cut_ms]
        donors = list(reversed(future))
        names = [f.name for f in dataclasses.fields(future[0]) if f.name != "time"] if future else []
        changed = [_changed(row, donor, names) for row, donor in zip(future, donors, strict=True)]
        replaced[name] = Series(keep + changed, series.source, series.step_ms, series.max_age_ms)
    return history.with_series(replaced)


def check_lookahead(
    history: History,
    config: ScoringConfig,
    replayed: Sequence[ReplayedBar],
    start_ms: int,
    end_ms: int,
    window_bars: int | None,
    cuts: int = LOOKAHEAD_CUTS,
    stop: threading.Event | None = None,
) -> LookaheadCheck:
    """Re-score bars up to each cut point on data whose future was changed: every bar must score the
    same, and the bar at the cut must still be scored (a replay peeking ahead would skip it)."""
    scored = [bar for bar in replayed if bar.scored is not None]
    if not scored:
        return LookaheadCheck(0, 0, 0)
    picks = sorted({scored[len(scored) * (k + 1) // (cuts + 1)].time_ms for k in range(cuts)})
    mismatches = compared = 0
    by_time = {bar.time_ms: bar for bar in replayed}
    for cut in picks:
        window = [bar.time_ms for bar in replayed if bar.time_ms <= cut]
        if window_bars is not None:
            window = window[-window_bars:]
        again = replay(change_future(history, cut), config, start_ms, end_ms, bars=set(window), stop=stop)
        seen = {bar.time_ms: bar for bar in again}
        for t in window:
            compared += 1
            if not _same(by_time[t], seen.get(t)):
                mismatches += 1
    return LookaheadCheck(len(picks), mismatches, compared)


def _same(a: ReplayedBar, b: ReplayedBar | None) -> bool:
    if b is None or (a.scored is None) != (b.scored is None):
        return False
    if a.scored is None or b.scored is None:
        return True
    return (
        a.scored.score == b.scored.score
        and a.scored.direction == b.scored.direction
        and a.price == b.price
        and [f.sub_score for f in a.scored.factors] == [f.sub_score for f in b.scored.factors]
    )
