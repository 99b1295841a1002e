"""Composition roots, one step per part: providers, the signal domain, the records, the background jobs.

``App.create`` runs every step for the server; a command builds only what it uses (the backtest
command builds the providers and a Backtester, nothing else: no database, no recorder, no alerts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from providers import coinapi, coinglass, feargreed, lunarcrush, okx
from providers.cache import UpstreamCache
from providers.cache_store import RedisStore
from providers.clients import Clients
from providers.coinapi import CoinApiClient
from providers.coinglass import CoinglassClient
from providers.feargreed import FearGreedClient
from providers.http import MAX_RETRY_AFTER_SECONDS, ProviderHttp
from providers.lunarcrush import LunarCrushClient
from providers.okx import OkxClient
from providers.ratelimit import UpstreamLimiter
from providers.redis_link import RedisLink
from providers.shared_limiter import SharedLimiter
from records.alerts import AlertStore
from records.archive import SignalArchive
from records.db import Database
from records.jobs.alert_delivery import AlertManager
from scoring import ScoringConfig
from scoring.config import PROFILES, load_profile
from service.edge.openapi import build_openapi
from service.generated import DESCRIPTOR_SET
from service.settings import Settings
from signals.backtester import Backtester
from signals.coin_universe import CoinUniverse
from signals.desk import LiveSignal, SignalDesk
from signals.hub import SignalHub


@dataclass
class Providers:
    """The provider clients over their HTTP layers, the upstream cache and budgets (in-process or Redis)."""

    clients: Clients
    http: dict[str, ProviderHttp | None]  # None: the provider's key is not set
    cache: UpstreamCache | None
    redis: RedisLink | None
    limiter: UpstreamLimiter  # the budgets, and each client's share of them (the guard reads it)

    @property
    def configured(self) -> dict[str, bool]:
        return {name: layer is not None for name, layer in self.http.items()}

    async def aclose(self) -> None:
        if self.cache is not None:
            await self.cache.aclose()  # first: a refresh must not reopen a closed session
        for layer in self.http.values():
            if layer is not None:
                await layer.aclose()
        if self.redis is not None:
            await self.redis.aclose()


async def build_providers(settings: Settings) -> Providers:
    cache, limiter, link = _cache_and_limiter(settings)
    scale = settings.cache_ttl_scale
    overrides = settings.cache_ttl_overrides
    ttls = {
        name: {**defaults, **overrides.get(name, {})}
        for name, defaults in (
            ("coinglass", coinglass.TTLS),
            ("okx", okx.TTLS),
            ("coinapi", coinapi.TTLS),
            ("lunarcrush", lunarcrush.TTLS),
            ("feargreed", feargreed.TTLS),
        )
    }

    def http(
        name: str, base_url: str, headers: dict[str, str] | None = None, secret: str | None = None, **kw: Any
    ) -> ProviderHttp:
        return ProviderHttp(
            name,
            base_url,
            headers=headers,
            secret=secret,
            timeout=settings.upstream_timeout_seconds,
            max_attempts=settings.upstream_max_attempts,
            cache=cache,
            limiter=limiter,
            ttls={prefix: ttl * scale for prefix, ttl in ttls[name].items()},
            default_ttl=60 * scale,
            negative_ttl=settings.negative_cache_seconds,
            **kw,
        )

    def key(value: Any) -> str | None:
        return value.get_secret_value() if value is not None else None

    cg_key, coinapi_key, lunar_key = (
        key(settings.coinglass_api_key),
        key(settings.coinapi_key),
        key(settings.lunarcrush_api_key),
    )
    layers: dict[str, ProviderHttp | None] = {
        "coinglass": http("coinglass", settings.coinglass_base_url, coinglass.auth_headers(cg_key), cg_key)
        if cg_key
        else None,
        "okx": http("okx", settings.okx_base_url),
        "coinapi": http(
            "coinapi",
            settings.coinapi_base_url,
            coinapi.auth_headers(coinapi_key),
            coinapi_key,
            status_kinds=coinapi.STATUS_KINDS,
        )
        if coinapi_key
        else None,
        "lunarcrush": http("lunarcrush", settings.lunarcrush_base_url, lunarcrush.auth_headers(lunar_key), lunar_key)
        if lunar_key
        else None,
        "feargreed": http("feargreed", settings.fear_greed_base_url),
    }
    okx_http, fg_http = layers["okx"], layers["feargreed"]
    assert okx_http is not None and fg_http is not None
    clients = Clients(
        okx=OkxClient(okx_http),
        coinglass=CoinglassClient(layers["coinglass"]),
        coinapi=CoinApiClient(layers["coinapi"]),
        lunarcrush=LunarCrushClient(layers["lunarcrush"]),
        feargreed=FearGreedClient(fg_http),
        reference_exchange=settings.coinglass_exchange,
        exchanges=settings.exchange_list,
    )
    return Providers(clients, layers, cache, link, limiter)


def build_backtester(
    providers: Providers,
    settings: Settings,
    scoring: ScoringConfig,
    profiles: Mapping[str, ScoringConfig] | None = None,
) -> Backtester:
    return Backtester(
        providers.clients,
        scoring,
        profiles=profiles,
        memo_seconds=60.0 if settings.cache_enabled else 0.0,
        max_running=settings.backtest_max_running,
        max_per_client=settings.backtest_max_per_client,
    )


def load_profiles(settings: Settings) -> dict[str, ScoringConfig]:
    """Every servable scoring profile: seed (SCORING_CONFIG overrides its keys, as it always has) and
    research (scoring/research.toml), scored by the same engine."""
    return {name: load_profile(name, settings.scoring_config) for name in PROFILES}


async def build_desk(
    providers: Providers,
    settings: Settings,
    scoring: ScoringConfig,
    profiles: Mapping[str, ScoringConfig] | None = None,
) -> SignalDesk:
    """The live clock of the signal domain, with the coin universe it refuses unknown coins from."""
    clients = providers.clients
    desk = SignalDesk(
        clients,
        scoring,
        settings.source_order.split(","),
        settings.signal_cache_seconds if settings.cache_enabled else 0.0,
        # Coinglass's list when keyed; else OKX's perpetual swaps (the keyless sources are OKX's):
        # either way a made-up symbol is refused before it costs an upstream call.
        CoinUniverse(
            clients.coinglass.supported_coins if providers.configured["coinglass"] else clients.okx.swap_coins
        ),
        profiles,
    )
    await desk.universe.start()
    return desk


async def build_records(
    providers: Providers, settings: Settings, desk: SignalDesk, scoring: ScoringConfig
) -> SignalArchive | None:
    """The signal history (storage and its recorder, outcome filler and pruning), when enabled.

    Never blocks start-up: the recorder migrates (and retries) in the background, and signals are
    served whatever the database does.
    """
    if not settings.history_enabled:
        return None
    archive = SignalArchive(
        Database(settings.history_database_url),
        desk,
        providers.clients,
        scoring,
        watchlist=settings.watchlist_coins,
        interval_seconds=settings.history_interval_seconds,
        retention_days=settings.history_retention_days,
        buffer_rows=settings.history_buffer_rows,
    )
    await archive.start()
    return archive


def build_hub(settings: Settings, desk: SignalDesk, profile: str | None = None) -> SignalHub:
    async def signal_of(symbol: str) -> LiveSignal:
        return await desk.signal(symbol, profile)

    return SignalHub(
        desk.signal if profile is None else signal_of,
        refresh_seconds=settings.watch_refresh_seconds,
        max_watchers=settings.watch_max_streams,
        max_per_client=settings.watch_max_per_client,
    )


async def build_alert_jobs(settings: Settings, archive: SignalArchive | None, hub: SignalHub) -> AlertManager | None:
    """Webhook alerts (the outbox and its delivery): they need the history database."""
    if archive is None:
        return None
    alerts = AlertManager(
        AlertStore(archive.database),
        hub,
        archive.recorder.ready,
        timeout_seconds=settings.alert_timeout_seconds,
        retry_base_seconds=settings.alert_retry_base_seconds,
        retry_hours=settings.alert_retry_hours,
        poll_seconds=settings.alert_poll_seconds,
        allow_private=settings.alert_allow_private_targets,
        allowed_ports=settings.alert_allowed_port_set,
    )
    await alerts.start()
    return alerts


def _cache_and_limiter(settings: Settings) -> tuple[UpstreamCache | None, UpstreamLimiter, RedisLink | None]:
    """In-process, or shared by every replica through Redis when REDIS_URL is set."""
    limits, wait, share = (
        settings.per_minute_limits,
        settings.rate_limit_max_wait_seconds,
        settings.client_upstream_share,
    )
    if settings.redis_url is None:
        cache = UpstreamCache(settings.cache_max_stale_seconds) if settings.cache_enabled else None
        return cache, UpstreamLimiter(limits, wait, client_share=share), None
    link = RedisLink(
        settings.redis_url.get_secret_value(),
        prefix=settings.redis_prefix,
        max_connections=settings.redis_max_connections,
        pool_timeout=settings.redis_pool_timeout_seconds,
    )
    # How long one replica may hold a key's lock while loading it: every attempt's budget wait and
    # upstream timeout, the waits between attempts, and its Redis calls inside the lock (the
    # negative-cache look and the write, each up to a pool wait and a socket timeout); the lock
    # must outlast the load, or another replica's waiter takes it and calls upstream again.
    attempts = settings.upstream_max_attempts
    redis_calls = 2 * (settings.redis_pool_timeout_seconds + link.timeout)
    per_attempt = wait + settings.upstream_timeout_seconds
    lock_seconds = per_attempt * attempts + MAX_RETRY_AFTER_SECONDS * (attempts - 1) + redis_calls + 1
    cache = (
        UpstreamCache(settings.cache_max_stale_seconds, store=RedisStore(link), lock_seconds=lock_seconds)
        if settings.cache_enabled
        else None
    )
    return cache, SharedLimiter(link, limits, wait, client_share=share), link


@dataclass
class App:
    """Everything the server runs: every step above."""

    settings: Settings
    providers: Providers
    desk: SignalDesk
    backtester: Backtester
    archive: SignalArchive | None
    hub: SignalHub
    scoring: ScoringConfig
    openapi_document: dict[str, Any]  # every operation (/openapi.json, the docs pages)
    action_document: dict[str, Any]  # what GPT Actions may call (/gpt/action-schema)
    alerts: AlertManager | None = None  # webhook alerts: need the history database
    # One hub per other profile streamed (profile=research on the stream); ``hub`` is the default's.
    profile_hubs: dict[str, SignalHub] = field(default_factory=dict)

    def hub_of(self, profile: str) -> SignalHub:
        return self.hub if not profile or profile == self.scoring.profile else self.profile_hubs[profile]

    @property
    def hubs(self) -> dict[str, SignalHub]:
        return {self.scoring.profile: self.hub, **self.profile_hubs}

    @property
    def clients(self) -> Clients:
        return self.providers.clients

    @property
    def http(self) -> dict[str, ProviderHttp | None]:
        return self.providers.http

    @property
    def cache(self) -> UpstreamCache | None:
        return self.providers.cache

    @property
    def redis(self) -> RedisLink | None:
        return self.providers.redis

    @property
    def coinglass(self) -> CoinglassClient:
        return self.clients.coinglass

    @classmethod
    async def create(cls, settings: Settings) -> App:
        providers = await build_providers(settings)
        profiles = load_profiles(settings)
        scoring = profiles[settings.scoring_profile]
        desk = await build_desk(providers, settings, scoring, profiles)
        descriptor, keyed = DESCRIPTOR_SET.read_bytes(), bool(settings.client_api_keys)
        document = build_openapi(descriptor, settings.base_url, require_auth=keyed)
        action_document = build_openapi(descriptor, settings.base_url, require_auth=keyed, gpt_actions=True)
        backtester = build_backtester(providers, settings, scoring, profiles)
        archive = await build_records(providers, settings, desk, scoring)
        hub = build_hub(settings, desk)
        others = {name: build_hub(settings, desk, name) for name in profiles if name != scoring.profile}
        alerts = await build_alert_jobs(settings, archive, hub)
        return cls(
            settings, providers, desk, backtester, archive, hub, scoring, document, action_document, alerts, others
        )

    async def aclose(self) -> None:
        if self.alerts is not None:
            await self.alerts.aclose()  # before the archive: it shares the archive's database
        for hub in self.hubs.values():
            await hub.aclose()
        if self.archive is not None:
            await self.archive.aclose()  # before the desk: it flushes rows and may still ask the desk
        await self.desk.aclose()
        await self.backtester.aclose()
        await self.providers.aclose()
