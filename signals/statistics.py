"""Honest statistics for overlapping forward returns. Pure numpy/scipy, no I/O.

With a horizon of ``h`` bars, the forward returns of consecutive bars share ``h - 1`` of their
``h`` bars of path, so ~1,000 bars are nowhere near ~1,000 independent trials. Everything here
keeps time order and works on blocks at least ``block`` bars long:

- **Intervals** (hit rates): the variance of a hit rate is estimated with a circular moving-block
  bootstrap; ``n_eff = p (1 - p) / variance`` is the number of independent trials that variance
  is worth, and the Wilson interval is taken at ``n_eff`` instead of the raw count.
- **p-values** (information coefficient, random entries): a block permutation test (one set of
  permutations per report, shared by every test in it). Blocks of one
  series are shuffled against the other, which keeps each series' own autocorrelation within a
  block (trends, persistent factor readings, overlapping returns) and destroys only their
  alignment, which is the null hypothesis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Z95 = 1.959963984540054
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


def block_length(horizon_bars: int, n: int) -> int:
    """Blocks at least the horizon long and at least n^(1/3) (the usual rate for block bootstraps)."""
    return max(1, horizon_bars, math.ceil(math.pow(n, 1 / 3)))


def wilson_interval(hits: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; ``n`` may be an effective (fractional) count."""
    if n <= 0:
        return 0.0, 1.0
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class BlockResamples:
    """``draws`` circular moving-block resamples of ``range(n)``: each is ``ceil(n / block)`` blocks of
    consecutive indices (wrapping at n) starting at random, the last one cut so every resample has n.

    Sums over a resample come from prefix sums of each block (draws x blocks work, not draws x n),
    so long samples (a year of 5-minute signals) cost no more memory than short ones.
    """

    starts: NDArray[np.int64]  # (draws, blocks)
    block: int
    n: int

    def sums(self, values: NDArray[np.float64] | NDArray[np.bool_]) -> FloatArray:
        prefix = np.concatenate(([0.0], np.cumsum(np.concatenate((values, values)), dtype=np.float64)))
        lengths = np.full(self.starts.shape[1], self.block)
        lengths[-1] = self.n - self.block * (self.starts.shape[1] - 1)
        totals: FloatArray = (prefix[self.starts + lengths[None, :]] - prefix[self.starts]).sum(axis=1)
        return totals


