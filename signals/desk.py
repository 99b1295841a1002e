"""The live clock of the signal domain: gather provider data concurrently, score it, explain it.

Degrade, don't fail: a factor whose sources all failed is reported missing with the reason, and
only when no factor has data does the signal fail (UNAVAILABLE naming each provider's failure, or
NOT_FOUND when every provider says the coin does not exist).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.cache import UpstreamCache, stale_sources
from providers.clients import Clients
from providers.deadline import caller_is_hurried
from providers.errors import ErrorKind, ProviderError
from scoring import (
    FACTOR_NAMES,
    Missing,
    NoDataError,
    ScoredSignal,
    ScoringConfig,
    ScoringConfigError,
    SignalInputs,
    score_signal,
)
from scoring.engine import stale_reason
from signals.coin_universe import CoinUniverse
from signals.coinglass_sources import coinglass_market
from signals.errors import SignalUnavailableError, UnknownProfileError
from signals.fetch_scope import FetchScope
from signals.sources import FactorSource, okx_open_interest, okx_ticker, ordered_sources

# What the live sources can read: momentum over these horizons (the coins-markets snapshot, OKX 1h
# candles) and open interest over 24 h. A profile reading anything else could be replayed but not
# served live the same way: the desk refuses it at start-up rather than serve a different signal.
LIVE_MOMENTUM_HORIZONS = frozenset({"1h", "4h", "24h"})
LIVE_LOOKBACK_HOURS = 24


def check_live(config: ScoringConfig) -> None:
    """ScoringConfigError when the live sources cannot read what ``config``'s profile reads."""
    unreadable = sorted(set(config.momentum_horizons) - LIVE_MOMENTUM_HORIZONS)
    if unreadable:
        raise ScoringConfigError(
            f"scoring profile {config.profile!r}: momentum horizons {', '.join(unreadable)} cannot be read live "
            f"(live sources give {', '.join(sorted(LIVE_MOMENTUM_HORIZONS))})"
        )
    if config.lookback("open_interest") != LIVE_LOOKBACK_HOURS:
        raise ScoringConfigError(
            f"scoring profile {config.profile!r}: an open interest lookback of {config.lookback('open_interest')}h "
            "cannot be read live (live sources give 24h)"
        )


# Factors read from the coin's own market; fear & greed is one reading for the whole market.
COIN_FACTORS = tuple(name for name in FACTOR_NAMES if name != "fear_greed")


@dataclass(frozen=True, slots=True)
class LiveSignal:
    """One computed signal with its headline numbers, as the desk serves it (service/ maps it to proto)."""

    symbol: str
    scored: ScoredSignal
    computed_at: datetime
    price: float | None  # USD
    funding_rate_pct: float | None  # percent per 8h, the funding factor's reading
    open_interest_usd: float | None
    social_score: float | None  # LunarCrush galaxy score, 0-100
    fallback_reasons: Mapping[str, str]  # factor -> why its preferred source was skipped
    stale_endpoints: AbstractSet[str]  # upstream endpoints served past their TTL
    profile: str = "seed"  # the scoring profile that scored it


async def _settle(awaitable: Awaitable[Any]) -> Any:
    """The result, or the ProviderError it raised (as a value)."""
    try:
        return await awaitable
    except ProviderError as error:
        return error


def _never_fresh() -> None:
    """The fresh reader when signals are not memoised in this process (SIGNAL_CACHE_SECONDS=0 or a
    shared cache): every request asks ``signal``."""
    return None


