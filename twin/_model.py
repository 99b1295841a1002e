"""Synthetic but plausible market series for the recorded twin's data generator.

One model per coin drives every provider's files, so prices, open interest, funding and
liquidations agree across OKX, Coinglass, CoinAPI, LunarCrush and the fear & greed index.
Everything is seeded: running the generator twice produces identical files.
"""

# ruff: noqa: S311 - seeded test data, not cryptography

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

HOUR_MS = 3_600_000
# Newest hourly bucket of the recording: 2025-11-28T03:00:00Z (fixed, never "now").
END_MS = 1_764_298_800_000
HOURS = 720  # 30 days of hourly rows: enough for 1D resampling (30 rows) and long lookbacks
FUNDING_ROWS = 90  # 30 days of 8-hourly funding settlements


@dataclass(frozen=True)
class CoinProfile:
    """What makes one coin's market different: level, trend and positioning."""

    coin: str
    name: str
    topic: str
    seed: int
    end_price: float
    start_price: float
    hourly_vol: float
    price_dp: int
    ct_val: float  # OKX contract value in coin (BTC 0.01, ETH 0.1, SOL 1)
    oi_usd: float  # OKX open interest in USD at the end
    oi_growth: float  # relative OI change over the last 48 h
    account_ratio: float  # all accounts long/short
    top_account_ratio: float
    top_position_ratio: float
    funding: float  # decimal per 8 h (OKX spelling)
    taker_buy_share: float  # share of taker volume that buys
    liq_usd_per_hour: float  # aggregated across exchanges (Coinglass)
    long_liq_share: float  # share of liquidated USD that were longs
    market_cap_rank: int
    circulating_supply: float
    galaxy_score: int
    alt_rank: int
    sentiment: int  # LunarCrush percent positive (tweets)


PROFILES: dict[str, CoinProfile] = {
    # BTC: mildly bearish and crowded long: longs pay funding, OI rising into a falling price,
    # longs liquidated about 2.5x as much as shorts, takers net sellers.
    "BTC": CoinProfile(
        "BTC",
        "Bitcoin",
        "bitcoin",
        21,
        79_776.6,
        86_400.0,
        0.0055,
        1,
        0.01,
        2.29e9,
        0.05,
        2.25,
        1.45,
        1.22,
        0.000118,
        0.47,
        3.2e6,
        0.71,
        1,
        19_956_000,
        64,
        212,
        78,
    ),
    # ETH: balanced: ratios near 1, small positive funding, liquidations even.
    "ETH": CoinProfile(
        "ETH",
        "Ethereum",
        "ethereum",
        22,
        3_012.45,
        2_990.0,
        0.0068,
        2,
        0.1,
        1.21e9,
        0.0,
        1.18,
        1.05,
        1.02,
        0.000052,
        0.50,
        1.6e6,
        0.50,
        2,
        120_700_000,
        58,
        35,
        64,
    ),
    # SOL: short squeeze setup: shorts crowded, negative funding, shorts liquidated, takers buying.
    "SOL": CoinProfile(
        "SOL",
        "Solana",
        "solana",
        30,
        181.37,
        164.0,
        0.009,
        3,
        1.0,
        4.1e8,
        0.03,
        0.82,
        0.88,
        0.79,
        -0.000041,
        0.54,
        6.5e5,
        0.30,
        5,
        545_000_000,
        71,
        9,
        71,
    ),
}


@dataclass
class Market:
    """Hourly series, OLDEST FIRST, index i is the hour END_MS - (HOURS - 1 - i) * HOUR_MS."""

    profile: CoinProfile
    ts: list[int] = field(default_factory=list)
    open: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    contracts: list[float] = field(default_factory=list)  # OKX hourly volume in contracts
    oi_contracts: list[float] = field(default_factory=list)
    account_ratio: list[float] = field(default_factory=list)
    top_account_ratio: list[float] = field(default_factory=list)
    top_position_ratio: list[float] = field(default_factory=list)
    taker_sell: list[float] = field(default_factory=list)
    taker_buy: list[float] = field(default_factory=list)
    long_liq: list[float] = field(default_factory=list)
    short_liq: list[float] = field(default_factory=list)
    funding_hourly: list[float] = field(default_factory=list)  # decimal, as OKX would predict it
    funding_ts: list[int] = field(default_factory=list)  # 8-hourly settlement times, oldest first
    funding: list[float] = field(default_factory=list)

    @property
    def last(self) -> float:
        return self.close[-1]


def _noise(rng: random.Random, level: float, rel: float) -> float:
    return level * (1.0 + rng.gauss(0.0, rel))