def moving_block_resamples(n: int, block: int, draws: int, rng: np.random.Generator) -> BlockResamples:
    blocks = -(-n // block)
    return BlockResamples(rng.integers(0, n, size=(draws, blocks)), block, n)


def block_permutations(n: int, block: int, draws: int, rng: np.random.Generator) -> IntArray:
    """``draws`` permutations of ``range(n)`` that shuffle whole blocks (random phase), shape (draws, n)."""
    blocks = -(-n // block)
    shifts = rng.integers(0, block, size=draws)
    order = np.argsort(rng.random((draws, blocks)), axis=1)
    within = np.arange(block)
    # Blocks are cut from the series rotated by a random shift, so block edges are not fixed.
    positions = (order[:, :, None] * block + within[None, None, :]).reshape(draws, blocks * block)
    positions = positions[positions < n].reshape(draws, n) if blocks * block != n else positions
    return (positions + shifts[:, None]) % n


@dataclass(frozen=True, slots=True)
class Proportion:
    count: int  # observations in the class
    rate: float  # share of hits, 0-1
    low: float  # Wilson 95 % bounds at the effective sample size
    high: float
    effective_n: float  # independent trials the block bootstrap says these observations are worth


def proportion(
    hits: NDArray[np.bool_], members: NDArray[np.bool_], resamples: BlockResamples, horizon_bars: int
) -> Proportion:
    """Hit rate of the ``members`` bars (in time order over all bars) with an overlap-aware interval.

    ``resamples`` are moving-block bootstrap resamples over all bars (shared by every class, so the
    same draws serve every interval of one report).
    """
    count = int(members.sum())
    if count == 0:
        return Proportion(0, 0.0, 0.0, 1.0, 0.0)
    rate = float(hits[members].mean())
    drawn_counts = resamples.sums(members)
    valid = drawn_counts > 0
    drawn_rates = resamples.sums(hits & members)[valid] / drawn_counts[valid]
    variance = float(drawn_rates.var()) if drawn_rates.size > 1 else 0.0
    if variance > 0 and 0 < rate < 1:
        effective = min(float(count), max(1.0, rate * (1 - rate) / variance))
    else:
        # All hits or all misses: no spread to measure. Count each run of overlapping horizons once.
        effective = float(_clusters(members, horizon_bars))
    low, high = wilson_interval(rate * effective, effective)
    return Proportion(count, rate, low, high, effective)


def _clusters(members: NDArray[np.bool_], horizon_bars: int) -> int:
    """Member bars that are at least a horizon apart (a greedy count of non-overlapping trials)."""
    count, last = 0, -(10**9)
    for i in np.flatnonzero(members):
        if i - last >= horizon_bars:
            count += 1
            last = int(i)
    return max(count, 1)


def ranks(x: FloatArray) -> FloatArray:
    """Ranks 0..n-1 with ties sharing their average rank (as Spearman's rho needs)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    return (starts + (counts - 1) / 2.0)[inverse]


@dataclass(frozen=True, slots=True)
class Correlation:
    coefficient: float  # Spearman's rho, -1..1
    p_value: float  # two-sided, block permutation
    count: int


def rank_correlation(x: FloatArray, y: FloatArray, permutations: IntArray) -> Correlation:
    """Spearman correlation of two time-aligned series and its two-sided block-permutation p-value
    (``permutations`` from :func:`block_permutations` over ``x.size``)."""
    n = x.size
    if n < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return Correlation(0.0, 1.0, n)
    rx, ry = ranks(x), ranks(y)
    rx = (rx - rx.mean()) / rx.std()
    ry = (ry - ry.mean()) / ry.std()
    observed = float((rx * ry).mean())
    null = ry[permutations] @ rx / n
    draws = permutations.shape[0]
    p = (1 + int((np.abs(null) >= abs(observed) - 1e-12).sum())) / (draws + 1)
    return Correlation(observed, p, n)


@dataclass(frozen=True, slots=True)
class RandomEntries:
    draws: int
    p_value: float  # one-sided: random entries did at least as well as the signal
    mean_return: float  # mean over draws of the random positions' mean directional return
    hit_rate: float  # mean over draws
    hit_rate_low: float  # 2.5th / 97.5th percentile over draws: the range chance gives
    hit_rate_high: float
    median_return: float


def random_entries(positions: NDArray[np.int8], returns: FloatArray, permutations: IntArray) -> RandomEntries:
    """The signal's positions (+1 long, -1 short, 0 none) placed at random: blocks of the position
    sequence shuffled, so the same number of longs and shorts, clustered as the signal clusters them.
    """
    draws = permutations.shape[0]
    active = positions != 0
    if not active.any():
        return RandomEntries(draws, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    observed = float((positions[active] * returns[active]).mean())
    shuffled = positions[permutations].astype(np.float64)
    directional = shuffled * returns[None, :]
    taken = shuffled != 0
    counts = taken.sum(axis=1)
    means = directional.sum(axis=1) / counts
    hit_rates = ((directional > 0) & taken).sum(axis=1) / counts
    medians = np.array([np.median(row[mask]) for row, mask in zip(directional, taken, strict=True)])
    p = (1 + int((means >= observed - 1e-12).sum())) / (draws + 1)
    return RandomEntries(
        draws,
        p,
        float(means.mean()),
        float(hit_rates.mean()),
        float(np.percentile(hit_rates, 2.5)),
        float(np.percentile(hit_rates, 97.5)),
        float(np.median(medians)),
    )
