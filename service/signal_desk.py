"""The domain behind SignalService: gather provider data concurrently, score it, explain it.

Degrade, don't fail: a factor whose sources all failed is reported missing with the reason, and
only when no factor has data does the signal fail (UNAVAILABLE naming each provider's failure, or
NOT_FOUND when every provider says the coin does not exist).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptosignals.v1 import signal_pb2

from providers.cache import UpstreamCache, stale_sources
from providers.deadline import caller_is_hurried
from providers.errors import ErrorKind, ProviderError
from providers.http import ProviderHttp
from scoring import FACTOR_NAMES, Missing, NoDataError, ScoringConfig, SignalInputs, score_signal
from service.coin_universe import CoinUniverse
from service.coinglass_factors import coinglass_market
from service.errors import unknown_coin_message
from service.factor_sources import Clients, FactorSource, okx_open_interest, okx_ticker, ordered_sources
from service.fetch_scope import FetchScope
from service.market_snapshot import build_market_snapshot, probe_premium_endpoints
from service.signal_mapping import signal_message, timestamp

# Factors read from the coin's own market; fear & greed is one reading for the whole market.
COIN_FACTORS = tuple(name for name in FACTOR_NAMES if name != "fear_greed")


class SignalUnavailableError(Exception):
    """No factor had data: every source of every factor failed."""

    def __init__(self, symbol: str, reasons: Mapping[str, str], not_found: bool) -> None:
        self.not_found = not_found
        if not_found:
            message = unknown_coin_message(symbol)
        else:
            message = "no market data available: " + "; ".join(f"{k}: {v}" for k, v in reasons.items())
        super().__init__(message)


async def _settle(awaitable: Awaitable[Any]) -> Any:
    """The result, or the ProviderError it raised (as a value)."""
    try:
        return await awaitable
    except ProviderError as error:
        return error


class SignalDesk:
    def __init__(
        self,
        clients: Clients,
        http_by_provider: Mapping[str, ProviderHttp | None],
        config: ScoringConfig,
        configured: Mapping[str, bool],
        source_order: Sequence[str] = ("coinglass", "okx"),
        signal_cache_seconds: float = 0.0,
        universe: CoinUniverse | None = None,
    ) -> None:
        self.universe = universe or CoinUniverse(None)
        self._signal_ttl = signal_cache_seconds
        self._memo = UpstreamCache(max_stale=0)
        self._sources: dict[str, tuple[FactorSource, ...]] = ordered_sources(source_order)
        self._clients = clients
        self._http = http_by_provider
        self._config = config
        self._configured = configured

    async def signal(self, symbol: str, debug: bool) -> signal_pb2.Signal:
        """The signal, computed at most once per ``signal_cache_seconds`` per (symbol, debug).

        Upstream data is fresh for 5 s at best, so recomputing the same signal for every request
        only burns CPU; concurrent identical requests also share one computation.
        """
        # Coins refused before this point cost nothing (service/errors.py coin_or_abort); a coin that
        # turns out unknown here is remembered, so asking again costs nothing either.
        try:
            return await self._signal(symbol, debug)
        except SignalUnavailableError as exc:
            if exc.not_found:
                self.universe.remember_unknown(symbol)
            raise

    async def _signal(self, symbol: str, debug: bool) -> signal_pb2.Signal:
        if self._signal_ttl <= 0:
            return await self._compute(symbol, debug)
        key = ("signal", symbol, debug)
        if caller_is_hurried():
            # A caller with a tighter deadline than ours computes its own (possibly degraded) signal
            # and does not share it: the others would get its missing factors.
            fresh: signal_pb2.Signal | None = await self._memo.peek(key)
            return fresh if fresh is not None else await self._compute(symbol, debug)
        signal: signal_pb2.Signal = await self._memo.get(
            key, self._signal_ttl, lambda: self._compute(symbol, debug), "signal:/signals"
        )
        return signal

    async def _compute(self, symbol: str, debug: bool) -> signal_pb2.Signal:
        scope = FetchScope()
        stale: set[str] = set()
        stale_sources.set(stale)  # tasks created below share this set through their copied context
        try:
            jobs = {
                (factor, index): asyncio.ensure_future(_settle(source.fetch(self._clients, scope, symbol)))
                for factor, sources in self._sources.items()
                for index, source in enumerate(sources)
            }
            headline_jobs = {
                "ticker": asyncio.ensure_future(_settle(okx_ticker(self._clients, scope, symbol))),
                "okx_oi": asyncio.ensure_future(_settle(okx_open_interest(self._clients, scope, symbol))),
                # Shared with the Coinglass factors through the scope: one call, fetched concurrently.
                "cg_market": asyncio.ensure_future(_settle(coinglass_market(self._clients, scope, symbol))),
            }
            await asyncio.gather(*jobs.values(), *headline_jobs.values())
        finally:
            scope.cancel()
        chosen: dict[str, Any] = {}
        fallback_reasons: dict[str, str] = {}
        missing_reasons: dict[str, str] = {}
        all_not_found = True
        for factor, sources in self._sources.items():
            failures: list[ProviderError] = []
            for index, _source in enumerate(sources):
                result = jobs[(factor, index)].result()
                if isinstance(result, ProviderError):
                    failures.append(result)
                    continue
                chosen[factor] = result
                break
            usable = [f for f in failures if f.kind is not ErrorKind.NOT_CONFIGURED]
            all_not_found &= all(f.kind is ErrorKind.NOT_FOUND for f in usable)
            if factor in chosen:
                if failures:
                    fallback_reasons[factor] = "; ".join(f.reason for f in failures)
            else:
                missing_reasons[factor] = "; ".join(f.reason for f in failures) or "no source"
        if not any(factor in chosen for factor in COIN_FACTORS):
            # Fear & greed is market-wide: on its own it says nothing about this coin.
            raise SignalUnavailableError(symbol, missing_reasons, all_not_found)
        inputs = SignalInputs(
            **{name: chosen.get(name, Missing(missing_reasons.get(name, "no source"))) for name in FACTOR_NAMES}
        )
        try:
            scored = score_signal(inputs, self._config)
        except NoDataError:
            raise SignalUnavailableError(symbol, missing_reasons, all_not_found) from None
        ticker = headline_jobs["ticker"].result()
        okx_oi = headline_jobs["okx_oi"].result()
        funding = chosen.get("funding_rate")
        social = chosen.get("social")
        price = None if isinstance(ticker, ProviderError) else ticker.last
        if price is None:
            # Only when OKX's ticker failed: CoinAPI's quota is paid for.
            rate = await _settle(self._clients.coinapi.exchange_rate(symbol, "USD"))
            price = None if isinstance(rate, ProviderError) else rate.rate
        headline = {
            "price": price,
            "funding_rate": funding.rate_pct if funding is not None else None,
            "open_interest": _open_interest_usd(headline_jobs["cg_market"].result(), okx_oi),
            "social_score": social.galaxy_score if social is not None else None,
        }
        return signal_message(
            symbol,
            scored,
            computed_at=datetime.now(UTC),
            headline=headline,
            fallback_reasons=fallback_reasons,
            stale_endpoints={source.split(":", 1)[1] for source in stale},
            config=self._config,
            debug=debug,
        )

    async def aclose(self) -> None:
        """Stop the coin list's refresh and any signal computation nobody waits for (shutdown)."""
        await self.universe.aclose()
        await self._memo.aclose()

    async def market(self, symbol: str) -> signal_pb2.MarketSnapshot:
        return await build_market_snapshot(self._clients, symbol, self._configured)

    async def probe_premium(self, symbol: str) -> signal_pb2.PremiumProbeReport:
        return await probe_premium_endpoints(self._http.get("coinglass"), symbol, self._clients.reference_exchange)

    def provider_health(self) -> list[signal_pb2.ProviderHealth]:
        report = []
        for provider, configured in self._configured.items():
            entry = signal_pb2.ProviderHealth(provider=provider, configured=configured)
            http = self._http.get(provider)
            if http is not None:
                health = http.health
                if health.last_success is not None:
                    entry.last_success.CopyFrom(timestamp(health.last_success))
                if health.last_error_time is not None:
                    entry.last_error_time.CopyFrom(timestamp(health.last_error_time))
                entry.last_error_kind = health.last_error_kind
            elif not configured:
                entry.last_error_kind = ErrorKind.NOT_CONFIGURED.value
            report.append(entry)
        return report


def _open_interest_usd(coinglass_market: Any, okx_oi: Any) -> float | None:
    """All-exchange OI from Coinglass when available, else OKX's own."""
    if not isinstance(coinglass_market, ProviderError):
        return float(coinglass_market.open_interest_usd)
    return None if isinstance(okx_oi, ProviderError) else float(okx_oi.oi_usd)
