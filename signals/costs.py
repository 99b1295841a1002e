"""What a position really returns: the price move, minus taker fees, minus (or plus) funding.

Definitions (percent of the position's notional at entry; the research report uses them):

- A bar's decision price is its close. A position decided at bar ``t`` is entered at ``close[t]``
  and left at ``close[t + h]``: it is held over bars ``t + 1 .. t + h``.
- **Fees**: ``fee_bps`` per side (default 5 bps, a taker fee), paid on entry and on exit: a round
  trip costs ``2 * fee_bps / 100`` percent.
- **Funding**: paid at every 8 h settlement (00:00, 08:00, 16:00 UTC) inside the holding period,
  i.e. at times ``s`` with ``entry < s <= exit``. A positive rate is paid by longs and received
  by shorts. The rate of a settlement is the funding reading of the bar the settlement falls in
  (a settlement at a bar's close belongs to that bar): the newest reading stamped before ``s``.
  Daily data has ONE reading per day (``funding_close``, percent per 8 h, the day's closing rate),
  so each held day's reading is applied to that day's three settlements (08:00, 16:00 and 00:00 at
  its close): ``3 * funding_close[D]`` per held day ``D``. This is the realised cost of holding,
  not a signal input, so it uses the held bar's own reading; no decision ever sees it.
  Funding is charged on the entry notional (the move of the notional during the hold is ignored).
- **Position return**: LONG ``= gross - fees - funding``; SHORT ``= -gross - fees + funding``,
  with ``gross = (close[t + h] / close[t] - 1) * 100``. A SHORT that loses shows a negative number.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from signals.inputs import HOUR_MS, Series

SETTLEMENT_MS = 8 * HOUR_MS  # funding settles at 00:00, 08:00 and 16:00 UTC
DEFAULT_FEE_BPS = 5.0  # a taker fee per side


@dataclass(frozen=True, slots=True)
class Costs:
    fee_bps: float = DEFAULT_FEE_BPS  # per side

    def __post_init__(self) -> None:
        if not 0 <= self.fee_bps < 1000:
            raise ValueError(f"the fee must be between 0 and 1000 bps per side, got {self.fee_bps:g}")

    @property
    def round_trip_pct(self) -> float:
        """Entry and exit fees together, in percent of notional."""
        return 2.0 * self.fee_bps / 100.0


def settlements(start_ms: int, end_ms: int) -> list[int]:
    """Settlement times ``s`` with ``start < s <= end``."""
    first = start_ms // SETTLEMENT_MS * SETTLEMENT_MS + SETTLEMENT_MS
    return list(range(first, end_ms + 1, SETTLEMENT_MS))


def funding_per_bar(funding: Series[Any] | None, bar_times: Sequence[int], step_ms: int) -> NDArray[np.float64]:
    """Funding (percent, summed over its settlements) a long pays for holding through each bar.

    Bar ``D`` (open time ``bar_times[i]``) holds the settlements in ``(D, D + step]``; each takes
    the newest reading stamped before it, if that reading is at most the series' maximum age old.
    NaN where no such reading exists (the cost is unknown, so the net return is too).
    """
    out = np.full(len(bar_times), np.nan)
    if funding is None:
        return out
    times = funding.times
    for i, bar in enumerate(bar_times):
        total = 0.0
        for s in settlements(bar, bar + step_ms):
            j = bisect_left(times, s) - 1  # newest reading stamped strictly before s
            if j < 0 or s - times[j] > funding.max_age_ms:
                total = float("nan")
                break
            total += float(funding.rows[j].close)
        out[i] = total
    return out


def holding_funding(per_bar: NDArray[np.float64], index: int, horizon: int) -> float:
    """Funding a long pays over bars ``index + 1 .. index + horizon`` (NaN if any is unknown or past the end)."""
    if index + horizon >= per_bar.size:
        return float("nan")
    return float(per_bar[index + 1 : index + horizon + 1].sum())


def position_return(direction: int, gross_pct: float, funding_pct: float, costs: Costs) -> float:
    """Net return of a position, percent: ``direction`` +1 LONG, -1 SHORT.

    LONG: ``gross - fees - funding``; SHORT: ``-gross - fees + funding``.
    """
    if direction not in (1, -1):
        raise ValueError("a position is LONG (+1) or SHORT (-1)")
    return direction * gross_pct - costs.round_trip_pct - direction * funding_pct


def gross_return(close_now: float, close_later: float) -> float:
    """``(close[t + h] / close[t] - 1) * 100``."""
    return (close_later / close_now - 1.0) * 100.0


def position_returns(
    directions: NDArray[np.int8], gross_pct: NDArray[np.float64], funding_pct: NDArray[np.float64], costs: Costs
) -> NDArray[np.float64]:
    """``position_return`` over arrays: NaN where there is no position (direction 0) or the funding is unknown."""
    d = directions.astype(np.float64)
    out: NDArray[np.float64] = d * gross_pct - costs.round_trip_pct - d * funding_pct
    out[directions == 0] = np.nan
    return out
