"""The live track record: how the signals this service actually served did afterwards.

Summarised by the same code as the backtest (``signals.backtest.Sample``): hit rate per class with
an overlap-aware Wilson interval, mean and median forward return, the signal's positions, and
always long over the same rows. Recorded signals are ``interval`` apart and a horizon spans
``horizon / interval`` of them, so consecutive outcomes overlap exactly as backtest bars do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from signals.backtest import Sample, Summary

MIN_OUTCOMES = 3


@dataclass(frozen=True)
class TrackRecord:
    horizon_seconds: int
    signals_with_outcome: int
    summary: Summary | None  # None: fewer than MIN_OUTCOMES outcomes known yet
    horizon_rows: int  # recorded signals per horizon: the overlap the statistics respect
    block_rows: int
    verdict: str


def track_record(
    outcomes: Sequence[tuple[int, str, float]], horizon_seconds: int, interval_seconds: int
) -> TrackRecord:
    """``outcomes``: (computed ms, LONG/SHORT/NEUTRAL, forward return percent), oldest first."""
    horizon_rows = max(1, round(horizon_seconds / interval_seconds))
    if len(outcomes) < MIN_OUTCOMES:
        return TrackRecord(
            horizon_seconds,
            len(outcomes),
            None,
            horizon_rows,
            0,
            f"Not enough history yet: {len(outcomes)} recorded signals have a known outcome at this horizon.",
        )
    returns = np.array([r for _, _, r in outcomes], dtype=np.float64)
    direction = np.array([s for _, s, _ in outcomes])
    seed = int.from_bytes(
        hashlib.sha256(f"{outcomes[0][0]}{len(outcomes)}{horizon_seconds}".encode()).digest()[:8], "big"
    )
    sample = Sample(returns, horizon_rows, np.random.default_rng(seed))
    summary = sample.summarize(direction)
    positions, always = summary.positions, summary.always_long
    if positions.count == 0:
        verdict = "Every recorded signal was NEUTRAL: no position to judge."
    else:
        apart = positions.hit_rate_ci95_low > always.hit_rate or positions.hit_rate_ci95_high < always.hit_rate
        verdict = (
            f"Positions hit {positions.hit_rate:.1%} [{positions.hit_rate_ci95_low:.1%}, "
            f"{positions.hit_rate_ci95_high:.1%}] with a mean of {positions.mean_forward_return_pct:+.3f}%, "
            f"always long {always.hit_rate:.1%} with {always.mean_forward_return_pct:+.3f}% over the same rows; "
            + (
                "the interval excludes always long's hit rate."
                if apart
                else "no edge shown: the interval includes always long's hit rate."
            )
        )
    return TrackRecord(horizon_seconds, len(outcomes), summary, horizon_rows, sample.block, verdict)
