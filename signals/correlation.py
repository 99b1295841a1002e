"""Correlation of coins' log returns and each coin's beta to BTC: pure functions, no I/O.

Given each coin's closes on the same bar times (closed bars only), the window's returns are
``r_t = ln(close_t / close_{t-1})`` over the last ``window`` bars every coin has. Correlation is
Pearson's on those returns; beta to BTC is ``cov(r_coin, r_btc) / var(r_btc)`` (sample
covariance and variance, n - 1 in both, so the divisor cancels).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Correlation:
    symbols: tuple[str, ...]
    matrix: tuple[tuple[float | None, ...], ...]  # matrix[i][j]: correlation of symbols i and j; None: a flat series
    beta_to_btc: Mapping[str, float | None]  # None: BTC's returns are flat over the window
    volatility: Mapping[str, float]  # standard deviation of the window's log returns (fraction per bar)
    returns: int  # returns per coin in the window
    start: datetime  # open time of the first bar read (the close each first return starts from)
    end: datetime  # close time of the last bar read


def log_returns(closes: Sequence[float]) -> list[float]:
    return [math.log(b / a) for a, b in itertools.pairwise(closes)]


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def covariance(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = _mean(xs), _mean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / (len(xs) - 1)


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    vx, vy = covariance(xs, xs), covariance(ys, ys)
    if vx <= 0 or vy <= 0:
        return None
    return max(-1.0, min(1.0, covariance(xs, ys) / math.sqrt(vx * vy)))


def beta(xs: Sequence[float], market: Sequence[float]) -> float | None:
    var = covariance(market, market)
    return covariance(xs, market) / var if var > 0 else None


def correlate(
    closes: Mapping[str, Mapping[datetime, float]],
    symbols: Sequence[str],
    window: int,
    step: timedelta,
    benchmark: str = "BTC",
) -> Correlation:
    """The window's correlation matrix over ``symbols`` and each one's beta to ``benchmark``.

    ``closes`` maps each coin (the benchmark included) to its closes by bar open time. Only times
    every coin has are used; the window is the last ``window`` returns, i.e. ``window + 1`` closes.
    ValueError when the coins share fewer closes than that.
    """
    coins = list(dict.fromkeys([*symbols, benchmark]))
    shared = sorted(set.intersection(*(set(closes[c]) for c in coins)))
    if len(shared) < window + 1:
        raise ValueError(
            f"the coins share {max(len(shared) - 1, 0)} returns at this interval, fewer than window={window}"
        )
    times = shared[-(window + 1) :]
    returns = {c: log_returns([closes[c][t] for t in times]) for c in coins}
    matrix = tuple(tuple(pearson(returns[a], returns[b]) for b in symbols) for a in symbols)
    return Correlation(
        symbols=tuple(symbols),
        matrix=matrix,
        beta_to_btc={s: beta(returns[s], returns[benchmark]) for s in symbols},
        volatility={s: math.sqrt(covariance(returns[s], returns[s])) for s in symbols},
        returns=window,
        start=times[0],
        end=times[-1] + step,
    )
