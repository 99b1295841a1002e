"""Cache-Control for answers an HTTP cache or CDN in front may reuse: how long each stays fresh.

The freshness of an answer is that of the data behind it: a signal is recomputed after
SIGNAL_CACHE_SECONDS, market data after its shortest upstream TTL (the ticker's), each Coinglass
answer after its endpoint's TTL (``TTLS`` in providers/coinglass_api.py), all scaled by
CACHE_TTL_SCALE. ``private`` when client keys are on (a shared cache must not hand one client's
answer to another), ``public`` otherwise. Every such answer carries an ETag too (the interceptor
hashes it); Envoy answers a matching ``If-None-Match`` with 304.
"""

from __future__ import annotations

import math

from service.settings import Settings

SIGNAL = "/cryptosignals.v1.SignalService/"
COINGLASS = "/cryptosignals.v1.CoinglassService/"

# Seconds each answer's data stays fresh upstream, before CACHE_TTL_SCALE.
FRESH_SECONDS = {
    SIGNAL + "GetMarket": 5.0,  # OKX ticker, CoinAPI spot: 5 s
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


def cache_control_table(settings: Settings) -> dict[str, str]:
    """Method -> Cache-Control value of its successful answers."""
    scope = "private" if settings.client_api_keys else "public"
    seconds = {name: fresh * settings.cache_ttl_scale for name, fresh in FRESH_SECONDS.items()}
    seconds[SIGNAL + "GetSignal"] = settings.signal_cache_seconds
    table: dict[str, str] = {}
    for method, fresh in seconds.items():
        max_age = math.floor(fresh) if settings.cache_enabled else 0
        # Fresh for under a second (or not cached here): a cache must ask again, with the ETag.
        table[method] = f"{scope}, max-age={max_age}" if max_age > 0 else f"{scope}, no-cache"
    return table