class SignalDesk:
    def __init__(
        self,
        clients: Clients,
        config: ScoringConfig,
        source_order: Sequence[str] = ("coinglass", "okx"),
        signal_cache_seconds: float = 0.0,
        universe: CoinUniverse | None = None,
        profiles: Mapping[str, ScoringConfig] | None = None,
    ) -> None:
        """``config``: the default profile's; ``profiles``: every profile servable by name (the same
        provider data, scored by the same engine under each profile's config)."""
        self.universe = universe or CoinUniverse(None)
        self._signal_ttl = signal_cache_seconds
        self._memo = UpstreamCache(max_stale=0)
        self._sources: dict[str, tuple[FactorSource, ...]] = ordered_sources(source_order)
        self._clients = clients
        self.config = config
        self.profiles: dict[str, ScoringConfig] = {**(profiles or {}), config.profile: config}
        for served in self.profiles.values():
            check_live(served)

    def config_of(self, profile: str | None) -> ScoringConfig:
        """The config of a profile by name (None or "": the default); UnknownProfileError if none."""
        if not profile:
            return self.config
        config = self.profiles.get(profile)
        if config is None:
            raise UnknownProfileError(profile, tuple(self.profiles))
        return config

    def _key(self, symbol: str, config: ScoringConfig) -> tuple[str, ...]:
        # The default profile keeps the memo key it always had.
        return ("signal", symbol) if config is self.config else ("signal", symbol, config.profile)

    async def signal(self, symbol: str, profile: str | None = None) -> LiveSignal:
        """The signal, computed at most once per ``signal_cache_seconds`` per symbol.

        Upstream data is fresh for 5 s at best, so recomputing the same signal for every request
        only burns CPU; concurrent identical requests also share one computation.
        """
        # Coins refused before this point cost nothing (service/rpc/status.py coin_or_abort); a coin that
        # turns out unknown here is remembered, so asking again costs nothing either.
        config = self.config_of(profile)
        try:
            return await self._signal(symbol, config)
        except SignalUnavailableError as exc:
            if exc.not_found:
                self.universe.remember_unknown(symbol)
            raise

    def fresh_reader(self, symbol: str, profile: str | None = None) -> Callable[[], LiveSignal | None]:
        """A function answering the memoised signal of ``symbol`` while it is fresh, without
        awaiting, else None (then ask ``signal``): the warm request path keeps one per coin and
        calls it on every request."""
        key = self._key(symbol, self.config_of(profile))
        read = self._memo.fresh_reader(key, "signal") if self._signal_ttl > 0 else None
        return read if read is not None else _never_fresh

    async def _signal(self, symbol: str, config: ScoringConfig) -> LiveSignal:
        if self._signal_ttl <= 0:
            return await self._compute(symbol, config)
        key = self._key(symbol, config)
        if caller_is_hurried():
            # A caller with a tighter deadline than ours computes its own (possibly degraded) signal
            # and does not share it: the others would get its missing factors.
            fresh: LiveSignal | None = await self._memo.peek(key)
            return fresh if fresh is not None else await self._compute(symbol, config)
        signal: LiveSignal = await self._memo.get(
            key, self._signal_ttl, lambda: self._compute(symbol, config), "signal:/signals"
        )
        return signal

    async def _compute(self, symbol: str, config: ScoringConfig) -> LiveSignal:
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
        computed_at = datetime.now(UTC)
        max_age = config.max_age
        for factor, sources in self._sources.items():
            failures: list[ProviderError] = []
            too_old: list[Any] = []  # answers older than the factor's max age: a later source may be fresh
            # Whether the coin is unknown is judged, as always, by the sources before the first answer.
            before_answer: list[ProviderError] | None = None
            for index, _source in enumerate(sources):
                result = jobs[(factor, index)].result()
                if isinstance(result, ProviderError):
                    failures.append(result)
                    continue
                if before_answer is None:
                    before_answer = list(failures)
                as_of, limit = result.provenance.as_of, max_age.get(factor)
                if limit is not None and as_of is not None and computed_at - as_of > limit:
                    too_old.append(result)
                    continue
                chosen[factor] = result
                break
            judged = failures if before_answer is None else before_answer
            usable = [f for f in judged if f.kind is not ErrorKind.NOT_CONFIGURED]
            all_not_found &= all(f.kind is ErrorKind.NOT_FOUND for f in usable)
            if factor in chosen:
                passed_over = [f.reason for f in failures] + [
                    f"{old.provenance.source}: {stale_reason(old.provenance.as_of, max_age[factor])}" for old in too_old
                ]
                if passed_over:
                    fallback_reasons[factor] = "; ".join(passed_over)
            elif too_old:
                # Every answer was too old: the preferred one goes to the scorer, which drops it as
                # stale and says so (and debug output shows it).
                chosen[factor] = too_old[0]
            else:
                missing_reasons[factor] = "; ".join(f.reason for f in failures) or "no source"
        if not any(factor in chosen for factor in COIN_FACTORS):
            # Fear & greed is market-wide: on its own it says nothing about this coin.
            raise SignalUnavailableError(symbol, missing_reasons, all_not_found)
        inputs = SignalInputs(
            **{name: chosen.get(name, Missing(missing_reasons.get(name, "no source"))) for name in FACTOR_NAMES}
        )
        try:
            # The scorer drops factors whose data is older than their max age at the decision time.
            scored = score_signal(inputs, config, now=computed_at)
        except NoDataError as exc:
            if not any(name in COIN_FACTORS and reason.startswith("stale:") for name, reason in exc.missing):
                raise SignalUnavailableError(symbol, missing_reasons, all_not_found) from None
            # Every coin factor with data was too old: say so, not "no source".
            raise SignalUnavailableError(symbol, dict(exc.missing), not_found=False) from None
        ticker = headline_jobs["ticker"].result()
        okx_oi = headline_jobs["okx_oi"].result()
        funding = chosen.get("funding_rate")
        social = chosen.get("social")
        price = None if isinstance(ticker, ProviderError) else ticker.last
        if price is None:
            # Only when OKX's ticker failed: CoinAPI's quota is paid for.
            rate = await _settle(self._clients.coinapi.exchange_rate(symbol, "USD"))
            price = None if isinstance(rate, ProviderError) else rate.rate
        return LiveSignal(
            symbol,
            scored,
            computed_at,
            price,
            funding.rate_pct if funding is not None else None,
            _open_interest_usd(headline_jobs["cg_market"].result(), okx_oi),
            social.galaxy_score if social is not None else None,
            fallback_reasons,
            frozenset(source.split(":", 1)[1] for source in stale),
            config.profile,
        )

    async def aclose(self) -> None:
        """Stop the coin list's refresh and any signal computation nobody waits for (shutdown)."""
        await self.universe.aclose()
        await self._memo.aclose()


def _open_interest_usd(coinglass_market: Any, okx_oi: Any) -> float | None:
    """All-exchange OI from Coinglass when available, else OKX's own."""
    if not isinstance(coinglass_market, ProviderError):
        return float(coinglass_market.open_interest_usd)
    return None if isinstance(okx_oi, ProviderError) else float(okx_oi.oi_usd)
