"""Research across coins and years: the replayed signal on a panel of coins, net of costs, with
statistics that respect the overlap of horizons, the correlation across coins and the search.

Pure domain: no proto, no service. The signal at every bar is the replay's (signals/replay.py: the
same factor builders and ``score_signal`` that serve it live); this module only judges it.

Definitions (the command's JSON documents the same):

- Bar ``t`` (open time of the last closed bar) is decided at its close; ``forward_return_pct`` is
  gross: ``(close[t + h] / close[t] - 1) * 100``.
- A position's own return (``net_return_pct``): signals/costs.py (fees on entry and exit, funding
  at each 8 h settlement of the hold). Per class the POSITION's return is reported: a SHORT that
  lost shows a negative number.
- **The tradable rule**: each bar, 1/h of the coin's capital is put in the bar's position (LONG +1,
  SHORT -1, NEUTRAL 0) and held h bars. Its net position during a day is the sum of the live
  tranches; it trades the change of that net position (tranches rolling into tranches of the same
  side net out), so fees are paid on turnover, and funding on the net position at each settlement.
  Each tranche keeps its entry notional (no compounding); the panel gives each coin an equal share
  of capital. Its daily P&L (percent of capital) gives the equity curve, the annualised Sharpe ratio
  (365 trading days: crypto trades every day), the maximum drawdown (percent of capital), turnover
  (capital traded a year, both sides) and exposure (mean share of capital in positions).
- **Baselines on the same bars**: always long (every bar with an outcome LONG), and random entries:
  the signal's own position sequence circularly shifted in time by the same shift for every coin
  (as many longs and shorts, clustered as the signal clusters them, the coins' co-movement kept).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring import FACTOR_NAMES, ScoringConfig
from signals import panel_statistics as ps
from signals import smc
from signals.backtest import LookaheadCheck, check_lookahead
from signals.costs import Costs, funding_per_bar
from signals.inputs import DAY_MS, from_ms, to_ms
from signals.replay import History, ReplayedBar, replay

FloatArray = NDArray[np.float64]
FACTOR_HORIZONS = (1, 3, 7)
STUDIED = (*(f for f in FACTOR_NAMES if f != "social"), "score")
BOOTSTRAP_DRAWS = 1000
RANDOM_DRAWS = 400
SPA_REPS = 1000
YEAR_DAYS = 365.0
SIGNIFICANCE = 0.05
EQUITY_METHOD = (
    "rule equity: 1/h of each coin's capital entered each bar and held h bars, coins equally weighted; "
    "constant notional, no compounding, so P&L adds and drawdowns (percent of starting capital) can exceed 100%; "
    "fees on the change of the net position, funding on the net position at each settlement"
)


@dataclass(frozen=True)
class CoinReplay:
    coin: str
    history: History
    bars: tuple[ReplayedBar, ...]
    lookahead: LookaheadCheck


@dataclass(frozen=True)
class Panel:
    """Every coin's replay on one calendar of days (rows) x coins (columns); NaN where absent."""

    coins: tuple[str, ...]
    times: NDArray[np.int64]  # bar open times, one a day
    close: FloatArray
    scored: NDArray[np.bool_]
    score: FloatArray
    sign: NDArray[np.int8]  # +1 LONG, -1 SHORT, 0 NEUTRAL or not scored
    sub_scores: dict[str, FloatArray]
    funding_bar: FloatArray  # funding a long pays for holding through each bar (percent)
    replays: tuple[CoinReplay, ...]
    start_ms: int
    end_ms: int
    interval_ms: int
    notes: tuple[str, ...]
    # Factor candidates studied beside the served factors but carrying no weight (e.g. the SMC
    # structure reading): name -> value per day and coin, known at the day's close.
    candidates: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def studied(self) -> tuple[str, ...]:
        return (*STUDIED, *self.candidates)


SMC_CANDIDATE = "smc_structure"
SMC_LOOKBACK_BARS = 100  # the structure read from the last 100 daily closes at each bar


