"""SMC structure (signals/smc.py) pinned on hand-worked candles and on real 4h BTC candles."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from signals import smc
from signals.smc import Candle

HOUR = timedelta(hours=1)
T0 = datetime(2025, 1, 1, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"

# Worked by hand (see /work/notes/smc.md, "Worked example"): 20 hourly bars, swing_bars = 2.
#        open   high   low    close
HAND = [
    (100.0, 101.0, 99.0, 100.0),  # 0
    (100.0, 103.0, 99.5, 102.0),  # 1
    (102.0, 105.0, 101.0, 104.0),  # 2  swing high 105
    (104.0, 104.5, 100.0, 101.0),  # 3
    (101.0, 102.0, 98.0, 99.0),  # 4
    (99.0, 100.0, 95.0, 96.0),  # 5  swing low 95; the bullish order block
    (96.0, 99.0, 95.5, 98.0),  # 6
    (98.0, 101.0, 97.0, 100.0),  # 7
    (100.0, 104.9, 99.0, 104.0),  # 8
    (104.0, 107.0, 103.0, 106.5),  # 9  closes above 105: BOS up
    (106.5, 108.0, 105.5, 107.5),  # 10 the bearish order block
    (107.5, 108.1, 104.0, 105.0),  # 11 swing high 108.1
    (105.0, 106.0, 102.0, 103.0),  # 12
    (103.0, 104.0, 100.5, 101.0),  # 13
    (101.0, 102.5, 100.0, 102.0),  # 14 trades back into the bullish OB
    (102.0, 103.0, 98.0, 98.5),  # 15
    (98.5, 99.0, 94.0, 94.5),  # 16 closes below 95: CHoCH down
    (94.5, 96.0, 93.0, 95.5),  # 17 swing low 93
    (95.5, 97.0, 94.8, 96.5),  # 18
    (96.5, 97.5, 95.0, 97.0),  # 19
]


def bars(rows: list[tuple[float, float, float, float]], step: timedelta = HOUR) -> list[Candle]:
    return [Candle(T0 + i * step, *row) for i, row in enumerate(rows)]


def at(i: int) -> datetime:
    return T0 + i * HOUR


@pytest.fixture(scope="module")
def hand() -> smc.MarketStructure:
    return smc.analyze(bars(HAND), HOUR, swing_bars=2)


def test_swings_need_n_bars_each_side_and_are_confirmed_n_bars_later(hand: smc.MarketStructure) -> None:
    assert [(s.kind, s.time, s.price, s.confirmed_time) for s in hand.swings] == [
        ("high", at(2), 105.0, at(5)),  # confirmed at the close of bar 4
        ("low", at(5), 95.0, at(8)),
        ("high", at(11), 108.1, at(14)),
        ("low", at(17), 93.0, at(20)),
    ]


def test_first_break_is_a_bos_and_a_break_against_the_trend_a_choch(hand: smc.MarketStructure) -> None:
    assert [(b.kind, b.direction, b.level, b.swing_time, b.time, b.close) for b in hand.breaks] == [
        ("BOS", "bullish", 105.0, at(2), at(9), 106.5),
        ("CHOCH", "bearish", 95.0, at(5), at(16), 94.5),
    ]
    assert hand.trend == "bearish"


def test_order_blocks_are_the_last_opposite_candle_before_the_move(hand: smc.MarketStructure) -> None:
    bullish, bearish = hand.order_blocks
    # Up-break: the leg starts at the lowest low of bars 2..9 (bar 5), the last down candle up to it is bar 5.
    assert (bullish.direction, bullish.time, bullish.low, bullish.high) == ("bullish", at(5), 95.0, 100.0)
    assert (bullish.mitigated, bullish.mitigated_time) == (True, at(14))  # bar 14's low 100 reaches the top
    # Down-break: the leg starts at the highest high of bars 5..16 (bar 11), the last up candle up to it is bar 10.
    assert (bearish.direction, bearish.time, bearish.low, bearish.high) == ("bearish", at(10), 105.5, 108.0)
    assert (bearish.mitigated, bearish.mitigated_time) == (False, None)


def test_fair_value_gaps_filled_or_open(hand: smc.MarketStructure) -> None:
    assert [(g.direction, g.time, g.low, g.high, g.filled, g.filled_time) for g in hand.fair_value_gaps] == [
        ("bullish", at(8), 101.0, 103.0, True, at(13)),  # bar 7 high 101 < bar 9 low 103; bar 13 low 100.5
        ("bullish", at(9), 104.9, 105.5, True, at(11)),
        ("bearish", at(15), 99.0, 100.0, False, None),  # bar 16 high 99 < bar 14 low 100
        ("bearish", at(16), 96.0, 98.0, False, None),
    ]


def test_premium_discount_in_the_latest_swing_range(hand: smc.MarketStructure) -> None:
    loc = hand.location
    assert loc is not None
    assert (loc.range_high, loc.range_high_time, loc.range_low, loc.range_low_time) == (108.1, at(11), 93.0, at(17))
    assert loc.equilibrium == pytest.approx(100.55)
    assert loc.position == pytest.approx((97.0 - 93.0) / (108.1 - 93.0))  # 0.2649
    assert loc.zone == "discount"
    assert smc.structure_reading(hand) == -0.5  # bearish trend, price in discount
    assert hand.liquidity == ()


def test_equal_highs_are_buy_side_liquidity_swept_by_a_later_high() -> None:
    rows = [
        (10.0, 10.5, 9.5, 10.0),
        (10.0, 12.0, 9.8, 11.5),  # swing high 12
        (11.5, 11.6, 10.5, 11.0),
        (11.0, 11.2, 10.2, 10.8),
        (10.8, 12.005, 10.6, 11.9),  # swing high 12.005: within 0.1 % of 12
        (11.9, 11.95, 11.0, 11.2),
        (11.2, 12.3, 11.1, 12.2),  # trades above 12.005: swept
        (12.2, 12.25, 11.8, 12.0),
    ]
    structure = smc.analyze(bars(rows), HOUR, swing_bars=1, equal_tolerance_pct=0.1)
    assert [(p.side, p.level, p.swing_times, p.swept, p.swept_time) for p in structure.liquidity] == [
        ("buy_side", 12.005, (at(1), at(4)), True, at(6))
    ]
    strict = smc.analyze(bars(rows), HOUR, swing_bars=1, equal_tolerance_pct=0.01)
    assert strict.liquidity == ()  # 0.042 % apart: not equal at 0.01 %


def test_equal_lows_mirror_equal_highs() -> None:
    mirrored = [(-o, -low, -high, -c) for o, high, low, c in HAND]
    rows = [
        (10.0, 10.5, 9.5, 10.0),
        (10.0, 10.2, 8.0, 8.5),  # swing low 8
        (8.5, 9.5, 8.4, 9.0),
        (9.0, 9.8, 8.8, 9.2),
        (9.2, 9.4, 7.995, 8.1),  # swing low 7.995
        (8.1, 9.0, 8.05, 8.8),
        (8.8, 8.9, 7.7, 7.8),  # below 7.995: swept
        (7.8, 8.2, 7.75, 8.0),
    ]
    structure = smc.analyze(bars(rows), HOUR, swing_bars=1)
    assert [(p.side, p.level, p.swept_time) for p in structure.liquidity] == [("sell_side", 7.995, at(6))]
    # The hand example upside down: the same breaks in the other direction.
    flipped = smc.analyze(bars(mirrored), HOUR, swing_bars=2)
    assert [(b.kind, b.direction) for b in flipped.breaks] == [("BOS", "bearish"), ("CHOCH", "bullish")]


def test_only_closed_bars_are_read_and_the_structure_at_t_never_sees_later_bars() -> None:
    candles = bars(HAND)
    # At 16:30 bar 16 (opened 16:00) is still open: its close below 95 is not a CHoCH yet.
    early = smc.structure_at(candles, HOUR, at(16) + timedelta(minutes=30), swing_bars=2)
    assert early.bars == 16 and [b.kind for b in early.breaks] == ["BOS"] and early.trend == "bullish"
    # Look-ahead proof: at every bar's close, reading the whole series equals reading only the past.
    for i in range(1, len(candles) + 1):
        t = at(i)
        assert smc.structure_at(candles, HOUR, t, swing_bars=2) == smc.analyze(candles[:i], HOUR, swing_bars=2)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="swing_bars"):
        smc.analyze(bars(HAND), HOUR, swing_bars=0)
    with pytest.raises(ValueError, match="equal_tolerance_pct"):
        smc.analyze(bars(HAND), HOUR, equal_tolerance_pct=-1)
    assert smc.analyze([], HOUR).location is None


# ---- real candles: 200 4h bars of Binance BTCUSDT (2025-04-10 to 2025-05-13), from ../shared/data ----


def real_btc_4h() -> list[Candle]:
    rows = json.loads((FIXTURES / "futures_price_history.BTC.4h.slice.json").read_text())["data"]
    return [
        Candle(
            datetime.fromtimestamp(r["time"] / 1000, UTC),
            float(r["open"]),
            float(r["high"]),
            float(r["low"]),
            float(r["close"]),
        )
        for r in rows
    ]


def test_real_btc_4h_structure() -> None:
    candles = real_btc_4h()
    step = timedelta(hours=4)
    s = smc.analyze(candles, step, swing_bars=3)
    assert s.bars == 200
    # Every swing is a true local extreme of its 3 + 3 neighbours.
    for w in s.swings:
        i = next(k for k, c in enumerate(candles) if c.time == w.time)
        around = candles[i - 3 : i] + candles[i + 1 : i + 4]
        if w.kind == "high":
            assert w.price == candles[i].high and all(c.high <= w.price for c in around)
        else:
            assert w.price == candles[i].low and all(c.low >= w.price for c in around)
    # April-May 2025: the rally from 78.4k to 105.9k, then the drop of 12 May. Pinned as computed, each
    # checked against the candles: the BOS up of 10 May 20:00 (close 104,788.8 above the 104,085 swing
    # high of 10 May 04:00), then the CHoCH down of 12 May 12:00 (close 102,481.7 below the 102,940
    # swing low of 10 May 16:00).
    assert (len(s.swings), len(s.breaks), len(s.fair_value_gaps)) == (41, 10, 27)
    assert [b.kind for b in s.breaks] == [
        "BOS",
        "CHOCH",
        "CHOCH",
        "BOS",
        "CHOCH",
        "CHOCH",
        "BOS",
        "BOS",
        "BOS",
        "CHOCH",
    ]
    last_bos, choch = s.breaks[-2:]
    assert (last_bos.direction, last_bos.level, last_bos.time, last_bos.close) == (
        "bullish",
        104_085.0,
        datetime(2025, 5, 10, 20, tzinfo=UTC),
        104_788.8,
    )
    assert (choch.direction, choch.level, choch.time, choch.close) == (
        "bearish",
        102_940.0,
        datetime(2025, 5, 12, 12, tzinfo=UTC),
        102_481.7,
    )
    assert s.trend == "bearish"
    supply = s.order_blocks[-1]  # the last up candle before the drop: 12 May 04:00
    assert (supply.time, supply.low, supply.high, supply.mitigated) == (
        datetime(2025, 5, 12, 4, tzinfo=UTC),
        103_696.3,
        105_863.1,
        False,
    )
    loc = s.location
    assert loc is not None
    assert (loc.range_high, loc.range_low, loc.price, loc.zone) == (105_863.1, 100_678.0, 103_495.6, "premium")
    assert loc.position == pytest.approx(0.5434, abs=1e-4)
    assert smc.structure_reading(s) == -1.0  # bearish structure with price in premium
    assert [(p.side, p.level, p.swept) for p in s.liquidity] == [
        ("sell_side", 82_991.5, False),
        ("buy_side", 85_493.5, True),
    ]
    assert min(w.price for w in s.swings if w.kind == "low") == 78_416.0
    # Each break closed beyond its level; each order block precedes its break.
    for b, ob in zip(s.breaks, s.order_blocks, strict=True):
        assert (b.close > b.level) if b.direction == "bullish" else (b.close < b.level)
        assert ob.time < b.time and ob.direction == b.direction
    # Fair value gaps are real three-candle imbalances.
    times = {c.time: k for k, c in enumerate(candles)}
    for g in s.fair_value_gaps:
        k = times[g.time]
        a, c = candles[k - 1], candles[k + 1]
        assert (g.low, g.high) == ((a.high, c.low) if g.direction == "bullish" else (c.high, a.low))
    assert s == smc.structure_at(candles, step, candles[-1].time + step, swing_bars=3)


def test_the_factor_candidate_series_is_the_reading_at_each_close() -> None:
    candles = real_btc_4h()[:80]
    step = timedelta(hours=4)
    series = smc.reading_series(candles, step, lookback=60, swing_bars=3)
    assert len(series) == 80
    for close_time, reading in series[::7]:
        assert reading == smc.reading_at(candles, step, close_time, lookback=60, swing_bars=3)
    assert {r for _, r in series} <= {None, 0.0, 0.5, -0.5, 1.0, -1.0}


def test_structure_is_never_read_across_a_hole_in_the_data() -> None:
    candles = bars(HAND)
    holed = candles[:5] + [dataclasses.replace(c, time=c.time + 3 * HOUR) for c in candles[5:]]
    assert smc.contiguous_tail(holed, HOUR) == holed[5:]
    assert smc.contiguous_tail(candles, HOUR) == candles
    assert smc.contiguous_tail([], HOUR) == []
