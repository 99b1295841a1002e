"""Walk-forward weight fitting on one coin's bars: fit on a window, judge on the window after it, roll;
never in-sample, and fitted and shipped weights judged on the same bars against always long.

Every signal is the replay's (the same factor builders and ``score_signal`` that serve it live):
the shipped weights are replayed once over the whole period, and each fold's fitted weights are a
``ScoringConfig`` whose test window the engine replays. This module never scores by itself.

**The fit** (on a training window; outcomes whose horizon reaches past the training end are
dropped, so no test bar informs it), with the evidence rule of the panel fit (signals/profile_fit.py):

- each factor's rank IC of its sub-score (the shipped reading) with the gross forward return, its
  standard error (the sd of the IC under every circular shift of at least 30 bars and 3 horizons)
  and a two-sided shift p-value;
- shrunk IC = sign(IC) * max(0, |IC| - SE); a factor carries weight only if its p-value, Holm-adjusted
  over the factors of the fit, is below ``MIN_P`` and its shrunk IC is above 0 (minimum evidence).
  One coin has no sign agreement across coins to check (the panel fit's second condition), so the
  search over seven factors is paid for by the adjustment instead: a factor without evidence gets
  weight 0, however its noise ranks, and the chance that any of seven noise factors gets weight is
  at most ``MIN_P`` (as far as the shift p-values hold). A factor with evidence of the opposite
  sign also gets 0: this fit sets weights only (reading a factor reversed is the panel fit's business);
- weights are proportional to the shrunk ICs and share the shipped total of the fitted factors;
  social (no history) keeps its shipped weight;
- no factor passes: the fitted rule is FLAT (no positions, score 50 at every bar).

**The judgement**, per fold and pooled over folds, on the SAME bars for every rule (test bars that
both weight sets scored and whose outcome and funding are known): the score's rank IC with the
gross forward return (shift p-value), the share of LONG/SHORT/NEUTRAL bars, and the mean per-bar
net P&L: each bar's position (+1 LONG, -1 SHORT, 0 NEUTRAL) held ``h`` bars, net of a taker fee per
side and funding at each 8 h settlement (signals/costs.py), a flat bar counting 0. Always long
(+1 at every bar) is the baseline on those bars. Intervals: circular block bootstrap over the bars,
block length by Politis-White and at least 3 horizons (signals/panel_statistics.py); the difference
to always long is bootstrapped paired (bar by bar).

The shipped defaults are never changed by this module: it returns weights, and the command writes
them to a TOML that ``SCORING_CONFIG`` can load if a person decides to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomlkit
from numpy.typing import NDArray

from scoring import FACTOR_NAMES, ScoringConfig
from scoring.config import DEFAULT_FILE
from signals import panel_statistics as ps
from signals import profile_fit as pf
from signals.costs import Costs
from signals.errors import TooFewBarsError
from signals.replay import History
from signals.research import Outcomes, Panel, outcomes, position_net, replay_panel

FloatArray = NDArray[np.float64]
Signs = NDArray[np.int8]
MIN_P = 0.10  # the panel fit's evidence threshold, here on Holm-adjusted p-values (one coin: no sign agreement)
BOOTSTRAP_DRAWS = 1000
FITTED = pf.FITTED  # every factor but social (no history)
RULES = ("fitted", "shipped", "always_long")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One factor's training evidence."""

    factor: str
    ic: float  # rank IC of the sub-score with the gross forward return
    se: float  # sd of the IC under every circular shift
    p_value: float  # two-sided, circular shifts
    p_holm: float  # Holm-adjusted over the factors of the fit
    shrunk: float  # sign(IC) * max(0, |IC| - SE)
    passes: bool  # p_holm < MIN_P and shrunk > 0: the factor gets weight


@dataclass(frozen=True)
class Fit:
    """A fitted weight set: ``weights`` None = no factor passed the evidence rule (the rule is flat)."""

    evidence: tuple[Evidence, ...]
    weights: Mapping[str, float] | None


@dataclass(frozen=True, slots=True)
class RuleResult:
    name: str  # fitted, shipped, always_long
    long_share: float  # of the judged bars, 0-1
    short_share: float
    neutral_share: float
    score_ic: float  # rank IC of the score with the gross forward return (NaN: no score, or a flat fold)
    score_ic_se: float
    score_ic_p: float
    net: ps.MeanInterval  # mean per-bar net P&L, percent (flat = 0), 95 % block-bootstrap interval
    vs_always_long: ps.MeanInterval | None  # paired: this rule's per-bar net minus always long's


@dataclass(frozen=True)
class Judgement:
    """Every rule on one set of bars (``times``), the same for each."""

    times: NDArray[np.int64]
    block: int  # bootstrap block length, bars
    rules: tuple[RuleResult, ...]  # fitted, shipped, always_long
    pnl: Mapping[str, FloatArray]  # rule -> per-bar net P&L on ``times``

    def rule(self, name: str) -> RuleResult:
        return next(r for r in self.rules if r.name == name)


