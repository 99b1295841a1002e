"""Service benchmarks against the recorded twin: ``python -m bench.service``.

Starts the twin (with a per-request upstream latency), the gRPC server and Envoy as separate
processes, like production, then measures:
- cold signal latency against the slowest single upstream call (target ratio <= 1.15);
- upstream requests made for 1,000 concurrent GetSignal(BTC) on a cold cache (target: one per endpoint);
- warm throughput and p50/p99 latency of GET /signals/BTC through Envoy and of GetSignal over gRPC,
  at 50 concurrent connections (wrk when installed, else an aiohttp loop; grpc.aio over 50 channels,
  each its own TCP connection), in the same run as the ceiling: a trivial grpc.aio SignalService
  returning one fixed Signal (the project's own warm answer, so the JSON is the same) behind the
  same Envoy config; each round measures both back to back and the median of the rounds' ratios
  is printed with their range (target >= 0.95 at default settings);
- server RSS after 100,000 warm requests (target: flat after warm-up, under 150 MB).

The last line is the verdict over every target printed above it.

``python -m bench.service --serve-trivial PORT SIGNAL_FILE`` runs the trivial server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import httpx
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from service.edge.envoy import envoy_binary, write_config
from service.rpc.server import run_loop
from service.settings import load_settings
from tests.stack import free_port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_http(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=1) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


async def wait_grpc_serving(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the gRPC server on port {port} did not start")


class TrivialSignalService(signal_pb2_grpc.SignalServiceServicer):  # type: ignore[misc]
    """The framework's ceiling: GetSignal answers one fixed Signal, nothing else happens."""

    def __init__(self, answer: signal_pb2.Signal) -> None:
        self._answer = answer

    async def GetSignal(self, request: object, context: object) -> signal_pb2.Signal:
        return self._answer