def with_smc_candidate(panel: Panel, lookback: int = SMC_LOOKBACK_BARS) -> Panel:
    """The panel with the SMC structure reading (signals/smc.py: +1 bullish structure in discount ..
    -1 bearish in premium) as a factor candidate: at each bar, from the closed bars up to its close,
    the same clock as the served factors. A weight-0 candidate: the factor study judges it."""
    values = np.full(panel.close.shape, np.nan)
    row_of = {int(t): i for i, t in enumerate(panel.times)}
    step = timedelta(milliseconds=panel.interval_ms)
    for j, replay_ in enumerate(panel.replays):
        for close_time, reading in smc.reading_series(replay_.history.price.rows, step, lookback=lookback):
            i = row_of.get(to_ms(close_time - step))  # the row of the bar that closed then
            if i is not None and reading is not None:
                values[i, j] = reading
    return replace(panel, candidates={**panel.candidates, SMC_CANDIDATE: values})


def replay_panel(
    histories: Sequence[tuple[str, History]],
    config: ScoringConfig,
    start_ms: int,
    end_ms: int,
    notes: Sequence[str] = (),
    lookahead_window_bars: int | None = 30,
) -> Panel:
    """Replay every coin (the live scorer at every bar) and lay the results on one calendar."""
    replays = []
    for coin, history in histories:
        bars = replay(history, config, start_ms, end_ms)
        check = check_lookahead(history, config, bars, start_ms, end_ms, lookahead_window_bars)
        replays.append(CoinReplay(coin, history, tuple(bars), check))
    step = histories[0][1].interval_ms
    scored_times = [b.time_ms for r in replays for b in r.bars if b.scored is not None]
    if not scored_times:
        reasons = "; ".join(f"{r.coin}: {r.bars[-1].warmup_reason}" for r in replays if r.bars)
        raise ValueError(f"no bar of the period could be scored (warm-up to the end: {reasons or 'no bars'})")
    first = min(scored_times)
    times = np.arange(first, end_ms + 1, step, dtype=np.int64)
    row_of = {int(t): i for i, t in enumerate(times)}
    n, c = times.size, len(replays)
    close = np.full((n, c), np.nan)
    scored = np.zeros((n, c), dtype=bool)
    score = np.full((n, c), np.nan)
    sign = np.zeros((n, c), dtype=np.int8)
    subs = {f: np.full((n, c), np.nan) for f in STUDIED if f != "score"}
    funding = np.full((n, c), np.nan)
    extra = list(notes)
    for j, r in enumerate(replays):
        for t, row in zip(r.history.price.times, r.history.price.rows, strict=True):
            i = row_of.get(t)
            if i is not None:
                close[i, j] = float(row.close)
        funding[:, j] = funding_per_bar(r.history.funding, [int(t) for t in times], step)
        coin_first = None
        for bar in r.bars:
            i = row_of.get(bar.time_ms)
            if i is None or bar.scored is None:
                continue
            coin_first = bar.time_ms if coin_first is None else coin_first
            s = bar.scored
            scored[i, j] = True
            score[i, j] = s.score
            sign[i, j] = 1 if s.direction == "LONG" else -1 if s.direction == "SHORT" else 0
            for f in s.factors:
                if f.name in subs:
                    subs[f.name][i, j] = f.sub_score
        warm = [b for b in r.bars if b.scored is None and (coin_first is None or b.time_ms < coin_first)]
        if warm:
            extra.append(
                f"{r.coin}: {len(warm)} warm-up bars before {from_ms(coin_first or end_ms):%Y-%m-%d} "
                f"(not scored: {warm[-1].warmup_reason})"
            )
        for factor, why in sorted(r.history.unavailable.items()):
            extra.append(f"{r.coin}: {factor} missing at every bar ({why})")
        scored_bars = [b.scored for b in r.bars if b.scored is not None]
        gaps: dict[str, list[str]] = {}
        for s in scored_bars:
            for name, reason in s.missing:
                if name != "social" and name not in r.history.unavailable:
                    gaps.setdefault(name, []).append(reason)
        for name, why_missing in sorted(gaps.items()):
            extra.append(
                f"{r.coin}: {name} missing at {len(why_missing)} of {len(scored_bars)} scored bars, scored without it "
                f"(e.g. {why_missing[0]})"
            )
    extra.append("social: no history (LunarCrush is live only): every bar is scored without it")
    return Panel(
        tuple(r.coin for r in replays),
        times,
        close,
        scored,
        score,
        sign,
        subs,
        funding,
        tuple(replays),
        start_ms,
        end_ms,
        step,
        tuple(extra),
    )


