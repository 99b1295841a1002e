"""Walk-forward weight fitting: fit on a window, judge on the window after it, roll; never in-sample.

Fitting rule (deliberately simple, so it has little room to overfit): on the training window each
factor's weight is proportional to its information coefficient (Spearman of sub-score vs forward
return) when that is positive, else 0; factors the replay cannot see (social) keep their shipped
weight, and the fitted weights share the rest of the shipped total. Training outcomes whose
horizon reaches into the test window are dropped (purged), so no test bar informs the fit.

The same replay and scorer judge both weight sets on each test window. The shipped defaults are
never changed by this module: it returns weights, and the command writes them to a TOML that
``SCORING_CONFIG`` can load if a person decides to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomlkit

from scoring import FACTOR_NAMES, ScoringConfig
from scoring.config import DEFAULT_FILE
from signals import statistics
from signals.backtest import forward_returns
from signals.replay import History, ReplayedBar, replay


@dataclass(frozen=True)
class Performance:
    positions: int  # LONG and SHORT bars with an outcome
    hit_rate: float  # share of positions that gained, 0-1
    mean_return_pct: float  # mean return of the positions taken (shorts gain on falls)
    hit_rate_low: float = 0.0  # Wilson 95 %, counting positions less than a horizon apart once
    hit_rate_high: float = 1.0


@dataclass(frozen=True)
class Fold:
    train_start_ms: int
    train_end_ms: int
    test_start_ms: int
    test_end_ms: int
    weights: Mapping[str, float]
    in_sample: Performance  # fitted weights on their own training window
    out_of_sample: Performance  # fitted weights on the following window
    shipped: Performance  # shipped weights on that same following window


@dataclass(frozen=True)
class WalkForward:
    folds: tuple[Fold, ...]
    out_of_sample: Performance  # every test window together, fitted weights
    shipped: Performance  # every test window together, shipped weights
    final_weights: Mapping[str, float]  # fitted on the most recent training window


def performance(bars: Sequence[ReplayedBar], returns: Sequence[float | None], horizon_bars: int) -> Performance:
    taken = [
        (bar.time_ms, r if bar.scored.direction == "LONG" else -r)  # type: ignore[union-attr]
        for bar, r in zip(bars, returns, strict=True)
        if r is not None and bar.scored is not None and bar.scored.direction != "NEUTRAL"
    ]
    if not taken:
        return Performance(0, 0.0, 0.0)
    gains = [g for _, g in taken]
    rate = sum(g > 0 for g in gains) / len(gains)
    step = (bars[1].time_ms - bars[0].time_ms) if len(bars) > 1 else 1
    independent, last = 0, None
    for t, _ in taken:
        if last is None or t - last >= horizon_bars * step:
            independent, last = independent + 1, t
    low, high = statistics.wilson_interval(rate * independent, independent)
    return Performance(len(gains), rate, sum(gains) / len(gains), low, high)


def fit_weights(
    bars: Sequence[ReplayedBar], returns: Sequence[float | None], shipped: ScoringConfig
) -> dict[str, float]:
    """Weights proportional to each factor's positive IC on these bars (see the module docstring)."""
    ics: dict[str, float] = {}
    r = np.array([x if x is not None else np.nan for x in returns], dtype=np.float64)
    for factor in FACTOR_NAMES:
        sub = np.array(
            [
                next((f.sub_score for f in b.scored.factors if f.name == factor), np.nan) if b.scored else np.nan
                for b in bars
            ],
            dtype=np.float64,
        )
        ok = ~np.isnan(sub) & ~np.isnan(r)
        if ok.sum() >= 30:
            rx, ry = statistics.ranks(sub[ok]), statistics.ranks(r[ok])
            ics[factor] = float(np.corrcoef(rx, ry)[0, 1]) if rx.std() > 0 and ry.std() > 0 else 0.0
    positive = {f: max(ic, 0.0) for f, ic in ics.items()}
    fitted_total = sum(shipped.weights[f] for f in ics)
    if sum(positive.values()) <= 0:
        return dict(shipped.weights)  # no factor showed any edge in training: nothing to fit
    scale = fitted_total / sum(positive.values())
    return {f: round(positive[f] * scale, 2) if f in ics else shipped.weights[f] for f in FACTOR_NAMES}


def with_weights(config: ScoringConfig, weights: Mapping[str, float]) -> ScoringConfig:
    return dataclasses.replace(config, weights=dict(weights))


def walk_forward(
    history: History,
    shipped: ScoringConfig,
    start_ms: int,
    end_ms: int,
    horizon_bars: int,
    train_bars: int,
    test_bars: int,
) -> WalkForward:
    step = history.interval_ms
    purge = horizon_bars * step
    folds = []
    oos: list[tuple[ReplayedBar, float | None]] = []
    base: list[tuple[ReplayedBar, float | None]] = []
    train_start = start_ms
    # The last test window may be shorter, down to half a window.
    while train_start + (train_bars + test_bars // 2) * step <= end_ms:
        train_end = train_start + (train_bars - 1) * step
        test_start, test_end = train_end + step, min(train_end + test_bars * step, end_ms)
        train = replay(history, shipped, train_start, train_end)
        # Purged: a training outcome may not look past the training window.
        weights = fit_weights(train, forward_returns(train, history, horizon_bars, train_end), shipped)
        fitted = with_weights(shipped, weights)
        in_bars = replay(history, fitted, train_start, train_end)
        in_returns = forward_returns(in_bars, history, horizon_bars, train_end)
        test = replay(history, fitted, test_start, test_end)
        test_returns = forward_returns(test, history, horizon_bars, test_end)
        shipped_test = replay(history, shipped, test_start, test_end)
        shipped_returns = forward_returns(shipped_test, history, horizon_bars, test_end)
        oos.extend(zip(test, test_returns, strict=True))
        base.extend(zip(shipped_test, shipped_returns, strict=True))
        folds.append(
            Fold(
                train_start,
                train_end,
                test_start,
                test_end,
                weights,
                performance(in_bars, in_returns, horizon_bars),
                performance(test, test_returns, horizon_bars),
                performance(shipped_test, shipped_returns, horizon_bars),
            )
        )
        train_start += test_bars * step
    last_train_start = max(start_ms, end_ms - (train_bars - 1) * step)
    recent = replay(history, shipped, last_train_start, end_ms - purge)
    final = fit_weights(recent, forward_returns(recent, history, horizon_bars, end_ms), shipped)
    return WalkForward(
        tuple(folds),
        performance([b for b, _ in oos], [r for _, r in oos], horizon_bars),
        performance([b for b, _ in base], [r for _, r in base], horizon_bars),
        final,
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
