"""Correlation of log returns and beta to BTC (signals/correlation.py), on hand-computed returns and real days."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from signals.correlation import correlate, log_returns

DAY = timedelta(days=1)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"


def closes_from_returns(returns: list[float], start: float = 100.0) -> dict[datetime, float]:
    """Closes whose log returns are exactly ``returns`` (one close more than returns)."""
    closes = [start]
    for r in returns:
        closes.append(closes[-1] * math.exp(r))
    return {T0 + i * DAY: c for i, c in enumerate(closes)}


BTC = [0.01, -0.02, 0.03, 0.00]
ALT = [0.02, 0.01, -0.01, 0.02]


def test_hand_computed_correlation_and_beta() -> None:
    # By hand: BTC mean 0.005, deviations (0.005, -0.025, 0.025, -0.005); ALT mean 0.01, deviations
    # (0.01, 0, -0.02, 0.01). Sum of products -0.0005; BTC sum of squares 0.0013, ALT 0.0006.
    # corr = -0.0005 / sqrt(0.0013 * 0.0006) = -0.566139; beta = -0.0005 / 0.0013 = -0.384615.
    closes = {"BTC": closes_from_returns(BTC), "ALT": closes_from_returns(ALT, 2.0)}
    result = correlate(closes, ["BTC", "ALT"], 4, DAY)
    assert result.matrix[0][0] == pytest.approx(1.0)
    assert result.matrix[0][1] == pytest.approx(-0.566139, abs=1e-6)
    assert result.matrix[1][0] == result.matrix[0][1]
    assert result.beta_to_btc["ALT"] == pytest.approx(-0.384615, abs=1e-6)
    assert result.beta_to_btc["BTC"] == pytest.approx(1.0)
    assert result.volatility["ALT"] == pytest.approx(math.sqrt(0.0006 / 3))
    assert (result.returns, result.start, result.end) == (4, T0, T0 + 5 * DAY)


def test_scaled_and_mirrored_returns() -> None:
    closes = {
        "BTC": closes_from_returns(BTC),
        "TWICE": closes_from_returns([2 * r for r in BTC]),
        "MIRROR": closes_from_returns([-r for r in BTC]),
    }
    result = correlate(closes, ["TWICE", "MIRROR"], 4, DAY)  # BTC fetched for the beta only
    assert result.symbols == ("TWICE", "MIRROR")
    assert result.matrix[0][1] == pytest.approx(-1.0)
    assert result.beta_to_btc == pytest.approx({"TWICE": 2.0, "MIRROR": -1.0})


def test_the_window_is_the_last_returns_on_shared_times() -> None:
    btc = closes_from_returns([0.5, *BTC])  # one older return that falls outside a window of 4
    alt = closes_from_returns([0.0, *ALT], 2.0)
    del alt[T0]  # ALT has no first close: the shared times start one day later
    result = correlate({"BTC": btc, "ALT": alt}, ["BTC", "ALT"], 4, DAY)
    assert result.matrix[0][1] == pytest.approx(-0.566139, abs=1e-6)
    assert (result.start, result.end) == (T0 + DAY, T0 + 6 * DAY)
    with pytest.raises(ValueError, match="share 4 returns"):
        correlate({"BTC": btc, "ALT": alt}, ["BTC", "ALT"], 5, DAY)


def test_a_flat_series_has_no_correlation() -> None:
    flat = {T0 + i * DAY: 1.0 for i in range(5)}
    result = correlate({"BTC": closes_from_returns(BTC), "FLAT": flat}, ["BTC", "FLAT"], 4, DAY)
    assert result.matrix[0][1] is None and result.beta_to_btc["FLAT"] == 0.0


def real_daily_closes() -> dict[str, dict[datetime, float]]:
    closes: dict[str, dict[datetime, float]] = {}
    with (FIXTURES / "futures_ohlcv_1d.BTC-ETH-XRP.2023Q1.csv").open() as f:
        for row in csv.DictReader(f):
            coin = row["symbol"].removesuffix("USDT")
            closes.setdefault(coin, {})[datetime.fromisoformat(row["ts_utc"])] = float(row["close"])
    return closes


def test_real_daily_btc_eth_xrp_against_numpy() -> None:
    closes = real_daily_closes()
    result = correlate(closes, ["BTC", "ETH", "XRP"], 30, DAY)
    times = sorted(closes["BTC"])[-31:]
    returns = np.array([log_returns([closes[c][t] for t in times]) for c in ("BTC", "ETH", "XRP")])
    expected = np.corrcoef(returns)
    assert np.allclose(np.array(result.matrix, dtype=float), expected, atol=1e-12)
    cov = np.cov(returns)
    assert result.beta_to_btc["ETH"] == pytest.approx(cov[1, 0] / cov[0, 0])
    # March 2023: ETH moved with BTC (correlation 0.9+), XRP far less (its own news that month).
    btc_eth, btc_xrp = result.matrix[0][1], result.matrix[0][2]
    assert btc_eth is not None and btc_xrp is not None
    assert btc_eth > 0.9 and btc_xrp < btc_eth
    assert (result.start, result.end) == (datetime(2023, 3, 1, tzinfo=UTC), datetime(2023, 4, 1, tzinfo=UTC))