# ---- returns ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    """Forward returns at one horizon on the panel's calendar (NaN where there is no outcome)."""

    horizon: int
    gross: FloatArray  # (close[t+h]/close[t]-1)*100 at scored bars with an outcome
    funding_hold: FloatArray  # funding a long pays over bars t+1..t+h
    has_outcome: NDArray[np.bool_]
    net_long: FloatArray  # a LONG position's own return after fees and funding
    net_short: FloatArray  # a SHORT position's own return after fees and funding


def outcomes(panel: Panel, horizon: int, costs: Costs) -> Outcomes:
    n = panel.times.size
    gross = np.full(panel.close.shape, np.nan)
    hold = np.full(panel.close.shape, np.nan)
    if horizon < n:
        gross[: n - horizon] = (panel.close[horizon:] / panel.close[: n - horizon] - 1.0) * 100.0
        windows = np.stack([panel.funding_bar[k : n - horizon + k] for k in range(1, horizon + 1)])
        hold[: n - horizon] = windows.sum(axis=0)
    gross[~panel.scored] = np.nan
    has = np.isfinite(gross)
    hold[~has] = np.nan
    rt = costs.round_trip_pct
    return Outcomes(horizon, gross, hold, has, gross - rt - hold, -gross - rt + hold)


def position_net(o: Outcomes, sign: NDArray[np.int8]) -> FloatArray:
    """Each bar's position's net return (NaN for NEUTRAL and bars without outcome)."""
    out: FloatArray = np.where(sign == 1, o.net_long, np.where(sign == -1, o.net_short, np.nan))
    return out


@dataclass(frozen=True, slots=True)
class ClassStats:
    name: str  # LONG, SHORT, NEUTRAL (a long's return: the base rate), signal, always_long, random_entries
    count: int
    gross: ps.MeanInterval  # mean gross return of the POSITION (shorts gain on falls), percent
    net: ps.MeanInterval  # after fees and funding
    hit_rate: float  # share of positions with a positive net return


@dataclass(frozen=True, slots=True)
class RuleStats:
    name: str  # signal, always_long, random_entries (median over draws), momentum_only, ...
    total_return_pct: float  # additive, percent of capital
    annual_return_pct: float
    annual_volatility_pct: float
    sharpe: float  # annualised, sqrt(365)
    max_drawdown_pct: float
    turnover_per_year: float  # capital traded a year (both sides)
    exposure: float  # mean share of capital in positions, 0-1
    funding_paid_pct: float  # total funding paid (negative: received), percent of capital
    fees_paid_pct: float


@dataclass(frozen=True)
class RandomBand:
    draws: int
    sharpe_low: float
    sharpe_high: float
    p_value: float  # one-sided: share of random draws with a Sharpe at least the signal's
    equity_low: FloatArray  # 2.5 % / 97.5 % of the random draws' pooled equity, per day
    equity_high: FloatArray
    mean_net_per_position: float
    net_low: float
    net_high: float


@dataclass(frozen=True)
class UnitReport:
    """One coin, or the pool of coins."""

    name: str
    classes: tuple[ClassStats, ...]
    rules: tuple[RuleStats, ...]
    equity: dict[str, FloatArray]  # rule -> cumulative net P&L, percent of capital, per day
    random: RandomBand | None


@dataclass(frozen=True, slots=True)
class FactorCell:
    factor: str
    horizon: int
    unit: str  # a coin or "pooled"
    ic: float
    p_value: float
    p_holm: float
    p_bh: float
    count: int
    sign_by_year: tuple[tuple[int, float], ...]  # year -> IC (pooled over coins, or the coin's)
    # The same sign in every year and (pooled) every coin: a factor whose sign flips is not an edge.
    stable: bool = False


