"""The research profile's walk-forward fit (docs/research-procedure.md, written before any fit).

Pure domain, like signals/research.py: every signal is the replay's (the same factor builders and
``score_signal`` that serve it live), under scoring configs this module writes. It never scores by
itself: sub-scores come from replays of a *probe* profile (every factor with weight, read as the
seed defines it, at each declared lookback), the fitted profile of each fold is a ``ScoringConfig``
and its test window is replayed by the engine with it.

Per fold (expanding window, training outcomes purged at the training end):

- each candidate (factor x lookback) gets its pooled rank IC with the gross forward return on the
  training bars, a standard error (the sd of the pooled IC under every circular shift shared by all
  coins) and a two-sided shift p-value;
- shrunk IC = sign(IC) * max(0, |IC| - SE); a factor carries weight only if p < MIN_P, the IC has
  the same sign in at least MIN_AGREE of the coins, and the shrunk IC is not 0 (minimum evidence);
  its lookback is the candidate with the larger shrunk |IC|; its direction is the shrunk IC's sign
  (negative: ``[reversal]``); its weight is proportional to the shrunk |IC| (total 100);
- the thresholds 50 +- d, d in THRESHOLD_STEPS, by the training rule's pooled net Sharpe;
- no factor passes: the fold is flat (no positions).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from scoring import FACTOR_NAMES, ScoringConfig
from scoring.engine import direction_of
from signals import panel_statistics as ps
from signals import statistics
from signals.costs import Costs
from signals.inputs import DAY_MS, from_ms
from signals.replay import History
from signals.research import (
    Panel,
    UnitReport,
    analyse_horizon,
    outcomes,
    position_net,
    replay_panel,
    rule_pnl,
)

FloatArray = NDArray[np.float64]
FITTED = tuple(f for f in FACTOR_NAMES if f != "social")  # social has no history: weight 0
LOOKBACK_HOURS = (24, 72)  # the declared set, for the factors that have a lookback
LOOKBACK_FACTORS = ("momentum", "open_interest")
THRESHOLD_STEPS = (5.0, 10.0, 15.0)
MIN_P = 0.10
MIN_AGREE = 0.75  # share of the coins whose IC has the pooled IC's sign
SEED_MOMENTUM_SCALE_24H = 5.0  # the seed's [momentum] "24h" scale; 72 h: scaled by sqrt(3) (volatility ~ sqrt(time))
CONFIDENCE_BANDS = (0.0, 5.0, 10.0)  # |score - 50| - d: [0, 5), [5, 10), >= 10


def momentum_scale(hours: int) -> float:
    return round(SEED_MOMENTUM_SCALE_24H * math.sqrt(hours / 24), 2)


@dataclass(frozen=True)
class Fold:
    train_end_ms: int  # the last training bar (its outcome must be inside the training window)
    test_start_ms: int
    test_end_ms: int


def day(text: str) -> int:
    from signals.dataset import parse_day

    return parse_day(text, "fold")


# The pre-registered folds on the 2020-2023 panel (scored from 2020-12-23).
PANEL_FOLDS = (
    Fold(day("2021-12-31"), day("2022-01-01"), day("2022-06-30")),
    Fold(day("2022-06-30"), day("2022-07-01"), day("2022-12-31")),
    Fold(day("2022-12-31"), day("2023-01-01"), day("2023-06-30")),
    Fold(day("2023-06-30"), day("2023-07-01"), day("2023-12-31")),
)


@dataclass(frozen=True, slots=True)
class Candidate:
    factor: str
    lookback_hours: int  # 24 for factors without a lookback
    ic: float  # pooled rank IC of the seed's reading with the forward return
    se: float
    p_value: float
    agree: int  # coins whose IC has the pooled sign
    coins: int
    shrunk: float
    passes: bool


@dataclass(frozen=True)
class Choice:
    """A fitted profile: None weights = flat (no factor passed the evidence rule)."""

    candidates: tuple[Candidate, ...]
    weights: Mapping[str, float] | None
    reversal: Mapping[str, bool]
    lookback: Mapping[str, int]  # momentum, open_interest -> hours
    threshold_step: float
    training_sharpe: Mapping[float, float]  # d -> pooled training net Sharpe


@dataclass(frozen=True)
class FoldResult:
    fold: Fold
    train_start_ms: int
    choice: Choice
    test_bars: int
    oos_net_per_position: float
    oos_positions: int
    oos_sharpe: float  # pooled rule net Sharpe on the test window
    seed_sharpe: float
    always_long_sharpe: float


def probe_config(seed: ScoringConfig, lookback_hours: int) -> ScoringConfig:
    """Every fitted factor with weight 1, read as the seed defines it, at one lookback: its replay
    gives each factor's sub-score (weights do not change sub-scores)."""
    return dataclasses.replace(
        seed,
        weights={f: (1.0 if f in FITTED else 0.0) for f in FACTOR_NAMES},
        momentum_horizons={f"{lookback_hours}h": (1.0, momentum_scale(lookback_hours))},
        lookback_hours={"open_interest": lookback_hours},
        reversal=dict.fromkeys(FACTOR_NAMES, False),
        profile="probe",
    )


