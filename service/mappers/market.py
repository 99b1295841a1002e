"""GET /market/{symbol} and GET /debug/premium/{symbol}: raw data per provider, each with its status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cryptosignals.v1 import signal_pb2

from providers.clients import Clients
from providers.coinglass import classify_envelope
from providers.errors import ErrorKind, ProviderError
from providers.http import ProviderHttp
from service.mappers.signal import funding_fraction, timestamp

# Coinglass endpoints that need a paid plan (Startup and above), probed with typical parameters.
PREMIUM_ENDPOINTS: tuple[tuple[str, Callable[[str, str], dict[str, str]]], ...] = (
    ("/api/futures/coins-markets", lambda coin, ex: {"per_page": "10"}),
    ("/api/futures/liquidation/coin-list", lambda coin, ex: {"exchange": ex}),
    (
        "/api/futures/liquidation/order",
        lambda coin, ex: {"exchange": ex, "symbol": coin, "min_liquidation_amount": "10000"},
    ),
    ("/api/futures/liquidation/aggregated-map", lambda coin, ex: {"symbol": coin, "range": "1d"}),
    ("/api/futures/liquidation/aggregated-heatmap/model1", lambda coin, ex: {"symbol": coin, "range": "3d"}),
)


# Probes are cached under their own names (the probe's outcome, not the endpoint's data), for the
# TTL Coinglass's table gives "probe:" (providers/coinglass_api.py).
PROBE_PREFIX = "probe:"


async def _timed(call: Awaitable[Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    try:
        result = await call
    except ProviderError as error:
        result = error
    return result, round((time.perf_counter() - started) * 1000, 1)


def _status(provider: str, result: Any, latency_ms: float) -> signal_pb2.SourceStatus:
    if isinstance(result, ProviderError):
        status = "not_configured" if result.kind is ErrorKind.NOT_CONFIGURED else "error"
        return signal_pb2.SourceStatus(
            provider=provider,
            status=status,
            error_kind=result.kind.value,
            message=result.message,
            latency_ms=latency_ms,
        )
    return signal_pb2.SourceStatus(provider=provider, status="ok", latency_ms=latency_ms)


async def _okx(clients: Clients, coin: str) -> signal_pb2.OkxMarket:
    okx = clients.okx
    ticker, funding, oi, ratios, top, candles = await asyncio.gather(
        okx.ticker(coin),
        okx.funding_rate(coin),
        okx.open_interest(coin),
        okx.long_short_account_ratio(coin, limit=1),
        okx.top_trader_position_ratio(coin, limit=1),
        okx.candles(coin, bar="1H", limit=24),
    )
    market = signal_pb2.OkxMarket(
        instrument_id=ticker.instrument,
        last_price=ticker.last,
        bid_price=ticker.bid,
        ask_price=ticker.ask,
        open_24h=ticker.open_24h,
        high_24h=ticker.high_24h,
        low_24h=ticker.low_24h,
        volume_24h_coin=ticker.volume_24h_coin,
        funding_rate=funding_fraction(funding.rate_pct),
        open_interest_usd=oi.oi_usd,
        open_interest_coin=oi.oi_coin,
        long_short_account_ratio=ratios[0].ratio,
        top_trader_position_ratio=top[0].ratio,
        candles=[
            signal_pb2.Candle(
                time=timestamp(c.time),
                open=c.open,
                high=c.high,
                low=c.low,
                close=c.close,
                volume_usd=c.volume_usd,
                confirmed=c.confirmed,
            )
            for c in candles
        ],
    )
    if funding.next_funding_time is not None:
        market.next_funding_time.CopyFrom(timestamp(funding.next_funding_time))
    return market


async def _coinglass(clients: Clients, coin: str) -> signal_pb2.CoinglassSummary:
    pair = f"{coin}USDT"
    market, liquidations, ratios = await asyncio.gather(
        clients.coinglass.coin_market(coin),
        clients.coinglass.liquidation_aggregated_history(coin, clients.exchanges, "1h", 24),
        clients.coinglass.global_long_short_account_ratio(pair, clients.reference_exchange, "1h", 1),
    )
    return signal_pb2.CoinglassSummary(
        price=market.current_price,
        open_interest_usd=market.open_interest_usd,
        funding_rate_oi_weighted=market.avg_funding_rate_by_oi,
        long_liquidation_usd_24h=sum(b.long_usd for b in liquidations),
        short_liquidation_usd_24h=sum(b.short_usd for b in liquidations),
        long_short_account_ratio=ratios[-1].ratio,
    )


async def _coinapi(clients: Clients, coin: str) -> signal_pb2.SpotPrice:
    rate = await clients.coinapi.exchange_rate(coin, "USD")
    return signal_pb2.SpotPrice(price_usd=rate.rate, time=timestamp(rate.time))


async def _lunarcrush(clients: Clients, coin: str) -> signal_pb2.SocialMetrics:
    social = await clients.lunarcrush.social(coin)
    metrics = signal_pb2.SocialMetrics(fields_present=list(social.fields_present))
    for field in ("galaxy_score", "alt_rank", "sentiment_pct", "interactions_24h", "posts_24h", "contributors_24h"):
        value = getattr(social, field)
        if value is not None:
            setattr(metrics, field, value)
    return metrics


async def _fear_greed(clients: Clients, coin: str) -> signal_pb2.FearGreed:
    reading = await clients.feargreed.latest()
    return signal_pb2.FearGreed(
        value=reading.value,
        classification=reading.classification,
        time=timestamp(reading.time),
        source="alternative.me",
    )


async def build_market_snapshot(
    clients: Clients, coin: str, configured: Mapping[str, bool]
) -> signal_pb2.MarketSnapshot:
    parts = {
        "okx": _okx(clients, coin),
        "coinglass": _coinglass(clients, coin),
        "coinapi": _coinapi(clients, coin),
        "lunarcrush": _lunarcrush(clients, coin),
        "feargreed": _fear_greed(clients, coin),
    }
    results = await asyncio.gather(*(_timed(call) for call in parts.values()))
    snapshot = signal_pb2.MarketSnapshot(symbol=coin)
    snapshot.timestamp.GetCurrentTime()
    field_by_provider = {
        "okx": "okx",
        "coinglass": "coinglass",
        "coinapi": "coinapi",
        "lunarcrush": "lunarcrush",
        "feargreed": "fear_greed",
    }
    for provider, (result, latency) in zip(parts, results, strict=True):
        snapshot.sources.append(_status(provider, result, latency))
        if not isinstance(result, ProviderError):
            getattr(snapshot, field_by_provider[provider]).CopyFrom(result)
    if all(s.status != "ok" for s in snapshot.sources):
        raise next(r for r, _ in results if isinstance(r, ProviderError))
    return snapshot


async def probe_premium_endpoints(http: ProviderHttp | None, coin: str, exchange: str) -> signal_pb2.PremiumProbeReport:
    """What the Coinglass plan answers on each premium endpoint. Each probe goes through the HTTP
    layer's cache like any call (the "probe:" TTL): asking again costs no upstream request."""
    report = signal_pb2.PremiumProbeReport(symbol=coin, configured=http is not None)
    if http is None:
        return report

    async def attempt(endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        """One real call, as a plain outcome (cacheable, an error included: it is the answer)."""
        started = time.perf_counter()
        try:
            status, body = await http.get_json(endpoint, params)
        except ProviderError as error:
            return {
                "status": "error",
                "http_status": error.http_status or 0,
                "error_kind": error.kind.value,
                "message": error.message,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        latency = round((time.perf_counter() - started) * 1000, 1)
        code = str(body.get("code", "")) if isinstance(body, dict) else ""
        if code == "0":
            return {"status": "ok", "http_status": status, "provider_code": code, "latency_ms": latency}
        kind, message = classify_envelope(body)
        return {
            "status": "error",
            "http_status": status,
            "provider_code": code,
            "error_kind": kind.value,
            "message": http.redact(message),
            "latency_ms": latency,
        }

    async def probe(endpoint: str, params: dict[str, str]) -> signal_pb2.EndpointProbe:
        outcome = await http.cached(PROBE_PREFIX + endpoint, params, lambda: attempt(endpoint, params))
        return signal_pb2.EndpointProbe(endpoint=endpoint, **outcome)

    report.endpoints.extend(
        await asyncio.gather(*(probe(e, params(coin, exchange)) for e, params in PREMIUM_ENDPOINTS))
    )
    return report


def provider_health(
    http_by_provider: Mapping[str, ProviderHttp | None], configured: Mapping[str, bool]
) -> list[signal_pb2.ProviderHealth]:
    """Per provider: configured, last success, last error kind (GET /health)."""
    report = []
    for provider, is_configured in configured.items():
        entry = signal_pb2.ProviderHealth(provider=provider, configured=is_configured)
        http = http_by_provider.get(provider)
        if http is not None:
            health = http.health
            if health.last_success is not None:
                entry.last_success.CopyFrom(timestamp(health.last_success))
            if health.last_error_time is not None:
                entry.last_error_time.CopyFrom(timestamp(health.last_error_time))
            entry.last_error_kind = health.last_error_kind
        elif not is_configured:
            entry.last_error_kind = ErrorKind.NOT_CONFIGURED.value
        report.append(entry)
    return report
