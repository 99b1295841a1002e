"""Return, fee and funding arithmetic on hand-computed bars (signals/costs.py, signals/research.py).

The bars are real (tests/fixtures/panel, BTC, November 2022); every expected figure is worked out by
hand in the comments from the CSV rows quoted there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from scoring import DEFAULT_CONFIG
from signals.costs import Costs, funding_per_bar, holding_funding, position_return, settlements
from signals.dataset import Dataset, Reading, parse_day
from signals.inputs import DAY_MS, HOUR_MS, Series, to_ms
from signals.research import outcomes, position_net, replay_panel, rule_pnl

PANEL = Path(__file__).parent / "fixtures" / "panel"

# futures_ohlcv_1d.csv:      BTCUSDT 2022-11-07 close 20578.6, 2022-11-08 close 18534.0, 2022-11-09 close 15905.0
# funding_oi_weight_1d.csv:  BTC 2022-11-08 0.00449984, 2022-11-09 -0.09098929 (percent per 8 h)
CLOSE_7, CLOSE_8, CLOSE_9 = 20578.6, 18534.0, 15905.0
FUND_8, FUND_9 = 0.00449984, -0.09098929


def _day(text: str) -> int:
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))


def test_a_round_trip_costs_two_taker_fees() -> None:
    assert Costs().fee_bps == 5.0
    assert Costs().round_trip_pct == pytest.approx(0.10)  # 2 x 5 bps = 0.10 %
    assert Costs(2.0).round_trip_pct == pytest.approx(0.04)
    with pytest.raises(ValueError, match="fee"):
        Costs(-1.0)


def test_settlements_inside_a_daily_hold_are_three_per_day_and_exclude_the_entry() -> None:
    entry = _day("2022-11-09")  # entered at 2022-11-08's close = 2022-11-09 00:00
    exit_ = entry + DAY_MS  # left at 2022-11-09's close
    assert [(s - entry) // HOUR_MS for s in settlements(entry, exit_)] == [8, 16, 24]


def test_a_daily_funding_reading_applies_to_the_three_settlements_of_its_day() -> None:
    rows = [Reading(datetime(2022, 11, d, tzinfo=UTC), r) for d, r in ((8, FUND_8), (9, FUND_9), (10, 0.01))]
    series = Series(rows, "test", DAY_MS, max_age_ms=2 * DAY_MS)
    bars = [_day("2022-11-08"), _day("2022-11-09"), _day("2022-11-10")]
    per_bar = funding_per_bar(series, bars, DAY_MS)
    # Bar D holds the settlements at D 08:00, D 16:00 and D+1 00:00, each priced at D's reading.
    assert per_bar.tolist() == pytest.approx([3 * FUND_8, 3 * FUND_9, 3 * 0.01])
    # Held over bars 11-09 and 11-10 (entered at 11-08's close, h = 2).
    assert holding_funding(per_bar, 0, 2) == pytest.approx(3 * FUND_9 + 3 * 0.01)
    assert np.isnan(holding_funding(per_bar, 1, 2))  # the hold runs past the data: unknown
    # A day without a reading (nor one within two days) makes the cost unknown, never zero.
    assert np.isnan(funding_per_bar(series, [_day("2022-11-14")], DAY_MS)[0])


def test_position_returns_long_pays_and_short_receives_positive_funding() -> None:
    costs = Costs(5.0)
    # LONG: gross - fees - funding; SHORT: -gross - fees + funding.
    assert position_return(1, 2.0, 0.03, costs) == pytest.approx(2.0 - 0.10 - 0.03)
    assert position_return(-1, 2.0, 0.03, costs) == pytest.approx(-2.0 - 0.10 + 0.03)
    assert position_return(-1, -2.0, -0.03, costs) == pytest.approx(2.0 - 0.10 - 0.03)
    with pytest.raises(ValueError):
        position_return(0, 1.0, 0.0, costs)


@pytest.fixture(scope="module")
def panel():  # type: ignore[no-untyped-def]
    dataset = Dataset(PANEL)
    start, end = parse_day("2022-09-01", "start"), parse_day("2023-01-31", "end")
    return replay_panel([("BTC", dataset.history("BTC", end))], DEFAULT_CONFIG, start, end, lookahead_window_bars=5)


def test_real_btc_bars_net_of_fees_and_funding_by_hand(panel) -> None:  # type: ignore[no-untyped-def]
    i8 = int(np.flatnonzero(panel.times == _day("2022-11-08"))[0])
    i7 = i8 - 1
    assert panel.close[i8, 0] == CLOSE_8

    one = outcomes(panel, 1, Costs(5.0))
    gross = (CLOSE_9 / CLOSE_8 - 1) * 100  # = -14.18474...
    assert gross == pytest.approx(-14.184741, abs=1e-6)
    assert one.gross[i8, 0] == pytest.approx(gross)
    assert one.funding_hold[i8, 0] == pytest.approx(3 * FUND_9)  # = -0.27296787: longs were paid
    assert one.net_long[i8, 0] == pytest.approx(gross - 0.10 - 3 * FUND_9)  # = -14.011773
    assert one.net_long[i8, 0] == pytest.approx(-14.011773, abs=1e-6)
    assert one.net_short[i8, 0] == pytest.approx(-gross - 0.10 + 3 * FUND_9)  # = +13.811773
    assert one.net_short[i8, 0] == pytest.approx(13.811773, abs=1e-6)

    two = outcomes(panel, 2, Costs(5.0))
    gross2 = (CLOSE_9 / CLOSE_7 - 1) * 100
    assert two.gross[i7, 0] == pytest.approx(gross2)
    assert two.funding_hold[i7, 0] == pytest.approx(3 * (FUND_8 + FUND_9))
    assert two.net_short[i7, 0] == pytest.approx(-gross2 - 0.10 + 3 * (FUND_8 + FUND_9))

    # The bar's position net return is the class's: LONG -> net_long, SHORT -> net_short, NEUTRAL -> none.
    sign = np.zeros(panel.sign.shape, dtype=np.int8)
    sign[i8, 0], sign[i7, 0] = 1, -1
    net = position_net(one, sign)
    assert net[i8, 0] == one.net_long[i8, 0]
    assert net[i7, 0] == one.net_short[i7, 0]
    assert np.isnan(net[i8 + 1, 0])


@pytest.mark.parametrize("horizon", [1, 3, 7])
def test_the_rules_daily_pnl_of_one_tranche_adds_up_to_its_position_return_over_h(panel, horizon: int) -> None:  # type: ignore[no-untyped-def]
    i = int(np.flatnonzero(panel.times == _day("2022-11-08"))[0])
    o = outcomes(panel, horizon, Costs(5.0))
    for side, net in ((1, o.net_long), (-1, o.net_short)):
        sign = np.zeros(panel.sign.shape, dtype=np.int8)
        sign[i, 0] = side
        rule = rule_pnl(panel, sign, o, Costs(5.0))
        # 1/h of capital in the one position: the P&L over its hold is its net return / h.
        assert float(rule.pnl[:, 0].sum()) == pytest.approx(float(net[i, 0]) / horizon)
        assert float(rule.fees[:, 0].sum()) == pytest.approx(0.10 / horizon)
        assert float(rule.exposure[:, 0].sum()) == pytest.approx(1.0)  # h days at 1/h


def test_tranches_of_the_same_side_net_out_always_long_pays_fees_once(panel) -> None:  # type: ignore[no-untyped-def]
    o = outcomes(panel, 3, Costs(5.0))
    rule = rule_pnl(panel, np.ones(panel.sign.shape, dtype=np.int8), o, Costs(5.0))
    # Ramp-up to a full position (3 x 1/3 in), ramp-down at the end (3 x 1/3 out): 1 in, 1 out.
    assert float(rule.fees[:, 0].sum()) == pytest.approx(0.10)