def profile_config(seed: ScoringConfig, choice: Choice, step: float | None = None) -> ScoringConfig:
    assert choice.weights is not None
    d = choice.threshold_step if step is None else step
    hours = choice.lookback["momentum"]
    return dataclasses.replace(
        seed,
        weights=dict(choice.weights),
        long_threshold=50.0 + d,
        short_threshold=50.0 - d,
        momentum_horizons={f"{hours}h": (1.0, momentum_scale(hours))},
        lookback_hours={"open_interest": choice.lookback["open_interest"]},
        reversal=dict(choice.reversal),
        profile="research",
    )


def _rows(panel: Panel, start_ms: int, end_ms: int) -> NDArray[np.bool_]:
    rows: NDArray[np.bool_] = (panel.times >= start_ms) & (panel.times <= end_ms)
    return rows


def candidates(
    probes: Mapping[int, Panel], horizon: int, costs: Costs, start_ms: int, train_end_ms: int
) -> list[Candidate]:
    """Every (factor, lookback)'s training IC, purged: bars whose outcome is past the training end drop."""
    out = []
    for hours, panel in probes.items():
        o = outcomes(panel, horizon, costs)
        rows = _rows(panel, start_ms, train_end_ms - horizon * panel.interval_ms)
        y = o.gross[rows]
        shifts = ps.shift_set(int(rows.sum()), horizon)
        for factor in FITTED:
            if hours != LOOKBACK_HOURS[0] and factor not in LOOKBACK_FACTORS:
                continue
            x = np.where(panel.scored, panel.sub_scores[factor], np.nan)[rows]
            result = ps.panel_rank_ic(x, y, shifts)
            ic, se, p = result.pooled, result.pooled_null_sd, result.pooled_p
            valid = [v for v in result.per_coin if math.isfinite(v)]
            if not math.isfinite(ic) or not valid:
                out.append(Candidate(factor, hours, float("nan"), float("nan"), float("nan"), 0, 0, 0.0, False))
                continue
            agree = sum(1 for v in valid if (v > 0) == (ic > 0))
            shrunk = math.copysign(max(0.0, abs(ic) - se), ic) if math.isfinite(se) else 0.0
            passes = p < MIN_P and agree >= math.ceil(MIN_AGREE * len(valid)) and shrunk != 0.0
            out.append(Candidate(factor, hours, ic, se, p, agree, len(valid), shrunk, passes))
    return out


def choose(cands: Sequence[Candidate]) -> tuple[dict[str, float] | None, dict[str, bool], dict[str, int]]:
    best: dict[str, Candidate] = {}
    for c in cands:
        if c.passes and (c.factor not in best or abs(c.shrunk) > abs(best[c.factor].shrunk)):
            best[c.factor] = c
    lookback = {f: (best[f].lookback_hours if f in best else LOOKBACK_HOURS[0]) for f in LOOKBACK_FACTORS}
    reversal = {f: (f in best and best[f].shrunk < 0) for f in FACTOR_NAMES}
    total = sum(abs(c.shrunk) for c in best.values())
    if total <= 0:
        return None, reversal, lookback
    weights = {f: (round(100.0 * abs(best[f].shrunk) / total, 2) if f in best else 0.0) for f in FACTOR_NAMES}
    return weights, reversal, lookback


def _signs(panel: Panel, config: ScoringConfig) -> NDArray[np.int8]:
    """The engine's direction rule on the engine's scores (thresholds only; no re-scoring)."""
    out = np.zeros(panel.score.shape, dtype=np.int8)
    for i, j in zip(*np.nonzero(panel.scored), strict=True):
        d = direction_of(float(panel.score[i, j]), config)
        out[i, j] = 1 if d == "LONG" else -1 if d == "SHORT" else 0
    return out


def pooled_sharpe(panel: Panel, sign: NDArray[np.int8], horizon: int, costs: Costs) -> float:
    pnl = rule_pnl(panel, sign, outcomes(panel, horizon, costs), costs).pnl.mean(axis=1)
    sd = float(pnl.std(ddof=1)) if pnl.size > 1 else 0.0
    return float(pnl.mean()) / sd * math.sqrt(365.0) if sd > 0 else 0.0


Replayer = Callable[[ScoringConfig, int, int], Panel]