def build_market(p: CoinProfile) -> Market:
    rng = random.Random(p.seed)
    m = Market(p)
    m.ts = [END_MS - (HOURS - 1 - i) * HOUR_MS for i in range(HOURS)]
    drift = math.log(p.end_price / p.start_price) / HOURS
    log_path = [0.0]
    for _ in range(HOURS - 1):
        log_path.append(log_path[-1] + drift + rng.gauss(0.0, p.hourly_vol))
    # Rescale so the last close is exactly the profile's price: other providers quote it.
    shift = math.log(p.end_price) - log_path[-1]
    m.close = [round(math.exp(x + shift), p.price_dp) for x in log_path]
    prev = m.close[0] * (1 - rng.gauss(0.0, p.hourly_vol))
    for c in m.close:
        o = round(prev, p.price_dp)
        wick = abs(rng.gauss(0.0, p.hourly_vol * 0.6))
        m.open.append(o)
        m.high.append(round(max(o, c) * (1 + wick), p.price_dp))
        m.low.append(round(min(o, c) * (1 - abs(rng.gauss(0.0, p.hourly_vol * 0.6))), p.price_dp))
        prev = c
    usd_per_hour = p.oi_usd * 0.004
    for i, c in enumerate(m.close):
        move = abs(m.close[i] / m.open[i] - 1.0)
        usd = usd_per_hour * (0.6 + rng.random()) * (1 + 40 * move)
        m.contracts.append(round(usd / c / p.ct_val, 2))
    # OI: flat-ish, then the profile's growth over the last 48 hours.
    oi_end = p.oi_usd / p.end_price / p.ct_val
    for i in range(HOURS):
        age = HOURS - 1 - i
        growth = p.oi_growth * max(0.0, 1 - age / 48) if age < 48 else 0.0
        base = oi_end / (1 + p.oi_growth) * (1 + growth)
        m.oi_contracts.append(round(_noise(rng, base, 0.003), 1))
    for series, level in (
        (m.account_ratio, p.account_ratio),
        (m.top_account_ratio, p.top_account_ratio),
        (m.top_position_ratio, p.top_position_ratio),
    ):
        for i in range(HOURS):
            age = HOURS - 1 - i
            # Positioning drifts toward the profile's extreme during the last two days.
            lean = 1 + (0.08 if level > 1 else -0.08) * max(0.0, 1 - age / 48)
            series.append(round(max(0.3, _noise(rng, level * lean, 0.04)), 4))
    for i in range(HOURS):
        total = m.contracts[i] * p.ct_val * m.close[i] * 6  # taker volume of all OKX accounts in USD
        buy = total * _noise(rng, p.taker_buy_share, 0.03)
        m.taker_buy.append(round(buy, 2))
        m.taker_sell.append(round(total - buy, 2))
    for i in range(HOURS):
        ret = m.close[i] / m.open[i] - 1.0
        total = p.liq_usd_per_hour * (0.3 + rng.random()) * (1 + 60 * abs(ret))
        share = p.long_liq_share + (0.15 if ret < 0 else -0.15) * min(1.0, abs(ret) * 100)
        share = min(0.95, max(0.05, share))
        m.long_liq.append(round(total * share, 5))
        m.short_liq.append(round(total * (1 - share), 5))
    for i in range(HOURS):
        age = HOURS - 1 - i
        lean = 1 + 0.3 * max(0.0, 1 - age / 48)
        m.funding_hourly.append(p.funding * lean + rng.gauss(0.0, abs(p.funding) * 0.25))
    # Settlements at 00:00, 08:00, 16:00 UTC; the newest is the last one at or before END_MS.
    last_settle = END_MS - END_MS % (8 * HOUR_MS)
    m.funding_ts = [last_settle - (FUNDING_ROWS - 1 - k) * 8 * HOUR_MS for k in range(FUNDING_ROWS)]
    m.funding = [p.funding * (0.8 + 0.4 * rng.random()) for _ in m.funding_ts]
    return m


def fear_greed_days(days: int = 60) -> list[tuple[int, int]]:
    """(timestamp s at 00:00 UTC, value) oldest first, sliding into Extreme Fear (24 today)."""
    rng = random.Random(7)
    last_day = END_MS // 1000 - (END_MS // 1000) % 86_400
    out: list[tuple[int, int]] = []
    for k in range(days):
        age = days - 1 - k
        base = 24 + 38 * min(1.0, age / 30)
        value = 24 if age == 0 else int(max(5, min(95, round(base + rng.gauss(0, 4)))))
        out.append((last_day - age * 86_400, value))
    return out


def classify(value: int) -> str:
    if value < 25:
        return "Extreme Fear"
    if value < 47:
        return "Fear"
    if value < 55:
        return "Neutral"
    if value < 76:
        return "Greed"
    return "Extreme Greed"


def fmt(x: float, dp: int) -> str:
    return f"{x:.{dp}f}"
