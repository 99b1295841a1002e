"""Backtest speed: ``python -m bench.backtest``.

GET /backtest/BTC through Envoy and the grpc.aio server, 180 days of 4h bars (the bundled real
history served by the twin), measured:
- cold: nothing cached, every upstream call answered after 100 ms (target < 3 s: the pages of every
  series are fetched concurrently, so the cold cost is about one round of calls plus the compute);
- warm: upstream pages cached, the report computed again (a different horizon each time, so the
  service's own 60 s memo of identical requests does not answer it; target < 1 s on one core).
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from tests.stack import running_stack
from twin import RecordedTwin

PERIOD = {"start": "2024-11-14T00:00:00Z", "end": "2025-05-13T08:00:00Z"}  # 180 days of 4h bars


async def run(latency_ms: float = 100.0, warm_runs: int = 5) -> None:
    twin = RecordedTwin(latency_ms=latency_ms)
    await twin.start()
    try:
        async with running_stack(twin) as stack, httpx.AsyncClient(base_url=stack.rest_url, timeout=30) as client:
            started = time.perf_counter()
            cold = await client.get("/backtest/BTC", params={**PERIOD, "horizon_bars": 6})
            cold_s = time.perf_counter() - started
            assert cold.status_code == 200, cold.text
            calls = twin.request_count("coinglass")
            warm = []
            for horizon in range(7, 7 + warm_runs):
                started = time.perf_counter()
                answer = await client.get("/backtest/BTC", params={**PERIOD, "horizon_bars": horizon})
                warm.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text
            body = cold.json()
    finally:
        await twin.stop()
    print("backtest, 180 days of 4h bars (GET /backtest/BTC through Envoy):")
    print(
        f"  cold, {latency_ms:.0f} ms per upstream call: {cold_s:.2f} s, {calls} upstream calls "
        f"({body['barsScored']} bars scored)   target < 3 s"
    )
    print(
        f"  warm upstream cache, report recomputed: median {statistics.median(warm):.2f} s, "
        f"max {max(warm):.2f} s over {warm_runs} runs   target < 1 s"
    )
    print(f"  answer without bars: {len(cold.text):,} characters   target < 100,000 (GPT Actions)")


if __name__ == "__main__":
    asyncio.run(run())
