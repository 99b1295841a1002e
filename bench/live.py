"""Signal streams at scale: ``python -m bench.live``.

Twin, server and Envoy as separate processes. 1,000 concurrent SSE watchers of BTC through Envoy
(caches off and a 1 s refresh, so every refresh round reaches upstream: the worst case), measured:
- upstream requests per refresh round with 1,000 watchers (target: what one watcher costs);
- server memory per watcher (RSS with the watchers minus RSS before, divided by their number);
- time from a data change upstream (LunarCrush starts failing, the score moves) to each watcher's
  event, p50 / p99 / last.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time

import aiohttp
import httpx

from bench.service import Deployment, pct, rss_mb

WATCHERS = 1000
REFRESH_SECONDS = 1.0


async def _watch(
    session: aiohttp.ClientSession, url: str, connected: list[int], all_connected: asyncio.Event,
    changed_at: list[float], arrivals: list[float],
) -> None:  # fmt: skip
    async with session.get(url) as response:
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("kind") != "SIGNAL":
                continue
            if not changed_at:
                if len(connected) < WATCHERS:
                    connected.append(1)
                    if len(connected) == WATCHERS:
                        all_connected.set()
                continue
            missing = {m["factor"] for m in event["signal"].get("missingFactors", [])}
            if "social" in missing:
                arrivals.append(time.perf_counter() - changed_at[0])
                return


async def run(watchers: int = WATCHERS) -> None:
    os.environ.update(
        {
            "CACHE_ENABLED": "false",
            "SIGNAL_CACHE_SECONDS": "0",
            "WATCH_REFRESH_SECONDS": str(REFRESH_SECONDS),
            "WATCH_MAX_STREAMS": str(watchers + 10),
            "WATCH_MAX_PER_CLIENT": str(watchers + 10),  # every watcher here comes from one address
            "HISTORY_ENABLED": "false",
            "DATA_DIR": tempfile.mkdtemp(prefix="bench-live-"),
        }
    )
    deployment = Deployment(latency_ms=20.0)
    await deployment.start()
    try:
        assert deployment.server is not None
        url = f"http://127.0.0.1:{deployment.port}/signals/BTC/stream?min_score_change=0.01"
        async with httpx.AsyncClient(timeout=30) as client:
            await client.get(f"http://127.0.0.1:{deployment.port}/signals/BTC")  # warm: connections, imports
        rss_before = rss_mb(deployment.server.pid)
        connected: list[int] = []
        all_connected = asyncio.Event()
        changed_at: list[float] = []
        arrivals: list[float] = []
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
            tasks = [
                asyncio.create_task(_watch(session, url, connected, all_connected, changed_at, arrivals))
                for _ in range(watchers)
            ]
            await asyncio.wait_for(all_connected.wait(), 120)
            rss_with = rss_mb(deployment.server.pid)
            await deployment.clear_twin_requests()
            window = 5.0
            await asyncio.sleep(window)  # steady state: count upstream requests over whole rounds
            requests = sum((await deployment.twin_requests()).values())
            async with httpx.AsyncClient() as control:
                changed_at.append(time.perf_counter())
                fault = {"provider": "lunarcrush", "endpoint": "*", "kind": "server_error"}
                (await control.post(f"{deployment.twin}/_twin/faults", json=fault)).raise_for_status()
            await asyncio.wait_for(asyncio.gather(*tasks), 120)
    finally:
        deployment.stop()
    rounds = window / REFRESH_SECONDS
    every = f"{REFRESH_SECONDS:g} s"
    print(f"signal streams: {watchers:,} SSE watchers of BTC through Envoy, caches off, refresh every {every}")
    print(
        f"  upstream requests per refresh round: {requests / rounds:.1f} ({requests} in {window:g} s)   "
        "target: what one watcher costs (one signal's calls)"
    )
    print(
        f"  server RSS {rss_before:.0f} MB -> {rss_with:.0f} MB: "
        f"{(rss_with - rss_before) * 1024 / watchers:.1f} KB per watcher"
    )
    arrivals_ms = sorted(a * 1000 for a in arrivals)
    print(
        f"  data change -> event: p50 {statistics.median(arrivals_ms):.0f} ms, p99 {pct(arrivals_ms, 99):.0f} ms, "
        f"last {arrivals_ms[-1]:.0f} ms (includes up to one refresh interval)"
    )


if __name__ == "__main__":
    asyncio.run(run())