def fit(
    replayer: Replayer,
    probes: Mapping[int, Panel],
    seed: ScoringConfig,
    horizon: int,
    costs: Costs,
    start_ms: int,
    train_end_ms: int,
) -> Choice:
    """The procedure on one training window ``start .. train_end``."""
    cands = candidates(probes, horizon, costs, start_ms, train_end_ms)
    weights, reversal, lookback = choose(cands)
    if weights is None:
        return Choice(tuple(cands), None, reversal, lookback, THRESHOLD_STEPS[-1], {})
    draft = Choice(tuple(cands), weights, reversal, lookback, THRESHOLD_STEPS[0], {})
    # The training window ends at its purge point, so no outcome reaches past it.
    train = replayer(profile_config(seed, draft), start_ms, train_end_ms)
    sharpes = {
        d: pooled_sharpe(train, _signs(train, profile_config(seed, draft, d)), horizon, costs) for d in THRESHOLD_STEPS
    }
    best = max(sharpes.values())
    step = max(d for d, s in sharpes.items() if s >= best - 1e-12)  # ties: the larger d
    return Choice(tuple(cands), weights, reversal, lookback, step, sharpes)


@dataclass(frozen=True)
class WalkForwardResult:
    horizon: int
    folds: tuple[FoldResult, ...]
    frame: Panel  # the seed's replay on the out-of-sample bars (every fold's test window)
    research_sign: NDArray[np.int8]  # the fitted profiles' out-of-sample positions on the frame
    research_score: FloatArray


def walk_forward(
    replayer: Replayer,
    probes: Mapping[int, Panel],
    seed: ScoringConfig,
    horizon: int,
    costs: Costs,
    start_ms: int,
    folds: Sequence[Fold],
) -> WalkForwardResult:
    oos_start, oos_end = folds[0].test_start_ms, folds[-1].test_end_ms
    frame = replayer(seed, oos_start, oos_end)
    sign = np.zeros(frame.sign.shape, dtype=np.int8)
    score = np.full(frame.score.shape, np.nan)
    results = []
    for fold in folds:
        choice = fit(replayer, probes, seed, horizon, costs, start_ms, fold.train_end_ms)
        rows = _rows(frame, fold.test_start_ms, fold.test_end_ms)
        if choice.weights is not None:
            test = replayer(profile_config(seed, choice), fold.test_start_ms, fold.test_end_ms)
            index = {int(t): i for i, t in enumerate(test.times)}
            for i in np.flatnonzero(rows):
                k = index.get(int(frame.times[i]))
                if k is not None:
                    ok = test.scored[k] & frame.scored[i]
                    sign[i] = np.where(ok, test.sign[k], 0)
                    score[i] = np.where(ok, test.score[k], np.nan)
        fold_sign = np.where(rows[:, None], sign, 0).astype(np.int8)
        o = outcomes(frame, horizon, costs)
        net = position_net(o, fold_sign)[rows]
        net = net[np.isfinite(net)]
        seed_sign = np.where(rows[:, None], frame.sign, 0).astype(np.int8)
        long_sign = np.where(rows[:, None] & frame.scored, 1, 0).astype(np.int8)
        results.append(
            FoldResult(
                fold,
                start_ms,
                choice,
                int(rows.sum()),
                float(net.mean()) if net.size else float("nan"),
                int(net.size),
                _window_sharpe(frame, fold_sign, rows, horizon, costs),
                _window_sharpe(frame, seed_sign, rows, horizon, costs),
                _window_sharpe(frame, long_sign, rows, horizon, costs),
            )
        )
    return WalkForwardResult(horizon, tuple(results), frame, sign, score)


def _window_sharpe(panel: Panel, sign: NDArray[np.int8], rows: NDArray[np.bool_], horizon: int, costs: Costs) -> float:
    pnl = rule_pnl(panel, sign, outcomes(panel, horizon, costs), costs).pnl.mean(axis=1)[rows]
    sd = float(pnl.std(ddof=1)) if pnl.size > 1 else 0.0
    return float(pnl.mean()) / sd * math.sqrt(365.0) if sd > 0 else 0.0


def as_panel(frame: Panel, sign: NDArray[np.int8], score: FloatArray | None = None) -> Panel:
    return dataclasses.replace(frame, sign=sign, score=frame.score if score is None else score)


def evaluate(frame: Panel, sign: NDArray[np.int8], horizon: int, costs: Costs, seed: int) -> UnitReport:
    """The pooled report (classes with intervals, rule vs always long and random entries) on the frame's bars."""
    report = analyse_horizon(as_panel(frame, sign), horizon, costs, np.random.default_rng(seed))
    return next(u for u in report.units if u.name == "pooled")


