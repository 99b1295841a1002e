"""One command for the whole service: the gRPC server and Envoy (plus the recorded twin with --demo).

Starts each part, waits until it answers, prints the URLs, and supervises: Ctrl-C or SIGTERM stops
everything cleanly (the server drains first); if one part dies, the others are stopped and the exit
code names the part (3 server, 4 Envoy, 5 twin).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.envoy import envoy_binary, reachable_host, route_timeout_for, write_config
from service.settings import Settings, load_settings

EXIT_CODES = {"server": 3, "envoy": 4, "twin": 5}
DEMO_TWIN_PORT = 9900
# The twin ignores key values; these only make the keyed providers "configured" in the demo.
DEMO_KEYS = {"COINGLASS_API_KEY": "demo", "COINAPI_KEY": "demo", "LUNARCRUSH_API_KEY": "demo"}


def say(message: str) -> None:
    print(f"[cryptosignals] {message}", file=sys.stderr, flush=True)


@dataclass
class Part:
    name: str
    process: asyncio.subprocess.Process


async def _spawn(name: str, *argv: str, env: dict[str, str]) -> Part:
    # Own session: a terminal's Ctrl-C reaches the launcher only, which stops the servers (drained)
    # before Envoy; otherwise Envoy got it too and cut in-flight REST calls at once.
    process = await asyncio.create_subprocess_exec(*argv, env=env, start_new_session=True)
    return Part(name, process)


class StoppedWhileStarting(Exception):
    """Ctrl-C or SIGTERM arrived before every part was up."""


async def _wait_until(check: object, what: str, part: Part, stop: asyncio.Event, limit_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        if stop.is_set():
            raise StoppedWhileStarting
        if part.process.returncode is not None:
            raise RuntimeError(f"{part.name} exited with code {part.process.returncode} while starting")
        try:
            if await check():  # type: ignore[operator]
                return
        except Exception:  # noqa: S110 - not up yet
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {limit_seconds:.0f} s")


async def _grpc_serving(port: int) -> bool:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def _http_ok(url: str) -> bool:
    async with httpx.AsyncClient(timeout=1.0) as client:
        return (await client.get(url)).status_code == 200


async def _stop(part: Part, grace_seconds: float) -> None:
    if part.process.returncode is not None:
        return
    part.process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(part.process.wait(), grace_seconds)
    except TimeoutError:
        part.process.kill()
        await part.process.wait()


async def run(settings: Settings, demo: bool) -> int:
    env = dict(os.environ)
    parts: list[Part] = []
    workdir = Path(tempfile.mkdtemp(prefix="cryptosignals-"))
    # Handled from the start: a Ctrl-C while the parts start up stops them as cleanly as one later.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if demo:
            twin_port = int(env.get("TWIN_PORT", DEMO_TWIN_PORT))
            twin = await _spawn(
                "twin", sys.executable, "-m", "providers.twin", "--host", "127.0.0.1", "--port", str(twin_port), env=env
            )
            parts.append(twin)
            twin_url = f"http://127.0.0.1:{twin_port}"
            await _wait_until(lambda: _http_ok(f"{twin_url}/_twin/health"), "the recorded twin", twin, stop)
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
            say(f"demo mode: providers answered by the recorded twin at {twin_url} (no network, no keys)")
        elif not settings.client_api_keys:
            say("warning: SIGNAL_API_KEYS is not set: anyone who can reach this port can call the API")

        grpc_ports = [settings.grpc_port + i for i in range(settings.replicas)]
        servers = []
        for i, grpc_port in enumerate(grpc_ports):
            replica_env = {**env, "GRPC_PORT": str(grpc_port), "METRICS_PORT": str(settings.metrics_port + i)}
            servers.append(await _spawn("server", sys.executable, "-m", "service.server", env=replica_env))
            parts.append(servers[-1])
        for grpc_port, server in zip(grpc_ports, servers, strict=True):
            await _wait_until(
                lambda p=grpc_port: _grpc_serving(p), f"the gRPC server on port {grpc_port}", server, stop
            )
        if settings.replicas > 1 and settings.redis_url is None:
            say("warning: REDIS_URL is not set: each replica keeps its own cache and upstream budgets")
        upstreams = settings.grpc_upstream_list
        if settings.replicas > 1:
            upstreams = [(reachable_host(settings.grpc_host), port) for port in grpc_ports]

        config = write_config(
            workdir / "envoy.yaml",
            port=settings.port,
            grpc_port=settings.grpc_port,
            grpc_host=settings.grpc_host,
            admin_port=settings.envoy_admin_port,
            route_timeout_seconds=route_timeout_for(settings.rpc_deadline_seconds),
            metrics_port=settings.metrics_port,
            upstreams=upstreams,
            client_rate_limit_per_second=settings.client_rate_limit_per_second,
            client_rate_limit_burst=settings.client_rate_limit_burst,
        )
        envoy = await _spawn(
            "envoy",
            envoy_binary(),
            "-c",
            str(config),
            "--log-level",
            "warn",
            "--base-id",
            str(settings.port),  # lets several launchers (tests, demo) share a machine
            env=env,
        )
        parts.append(envoy)
        await _wait_until(lambda: _http_ok(f"http://127.0.0.1:{settings.port}/health"), "Envoy", envoy, stop)

        say(f"REST     http://localhost:{settings.port}/   (try /signals/BTC, /docs, /gpt/action-schema)")
        say(f"gRPC     localhost:{settings.grpc_port}   (grpcurl -plaintext localhost:{settings.grpc_port} list)")
        if settings.replicas > 1:
            say(f"replicas {settings.replicas} servers, gRPC ports {grpc_ports[0]}-{grpc_ports[-1]}, round-robin")
        say(f"OpenAPI  {settings.base_url}/openapi.json")
        say("ready; Ctrl-C stops everything")
        # The server may take its drain and grace periods before it exits.
        return await _supervise(parts, stop, settings.shutdown_drain_seconds + settings.shutdown_grace_seconds)
    except StoppedWhileStarting:
        say("stopped while starting")
        return 0
    except RuntimeError as exc:
        say(f"start-up failed: {exc}")
        failed = next((p.name for p in parts if p.process.returncode is not None), "server")
        return EXIT_CODES[failed]
    finally:
        for part in reversed(parts):
            await _stop(part, settings.shutdown_drain_seconds + settings.shutdown_grace_seconds + 2)


async def _supervise(parts: list[Part], stop: asyncio.Event, grace: float) -> int:
    waiters = {asyncio.ensure_future(p.process.wait()): p for p in parts}
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({stopper, *waiters}, return_when=asyncio.FIRST_COMPLETED)
    if stopper in done:
        say("stopping: draining the server(s), then Envoy")
        # Servers first, all at once: health goes NOT_SERVING and in-flight calls finish through Envoy.
        await asyncio.gather(*(_stop(part, grace + 2) for part in parts if part.name == "server"))
        for part in parts:
            await _stop(part, grace + 2)
        for waiter in waiters:
            waiter.cancel()
        return 0
    stopper.cancel()
    dead = waiters[next(iter(done & waiters.keys()))]
    say(f"{dead.name} exited unexpectedly with code {dead.process.returncode}; stopping the rest")
    return EXIT_CODES[dead.name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--demo", action="store_true", help="answer from the recorded twin: offline, no keys")
    args = parser.parse_args()
    settings = load_settings()
    sys.exit(asyncio.run(run(settings, demo=args.demo)))


if __name__ == "__main__":
    main()