async def serve_trivial(port: int, answer: signal_pb2.Signal) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    servicer: Any = TrivialSignalService(answer)  # type: ignore[abstract]  # GetSignal only; the rest UNIMPLEMENTED
    signal_pb2_grpc.add_SignalServiceServicer_to_server(servicer, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.wait_for_termination()


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate in reverse start order (Envoy before the servers it fronts), kill what lingers."""
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


class Trivial:
    """The trivial server as its own process, behind its own Envoy rendered from the same template."""

    def __init__(self, answer: bytes) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-trivial-"))
        self.signal_file = self.workdir / "signal.bin"
        self.signal_file.write_bytes(answer)
        self.grpc_port, self.port, self.admin_port, self.metrics_port = (free_port() for _ in range(4))
        self.processes: list[subprocess.Popen[bytes]] = []

    async def start(self) -> None:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "bench.service", "--serve-trivial", str(self.grpc_port), str(self.signal_file)],
                **quiet,  # type: ignore[call-overload]
            )
        )
        config = write_config(
            self.workdir / "envoy.yaml",
            port=self.port,
            grpc_port=self.grpc_port,
            admin_port=self.admin_port,
            metrics_port=self.metrics_port,
            cors_allowed_origins=["*"],
        )
        self.processes.append(
            subprocess.Popen(
                [envoy_binary(), "-c", str(config), "--log-level", "error", "--base-id", str(self.port)],
                **quiet,  # type: ignore[call-overload]
            )
        )
        await wait_grpc_serving(self.grpc_port)
        await wait_http(f"http://127.0.0.1:{self.port}/signals/BTC")

    def stop(self) -> None:
        stop_processes(self.processes)


def distinct_channels(port: int, count: int) -> list[grpc.aio.Channel]:
    """``count`` channels, each on its own TCP connection: grpc shares one connection between channels
    with equal options, so each gets a distinct option and its own subchannel pool."""
    return [
        grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.channel_id", i), ("grpc.use_local_subchannel_pool", 1)]
        )
        for i in range(count)
    ]


def established_to(port: int) -> int:
    """TCP connections established to 127.0.0.1:``port`` (counted from /proc/net/tcp)."""
    # grpc uses dual-stack sockets: 127.0.0.1 appears v4-mapped in tcp6.
    wanted = {f"0100007F:{port:04X}", f"0000000000000000FFFF00000100007F:{port:04X}"}
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[2] in wanted and fields[3] == "01":  # remote address, state ESTABLISHED
                count += 1
    return count


async def rest_rate(url: str, seconds: float) -> tuple[float, float, float, int]:
    """Requests/s, p50 and p99 (ms) and non-200 answers of GET ``url`` at 50 connections."""
    if shutil.which("wrk"):
        return wrk_figures(url, seconds)
    connector = aiohttp.TCPConnector(limit=50)
    latencies: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal failures
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    failures += response.status != 200
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(50)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, pct(latencies, 50), pct(latencies, 99), failures


GET_SIGNAL_PATH = "/cryptosignals.v1.SignalService/GetSignal"


def grpc_body_file(request: signal_pb2.GetSignalRequest) -> Path:
    """``request`` as one gRPC length-prefixed message (uncompressed), for h2load to send."""
    data = request.SerializeToString()
    path = Path(tempfile.mkdtemp(prefix="bench-h2load-")) / "request.bin"
    path.write_bytes(b"\x00" + struct.pack(">I", len(data)) + data)
    return path


def h2load_figures(port: int, body: Path, seconds: float) -> tuple[float, float, float, int]:
    """h2load (nghttp2's C load generator) posting ``body`` as a gRPC GetSignal call over 50 HTTP/2
    connections, one call in flight on each: requests/s, mean and max latency (ms; h2load reports
    no percentiles) and calls not answered 2xx. grpc.aio answers every call it handles 200 with the
    status in the trailers: the caller checks those through the server's RPC counters."""
    out = subprocess.run(
        [
            "h2load",
            *("-c", "50", "-m", "1", "-t", "1", "-D", str(max(1, round(seconds)))),
            *("-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers"),
            f"http://127.0.0.1:{port}{GET_SIGNAL_PATH}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate, mean, worst, failed = 0.0, 0.0, 0.0, 0
    for line in out.splitlines():
        parts = line.replace(",", " ").split()
        if line.startswith("finished in"):
            rate = float(parts[3])
        elif line.startswith("requests:"):
            failed = int(parts[parts.index("failed") - 1])
        elif line.startswith("time for request:"):
            worst, mean = _ms(parts[4]), _ms(parts[5])
    return rate, mean, worst, failed


async def grpc_rate(stubs: list[signal_pb2_grpc.SignalServiceStub], seconds: float) -> tuple[float, float, float]:
    latencies: list[float] = []
    request = signal_pb2.GetSignalRequest(symbol="BTC")
    stop_at = time.perf_counter() + seconds

    async def worker(stub: signal_pb2_grpc.SignalServiceStub) -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await stub.GetSignal(request)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(stub) for stub in stubs))
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, pct(latencies, 50), pct(latencies, 99)


class Deployment:
    """Twin, ``replicas`` server processes (sharing ``redis_url`` when given) and one Envoy over them."""

    def __init__(
        self,
        latency_ms: float,
        replicas: int = 1,
        redis_url: str | None = None,
        endpoint_latency: Mapping[str, float] | None = None,
    ) -> None:
        self.latency_ms = latency_ms
        # "provider:/path" -> extra milliseconds on that endpoint (a twin latency fault).
        self.endpoint_latency = dict(endpoint_latency or {})
        self.redis_url = redis_url
        self.twin_port, self.port, self.admin_port = free_port(), free_port(), free_port()
        self.grpc_ports = [free_port() for _ in range(replicas)]
        self.metrics_ports = [free_port() for _ in range(replicas)]
        self.grpc_port, self.metrics_port = self.grpc_ports[0], self.metrics_ports[0]
        self.processes: list[subprocess.Popen[bytes]] = []
        self.servers: list[subprocess.Popen[bytes]] = []
        self.server: subprocess.Popen[bytes] | None = None

    @property
    def twin(self) -> str:
        return f"http://127.0.0.1:{self.twin_port}"

    async def start(self) -> None:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        py = sys.executable
        self.processes.append(
            subprocess.Popen(
                [py, "-m", "twin", "--port", str(self.twin_port), "--latency-ms", str(self.latency_ms)],
                **quiet,  # type: ignore[call-overload]
            )
        )
        await wait_http(f"{self.twin}/_twin/health")
        async with httpx.AsyncClient() as control:
            for target, extra_ms in self.endpoint_latency.items():
                provider, _, endpoint = target.partition(":")
                fault = {"provider": provider, "endpoint": endpoint, "kind": "latency", "latency_ms": extra_ms}
                (await control.post(f"{self.twin}/_twin/faults", json=fault)).raise_for_status()
        env = {
            **os.environ,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(self.grpc_port),
            "METRICS_PORT": str(self.metrics_port),
            # Default settings (LOG_LEVEL INFO ...), but for the client limit: the load generator is
            # one client, so its bucket is set far above the load; the limiter still runs on every call.
            "CLIENT_RATE_LIMIT_PER_SECOND": "1000000",
            "CLIENT_RATE_LIMIT_BURST": "10000000",
            # No background watchlist: it would warm the cache before the cold measurements. Served
            # signals are still recorded (the hot path includes offering each to the history buffer).
            "WATCHLIST": "",
            "DATA_DIR": tempfile.mkdtemp(prefix="bench-data-"),
            # The twin is local and free: production budgets would only throttle the measurement.
            "RATE_LIMITS": "coinglass=0,okx=0,okx_rubik=0,coinapi=0,lunarcrush=0,feargreed=0",
            "COINGLASS_API_KEY": "bench",
            "COINAPI_KEY": "bench",
            "LUNARCRUSH_API_KEY": "bench",
            **{
                var: f"{self.twin}/{name}"
                for name, var in (
                    ("coinglass", "COINGLASS_BASE_URL"),
                    ("okx", "OKX_BASE_URL"),
                    ("coinapi", "COINAPI_BASE_URL"),
                    ("lunarcrush", "LUNARCRUSH_BASE_URL"),
                    ("feargreed", "FEAR_GREED_BASE_URL"),
                )
            },
        }
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        for grpc_port, metrics_port in zip(self.grpc_ports, self.metrics_ports, strict=True):
            replica_env = {
                **env,
                "GRPC_PORT": str(grpc_port),
                "METRICS_PORT": str(metrics_port),
                "WS_PORT": str(free_port()),  # not benchmarked; each replica needs a port of its own
            }
            self.servers.append(
                subprocess.Popen([py, "-m", "service.rpc.server"], env=replica_env, **quiet)  # type: ignore[call-overload]
            )
        self.server = self.servers[0]
        self.processes.extend(self.servers)
        config = write_config(
            Path(tempfile.mkdtemp()) / "envoy.yaml",
            port=self.port,
            grpc_port=self.grpc_port,
            admin_port=self.admin_port,
            metrics_port=self.metrics_port,
            upstreams=[("127.0.0.1", port) for port in self.grpc_ports],
            cors_allowed_origins=["*"],
        )
        self.processes.append(
            subprocess.Popen(
                [envoy_binary(), "-c", str(config), "--log-level", "error", "--base-id", str(self.port)],
                **quiet,  # type: ignore[call-overload]
            )
        )
        for grpc_port in self.grpc_ports:  # every replica, not just the first Envoy finds healthy
            await wait_grpc_serving(grpc_port)
        await wait_http(f"http://127.0.0.1:{self.port}/health")

    async def twin_requests(self) -> dict[str, int]:
        """Upstream requests the twin received, per "provider path"."""
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"{self.twin}/_twin/requests")).json()
        return {str(k): int(v) for k, v in body["counts"].items()}

    async def replay_ms(self) -> tuple[float, float]:
        """Replay every upstream request the twin recorded: (slowest one alone, all at once) in ms.

        "All at once" is the floor for any fan-out against this twin: it serves requests on one
        Python thread, so concurrent requests queue there.
        """
        headers = {"CG-API-KEY": "bench", "X-CoinAPI-Key": "bench", "Authorization": "Bearer bench"}
        # The same HTTP client library as the service (aiohttp), so the floor is not inflated by ours.
        async with aiohttp.ClientSession(headers=headers) as client:
            async with client.get(f"{self.twin}/_twin/requests") as listing:
                rows = (await listing.json())["requests"]
            unique = sorted({(r["provider"], r["path"], tuple(sorted(r["query"].items()))) for r in rows})

            async def call(provider: str, path: str, query: tuple[tuple[str, str], ...]) -> float:
                started = time.perf_counter()
                async with client.get(f"{self.twin}/{provider}{path}", params=dict(query)) as response:
                    await response.read()
                return (time.perf_counter() - started) * 1000

            await asyncio.gather(*(call(*u) for u in unique))  # open the connections
            slowest = max([await call(*u) for u in unique])
            started = time.perf_counter()
            await asyncio.gather(*(call(*u) for u in unique))
            together = (time.perf_counter() - started) * 1000
        return slowest, together

    async def clear_twin_requests(self) -> None:
        async with httpx.AsyncClient() as client:
            await client.delete(f"{self.twin}/_twin/requests")

    def stop(self) -> None:
        stop_processes(self.processes)