@dataclass(frozen=True)
class Fold:
    train_start_ms: int
    train_end_ms: int
    test_start_ms: int
    test_end_ms: int
    fit: Fit
    judged: Judgement
    unscored: int  # test bars with an outcome the fitted weights could not score: left out for every rule

    @property
    def weights(self) -> Mapping[str, float] | None:
        return self.fit.weights


@dataclass(frozen=True)
class WalkForward:
    horizon: int
    costs: Costs
    folds: tuple[Fold, ...]
    pooled: Judgement  # every fold's test bars together
    final: Fit  # fitted on the most recent training window
    lookahead_mismatches: int  # over every replay's look-ahead check
    lookahead_compared: int

    @property
    def final_weights(self) -> Mapping[str, float] | None:
        return self.final.weights


def fit_weights(
    panel: Panel, shipped: ScoringConfig, horizon: int, costs: Costs, start_ms: int, train_end_ms: int
) -> Fit:
    """The fit on ``start .. train_end`` of ``panel`` (the shipped replay; see the module docstring)."""
    cands = pf.candidates({pf.LOOKBACK_HOURS[0]: panel}, horizon, costs, start_ms, train_end_ms)
    holm, _ = ps.adjust([c.p_value for c in cands])
    evidence = tuple(
        Evidence(c.factor, c.ic, c.se, c.p_value, h, c.shrunk, bool(h < MIN_P and c.shrunk > 0))
        for c, h in zip(cands, holm, strict=True)
    )
    shrunk = {e.factor: e.shrunk for e in evidence if e.passes}
    if not shrunk:
        return Fit(evidence, None)
    fitted_total = sum(shipped.weights[f] for f in FITTED)
    total = sum(shrunk.values())
    weights = {
        f: (round(shrunk.get(f, 0.0) / total * fitted_total, 2) if f in FITTED else shipped.weights[f])
        for f in FACTOR_NAMES
    }
    return Fit(evidence, weights)


def with_weights(config: ScoringConfig, weights: Mapping[str, float]) -> ScoringConfig:
    return dataclasses.replace(config, weights=dict(weights))


def bar_pnl(o: Outcomes, sign: Signs) -> FloatArray:
    """Per-bar net P&L, percent: the bar's position held ``h`` bars after fees and funding (LONG
    ``gross - fees - funding``, SHORT ``-gross - fees + funding``), 0 when flat; NaN where the
    outcome or its funding is unknown."""
    known = np.isfinite(o.net_long)
    out: FloatArray = np.where(known, np.where(sign == 0, 0.0, position_net(o, sign)), np.nan)
    return out


def judge(
    times: NDArray[np.int64],
    gross: FloatArray,
    signs: Mapping[str, Signs],
    scores: Mapping[str, FloatArray | None],
    pnl: Mapping[str, FloatArray],
    horizon: int,
    seed: int,
) -> Judgement:
    """Every rule on the same bars: ``times`` and every array are those bars, in time order, contiguous."""
    n = times.size
    long_pnl = pnl["always_long"]
    if n < 2:  # nothing to judge (a fold whose every bar the fitted weights could not score)
        empty = ps.MeanInterval(n, float("nan"), float("nan"), float("nan"))
        nan = float("nan")
        rules_ = tuple(
            RuleResult(k, nan, nan, nan, nan, nan, nan, empty, None if k == "always_long" else empty) for k in signs
        )
        return Judgement(times, 0, rules_, dict(pnl))
    block = ps.politis_white_block(long_pnl, horizon)
    resamples = ps.circular_block_indices(n, block, BOOTSTRAP_DRAWS, np.random.default_rng(seed))
    shifts = ps.shift_set(n, horizon)
    rules = []
    for name in signs:
        sign = signs[name]
        score = scores.get(name)
        ic = ps.panel_rank_ic(score[:, None], gross[:, None], shifts) if score is not None else None
        rules.append(
            RuleResult(
                name,
                float((sign == 1).mean()) if n else float("nan"),
                float((sign == -1).mean()) if n else float("nan"),
                float((sign == 0).mean()) if n else float("nan"),
                ic.pooled if ic is not None else float("nan"),
                ic.pooled_null_sd if ic is not None else float("nan"),
                ic.pooled_p if ic is not None else float("nan"),
                ps.panel_mean(pnl[name][:, None], resamples),
                ps.panel_mean((pnl[name] - long_pnl)[:, None], resamples) if name != "always_long" else None,
            )
        )
    return Judgement(times, block, tuple(rules), dict(pnl))


