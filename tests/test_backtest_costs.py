"""The served backtest's net figures on hand-computed bars: fees and funding from signals/costs.py.

The bars are real: the twin's bundled Coinglass BTC 4h history (twin/recorded/coinglass/history/);
every expected figure is worked out by hand in the comments from the rows quoted there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from signals.backtest import OutcomeStats, _random_entries_net, _with_net, hold_funding
from signals.costs import Costs, position_return, position_returns
from signals.dataset import Reading
from signals.inputs import HOUR_MS, Series, to_ms
from signals.replay import History

BUNDLED = Path(__file__).resolve().parent.parent / "twin" / "recorded" / "coinglass" / "history"
STEP = 4 * HOUR_MS

# futures_price_history.BTC.json (close):   2025-03-02 04:00 86191.4, 2025-03-03 04:00 92318
# futures_funding-rate_oi-weight-history.BTC.json (close, percent per 8 h):
#   2025-03-02 12:00 0.002111, 2025-03-02 20:00 0.001244, 2025-03-03 04:00 0.006829
ENTRY_CLOSE, EXIT_CLOSE = 86191.4, 92318.0
F_12, F_20, F_04 = 0.002111, 0.001244, 0.006829


def _t(text: str) -> int:
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))


def _series(file: str) -> Series[Reading]:
    rows = json.loads((BUNDLED / file).read_text())["data"]
    readings = [Reading(datetime.fromtimestamp(r["time"] / 1000, UTC), float(r["close"])) for r in rows]
    return Series(readings, file, STEP, max_age_ms=2 * STEP)  # the loader's max age: two bars


@pytest.fixture(scope="module")
def history() -> History:
    return History(
        STEP,
        price=_series("futures_price_history.BTC.json"),
        funding=_series("futures_funding-rate_oi-weight-history.BTC.json"),
    )


def test_a_six_bar_hold_pays_the_three_settlements_inside_it(history: History) -> None:
    # Decided at the bar opened 2025-03-02 04:00: entered at its close (08:00), left at the close of
    # the bar opened 2025-03-03 04:00 (03-03 08:00). Settlements s with entry < s <= exit: 03-02 16:00,
    # 03-03 00:00 and 03-03 08:00, each at the newest reading stamped before it (12:00, 20:00, 04:00).
    decided = _t("2025-03-02T04:00:00")
    close = dict(zip(history.price.times, (r.close for r in history.price.rows), strict=True))
    assert (close[decided], close[_t("2025-03-03T04:00:00")]) == (ENTRY_CLOSE, EXIT_CLOSE)
    funding = hold_funding(history, [decided], 6)
    assert funding.tolist() == pytest.approx([F_12 + F_20 + F_04])  # = 0.010184 %
    # One bar later (entered 12:00, left 03-03 12:00): the same three settlements, the same cost.
    # Two bars later (entered 16:00, left 03-03 16:00): 03-03 00:00, 08:00 and 16:00, the last one at
    # the 03-03 12:00 reading (0.008462); the settlement at the entry itself is not held.
    assert hold_funding(history, [decided + STEP, decided + 2 * STEP], 6).tolist() == pytest.approx(
        [F_12 + F_20 + F_04, F_20 + F_04 + 0.008462]
    )


def test_net_position_returns_by_hand(history: History) -> None:
    gross = (EXIT_CLOSE / ENTRY_CLOSE - 1) * 100  # = +7.108134 %
    assert gross == pytest.approx(7.108134, abs=1e-6)
    funding = F_12 + F_20 + F_04  # longs paid 0.010184 %
    costs = Costs(5.0)  # 0.10 % a round trip
    long_net = gross - 0.10 - funding  # = +6.997950
    short_net = -gross - 0.10 + funding  # = -7.197950: a SHORT that lost is negative
    assert position_return(1, gross, funding, costs) == pytest.approx(long_net)
    assert position_return(-1, gross, funding, costs) == pytest.approx(short_net)
    assert short_net == pytest.approx(-7.197950, abs=1e-6)
    signs = np.array([1, -1, 0], dtype=np.int8)
    both = position_returns(signs, np.full(3, gross), np.full(3, funding), costs)
    assert both[:2].tolist() == pytest.approx([long_net, short_net])
    assert np.isnan(both[2])  # NEUTRAL takes no position
    # 2 bps a side: the round trip costs 0.04 %.
    assert position_returns(signs[:1], np.array([gross]), np.array([funding]), Costs(2.0))[0] == pytest.approx(
        gross - 0.04 - funding
    )


def test_an_unknown_funding_cost_leaves_the_bar_out_of_the_net_mean(history: History) -> None:
    # The bundled funding ends with the bar opened 2025-05-13 08:00; a reading counts up to two bars old.
    last = history.funding.times[-1]  # type: ignore[union-attr]
    assert np.isnan(hold_funding(history, [last], 3)[0])  # 05-14 00:00: the newest reading is 16 h old
    stats = OutcomeStats("LONG", 3, 0.5, 0.1, 0.9, 0.0, 0.0, 3.0)
    net = np.array([1.0, np.nan, -3.0])
    # Positions: +2, -1, +5 -> mean gross position return 2.0; net over the two known: (1 - 3) / 2 = -1.
    out = _with_net(stats, np.array([2.0, -1.0, 5.0]), net)
    assert (out.mean_position_return_pct, out.mean_net_return_pct, out.net_count) == (2.0, -1.0, 2)
    assert _with_net(stats, np.array([1.0]), np.array([np.nan])).mean_net_return_pct is None


def test_random_entries_net_is_the_mean_over_the_draws_of_each_draws_net_mean() -> None:
    signs = np.array([1, -1, 0, 0], dtype=np.int8)
    r = np.array([2.0, -1.0, 4.0, -3.0])
    funding = np.array([0.5, 0.0, -0.5, np.nan])
    permutations = np.array([[0, 1, 2, 3], [2, 3, 0, 1]])
    # Draw 1: LONG bar 0 (2 - 0.1 - 0.5 = 1.4), SHORT bar 1 (1 - 0.1 + 0 = 0.9): mean 1.15.
    # Draw 2: signs [0, 0, 1, -1]: LONG bar 2 (4 - 0.1 + 0.5 = 4.4), SHORT bar 3 has no funding: 4.4.
    mean, count = _random_entries_net(signs, r, funding, permutations, Costs(5.0))
    assert mean == pytest.approx((1.15 + 4.4) / 2)
    assert count == 2  # (2 + 1) / 2 known positions per draw, rounded
