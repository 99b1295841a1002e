"""Load without errors: ``python -m bench.load``.

Drives a mix of REST calls through Envoy (20,000 requests, 100 concurrent connections by default)
while the twin serves faults (OKX 500s, CoinAPI HTML pages, LunarCrush truncated JSON, Coinglass
503s on the heatmap), and reports the count per status, 5xx that are not mapped upstream failures,
transport errors and the server's RSS before and after.

The load comes from an aiohttp loop in this process rather than wrk: every answer's body is read
and checked (a 200 must parse as JSON, a 5xx must be 503/504 with our {"code", "message"} body),
which wrk's Lua hooks could only approximate, and the total is exact.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import httpx

from bench.service import Deployment, rss_mb

# Weighted mix: signals (cached a second), Coinglass data (one part always failing), raw market data.
MIX: tuple[tuple[str, int], ...] = (
    ("/signals/BTC", 4),
    ("/signals/ETH", 3),
    ("/coinglass/markets/BTC", 2),
    ("/coinglass/liquidations/BTC", 1),
    ("/coinglass/liquidations/ETH/heatmap", 1),  # the twin answers 503: a mapped UNAVAILABLE
    ("/coinglass/funding-rate/SOL?interval=h8", 1),
    ("/coinglass/dashboard/ETH", 1),
    ("/market/SOL", 3),
)
FAULTS: tuple[dict[str, object], ...] = (
    {"provider": "okx", "endpoint": "*", "kind": "server_error"},
    {"provider": "coinapi", "endpoint": "*", "kind": "html"},
    {"provider": "lunarcrush", "endpoint": "*", "kind": "truncated_json"},
    {
        "provider": "coinglass",
        "endpoint": "/api/futures/liquidation/aggregated-heatmap/model1",
        "kind": "server_error",
        "status": 503,
    },
)
MAPPED_5XX = frozenset({503, 504})
# The one path whose provider is down for good (the heatmap's 503 above): the only one that may fail.
ALWAYS_FAILING = frozenset({"/coinglass/liquidations/ETH/heatmap"})
RSS_LIMIT_MB = 150.0
RSS_GROWTH_MB = 20.0


@dataclass
class LoadReport:
    total: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    by_path: Counter[tuple[str, int]] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    bad_answers: list[str] = field(default_factory=list)  # unmapped 5xx, non-JSON or truncated bodies
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        statuses = ", ".join(f"{status}: {n:,}" for status, n in sorted(self.statuses.items()))
        lat = sorted(self.latencies_ms) or [0.0]
        p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return (
            f"{self.total:,} requests in {self.seconds:.1f} s ({self.rate:,.0f} req/s, p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms); statuses {{{statuses}}}; unmapped 5xx or bad bodies: {len(self.bad_answers)}; "
            f"transport errors: {sum(self.transport_errors.values())}"
        )


def check_answer(status: int, body: bytes) -> str | None:
    """What is wrong with one answer, or None. Every answer of ours is JSON; errors carry code and message."""
    try:
        payload = json.loads(body)
    except ValueError:
        return f"{status} with a body that is not JSON (truncated?): {body[:120]!r}"
    if status == 200:
        return None if isinstance(payload, dict) and payload else f"200 with an empty body: {body[:120]!r}"
    if not (isinstance(payload, dict) and isinstance(payload.get("code"), int) and payload.get("message")):
        return f"{status} without our error body: {body[:120]!r}"
    if status >= 500 and status not in MAPPED_5XX:
        return f"unmapped {status}: {body[:120]!r}"
    return None


async def drive(base_url: str, total: int, concurrency: int, mix: tuple[tuple[str, int], ...] = MIX) -> LoadReport:
    """``total`` GETs over ``concurrency`` keep-alive connections, cycling through the weighted mix."""
    report = LoadReport(total=total)
    paths = itertools.cycle([path for path, weight in mix for _ in range(weight)])
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)

    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                path = next(paths)
                started = time.perf_counter()
                try:
                    async with session.get(path) as response:
                        body = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    report.transport_errors[type(exc).__name__] += 1
                    continue
                report.latencies_ms.append((time.perf_counter() - started) * 1000)
                report.statuses[status] += 1
                report.by_path[(path, status)] += 1
                problem = check_answer(status, body)
                if problem is not None:
                    report.bad_answers.append(f"GET {path}: {problem}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        report.seconds = time.perf_counter() - started
    return report


def judge(report: LoadReport, before_mb: float, after_mb: float) -> list[tuple[str, bool]]:
    """Every target the benchmark prints, each with whether it was met; the verdict is all of them."""
    failing = {path for (path, status), _ in report.by_path.items() if status != 200}
    return [
        (f"every one of {report.total:,} requests answered", sum(report.statuses.values()) == report.total),
        ("zero unmapped 5xx, zero bad bodies", not report.bad_answers),
        ("zero transport errors", not report.transport_errors),
        ("failures only where a provider is down for good", failing <= ALWAYS_FAILING),
        (f"server RSS after < {RSS_LIMIT_MB:.0f} MB ({after_mb:.0f} MB)", after_mb < RSS_LIMIT_MB),
        (
            f"server RSS growth < {RSS_GROWTH_MB:.0f} MB ({after_mb - before_mb:+.0f} MB)",
            after_mb - before_mb < RSS_GROWTH_MB,
        ),
    ]


async def switch_faults(twin_url: str, faults: tuple[dict[str, object], ...] = FAULTS) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        reply = await client.post(f"{twin_url}/_twin/faults", json=list(faults))
        reply.raise_for_status()


async def run(total: int, concurrency: int, latency_ms: float) -> tuple[LoadReport, bool]:
    """The report, and whether every target was met."""
    print(f"# load: {total:,} REST requests, {concurrency} connections, faults in the twin (aiohttp load loop)")
    deployment = Deployment(latency_ms)  # Envoy rendered without a client rate limit: no 429s here
    await deployment.start()
    try:
        await switch_faults(deployment.twin)
        base_url = f"http://127.0.0.1:{deployment.port}"
        await drive(base_url, 200, 20)  # warm-up: connections, caches
        assert deployment.server is not None
        before = rss_mb(deployment.server.pid)
        report = await drive(base_url, total, concurrency)
        after = rss_mb(deployment.server.pid)
        print(report.summary())
        for (path, status), n in sorted(report.by_path.items()):
            print(f"  {path:45} {status}: {n:,}")
        for problem in report.bad_answers[:10]:
            print(f"  BAD {problem}")
        print(f"server RSS: {before:.0f} MB before, {after:.0f} MB after")
        checks = judge(report, before, after)
        for target, met in checks:
            print(f"  {target}: {'OK' if met else 'FAILED'}")
        passed = all(met for _, met in checks)
        print(f"verdict: {'OK' if passed else 'FAILED'}")
        return report, passed
    finally:
        deployment.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="twin latency per upstream call")
    args = parser.parse_args()
    _, passed = asyncio.run(run(args.requests, args.concurrency, args.latency_ms))
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