@dataclass(frozen=True)
class HorizonReport:
    horizon: int
    block_bars: int
    units: tuple[UnitReport, ...]  # each coin, then "pooled"
    bar_net: FloatArray  # each bar's position net return (days x coins)
    outcomes: Outcomes


@dataclass(frozen=True)
class ResearchReport:
    panel: Panel
    costs: Costs
    horizon: int
    main: HorizonReport
    factors: tuple[FactorCell, ...]
    spa: tuple[ps.SpaResult, ...]
    notes: tuple[str, ...]
    methods: tuple[str, ...] = field(
        default=(ps.INTERVAL_METHOD, ps.IC_METHOD, ps.SPA_METHOD, EQUITY_METHOD),
    )


def _seed(panel: Panel, horizon: int) -> int:
    key = f"{panel.coins}{panel.times[:1]}{panel.times[-1:]}{horizon}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


# ---- the tradable rule -------------------------------------------------------------------------


@dataclass(frozen=True)
class RulePnl:
    pnl: FloatArray  # days x coins, percent of that coin's capital
    fees: FloatArray
    funding: FloatArray
    turnover: FloatArray
    exposure: FloatArray


def rule_pnl(panel: Panel, sign: NDArray[np.int8], o: Outcomes, costs: Costs) -> RulePnl:
    """Daily P&L of entering 1/h of capital in each bar's position, held h bars (see the module doc)."""
    h = o.horizon
    s = np.where(o.has_outcome, sign, 0).astype(np.float64)
    n = s.shape[0]
    close, prev = panel.close, np.vstack([np.full((1, s.shape[1]), np.nan), panel.close[:-1]])
    price_pnl = np.zeros(s.shape)
    position = np.zeros(s.shape)  # net position during day D, share of capital
    for k in range(1, h + 1):
        sk = np.zeros(s.shape)
        sk[k:] = s[: n - k]  # tranche decided at D - k, live during D
        entry = np.full(s.shape, np.nan)
        entry[k:] = close[: n - k]
        move = np.where(sk != 0, (close - prev) / entry * 100.0, 0.0)
        price_pnl += sk * np.nan_to_num(move)
        position += sk
    position /= h
    price_pnl /= h
    funding = position * np.nan_to_num(panel.funding_bar)
    before = np.vstack([np.zeros((1, s.shape[1])), position[:-1]])
    traded = np.abs(position - before)
    traded[-1] += np.abs(position[-1])  # close what is open at the end
    fees = traded * costs.fee_bps / 100.0
    return RulePnl(price_pnl - funding - fees, fees, funding, traded, np.abs(position))


def _rule_stats(name: str, rp: RulePnl, columns: slice | list[int]) -> tuple[RuleStats, FloatArray]:
    pnl = rp.pnl[:, columns].mean(axis=1)
    equity = np.cumsum(pnl)
    peak = np.maximum.accumulate(np.concatenate(([0.0], equity)))[1:]
    sd = float(pnl.std(ddof=1)) if pnl.size > 1 else 0.0
    mean = float(pnl.mean())
    return (
        RuleStats(
            name,
            float(equity[-1]) if equity.size else 0.0,
            mean * YEAR_DAYS,
            sd * math.sqrt(YEAR_DAYS),
            mean / sd * math.sqrt(YEAR_DAYS) if sd > 0 else 0.0,
            float((peak - equity).max()) if equity.size else 0.0,
            float(rp.turnover[:, columns].mean(axis=1).mean() * YEAR_DAYS),
            float(rp.exposure[:, columns].mean(axis=1).mean()),
            float(rp.funding[:, columns].mean(axis=1).sum()),
            float(rp.fees[:, columns].mean(axis=1).sum()),
        ),
        equity,
    )


def _sharpe(pnl: FloatArray) -> float:
    sd = float(pnl.std(ddof=1))
    return float(pnl.mean()) / sd * math.sqrt(YEAR_DAYS) if sd > 0 else 0.0


