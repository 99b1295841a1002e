"""Cache-Control for answers an HTTP cache or CDN in front may reuse: how long each stays fresh.

The freshness of an answer is that of the data behind it: a signal is recomputed after
SIGNAL_CACHE_SECONDS, market data after its shortest upstream TTL (the ticker's), each Coinglass
answer after its endpoint's TTL (``TTLS`` in providers/coinglass_api.py), all scaled by
CACHE_TTL_SCALE. ``private`` when client keys are on (a shared cache must not hand one client's
answer to another), ``public`` otherwise.

Envoy adds the headers (a Lua filter in envoy/envoy.yaml.template): Cache-Control by REST path on a
200, and an ETag hashed from the JSON body, answering a matching ``If-None-Match`` with 304. Kept
out of the server on purpose: gRPC sends response headers with the answer in one batch unless a
handler sends them itself, and that extra batch per call cost a fifth of the hot path.
"""

from __future__ import annotations

import math

from service.settings import Settings

SIGNAL = "/cryptosignals.v1.SignalService/"
COINGLASS = "/cryptosignals.v1.CoinglassService/"

# Seconds each answer's data stays fresh upstream, before CACHE_TTL_SCALE.
FRESH_SECONDS = {
    SIGNAL + "GetMarket": 5.0,  # OKX ticker, CoinAPI spot: 5 s
    SIGNAL + "GetMarketStructure": 30.0,  # candles: OKX 30 s, Coinglass price history 60 s
    SIGNAL + "GetCorrelation": 30.0,
    COINGLASS + "ListMarkets": 30.0,
    COINGLASS + "GetCoinMarket": 30.0,
    COINGLASS + "GetPerpetualMarkets": 30.0,
    COINGLASS + "GetLiquidations": 30.0,
    COINGLASS + "GetLiquidationHeatmap": 300.0,
    COINGLASS + "GetLongShortRatio": 300.0,
    COINGLASS + "GetFundingRate": 60.0,
    COINGLASS + "GetOpenInterest": 60.0,
    COINGLASS + "ListSupportedCoins": 3600.0,
    COINGLASS + "ListExchanges": 3600.0,
    COINGLASS + "GetDashboard": 30.0,  # its shortest part
}


# REST path (no query) -> the RPC answering it; Lua patterns, in order (the first match wins).
PATHS = (
    ("^/signals/[^/]+$", SIGNAL + "GetSignal"),
    ("^/signals/[^/]+/smc$", SIGNAL + "GetMarketStructure"),
    ("^/market/correlation$", SIGNAL + "GetCorrelation"),
    ("^/market/[^/]+$", SIGNAL + "GetMarket"),
    ("^/coinglass/markets$", COINGLASS + "ListMarkets"),
    ("^/coinglass/markets/[^/]+$", COINGLASS + "GetCoinMarket"),
    ("^/coinglass/perpetual%-market/[^/]+$", COINGLASS + "GetPerpetualMarkets"),
    ("^/coinglass/liquidations/[^/]+/heatmap$", COINGLASS + "GetLiquidationHeatmap"),
    ("^/coinglass/liquidations/[^/]+$", COINGLASS + "GetLiquidations"),
    ("^/coinglass/long%-short%-ratio/[^/]+$", COINGLASS + "GetLongShortRatio"),
    ("^/coinglass/funding%-rate/[^/]+$", COINGLASS + "GetFundingRate"),
    ("^/coinglass/open%-interest/[^/]+$", COINGLASS + "GetOpenInterest"),
    ("^/coinglass/supported%-coins$", COINGLASS + "ListSupportedCoins"),
    ("^/coinglass/exchanges$", COINGLASS + "ListExchanges"),
    ("^/coinglass/dashboard/[^/]+$", COINGLASS + "GetDashboard"),
)


def path_rules(settings: Settings, *, keyed: bool | None = None) -> tuple[tuple[str, str], ...]:
    """(Lua pattern of a REST path, Cache-Control of its 200 answers), for Envoy. ``keyed``: whether
    answers need a client key (default: whether ``settings`` has SIGNAL_API_KEYS); a deployment whose
    keys arrive later, from a secret, says so here."""
    table = cache_control_table(settings, keyed=keyed)
    return tuple((pattern, table[method]) for pattern, method in PATHS)


def cache_control_table(settings: Settings, *, keyed: bool | None = None) -> dict[str, str]:
    """Method -> Cache-Control value of its successful answers (``keyed``: as in ``path_rules``)."""
    if keyed is None:
        keyed = bool(settings.client_api_keys)
    scope = "private" if keyed else "public"
    seconds = {name: fresh * settings.cache_ttl_scale for name, fresh in FRESH_SECONDS.items()}
    seconds[SIGNAL + "GetSignal"] = settings.signal_cache_seconds
    table: dict[str, str] = {}
    for method, fresh in seconds.items():
        max_age = math.floor(fresh) if settings.cache_enabled else 0
        # Fresh for under a second (or not cached here): a cache must ask again, with the ETag.
        table[method] = f"{scope}, max-age={max_age}" if max_age > 0 else f"{scope}, no-cache"
    return table
