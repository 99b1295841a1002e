"""Scale-out benchmark: two server replicas sharing one Redis behind one Envoy (``python -m bench.scaleout``).

Measures what REDIS_URL is for: N replicas spend the upstream quota of one.
- upstream requests for 1,000 concurrent cold GetSignal(BTC) split over both replicas (target: one
  per endpoint, as with one replica);
- warm GET /signals/BTC through the one Envoy round-robining over both replicas.
Needs ``redis-server`` on PATH (Debian package).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from collections import Counter

import grpc
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc

from bench.service import Deployment, wrk
from tests.redis_server import INSTALL_HINT, redis_server


async def run(latency_ms: float, replicas: int = 2, calls: int = 1000) -> None:
    print(f"# scale-out: {replicas} replicas sharing one redis-server, one Envoy (twin latency {latency_ms:g} ms)")
    if shutil.which("redis-server") is None:
        print(f"  skipped: {INSTALL_HINT}")
        return
    with redis_server() as redis:
        deployment = Deployment(latency_ms, replicas=replicas, redis_url=redis.url)
        await deployment.start()
        try:
            await deployment.clear_twin_requests()
            channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for port in deployment.grpc_ports]
            stubs = [signal_pb2_grpc.SignalServiceStub(channel) for channel in channels]
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    stubs[n % replicas].GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=60)
                    for n in range(calls)
                )
            )
            elapsed = time.perf_counter() - started
            for channel in channels:
                await channel.close()
            counts = Counter(await deployment.twin_requests())
            worst = max(counts.values())
            print(
                f"upstream requests for {calls:,} concurrent cold GetSignal(BTC) over {replicas} replicas: "
                f"{sum(counts.values())} over {len(counts)} endpoints, at most {worst} per endpoint (target 1) "
                f"{'OK' if worst == 1 else 'ABOVE TARGET'}; all answered in {elapsed:.2f} s"
            )
            url = f"http://127.0.0.1:{deployment.port}/signals/BTC"
            if shutil.which("wrk"):
                figures = wrk(url)
                label = f"warm GET /signals/BTC through Envoy over {replicas} replicas, 50 connections (wrk, 10 s)"
                print(f"{label}: {figures}")
        finally:
            deployment.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency-ms", type=float, default=100.0, help="twin latency per upstream call")
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(run(args.latency_ms, args.replicas))


if __name__ == "__main__":
    main()
