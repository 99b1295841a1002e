"""One command for the whole service: the gRPC server(s) and Envoy (plus the recorded twin with --demo).

Starts each part, waits until it answers, prints the URLs, and supervises, as gunicorn's arbiter
does its workers: a part that exits unexpectedly (a replica killed by the OOM killer, Envoy
crashing) is restarted after a short backoff while Envoy's health checks and retries route around
it; a part that dies ``RESTART_LIMIT`` times within ``RESTART_WINDOW_SECONDS`` makes the launcher
give up, loudly, with the last lines the part wrote, and stop the rest (exit code 3 server, 4
Envoy, 5 twin). A part that cannot start at all (a bad setting, a port in use) is not restarted:
the launcher stops with its one-line error. Ctrl-C or SIGTERM stops everything in order: the
servers first (they drain), then Envoy, then the twin.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry, Counter, start_http_server

from service.edge.envoy import (
    GRPC_TLS_SECRET_NAME,
    envoy_binary,
    reachable_host,
    route_timeout_for,
    write_config,
    write_tls_sds,
)
from service.settings import Settings, load_settings

EXIT_CODES = {"server": 3, "envoy": 4, "twin": 5}
DEMO_TWIN_PORT = 9900
# The twin ignores key values; these only make the keyed providers "configured" in the demo.
DEMO_KEYS = {"COINGLASS_API_KEY": "demo", "COINAPI_KEY": "demo", "LUNARCRUSH_API_KEY": "demo"}

# Supervision. A part that dies this many times within the window is given up on (the launcher
# stops everything: something is wrong that a restart will not fix); below that it is restarted
# after BACKOFF_FIRST_SECONDS, doubling with each recent death (0.1, 0.2, 0.4, 0.8 s).
RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 60.0
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
START_LIMIT_SECONDS = 30.0
# How many of a part's last output lines the launcher prints when it gives up on it.
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 32 * 1024
# What a server prints when a setting is bad (service.settings.SettingsError): never worth a restart.
BAD_SETTING_PREFIX = "invalid configuration:"


def say(message: str) -> None:
    print(f"[cryptosignals] {message}", file=sys.stderr, flush=True)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


class StoppedWhileStarting(Exception):
    """Ctrl-C or SIGTERM arrived before the part was up."""


class GiveUp(Exception):
    """A part keeps dying, or cannot start: the launcher stops everything and exits non-zero."""

    def __init__(self, part: Part, message: str) -> None:
        super().__init__(message)
        self.part = part


@dataclass
class Part:
    """One supervised process: how to start it, how to tell it is up, what it last printed."""

    name: str  # server, envoy or twin (the exit code)
    label: str  # "server on port 50052": what the operator reads
    argv: tuple[str, ...]
    env: dict[str, str]
    ready: Callable[[], Awaitable[bool]]
    process: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None
    tail: bytearray = field(default_factory=bytearray)
    deaths: collections.deque[float] = field(default_factory=collections.deque)
    restarts: int = 0

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    async def start(self) -> None:
        # Own session: a terminal's Ctrl-C reaches the launcher only, which stops the servers
        # (drained) before Envoy; otherwise Envoy got it too and cut in-flight REST calls at once.
        # Output goes through the launcher (to its stderr) so it can quote a dying part's last lines.
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            start_new_session=True,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        self.pump = asyncio.create_task(self._copy_output(self.process.stdout))
        say(f"started {self.label} (pid {self.process.pid})")

    async def _copy_output(self, stream: asyncio.StreamReader) -> None:
        # Chunks, not lines: a busy server logs a line per call, and copying must stay cheap.
        out = sys.stderr.buffer
        while chunk := await stream.read(65536):
            out.write(chunk)
            out.flush()
            self.tail += chunk
            if len(self.tail) > LOG_TAIL_BYTES:
                del self.tail[:-LOG_TAIL_BYTES]

    async def wait(self) -> int:
        assert self.process is not None
        code = await self.process.wait()
        if self.pump is not None:
            # Everything it printed, up to its last line (shielded: a cancelled waiter must not stop
            # the copying, or a part still running would block on a full pipe).
            await asyncio.shield(self.pump)
        return code

    def last_lines(self, count: int = LOG_TAIL_LINES) -> list[str]:
        return [line for line in self.tail.decode(errors="replace").splitlines() if line.strip()][-count:]

    async def stop(self, grace_seconds: float) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), grace_seconds)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class SupervisorMetrics:
    """The launcher's own exposition (LAUNCHER_METRICS_PORT): what it had to restart."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deaths = Counter(
            "cryptosignals_launcher_deaths",
            "Unexpected exits of a supervised process",
            ["part", "instance"],
            registry=self.registry,
        )
        self.restarts = Counter(
            "cryptosignals_launcher_restarts",
            "Supervised processes restarted and answering again",
            ["part", "instance"],
            registry=self.registry,
        )
        self._server: Any = None

    def serve(self, port: int) -> None:
        if port == 0:
            return
        try:
            self._server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:  # the service runs without it; say so
            say(f"warning: launcher metrics not served: port {port}: {exc.strerror}")
            return
        say(f"launcher metrics http://127.0.0.1:{port}/metrics (restarts and deaths of each part)")

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