def daily_pnl(frame: Panel, sign: NDArray[np.int8], horizon: int, costs: Costs) -> FloatArray:
    pnl: FloatArray = rule_pnl(frame, sign, outcomes(frame, horizon, costs), costs).pnl.mean(axis=1)
    return pnl


def score_ic(frame: Panel, score: FloatArray, horizon: int, costs: Costs) -> ps.PanelIC:
    o = outcomes(frame, horizon, costs)
    x = np.where(np.isfinite(score), score, np.nan)
    return ps.panel_rank_ic(x, o.gross, ps.shift_set(frame.times.size, horizon))


@dataclass(frozen=True, slots=True)
class Band:
    low: float  # |score - 50| from
    high: float  # to (inf: open)
    positions: int
    hit_rate: float  # net > 0
    interval: tuple[float, float]  # Wilson 95 %, effective n = positions / horizon


def confidence_bands(
    frame: Panel, sign: NDArray[np.int8], score: FloatArray, step: float, horizon: int, costs: Costs
) -> list[Band]:
    net = position_net(outcomes(frame, horizon, costs), sign)
    distance = np.abs(score - 50.0)
    edges = [step + b for b in CONFIDENCE_BANDS] + [math.inf]
    out = []
    for low, high in itertools.pairwise(edges):
        member = np.isfinite(net) & (distance >= low) & (distance < high)
        n = int(member.sum())
        hits = int((net[member] > 0).sum())
        rate = hits / n if n else float("nan")
        interval = statistics.wilson_interval(rate * n / horizon, n / horizon) if n else (0.0, 1.0)
        out.append(Band(low, high, n, rate, interval))
    return out


def replayer_for(histories: Sequence[tuple[str, History]], notes: Sequence[str] = ()) -> Replayer:
    """Replays of the panel's coins under a profile (the look-ahead check on a short window)."""

    def run(config: ScoringConfig, start_ms: int, end_ms: int) -> Panel:
        return replay_panel(histories, config, start_ms, end_ms, notes=notes, lookahead_window_bars=10)

    return run


def profile_toml(choice: Choice, provenance: Sequence[str], bands: Sequence[Band] = ()) -> str:
    """The research profile as overrides of the seed's keys (scoring/default.toml), loadable by the engine;
    ``bands``: its measured confidence (out-of-sample hit rate by band of |score - 50|)."""
    assert choice.weights is not None
    hours = choice.lookback["momentum"]
    d = choice.threshold_step
    lines = [f"# {line}" for line in provenance]
    lines += [
        "# Keys not set here are the seed's (scoring/default.toml): scales, confidence, max ages.",
        "",
        'profile = "research"',
        "# Confidence = the walk-forward's out-of-sample hit rate (net > 0) of positions in each band of",
        "# |score - 50|, Wilson 95 % interval (n / horizon); high: interval above 50 %, medium: rate above 50 %.",
        "calibration = [",
        *(
            f"  {{from = {b.low:g}, to = {'inf' if math.isinf(b.high) else format(b.high, 'g')}, "
            f"hit_rate = {b.hit_rate:.4f}, ci_low = {b.interval[0]:.4f}, ci_high = {b.interval[1]:.4f}, "
            f"positions = {b.positions}}},"
            for b in bands
            if b.positions > 0
        ),
        "]",
        "",
        "[weights]              # proportional to each factor's shrunk training IC; 0: failed the evidence rule",
    ]
    lines += [f"{f} = {choice.weights[f]:g}" for f in FACTOR_NAMES]
    lines += ["", "[thresholds]", f"long = {50 + d:g}", f"short = {50 - d:g}", ""]
    lines += [
        "[momentum]             # one horizon: daily bars cannot resolve 1h/4h (scale: the seed's 24h x sqrt(h/24))"
    ]
    lines += [f'"{hours}h" = [1.0, {momentum_scale(hours):g}]', ""]
    lines += ["[reversal]             # true: read as a short-term reversal (sub-score mirrored around 50)"]
    lines += [f"{f} = {'true' if choice.reversal.get(f) else 'false'}" for f in FACTOR_NAMES]
    lines += ["", "[lookback]", f'open_interest = "{choice.lookback["open_interest"]}h"', ""]
    return "\n".join(lines)


def describe_fold(r: FoldResult) -> str:
    f = r.fold
    return (
        f"train {from_ms(r.train_start_ms):%Y-%m-%d}..{from_ms(f.train_end_ms):%Y-%m-%d} "
        f"test {from_ms(f.test_start_ms):%Y-%m-%d}..{from_ms(f.test_end_ms):%Y-%m-%d}"
    )


def days_between(a_ms: int, b_ms: int) -> int:
    return (b_ms - a_ms) // DAY_MS + 1
