"""Statistics for a panel of coins observed on the same days, with overlapping horizons.

What is done, and why (the research report prints the same):

- **Intervals**: a circular block bootstrap over DAYS, the same resampled days for every coin, so
  the correlation across coins (BTC drives the others) stays in every draw. The block length is
  chosen from the data by Politis and White's rule (``arch.bootstrap.optimal_block_length``, the
  circular-bootstrap figure, on the pooled daily series being summarised) and is never shorter
  than ``MIN_BLOCK_HORIZONS`` horizons, so the overlap of ``h``-bar forward returns is kept whole.
  Intervals are the 2.5-97.5 % percentiles of the resampled means.
- **p-values of rank ICs**: circular shifts of the factor against the returns, the SAME shift for
  every coin (every shift at least ``min_shift`` days and at most ``n - min_shift`` days; all of
  them, not a sample). A shift keeps each series' own autocorrelation and the co-movement across
  coins, and destroys only the alignment of factor and outcome: the null hypothesis.
- **Multiple testing**: every p-value of the factor grid (factor x horizon x coin and pooled) is
  adjusted over the whole grid by Holm (family-wise) and by Benjamini-Hochberg (false discovery
  rate), with ``statsmodels.stats.multitest.multipletests``.
- **Data snooping**: a best-of-several claim (rule variants and horizons) is tested with Hansen's
  Superior Predictive Ability test (``arch.bootstrap.SPA``, stationary bootstrap, studentised).

``arch`` and ``statsmodels`` (and through them ``scipy`` and ``pandas``) are imported inside the
functions that use them: the serving process never pays for these libraries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from signals.statistics import ranks

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
MIN_BLOCK_HORIZONS = 3  # blocks at least this many horizons long
MIN_BLOCK_BARS = 5
INTERVAL_METHOD = (
    "intervals: circular block bootstrap over days, the same days for every coin; block length by "
    "Politis-White (arch.bootstrap.optimal_block_length), at least 3 horizons"
)
IC_METHOD = (
    "IC p-values: every circular shift of the factor against the returns (the same shift for every coin, "
    "at least 30 days and 3 horizons); Holm and Benjamini-Hochberg adjustment over the whole grid "
    "(statsmodels multipletests)"
)
SPA_METHOD = "Hansen's SPA (arch.bootstrap.SPA, stationary bootstrap, studentised), losses = -daily net P&L"


def politis_white_block(series: FloatArray, horizon_bars: int) -> int:
    """Block length for a circular block bootstrap of ``series``: Politis-White, at least 3 horizons."""
    from arch.bootstrap import optimal_block_length

    floor = max(MIN_BLOCK_BARS, MIN_BLOCK_HORIZONS * horizon_bars)
    clean = series[np.isfinite(series)]
    if clean.size < 10 or float(np.std(clean)) == 0.0:
        return floor
    chosen = float(optimal_block_length(clean)["circular"].iloc[0])
    if not math.isfinite(chosen):
        return floor
    return max(floor, math.ceil(chosen))


def circular_block_indices(n: int, block: int, draws: int, rng: np.random.Generator) -> IntArray:
    """``draws`` circular block resamples of ``range(n)`` (blocks of consecutive days, wrapping), shape (draws, n)."""
    blocks = -(-n // block)
    starts = rng.integers(0, n, size=(draws, blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(draws, blocks * block)[:, :n]
    out: IntArray = idx % n
    return out


@dataclass(frozen=True, slots=True)
class MeanInterval:
    count: int
    mean: float
    low: float
    high: float


def panel_mean(values: FloatArray, resamples: IntArray) -> MeanInterval:
    """Mean of the finite cells of ``values`` (days x coins) with its block-bootstrap 95 % interval.

    Each draw takes whole days (every coin's cell of a day together) from ``resamples``.
    """
    present = np.isfinite(values)
    count = int(present.sum())
    if count == 0:
        return MeanInterval(0, float("nan"), float("nan"), float("nan"))
    sums = np.where(present, values, 0.0).sum(axis=1)
    counts = present.sum(axis=1).astype(np.float64)
    mean = float(sums.sum() / counts.sum())
    drawn_counts = counts[resamples].sum(axis=1)
    valid = drawn_counts > 0
    drawn = sums[resamples].sum(axis=1)[valid] / drawn_counts[valid]
    if drawn.size < 2:
        return MeanInterval(count, mean, float("nan"), float("nan"))
    low, high = np.percentile(drawn, [2.5, 97.5])
    return MeanInterval(count, mean, float(low), float(high))


def standardised_ranks(x: FloatArray) -> FloatArray:
    """Ranks of the finite values (ties averaged) standardised to mean 0, sd 1; 0 where not finite."""
    out = np.zeros(x.shape, dtype=np.float64)
    present = np.isfinite(x)
    if present.sum() < 3:
        return out
    r = ranks(x[present])
    sd = float(r.std())
    if sd == 0.0:
        return out
    out[present] = (r - r.mean()) / sd
    return out


def shift_set(n: int, horizon_bars: int, min_days: int = 30) -> IntArray:
    """Every circular shift at least ``max(min_days, 3 horizons)`` from zero either way."""
    m = max(min_days, MIN_BLOCK_HORIZONS * horizon_bars)
    if n <= 2 * m:
        m = max(1, n // 4)
    shifts: IntArray = np.arange(m, n - m + 1, dtype=np.intp)
    return shifts


@dataclass(frozen=True, slots=True)
class PanelIC:
    per_coin: tuple[float, ...]  # rank IC of each coin (NaN when too few pairs)
    per_coin_p: tuple[float, ...]
    pooled: float  # mean of the coins' ICs
    pooled_p: float
    counts: tuple[int, ...]
    pooled_null_sd: float = float("nan")  # sd of the pooled IC under the shifts: its standard error


def circular_cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """``out[s] = sum_t a[t - s] * b[t]`` (indices mod n) for every shift ``s``, by FFT."""
    n = a.size
    out: FloatArray = np.fft.irfft(np.conj(np.fft.rfft(a)) * np.fft.rfft(b), n)
    return out


def panel_rank_ic(x: FloatArray, y: FloatArray, shifts: IntArray) -> PanelIC:
    """Rank IC of factor ``x`` against outcome ``y`` (days x coins, NaN = absent) per coin and pooled
    (the mean over coins), with two-sided p-values from circular shifts of ``x`` shared by all coins.
    """
    coins = x.shape[1]
    ics, ps, counts = [], [], []
    nulls: list[tuple[FloatArray, float]] = []
    for c in range(coins):
        both = np.isfinite(x[:, c]) & np.isfinite(y[:, c])
        if both.sum() < 10:
            ics.append(float("nan"))
            ps.append(float("nan"))
            counts.append(int(both.sum()))
            continue
        xs = standardised_ranks(np.where(both, x[:, c], np.nan))
        ys = standardised_ranks(np.where(both, y[:, c], np.nan))
        observed = float(xs @ ys / both.sum())
        # Under a shift the pairs present change: rank-standardise x and y over their own present values.
        xa = standardised_ranks(x[:, c])
        ya = standardised_ranks(y[:, c])
        mx = np.isfinite(x[:, c]).astype(np.float64)
        my = np.isfinite(y[:, c]).astype(np.float64)
        pair_counts = np.rint(circular_cross(mx, my))[shifts]
        null = circular_cross(xa, ya)[shifts] / np.maximum(pair_counts, 1.0)
        # The statistic the null is made of, at shift 0 (close to Spearman's rho, which is reported).
        statistic = float(xa @ ya / max(float(mx @ my), 1.0))
        nulls.append((null, statistic))
        ics.append(observed)
        ps.append(float((1 + int((np.abs(null) >= abs(statistic) - 1e-12).sum())) / (null.size + 1)))
        counts.append(int(both.sum()))
    valid = [i for i in ics if math.isfinite(i)]
    if not valid:
        return PanelIC(tuple(ics), tuple(ps), float("nan"), float("nan"), tuple(counts))
    pooled = float(np.mean(valid))
    pooled_null = np.mean(np.vstack([null for null, _ in nulls]), axis=0)
    pooled_statistic = float(np.mean([statistic for _, statistic in nulls]))
    exceed = int((np.abs(pooled_null) >= abs(pooled_statistic) - 1e-12).sum())
    pooled_p = float((1 + exceed) / (pooled_null.size + 1))
    null_sd = float(pooled_null.std()) if pooled_null.size > 1 else float("nan")
    return PanelIC(tuple(ics), tuple(ps), pooled, pooled_p, tuple(counts), null_sd)


def adjust(p_values: Sequence[float]) -> tuple[list[float], list[float]]:
    """Holm and Benjamini-Hochberg adjusted p-values over the whole family (NaN kept as NaN)."""
    from statsmodels.stats.multitest import multipletests  # type: ignore[import-untyped]

    values = np.asarray(p_values, dtype=np.float64)
    finite = np.isfinite(values)
    holm = np.full(values.shape, np.nan)
    bh = np.full(values.shape, np.nan)
    if finite.any():
        holm[finite] = multipletests(values[finite], method="holm")[1]
        bh[finite] = multipletests(values[finite], method="fdr_bh")[1]
    return [float(v) for v in holm], [float(v) for v in bh]


@dataclass(frozen=True, slots=True)
class SpaResult:
    benchmark: str
    models: tuple[str, ...]
    best: str  # the model with the highest mean daily P&L
    p_lower: float
    p_consistent: float
    p_upper: float
    block: int
    reps: int


def spa(
    benchmark_name: str,
    benchmark_pnl: FloatArray,
    names: Sequence[str],
    models_pnl: FloatArray,
    block: int,
    reps: int,
    seed: int,
) -> SpaResult:
    """Hansen's SPA: can any model (columns of ``models_pnl``, daily P&L) beat the benchmark's P&L?"""
    from arch.bootstrap import SPA

    losses_benchmark = -benchmark_pnl
    losses_models = -models_pnl
    test = SPA(losses_benchmark, losses_models, block_size=block, reps=reps, bootstrap="stationary", seed=seed)
    test.compute()
    pv = test.pvalues
    best = names[int(np.argmax(models_pnl.mean(axis=0)))]
    return SpaResult(
        benchmark_name,
        tuple(names),
        best,
        float(pv["lower"]),
        float(pv["consistent"]),
        float(pv["upper"]),
        block,
        reps,
    )