async def _wait_until(
    part: Part,
    stop: asyncio.Event,
    ready: Callable[[], Awaitable[bool]] | None = None,
    limit_seconds: float = START_LIMIT_SECONDS,
) -> None:
    check = ready or part.ready
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        if stop.is_set():
            raise StoppedWhileStarting
        if part.returncode is not None:
            await part.wait()
            last = part.last_lines(1)
            raise RuntimeError(
                f"{part.label} exited with {describe_exit(part.returncode)} while starting"
                + (f": {last[0]}" if last else "")
            )
        try:
            if await check():
                return
        except Exception:  # noqa: S110 - not up yet
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{part.label} did not answer within {limit_seconds:.0f} s")


async def _grpc_serving(port: int) -> bool:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def _http_ok(url: str) -> bool:
    # verify=False: a self-signed or not-yet-trusted certificate still shows Envoy is up.
    async with httpx.AsyncClient(timeout=1.0, verify=False) as client:  # noqa: S501
        return (await client.get(url)).status_code == 200


async def _keep_alive(part: Part, stop: asyncio.Event, metrics: SupervisorMetrics) -> None:
    """Restarts ``part`` whenever it exits unexpectedly; raises GiveUp when it keeps dying."""
    instance = part.label
    while True:
        code = await part.wait()
        if stop.is_set():
            return
        died = time.monotonic()
        part.deaths.append(died)
        while part.deaths and died - part.deaths[0] > RESTART_WINDOW_SECONDS:
            part.deaths.popleft()
        metrics.deaths.labels(part.name, instance).inc()
        last = part.last_lines()
        if code == 1 and last and last[-1].startswith(BAD_SETTING_PREFIX):
            raise GiveUp(part, f"{part.label} cannot run with these settings: {last[-1]}")
        say(f"{part.label} exited unexpectedly with {describe_exit(code)}")
        if len(part.deaths) >= RESTART_LIMIT:
            lines = "\n".join(f"    {line}" for line in last) or "    (it printed nothing)"
            raise GiveUp(
                part,
                f"{part.label} died {len(part.deaths)} times within {RESTART_WINDOW_SECONDS:.0f} s: giving up "
                f"and stopping everything. Its last lines:\n{lines}",
            )
        delay = min(BACKOFF_FIRST_SECONDS * 2 ** (len(part.deaths) - 1), BACKOFF_MAX_SECONDS)
        say(
            f"restarting {part.label} in {delay:.1f} s "
            f"({len(part.deaths)} of {RESTART_LIMIT} deaths allowed in {RESTART_WINDOW_SECONDS:.0f} s)"
        )
        try:
            await asyncio.wait_for(stop.wait(), delay)
            return
        except TimeoutError:
            pass
        await part.start()
        try:
            await _wait_until(part, stop)
        except StoppedWhileStarting:
            return
        except RuntimeError as exc:
            say(f"{exc}")
            if part.returncode is None:  # hung while starting: a death like any other
                await part.stop(1.0)
            continue
        part.restarts += 1
        metrics.restarts.labels(part.name, instance).inc()
        say(
            f"{part.label} is back and serving, {time.monotonic() - died:.1f} s after it died (restart {part.restarts})"
        )


