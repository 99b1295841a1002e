"""Configuration from environment variables (and ``.env`` if present), validated once at start-up."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from providers.ratelimit import DEFAULT_PER_MINUTE
from service.rpc.client_limit import Network, parse_networks

Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """Every setting has a safe default and a validated range (see the README's configuration table)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    port: Port = 8000
    grpc_port: Port = 50051
    grpc_host: str = "0.0.0.0"  # noqa: S104 - internal services call gRPC directly
    envoy_admin_port: Port = 9901
    # Prometheus exposition, on loopback by default; Envoy serves it as GET /metrics. A cluster sets
    # METRICS_HOST=0.0.0.0 so Prometheus can scrape each pod.
    metrics_host: str = "127.0.0.1"
    metrics_port: Port = 9464
    # GET /ws (live signals over a WebSocket): each server serves it on GRPC_HOST at this port, and
    # Envoy routes /ws there with the upgrade allowed (replica i of the launcher: WS_PORT + i).
    ws_port: Port = 8765
    base_url: str = "http://localhost:8000"

    coinglass_api_key: SecretStr | None = None
    coinapi_key: SecretStr | None = None
    lunarcrush_api_key: SecretStr | None = None

    coinglass_base_url: str = "https://open-api-v4.coinglass.com"
    okx_base_url: str = "https://www.okx.com"
    coinapi_base_url: str = "https://rest.coinapi.io"
    lunarcrush_base_url: str = "https://lunarcrush.com/api4"
    fear_greed_base_url: str = "https://api.alternative.me"

    # Coinglass reports long/short ratios per exchange pair; this exchange is the reference.
    coinglass_exchange: str = "Binance"
    # Exchanges summed for aggregated liquidations.
    coinglass_exchanges: str = "Binance,OKX,Bybit,Bitget,Gate,HTX,Hyperliquid"

    # Upstream response cache (per-endpoint TTLs in each client; this scales them all, 0 disables).
    cache_enabled: bool = True
    cache_ttl_scale: Annotated[float, Field(ge=0, le=100)] = 1.0
    cache_max_stale_seconds: Annotated[float, Field(ge=0, le=86400)] = 300.0
    # Per-endpoint TTL overrides, "provider:/path-prefix=seconds,..." (the longest prefix wins; 0 = not
    # cached), e.g. "okx:/api/v5/market/ticker=2,coinglass:/api/futures/funding-rate/=120".
    cache_ttls: str = ""

    # A computed signal is reused for this long (0 disables); identical concurrent requests share one.
    signal_cache_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0

    # Upstream budgets in requests per minute, e.g. "coinglass=300,okx_rubik=150" (others keep
    # their defaults, 0 means unlimited); a call waits up to RATE_LIMIT_MAX_WAIT_SECONDS for capacity.
    rate_limits: str = ""
    rate_limit_max_wait_seconds: Annotated[float, Field(ge=0, le=60)] = 2.0

    # Shared Redis for the upstream cache and budgets of every replica (unset: each process keeps
    # its own). A secret: the URL may carry a password, and it is never logged.
    redis_url: SecretStr | None = None
    redis_prefix: str = "cryptosignals"
    # Connections one replica opens to Redis at most; a lookup finding all busy waits for one up to
    # REDIS_POOL_TIMEOUT_SECONDS (then falls back in process), it never fails at once.
    redis_max_connections: Annotated[int, Field(ge=1, le=1000)] = 32
    redis_pool_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0

    # The gRPC servers Envoy round-robins over, "host:port,host:port" (default GRPC_HOST:GRPC_PORT).
    grpc_upstreams: str = ""
    # `make run` / the launcher: this many server processes on GRPC_PORT, GRPC_PORT+1, ... (metrics
    # on METRICS_PORT, METRICS_PORT+1, ...) behind its one Envoy.
    replicas: Annotated[int, Field(ge=1, le=16)] = 1
    # The launcher's own Prometheus exposition on 127.0.0.1 (restarts and deaths of the parts it
    # supervises); 0 turns it off.
    launcher_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9463

    # PEM certificate chain and private key: Envoy's REST listener serves HTTPS (ALPN h2, http/1.1)
    # and re-reads both files when they change (file-based SDS). Both or neither.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Envoy also serves gRPC over TLS on this port (0: off), round-robin over the replicas with the
    # REST routes' retries; with its own certificate (GRPC_TLS_CERT_FILE/GRPC_TLS_KEY_FILE) or the
    # REST one. GRPC_PORT itself stays plaintext, for internal callers.
    grpc_tls_port: Annotated[int, Field(ge=0, le=65535)] = 0
    grpc_tls_cert_file: Path | None = None
    grpc_tls_key_file: Path | None = None

    # Which provider a factor prefers when several can supply it (the rest are fallbacks, in order).
    source_order: str = "coinglass,okx"

    # Client rate limit, per client (service/rpc/client_limit.py): a token bucket per client key when
    # SIGNAL_API_KEYS is set, else per client address, refilled by CLIENT_RATE_LIMIT_PER_SECOND tokens
    # a second up to CLIENT_RATE_LIMIT_BURST; 0 disables it. Enforced by the server, so REST and gRPC
    # callers alike; one busy client never costs another one its answers.
    client_rate_limit_per_second: Annotated[int, Field(ge=0, le=1_000_000)] = 200
    # 0: the same as the per-second rate. Otherwise at least the rate (checked below).
    client_rate_limit_burst: Annotated[int, Field(ge=0, le=10_000_000)] = 400
    # The share of each upstream budget (RATE_LIMITS) one client may spend a minute (1 = no limit
    # beyond the budget); needs the client rate limit, which names clients.
    client_upstream_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    # Peers whose X-Forwarded-For is believed (Envoy, on loopback by default): IPs or CIDRs.
    trusted_proxies: str = "127.0.0.1/32,::1/128"
    # Origins a browser app may call the API from (Envoy's CORS filter): * or a comma-separated list.
    cors_allowed_origins: str = "*"
    # How long a provider's NOT_FOUND for (provider, endpoint, coin) is remembered (0: not at all).
    negative_cache_seconds: Annotated[float, Field(ge=0, le=86400)] = 600.0

    upstream_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    upstream_max_attempts: Annotated[int, Field(ge=1, le=5)] = 2
    rpc_deadline_seconds: Annotated[float, Field(gt=0, le=120)] = 15.0
    shutdown_grace_seconds: Annotated[float, Field(ge=0, le=120)] = 5.0
    # After SIGTERM, health reports NOT_SERVING for this long while calls are still answered, so
    # load balancers that health-check stop routing here before new calls are refused.
    shutdown_drain_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0

    # Signal history (a recorder, outcomes, track record). The database is an embedded SQLite file
    # under DATA_DIR unless DATABASE_URL names another (any SQLAlchemy async URL; a secret: it may
    # hold a password and is never logged).
    history_enabled: bool = True
    database_url: SecretStr | None = None
    data_dir: Path = Path("data")
    watchlist: str = "BTC,ETH,SOL"
    history_interval_seconds: Annotated[int, Field(ge=60, le=86400)] = 300
    history_retention_days: Annotated[int, Field(ge=1, le=3650)] = 365
    history_buffer_rows: Annotated[int, Field(ge=100, le=1_000_000)] = 10_000

    # Live streams (GET /signals/{symbol}/stream, WatchSignals): one refresh loop per coin shared by
    # its watchers, and bounds on how many streams one replica and one client may hold.
    watch_refresh_seconds: Annotated[float, Field(ge=0.1, le=300)] = 5.0
    watch_max_streams: Annotated[int, Field(ge=1, le=100_000)] = 2000
    watch_max_per_client: Annotated[int, Field(ge=1, le=10_000)] = 20

    # Backtests are CPU work: at most this many computed at once per server, and per client.
    backtest_max_running: Annotated[int, Field(ge=1, le=64)] = 2
    backtest_max_per_client: Annotated[int, Field(ge=1, le=64)] = 1

    # Webhook alerts (POST /alerts): conditions on the hub's signals, deliveries from an outbox table
    # in the history database, signed and retried with exponential backoff.
    alert_allow_private_targets: bool = False
    alert_max_per_client: Annotated[int, Field(ge=1, le=10_000)] = 20
    # Coins alerts keep warm (the hub refreshes each one forever): per client key, and per server.
    alert_max_coins_per_client: Annotated[int, Field(ge=1, le=1000)] = 10
    alert_max_coins: Annotated[int, Field(ge=1, le=10_000)] = 200
    alert_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    alert_retry_base_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    alert_retry_hours: Annotated[float, Field(gt=0, le=168)] = 24.0
    alert_poll_seconds: Annotated[float, Field(ge=0.05, le=60)] = 2.0
    # Ports webhooks may use besides 80 and 443: "8080,8443", ranges "9000-9100"; empty for none.
    alert_allowed_ports: str = ""

    @field_validator("alert_allowed_ports")
    @classmethod
    def _alert_allowed_ports(cls, value: str) -> str:
        from records.jobs.webhooks import parse_ports  # here: this block is all the settings alerts add

        parse_ports(value)  # a ValueError with a sentence when malformed
        return value

    @property
    def alert_allowed_port_set(self) -> frozenset[int]:
        from records.jobs.webhooks import parse_ports

        return parse_ports(self.alert_allowed_ports)

    scoring_config: Path | None = None
    # The scoring profile served when a request names none: seed (the shipped, documented behaviour)
    # or research (scoring/research.toml, fitted walk-forward: no demonstrated edge, see the README).
    scoring_profile: Literal["seed", "research"] = "seed"
    signal_api_keys: SecretStr | None = None
    # Client keys (a subset of SIGNAL_API_KEYS) that may call operator endpoints (/debug/premium).
    operator_keys: SecretStr | None = None
    log_level: str = "INFO"
    # The server's event loop: uvloop (libuv) unless told otherwise; "asyncio" is the standard loop.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    # Edge hardening (issue 24). History page tokens are signed with PAGE_TOKEN_SECRET (at least 32
    # characters, a secret); unset, a random one is generated once and kept in the history database,
    # so every replica sharing it accepts the others' tokens. Envoy's overload manager: its heap
    # (MiB) and its open client connections (every listener together) at most.
    page_token_secret: SecretStr | None = None
    envoy_max_heap_mb: Annotated[int, Field(ge=32, le=65_536)] = 192
    envoy_max_connections: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000

    @field_validator("page_token_secret", mode="before")
    @classmethod
    def _page_token_secret(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str | SecretStr):
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if len(text.strip()) < 32:
                # The value itself is not echoed: it is a secret.
                raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`), or empty")
        return value

    @field_validator(
        "coinglass_api_key",
        "coinapi_key",
        "lunarcrush_api_key",
        "signal_api_keys",
        "operator_keys",
        "redis_url",
        "database_url",
        "scoring_config",  # SCORING_CONFIG= (as in .env.example) means the shipped defaults
        "tls_cert_file",
        "tls_key_file",
        "grpc_tls_cert_file",
        "grpc_tls_key_file",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "base_url",
        "coinglass_base_url",
        "okx_base_url",
        "coinapi_base_url",
        "lunarcrush_base_url",
        "fear_greed_base_url",
    )
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"must be one of DEBUG, INFO, WARNING, ERROR, got {value!r}")
        return upper

    @field_validator("scoring_config")
    @classmethod
    def _scoring_config_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {str(value)!r} does not exist")
        return value

    @field_validator("tls_cert_file", "tls_key_file", "grpc_tls_cert_file", "grpc_tls_key_file")
    @classmethod
    def _tls_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {str(value)!r} does not exist")
        return value.resolve() if value is not None else None

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither")
        if (self.grpc_tls_cert_file is None) != (self.grpc_tls_key_file is None):
            raise ValueError("GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE go together: set both or neither")
        if self.grpc_tls_port and self.grpc_tls_files is None:
            raise ValueError(
                "GRPC_TLS_PORT needs a certificate: GRPC_TLS_CERT_FILE/GRPC_TLS_KEY_FILE or TLS_CERT_FILE/TLS_KEY_FILE"
            )
        if self.operator_api_keys and not set(self.operator_api_keys) <= set(self.client_api_keys):
            raise ValueError("every key in OPERATOR_KEYS must also be one of SIGNAL_API_KEYS")
        return self

    @property
    def grpc_tls_files(self) -> tuple[Path, Path] | None:
        """The gRPC TLS listener's certificate and key: its own, else the REST listener's."""
        if self.grpc_tls_cert_file is not None and self.grpc_tls_key_file is not None:
            return self.grpc_tls_cert_file, self.grpc_tls_key_file
        if self.tls_cert_file is not None and self.tls_key_file is not None:
            return self.tls_cert_file, self.tls_key_file
        return None

    @field_validator("source_order")
    @classmethod
    def _known_sources(cls, value: str) -> str:
        names = [n.strip().lower() for n in value.split(",") if n.strip()]
        unknown = sorted(set(names) - {"coinglass", "okx", "lunarcrush", "feargreed"})
        if unknown or not names:
            raise ValueError(f"must list providers from coinglass, okx, lunarcrush, feargreed; got {value!r}")
        return ",".join(names)

    @field_validator("cache_ttls")
    @classmethod
    def _cache_ttls(cls, value: str) -> str:
        _parse_cache_ttls(value)
        return value

    @property
    def cache_ttl_overrides(self) -> dict[str, dict[str, float]]:
        return _parse_cache_ttls(self.cache_ttls)

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            bucket, _, rate = item.partition("=")
            if bucket.strip() not in DEFAULT_PER_MINUTE:
                raise ValueError(f"unknown bucket {bucket.strip()!r}: one of {', '.join(DEFAULT_PER_MINUTE)}")
            try:
                if float(rate) < 0:
                    raise ValueError
            except ValueError:
                raise ValueError(f"{bucket.strip()} needs a number of requests per minute >= 0, got {rate!r}") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            # The value itself is not echoed: it may hold a password.
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(ASYNC_DATABASE_SCHEMES):
            # The value itself is not echoed: it may hold a password.
            raise ValueError(
                "must be an async SQLAlchemy URL starting with "
                + " or ".join(f"{s}://" for s in ASYNC_DATABASE_SCHEMES)
            )
        return value

    @field_validator("watchlist")
    @classmethod
    def _watchlist(cls, value: str) -> str:
        for coin in filter(None, (part.strip() for part in value.split(","))):
            if not re.fullmatch(r"[A-Za-z0-9]{1,20}", coin):
                raise ValueError(f"must be coin symbols separated by commas (e.g. BTC,ETH,SOL), got {coin[:32]!r}")
        return value

    @property
    def history_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'history.db').resolve()}"

    @property
    def watchlist_coins(self) -> tuple[str, ...]:
        return tuple(c.strip().upper() for c in self.watchlist.split(",") if c.strip())

    @field_validator("redis_prefix")
    @classmethod
    def _redis_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
            raise ValueError(f"must be 1-64 letters, digits, '_', '.' or '-', got {value!r}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        parse_networks(value)
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @field_validator("cors_allowed_origins")
    @classmethod
    def _cors_origins(cls, value: str) -> str:
        origins = [o.strip() for o in value.split(",") if o.strip()]
        if not origins:
            raise ValueError("must be * or a comma-separated list of origins such as https://app.example.com")
        for origin in origins:
            if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
                raise ValueError(
                    f"each origin is scheme://host[:port] (e.g. https://app.example.com) or *, got {origin[:64]!r}"
                )
        return ",".join(origins)

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(self.cors_allowed_origins.split(","))

    @field_validator("grpc_upstreams")
    @classmethod
    def _grpc_upstreams(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            _parse_upstream(item)
        return value

    @model_validator(mode="after")
    def _one_way_to_name_replicas(self) -> Settings:
        if self.replicas > 1 and self.grpc_upstreams.strip():
            raise ValueError("set REPLICAS (the launcher starts them) or GRPC_UPSTREAMS (started elsewhere), not both")
        return self

    @property
    def grpc_upstream_list(self) -> list[tuple[str, int]]:
        """GRPC_UPSTREAMS as (IP, port) pairs; empty when unset (Envoy then uses GRPC_HOST:GRPC_PORT)."""
        return [_parse_upstream(p.strip()) for p in self.grpc_upstreams.split(",") if p.strip()]

    @model_validator(mode="after")
    def _burst_covers_the_rate(self) -> Settings:
        if 0 < self.client_rate_limit_burst < self.client_rate_limit_per_second:
            raise ValueError(
                f"CLIENT_RATE_LIMIT_BURST ({self.client_rate_limit_burst}) must be 0 or at least "
                f"CLIENT_RATE_LIMIT_PER_SECOND ({self.client_rate_limit_per_second})"
            )
        return self

    @property
    def per_minute_limits(self) -> dict[str, float]:
        limits = dict(DEFAULT_PER_MINUTE)
        for item in filter(None, (part.strip() for part in self.rate_limits.split(","))):
            bucket, _, rate = item.partition("=")
            limits[bucket.strip()] = float(rate)
        return limits

    @property
    def exchange_list(self) -> tuple[str, ...]:
        return tuple(e.strip() for e in self.coinglass_exchanges.split(",") if e.strip())

    @property
    def client_api_keys(self) -> tuple[str, ...]:
        if self.signal_api_keys is None:
            return ()
        return tuple(k.strip() for k in self.signal_api_keys.get_secret_value().split(",") if k.strip())

    @property
    def operator_api_keys(self) -> tuple[str, ...]:
        if self.operator_keys is None:
            return ()
        return tuple(k.strip() for k in self.operator_keys.get_secret_value().split(",") if k.strip())


CACHED_PROVIDERS = ("coinglass", "okx", "coinapi", "lunarcrush", "feargreed")
ASYNC_DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


def _parse_cache_ttls(value: str) -> dict[str, dict[str, float]]:
    """``okx:/api/v5/market/ticker=2`` -> {"okx": {"/api/v5/market/ticker": 2.0}}."""
    overrides: dict[str, dict[str, float]] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        target, _, seconds = item.rpartition("=")
        provider, _, prefix = target.partition(":")
        if provider not in CACHED_PROVIDERS or not prefix.startswith("/"):
            raise ValueError(
                f"each entry is provider:/path-prefix=seconds with provider one of {', '.join(CACHED_PROVIDERS)}, "
                f"got {item[:80]!r}"
            )
        try:
            ttl = float(seconds)
            if not 0 <= ttl <= 86400:
                raise ValueError
        except ValueError:
            raise ValueError(f"{target}: seconds must be a number from 0 to 86400, got {seconds[:20]!r}") from None
        overrides.setdefault(provider, {})[prefix] = ttl
    return overrides


def _parse_upstream(item: str) -> tuple[str, int]:
    """``127.0.0.1:50051`` -> ("127.0.0.1", 50051). Envoy's STATIC cluster needs IP addresses."""
    host, sep, port = item.rpartition(":")
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
        number = int(port)
        if not sep or not 1 <= number <= 65535:
            raise ValueError
    except ValueError:
        raise ValueError(f"each entry must be IP:port (e.g. 127.0.0.1:50051), got {item!r}") from None
    return host, number


class SettingsError(SystemExit):
    """A bad setting: stops the process with one clear line."""


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None