def walk_forward(
    history: History,
    shipped: ScoringConfig,
    start_ms: int,
    end_ms: int,
    horizon_bars: int,
    train_bars: int,
    test_bars: int,
    costs: Costs | None = None,
    symbol: str = "coin",
) -> WalkForward:
    costs = costs or Costs()
    step = history.interval_ms
    frame = replay_panel([(symbol, history)], shipped, start_ms, end_ms)  # the shipped weights, every bar
    checks = [frame.replays[0].lookahead]
    o = outcomes(frame, horizon_bars, costs)
    shipped_pnl = bar_pnl(o, frame.sign)[:, 0]
    long_pnl = bar_pnl(o, np.ones(frame.sign.shape, dtype=np.int8))[:, 0]
    gross = o.gross[:, 0]
    n = frame.times.size
    fitted_sign = np.zeros(n, dtype=np.int8)
    fitted_score = np.full(n, np.nan)
    fitted_scored = np.zeros(n, dtype=bool)
    judged_rows = np.zeros(n, dtype=bool)
    folds = []
    pending = []
    train_start = start_ms
    # The last test window may be shorter, down to half a window.
    while train_start + (train_bars + test_bars // 2) * step <= end_ms:
        train_end = train_start + (train_bars - 1) * step
        test_start, test_end = train_end + step, min(train_end + test_bars * step, end_ms)
        fit = fit_weights(frame, shipped, horizon_bars, costs, train_start, train_end)
        window = (frame.times >= test_start) & (frame.times <= test_end)
        if fit.weights is None:  # flat: no position, no information (score 50) at every bar
            fitted_scored[window] = frame.scored[window, 0]
            fitted_score[window] = 50.0
        else:
            test = replay_panel([(symbol, history)], with_weights(shipped, fit.weights), test_start, test_end)
            checks.append(test.replays[0].lookahead)
            row_of = {int(t): i for i, t in enumerate(test.times)}
            for i in np.flatnonzero(window):
                k = row_of.get(int(frame.times[i]))
                if k is not None and test.scored[k, 0]:
                    fitted_scored[i] = True
                    fitted_sign[i] = test.sign[k, 0]
                    fitted_score[i] = test.score[k, 0]
        # The bars every rule is judged on: scored by both weight sets, outcome and funding known.
        with_outcome = window & frame.scored[:, 0] & np.isfinite(long_pnl)
        common = with_outcome & fitted_scored
        judged_rows |= common
        pending.append((train_start, train_end, test_start, test_end, fit, common, int((with_outcome & ~common).sum())))
        train_start += test_bars * step
    if not judged_rows.any():
        raise TooFewBarsError(
            f"the walk-forward needs at least {train_bars + test_bars // 2} bars ({train_bars} to train, "
            f"half of {test_bars} to test) with outcomes: the period gives no test bar"
        )
    fitted_pnl = bar_pnl(o, fitted_sign[:, None])[:, 0]
    pnl = {"fitted": fitted_pnl, "shipped": shipped_pnl, "always_long": long_pnl}
    signs = {"fitted": fitted_sign, "shipped": frame.sign[:, 0], "always_long": np.ones(n, dtype=np.int8)}

    def judged(rows: NDArray[np.bool_], flat: bool) -> Judgement:
        seed = int(frame.times[rows][0] // 1000) if rows.any() else 0
        return judge(
            frame.times[rows],
            gross[rows],
            {k: v[rows] for k, v in signs.items()},
            {"fitted": None if flat else fitted_score[rows], "shipped": frame.score[rows, 0]},
            {k: v[rows] for k, v in pnl.items()},
            horizon_bars,
            seed,
        )

    for train_start_, train_end, test_start, test_end, fit, common, unscored in pending:
        folds.append(
            Fold(train_start_, train_end, test_start, test_end, fit, judged(common, fit.weights is None), unscored)
        )
    every_flat = all(f.fit.weights is None for f in folds)
    final = fit_weights(frame, shipped, horizon_bars, costs, max(start_ms, end_ms - (train_bars - 1) * step), end_ms)
    return WalkForward(
        horizon_bars,
        costs,
        tuple(folds),
        judged(judged_rows, every_flat),
        final,
        sum(c.mismatches for c in checks),
        sum(c.bars_compared for c in checks),
    )


def write_config(weights: Mapping[str, float], path: Path, provenance: str) -> None:
    """The shipped TOML with these weights, loadable by SCORING_CONFIG (comments kept)."""
    document = tomlkit.parse(DEFAULT_FILE.read_text(encoding="utf-8"))
    table = document["weights"]
    for name in FACTOR_NAMES:
        table[name] = float(weights[name])  # type: ignore[index]
    header = tomlkit.comment(provenance)
    document.body.insert(0, (None, header))
    path.write_text(tomlkit.dumps(document), encoding="utf-8")


def describe_weights(weights: Mapping[str, float] | None) -> str:
    if weights is None:
        return "none: no factor passes the evidence rule, the fitted rule is FLAT (no positions)"
    return ", ".join(f"{f} {weights[f]:g}" for f in FACTOR_NAMES)