def _class_stats(
    o: Outcomes, sign: NDArray[np.int8], columns: list[int], resamples: NDArray[np.intp]
) -> list[ClassStats]:
    gross = o.gross[:, columns]
    net_long, net_short = o.net_long[:, columns], o.net_short[:, columns]
    sg = sign[:, columns]
    out = []
    for name, member, g, net in (
        ("LONG", sg == 1, gross, net_long),
        ("SHORT", sg == -1, -gross, net_short),
        ("NEUTRAL", sg == 0, gross, net_long),
        ("signal", sg != 0, sg * gross, np.where(sg == 1, net_long, net_short)),
        ("always_long", np.ones(sg.shape, dtype=bool), gross, net_long),
    ):
        keep = member & np.isfinite(g)
        gv = np.where(keep, g, np.nan)
        nv = np.where(keep, net, np.nan)
        finite_net = nv[np.isfinite(nv)]
        out.append(
            ClassStats(
                name,
                int(keep.sum()),
                ps.panel_mean(gv, resamples),
                ps.panel_mean(nv, resamples),
                float((finite_net > 0).mean()) if finite_net.size else float("nan"),
            )
        )
    return out


def _momentum_sign(panel: Panel, config: ScoringConfig) -> NDArray[np.int8]:
    sub = panel.sub_scores["momentum"]
    out: NDArray[np.int8] = np.where(
        sub >= config.long_threshold, 1, np.where(sub <= config.short_threshold, -1, 0)
    ).astype(np.int8)
    return out