async def _stop_in_order(parts: list[Part], grace: float) -> None:
    # Servers first, all at once: health goes NOT_SERVING and in-flight calls finish through Envoy.
    await asyncio.gather(*(part.stop(grace) for part in parts if part.name == "server"))
    for name in ("envoy", "twin"):
        for part in parts:
            if part.name == name:
                await part.stop(grace)


async def run(settings: Settings, demo: bool) -> int:
    env = dict(os.environ)
    parts: list[Part] = []
    workdir = Path(tempfile.mkdtemp(prefix="cryptosignals-"))
    metrics = SupervisorMetrics()
    # The server may take its drain and grace periods before it exits.
    grace = settings.shutdown_drain_seconds + settings.shutdown_grace_seconds + 2
    # Handled from the start: a Ctrl-C while the parts start up stops them as cleanly as one later.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if demo:
            twin_port = int(env.get("TWIN_PORT", DEMO_TWIN_PORT))
            twin_url = f"http://127.0.0.1:{twin_port}"
            twin = Part(
                "twin",
                f"the recorded twin on port {twin_port}",
                (sys.executable, "-m", "twin", "--host", "127.0.0.1", "--port", str(twin_port)),
                env,
                lambda: _http_ok(f"{twin_url}/_twin/health"),
            )
            parts.append(twin)
            await twin.start()
            await _wait_until(twin, stop)
            env = dict(env)
            for provider, variable in (
                ("coinglass", "COINGLASS_BASE_URL"),
                ("okx", "OKX_BASE_URL"),
                ("coinapi", "COINAPI_BASE_URL"),
                ("lunarcrush", "LUNARCRUSH_BASE_URL"),
                ("feargreed", "FEAR_GREED_BASE_URL"),
            ):
                env[variable] = f"{twin_url}/{provider}"
            for variable, value in DEMO_KEYS.items():
                env.setdefault(variable, value)
            # The twin answers as a Professional plan: budget the demo as one (Coinglass allows it
            # 1200 calls a minute), not as the Hobbyist default of 30, which one backtest, a debug
            # signal and the dashboard's cards spend in a minute.
            env.setdefault("RATE_LIMITS", "coinglass=1200")
            say(f"demo mode: providers answered by the recorded twin at {twin_url} (no network, no keys)")
        elif not settings.client_api_keys:
            say("warning: SIGNAL_API_KEYS is not set: anyone who can reach this port can call the API")

        grpc_ports = [settings.grpc_port + i for i in range(settings.replicas)]
        servers = [
            Part(
                "server",
                f"server on port {grpc_port}",
                (sys.executable, "-m", "service.rpc.server"),
                {
                    **env,
                    "GRPC_PORT": str(grpc_port),
                    "METRICS_PORT": str(settings.metrics_port + i),
                    "WS_PORT": str(settings.ws_port + i),
                },
                lambda p=grpc_port: _grpc_serving(p),  # type: ignore[misc]
            )
            for i, grpc_port in enumerate(grpc_ports)
        ]
        parts.extend(servers)
        for server in servers:
            await server.start()
        for server in servers:
            await _wait_until(server, stop)
        if settings.replicas > 1 and settings.redis_url is None:
            say("warning: REDIS_URL is not set: each replica keeps its own cache and upstream budgets")
        upstreams = settings.grpc_upstream_list
        if settings.replicas > 1:
            upstreams = [(reachable_host(settings.grpc_host), port) for port in grpc_ports]

        tls_sds = None
        if settings.tls_cert_file is not None and settings.tls_key_file is not None:
            tls_sds = write_tls_sds(workdir / "tls", settings.tls_cert_file, settings.tls_key_file)
        grpc_tls = None
        if settings.grpc_tls_port and settings.grpc_tls_files is not None:
            cert, key = settings.grpc_tls_files
            grpc_sds = write_tls_sds(workdir / "grpc-tls", cert, key, GRPC_TLS_SECRET_NAME)
            grpc_tls = (settings.grpc_tls_port, grpc_sds)
        config = write_config(
            workdir / "envoy.yaml",
            port=settings.port,
            grpc_port=settings.grpc_port,
            grpc_host=settings.grpc_host,
            admin_port=settings.envoy_admin_port,
            route_timeout_seconds=route_timeout_for(settings.rpc_deadline_seconds),
            metrics_port=settings.metrics_port,
            ws_port=settings.ws_port,
            upstreams=upstreams,
            client_rate_limit_per_second=settings.client_rate_limit_per_second,
            client_rate_limit_burst=settings.client_rate_limit_burst,
            tls_sds=tls_sds,
            grpc_tls=grpc_tls,
            max_heap_mb=settings.envoy_max_heap_mb,
            max_connections=settings.envoy_max_connections,
        )
        scheme = "https" if tls_sds is not None else "http"
        envoy = Part(
            "envoy",
            f"envoy on port {settings.port}",
            (
                envoy_binary(),
                "-c",
                str(config),
                "--log-level",
                "warn",
                "--base-id",
                str(settings.port),  # lets several launchers (tests, demo) share a machine
            ),
            env,
            # Its own readiness, not a call through it: it is up even when every replica is down.
            lambda: _http_ok(f"http://127.0.0.1:{settings.envoy_admin_port}/ready"),
        )
        parts.append(envoy)
        await envoy.start()
        await _wait_until(envoy, stop)
        # And the first time, a call through it: every part answers before "ready".
        await _wait_until(envoy, stop, lambda: _http_ok(f"{scheme}://127.0.0.1:{settings.port}/health"))
        metrics.serve(settings.launcher_metrics_port)

        say(f"REST     {scheme}://localhost:{settings.port}/   (try /signals/BTC, /docs, /gpt/action-schema)")
        say(f"gRPC     localhost:{settings.grpc_port}   (grpcurl -plaintext localhost:{settings.grpc_port} list)")
        if grpc_tls is not None:
            say(f"gRPC TLS localhost:{settings.grpc_tls_port}   (through Envoy, over every replica)")
        if settings.replicas > 1:
            say(f"replicas {settings.replicas} servers, gRPC ports {grpc_ports[0]}-{grpc_ports[-1]}, round-robin")
        say(f"OpenAPI  {settings.base_url}/openapi.json")
        say("ready; Ctrl-C stops everything")
        return await _supervise(parts, stop, metrics, grace)
    except StoppedWhileStarting:
        say("stopped while starting")
        return 0
    except RuntimeError as exc:
        say(f"start-up failed: {exc}")
        failed = next((p.name for p in parts if p.returncode is not None), "server")
        return EXIT_CODES[failed]
    finally:
        stop.set()  # no restart from here on
        await _stop_in_order(parts, grace)
        metrics.close()


async def _supervise(parts: list[Part], stop: asyncio.Event, metrics: SupervisorMetrics, grace: float) -> int:
    keepers = [asyncio.create_task(_keep_alive(part, stop, metrics)) for part in parts]
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({stopper, *keepers}, return_when=asyncio.FIRST_COMPLETED)
        failed = [task for task in keepers if task in done and task.exception() is not None]
        stop.set()
        if not failed:
            say("stopping: draining the server(s), then Envoy")
            await _stop_in_order(parts, grace)
            return 0
        exc = failed[0].exception()
        if not isinstance(exc, GiveUp):
            raise exc  # type: ignore[misc]
        say(f"error: {exc}")
        await _stop_in_order(parts, grace)
        return EXIT_CODES[exc.part.name]
    finally:
        for task in (stopper, *keepers):
            task.cancel()
        await asyncio.gather(stopper, *keepers, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--demo", action="store_true", help="answer from the recorded twin: offline, no keys")
    args = parser.parse_args()
    settings = load_settings()
    sys.exit(asyncio.run(run(settings, demo=args.demo)))


if __name__ == "__main__":
    main()