async def load(call: Callable[[], Awaitable[object]], total: int, concurrency: int) -> tuple[float, list[float]]:
    """Run ``total`` calls with ``concurrency`` workers; (requests/s, latencies in ms)."""
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), latencies


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def wrk_figures(url: str, seconds: float) -> tuple[float, float, float, int]:
    """wrk (a C load generator: it barely competes for CPU): requests/s, p50, p99 (ms), non-2xx."""
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", "50", "-d", f"{max(1, round(seconds))}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate, p50, p99, errors = 0.0, 0.0, 0.0, 0
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            rate = float(parts[1])
        elif len(parts) == 2 and parts[0] == "50%":
            p50 = _ms(parts[1])
        elif len(parts) == 2 and parts[0] == "99%":
            p99 = _ms(parts[1])
        elif "Non-2xx" in line:
            errors = int(parts[-1])
    return rate, p50, p99, errors


def wrk(url: str, seconds: float = 10.0) -> str:
    """wrk's figures as one phrase (bench/scaleout.py prints it)."""
    rate, p50, p99, errors = wrk_figures(url, seconds)
    return f"{rate:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms" + (f", {errors} non-2xx" if errors else "")


async def failed_rpcs(metrics_url: str, method: str) -> int:
    """Calls of ``method`` the server ended with a status other than OK, from its RPC counters. Not
    CANCELLED: a load generator ending its run closes its connections with calls in flight."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(metrics_url)).text
    total = 0
    for line in text.splitlines():
        ours = line.startswith("cryptosignals_rpc_requests_total{") and f'method="{method}"' in line
        if ours and 'code="OK"' not in line and 'code="CANCELLED"' not in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def median_interval(values: list[float], draws: int = 2000, seed: int = 14) -> tuple[float, float]:
    """A 90% bootstrap interval of the median of ``values`` (the rounds resampled with replacement):
    how far the printed median could move on another run of as many rounds on this machine."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(draws * 0.05)], medians[int(draws * 0.95) - 1]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def run(
    latency_ms: float,
    warm_requests: int,
    rss_requests: int,
    endpoint_latency: Mapping[str, float] | None = None,
    rounds: int = 30,
) -> None:
    verdicts: list[tuple[str, bool]] = []
    extra = "".join(f", +{ms:g} ms on {target}" for target, ms in (endpoint_latency or {}).items())
    print(f"# service benchmarks (twin latency {latency_ms:g} ms per upstream call{extra}, {os.cpu_count()} cores)")
    deployment = Deployment(latency_ms, endpoint_latency=endpoint_latency)
    await deployment.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{deployment.grpc_port}") as channel:
            stub = signal_pb2_grpc.SignalServiceStub(channel)
            # 1. Cold latency: one signal on an empty cache should cost the slowest upstream call.
            await stub.GetApiInfo(signal_pb2.GetApiInfoRequest())  # connect first: not part of a signal
            ratios, floors = [], []
            for coin in ("BTC", "ETH", "SOL"):
                await deployment.clear_twin_requests()
                started = time.perf_counter()
                await stub.GetSignal(signal_pb2.GetSignalRequest(symbol=coin))
                cold = (time.perf_counter() - started) * 1000
                slowest, together = await deployment.replay_ms()
                ratios.append(cold / slowest)
                floors.append(cold / together)
                print(
                    f"  cold GetSignal({coin}): {cold:.0f} ms; its upstream calls replayed: slowest alone "
                    f"{slowest:.0f} ms, all at once {together:.0f} ms"
                )
            ratio = statistics.median(ratios)
            verdicts.append(("cold signal ratio <= 1.15", ratio <= 1.15))
            verdict = "OK" if ratio <= 1.15 else "ABOVE TARGET"
            print(
                f"cold signal latency / slowest single upstream call: median ratio {ratio:.2f} (target <= 1.15) "
                f"{verdict}; / the same calls fired at once at the twin: {statistics.median(floors):.2f}"
            )
        # 2. Coalescing: a fresh server process, so the cache is cold.
        deployment.stop()
        deployment = Deployment(latency_ms, endpoint_latency=endpoint_latency)
        await deployment.start()
        await deployment.clear_twin_requests()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{deployment.grpc_port}") as channel:
            stub = signal_pb2_grpc.SignalServiceStub(channel)
            started = time.perf_counter()
            await asyncio.gather(
                *(stub.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=60) for _ in range(1000))
            )
            elapsed = time.perf_counter() - started
        counts = Counter(await deployment.twin_requests())
        worst = max(counts.values())
        verdicts.append(("1 upstream request per endpoint", worst == 1))
        print(
            f"upstream requests for 1,000 concurrent cold GetSignal(BTC): {sum(counts.values())} over {len(counts)} "
            f"endpoints, at most {worst} per endpoint (target 1) {'OK' if worst == 1 else 'ABOVE TARGET'}; "
            f"all answered in {elapsed:.2f} s"
        )
        # 3. Warm throughput, REST through Envoy and gRPC direct, 50 connections, beside the ceiling: a
        # trivial grpc.aio SignalService behind the same Envoy config answering the project's own
        # warm signal. Rounds alternate between the two, so both see the same machine.
        url = f"http://127.0.0.1:{deployment.port}/signals/BTC"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{deployment.grpc_port}") as channel:
            answer = await signal_pb2_grpc.SignalServiceStub(channel).GetSignal(
                signal_pb2.GetSignalRequest(symbol="BTC")
            )
        trivial = Trivial(answer.SerializeToString())
        await trivial.start()
        channels = distinct_channels(deployment.grpc_port, 50)
        trivial_channels = distinct_channels(trivial.grpc_port, 50)
        stubs = [signal_pb2_grpc.SignalServiceStub(c) for c in channels]
        trivial_stubs = [signal_pb2_grpc.SignalServiceStub(c) for c in trivial_channels]
        # Short rounds, each measuring both sides back to back (which goes first alternates), and the
        # median of the rounds' ratios: on a shared 2-core machine a slow spell hits both sides of one
        # round rather than one side; the spread of the rounds' ratios is printed beside it.
        seconds = float(max(1, min(6, round(warm_requests / 5000))))
        rest: dict[str, list[tuple[float, float, float, int]]] = {"project": [], "trivial": []}
        rpc: dict[str, list[tuple[float, float, float, int]]] = {"project": [], "trivial": []}
        trivial_url = f"http://127.0.0.1:{trivial.port}/signals/BTC"
        # gRPC load from h2load when installed (C, like wrk: the servers, not the load generator, are
        # what is measured), else from grpc.aio over 50 channels in this process.
        body = grpc_body_file(signal_pb2.GetSignalRequest(symbol="BTC")) if shutil.which("h2load") else None

        async def rpc_rate(side: str) -> tuple[float, float, float, int]:
            if body is not None:
                return h2load_figures(deployment.grpc_port if side == "project" else trivial.grpc_port, body, seconds)
            return (*await grpc_rate(stubs if side == "project" else trivial_stubs, seconds), 0)

        # The server CPU each round used, per answer: a second view beside throughput. The host gives
        # this VM's cores unevenly from second to second, which moves throughput far more than it
        # moves the CPU a server spends per call.
        assert deployment.server is not None
        server_pid = {"project": deployment.server.pid, "trivial": trivial.processes[0].pid}
        cpu_per_call: dict[str, dict[str, list[float]]] = {
            "rest": {"project": [], "trivial": []},
            "rpc": {"project": [], "trivial": []},
        }

        async def measured(
            kind: str, side: str, rate: Awaitable[tuple[float, float, float, int]]
        ) -> tuple[float, float, float, int]:
            used = cpu_seconds(server_pid[side])
            figures = await rate
            answers = figures[0] * seconds
            if answers > 0:
                cpu_per_call[kind][side].append((cpu_seconds(server_pid[side]) - used) / answers * 1e6)
            return figures

        metrics_url = f"http://127.0.0.1:{deployment.metrics_port}/metrics"
        try:
            await rest_rate(url, 1.0)  # warm-up: connections, signal memo, caches
            await rest_rate(trivial_url, 1.0)
            await grpc_rate(stubs, 1.0)
            await grpc_rate(trivial_stubs, 1.0)
            connections = established_to(deployment.grpc_port) - 1  # Envoy's own connection
            failed_before = await failed_rpcs(metrics_url, GET_SIGNAL_PATH)
            for round_number in range(rounds):
                sides = ("project", "trivial") if round_number % 2 == 0 else ("trivial", "project")
                for side in sides:
                    rest[side].append(
                        await measured("rest", side, rest_rate(url if side == "project" else trivial_url, seconds))
                    )
                for side in sides:
                    rpc[side].append(await measured("rpc", side, rpc_rate(side)))
            failed_rpc = await failed_rpcs(metrics_url, GET_SIGNAL_PATH) - failed_before
        finally:
            for channel in trivial_channels:
                await channel.close()
            trivial.stop()
        rest_tool = "wrk" if shutil.which("wrk") else "aiohttp loop; install wrk for a lighter load generator"
        rpc_tool = (
            "h2load, 50 HTTP/2 connections"
            if body is not None
            else f"grpc.aio, {connections} TCP connections; h2load (nghttp2-client) would be a lighter load generator"
        )
        for name, figures, target, latency, spent in (
            (
                "warm GET /signals/BTC through Envoy, 50 connections",
                rest,
                f"({rest_tool}, {rounds} x {seconds:g} s)",
                ("p50", "p99"),
                cpu_per_call["rest"],
            ),
            (
                "warm GetSignal over gRPC, 50 concurrent calls",
                rpc,
                f"({rpc_tool}, {rounds} x {seconds:g} s)",
                ("mean", "max") if body is not None else ("p50", "p99"),
                cpu_per_call["rpc"],
            ),
        ):
            mine = statistics.median(f[0] for f in figures["project"])
            ceiling = statistics.median(f[0] for f in figures["trivial"])
            typical = statistics.median(f[1] for f in figures["project"])
            slow = statistics.median(f[2] for f in figures["project"])
            ratios = [p[0] / t[0] for p, t in zip(figures["project"], figures["trivial"], strict=True)]
            ratio = statistics.median(ratios)
            low, high = median_interval(ratios)
            verdict = "OK" if ratio >= 0.95 else "BELOW TARGET"
            verdicts.append((f"{name}: ratio >= 0.95", ratio >= 0.95))
            print(
                f"{name} {target}: {mine:,.0f} req/s ({latency[0]} {typical:.1f} ms, {latency[1]} {slow:.1f} ms); "
                f"trivial SignalService behind the same config {ceiling:,.0f} req/s; ratio {ratio:.2f}, median of "
                f"the rounds (90% interval {low:.2f}-{high:.2f}; rounds ranged {min(ratios):.2f}-{max(ratios):.2f}; "
                f"ratio of the medians {mine / ceiling:.2f}) (target >= 0.95) {verdict}"
            )
            if len(spent["project"]) == len(spent["trivial"]) == rounds:
                # Calls per CPU-second of the server, project over trivial: the same comparison with the
                # CPU the host happened to give each round taken out.
                efficiency = [t / p for p, t in zip(spent["project"], spent["trivial"], strict=True)]
                low, high = median_interval(efficiency)
                print(
                    f"  server CPU per answer: {statistics.median(spent['project']):.0f} us, trivial "
                    f"{statistics.median(spent['trivial']):.0f} us; answers per server CPU-second, project / "
                    f"trivial: {statistics.median(efficiency):.2f} (90% interval {low:.2f}-{high:.2f})"
                )
        failed = sum(f[3] for f in rest["project"])
        verdicts.append(("no failed warm REST answer", failed == 0))
        if failed:
            print(f"  {failed} warm REST answers were not 200")
        failed_rpc += sum(f[3] for f in rpc["project"])
        verdicts.append(("no failed warm gRPC answer", failed_rpc == 0))
        if failed_rpc:
            print(f"  {failed_rpc} warm gRPC calls did not end OK")
        verdicts.append(("50 distinct gRPC connections", connections >= 50))

        def grpc_call() -> Awaitable[object]:
            call: Awaitable[object] = stubs[next(turn) % 50].GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"))
            return call

        turn = iter(range(10**9))
        # 4. Memory: RSS after warm-up and after many more warm requests.
        assert deployment.server is not None
        before = rss_mb(deployment.server.pid)
        await load(grpc_call, rss_requests, 50)
        after = rss_mb(deployment.server.pid)
        for channel in channels:
            await channel.close()
        flat = after < 150 and after - before < 15
        verdicts.append(("server RSS flat, < 150 MB", flat))
        print(
            f"server RSS: {before:.0f} MB after warm-up, {after:.0f} MB after {rss_requests:,} more warm requests "
            f"(target flat, < 150 MB) {'OK' if flat else 'ABOVE TARGET'}"
        )
    finally:
        deployment.stop()
    missed = [name for name, ok in verdicts if not ok]
    print(
        f"service verdict: {len(verdicts) - len(missed)} of {len(verdicts)} targets met"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-trivial":
        answer = signal_pb2.Signal.FromString(Path(sys.argv[3]).read_bytes())
        # On the project's own event loop (EVENT_LOOP): the ceiling of the same framework.
        run_loop(serve_trivial(int(sys.argv[2]), answer), load_settings().event_loop)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency-ms", type=float, default=100.0, help="twin latency per upstream call")
    parser.add_argument("--warm-requests", type=int, default=5000)
    parser.add_argument("--rss-requests", type=int, default=100_000)
    parser.add_argument(
        "--rounds", type=int, default=30, help="paired rounds (project, trivial) of the warm throughput comparison"
    )
    parser.add_argument(
        "--endpoint-latency",
        action="append",
        default=[],
        metavar="PROVIDER:/PATH=MS",
        help="extra latency on one upstream endpoint, e.g. coinglass:/api/futures/coins-markets=200 (repeatable)",
    )
    args = parser.parse_args()
    endpoint_latency = {}
    for item in args.endpoint_latency:
        target, _, ms = item.rpartition("=")
        endpoint_latency[target] = float(ms)
    # The load generator on the same loop as the servers: its gRPC client is Python too, and the
    # lighter it is, the more the gRPC figure measures the servers rather than itself.
    run_loop(
        run(args.latency_ms, args.warm_requests, args.rss_requests, endpoint_latency, args.rounds),
        load_settings().event_loop,
    )


if __name__ == "__main__":
    main()