def analyse_horizon(panel: Panel, horizon: int, costs: Costs, rng: np.random.Generator) -> HorizonReport:
    o = outcomes(panel, horizon, costs)
    n, coins = panel.times.size, len(panel.coins)
    rp = rule_pnl(panel, panel.sign, o, costs)
    always = rule_pnl(panel, np.ones(panel.sign.shape, dtype=np.int8), o, costs)
    # One block length per horizon: Politis-White on the pooled daily outcome of always long.
    rows = o.has_outcome.any(axis=1)
    pooled_outcome = np.nanmean(np.where(o.has_outcome[rows], o.gross[rows], np.nan), axis=1)
    block = ps.politis_white_block(pooled_outcome, horizon)
    resamples = ps.circular_block_indices(n, block, BOOTSTRAP_DRAWS, rng)
    shifts = ps.shift_set(n, horizon)
    if shifts.size > RANDOM_DRAWS:
        shifts = shifts[np.linspace(0, shifts.size - 1, RANDOM_DRAWS).round().astype(np.intp)]
    shifted = [rule_pnl(panel, np.roll(panel.sign, int(k), axis=0), o, costs) for k in shifts]
    shifted_signs = [np.roll(panel.sign, int(k), axis=0) for k in shifts]
    bar_net = position_net(o, panel.sign)
    units = []
    for name, columns in [*((c, [j]) for j, c in enumerate(panel.coins)), ("pooled", list(range(coins)))]:
        classes = _class_stats(o, panel.sign, columns, resamples)
        signal_rule, signal_equity = _rule_stats("signal", rp, columns)
        long_rule, long_equity = _rule_stats("always_long", always, columns)
        draws = [rule.pnl[:, columns].mean(axis=1) for rule in shifted]
        sharpes = np.array([_sharpe(d) for d in draws])
        curves = np.cumsum(np.vstack(draws), axis=1)
        per_position = np.array(
            [
                np.nanmean(position_net(o, s)[:, columns]) if (s[:, columns] != 0).any() else np.nan
                for s in shifted_signs
            ]
        )
        per_position = per_position[np.isfinite(per_position)]
        median_draw = int(np.argsort(sharpes)[sharpes.size // 2])
        random_rule, _ = _rule_stats("random_entries", shifted[median_draw], columns)
        band = RandomBand(
            int(shifts.size),
            float(np.percentile(sharpes, 2.5)),
            float(np.percentile(sharpes, 97.5)),
            float((1 + int((sharpes >= signal_rule.sharpe - 1e-12).sum())) / (sharpes.size + 1)),
            np.percentile(curves, 2.5, axis=0),
            np.percentile(curves, 97.5, axis=0),
            float(per_position.mean()) if per_position.size else float("nan"),
            float(np.percentile(per_position, 2.5)) if per_position.size else float("nan"),
            float(np.percentile(per_position, 97.5)) if per_position.size else float("nan"),
        )
        units.append(
            UnitReport(
                name,
                tuple(classes),
                (signal_rule, long_rule, random_rule),
                {"signal": signal_equity, "always_long": long_equity},
                band,
            )
        )
    return HorizonReport(horizon, block, tuple(units), bar_net, o)


# ---- the factor study -------------------------------------------------------------------------------


def factor_study(panel: Panel, costs: Costs) -> list[FactorCell]:
    years = np.array([from_ms(int(t)).year for t in panel.times])
    raw: list[tuple[str, int, str, float, float, int, tuple[tuple[int, float], ...]]] = []
    for horizon in FACTOR_HORIZONS:
        o = outcomes(panel, horizon, costs)
        shifts = ps.shift_set(panel.times.size, horizon)
        for factor in panel.studied:
            x = (
                panel.score
                if factor == "score"
                else panel.candidates[factor]
                if factor in panel.candidates
                else panel.sub_scores[factor]
            )
            x = np.where(panel.scored, x, np.nan)
            result = ps.panel_rank_ic(x, o.gross, shifts)
            by_year_coin: dict[int, list[float]] = {}
            per_coin_year: list[dict[int, float]] = [{} for _ in panel.coins]
            for year in sorted(set(years.tolist())):
                rows = years == year
                for j in range(len(panel.coins)):
                    ic = _spearman(x[rows, j], o.gross[rows, j])
                    if math.isfinite(ic):
                        by_year_coin.setdefault(year, []).append(ic)
                        per_coin_year[j][year] = ic
            pooled_years = tuple((y, float(np.mean(v))) for y, v in sorted(by_year_coin.items()))
            for j, coin in enumerate(panel.coins):
                raw.append(
                    (
                        factor,
                        horizon,
                        coin,
                        result.per_coin[j],
                        result.per_coin_p[j],
                        result.counts[j],
                        tuple(sorted(per_coin_year[j].items())),
                    )
                )
            raw.append((factor, horizon, "pooled", result.pooled, result.pooled_p, sum(result.counts), pooled_years))
    holm, bh = ps.adjust([r[4] for r in raw])
    coin_signs: dict[tuple[str, int], set[bool]] = {}
    for f, h, u, ic, *_ in raw:
        if u != "pooled" and math.isfinite(ic):
            coin_signs.setdefault((f, h), set()).add(ic > 0)
    cells = []
    for (f, h, u, ic, p, n, years_), ph, pb in zip(raw, holm, bh, strict=True):
        signs = {v > 0 for _, v in years_} | ({ic > 0} if math.isfinite(ic) else set())
        if u == "pooled":
            signs |= coin_signs.get((f, h), set())
        cells.append(FactorCell(f, h, u, ic, p, ph, pb, n, years_, stable=len(signs) == 1))
    return cells


def _spearman(x: FloatArray, y: FloatArray) -> float:
    both = np.isfinite(x) & np.isfinite(y)
    if both.sum() < 20:
        return float("nan")
    rx = ps.standardised_ranks(x[both])
    ry = ps.standardised_ranks(y[both])
    return float(rx @ ry / both.sum())


# ---- data snooping -----------------------------------------------------------------------------------


def snooping_tests(panel: Panel, config: ScoringConfig, costs: Costs, seed: int) -> list[ps.SpaResult]:
    """Hansen's SPA over the variants one could pick the best of: the signal, its mirror image and
    the momentum factor alone, each at horizons 1, 3 and 7; against always long and against flat."""
    names, columns = [], []
    base = outcomes(panel, 1, costs)
    always = rule_pnl(panel, np.ones(panel.sign.shape, dtype=np.int8), base, costs).pnl.mean(axis=1)
    momentum = _momentum_sign(panel, config)
    for horizon in FACTOR_HORIZONS:
        o = outcomes(panel, horizon, costs)
        for variant, sign in (
            ("signal", panel.sign),
            ("inverted_signal", (-panel.sign).astype(np.int8)),
            ("momentum_only", momentum),
        ):
            names.append(f"{variant}@{horizon}")
            columns.append(rule_pnl(panel, sign, o, costs).pnl.mean(axis=1))
    models = np.column_stack(columns)
    block = ps.politis_white_block(always, max(FACTOR_HORIZONS))
    return [
        ps.spa("always_long@1", always, names, models, block, SPA_REPS, seed),
        ps.spa("flat", np.zeros_like(always), names, models, block, SPA_REPS, seed + 1),
    ]


def run_research(panel: Panel, config: ScoringConfig, horizon: int, costs: Costs) -> ResearchReport:
    seed = _seed(panel, horizon)
    rng = np.random.default_rng(seed)
    main = analyse_horizon(panel, horizon, costs, rng)
    factors = factor_study(panel, costs)
    # The SPA test does not depend on the requested horizon: the same draws for every horizon asked.
    spa = snooping_tests(panel, config, costs, _seed(panel, 0) % (2**31))
    notes = list(panel.notes)
    unknown_funding = int((main.outcomes.has_outcome & ~np.isfinite(main.outcomes.funding_hold)).sum())
    if unknown_funding:
        notes.append(f"{unknown_funding} bars have no funding reading for part of their hold: no net return")
    return ResearchReport(panel, costs, horizon, main, tuple(factors), tuple(spa), tuple(notes))


def bar_rows(report: ResearchReport, coin_index: int) -> list[dict[str, Any]]:
    """Every scored bar of one coin, as the JSON documents it."""
    panel, main = report.panel, report.main
    out = []
    for i in np.flatnonzero(panel.scored[:, coin_index]):
        gross = main.outcomes.gross[i, coin_index]
        net = main.bar_net[i, coin_index]
        sign = int(panel.sign[i, coin_index])
        out.append(
            {
                "time": from_ms(int(panel.times[i])).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "close": float(panel.close[i, coin_index]),
                "score": round(float(panel.score[i, coin_index]), 4),
                "signal": "LONG" if sign == 1 else "SHORT" if sign == -1 else "NEUTRAL",
                "forwardReturnPct": round(float(gross), 6) if math.isfinite(gross) else None,
                "netReturnPct": round(float(net), 6) if math.isfinite(net) else None,
            }
        )
    return out


def period_days(start_ms: int, end_ms: int) -> int:
    return (end_ms - start_ms) // DAY_MS + 1


def verdict(report: ResearchReport) -> str:
    """One sentence on the pooled net result. An edge must beat random entries on the same bars AND
    survive the search: a p-value below 5 % at one horizon is not enough when the best of several
    variants and horizons could have been picked; Hansen's SPA answers for the search."""
    pooled = next(u for u in report.main.units if u.name == "pooled")
    signal = next(r for r in pooled.rules if r.name == "signal")
    always = next(r for r in pooled.rules if r.name == "always_long")
    rb = pooled.random
    figures = (
        f"the signal's rule Sharpe {signal.sharpe:+.2f}, total {signal.total_return_pct:+.1f}% of capital; "
        f"always long {always.sharpe:+.2f}, {always.total_return_pct:+.1f}%"
    )
    if rb is not None:
        figures += f"; random entries' Sharpe band [{rb.sharpe_low:+.2f}, {rb.sharpe_high:+.2f}], p = {rb.p_value:.3f}"
    beats_random = rb is not None and rb.p_value < SIGNIFICANCE and signal.sharpe > always.sharpe
    if not beats_random:
        return f"no edge: {figures}"
    spa = ", ".join(f"p = {s.p_consistent:.3f} vs {s.benchmark}" for s in report.spa)
    if any(s.p_consistent < SIGNIFICANCE for s in report.spa):
        return f"edge at the 5% level that survives the search (Hansen's SPA: {spa}): {figures}"
    return (
        f"no edge after the search: at this horizon the signal beats random entries, but the best of "
        f"{len(report.spa[0].models) if report.spa else 0} variants and horizons is not significant under "
        f"Hansen's SPA ({spa}): {figures}"
    )
