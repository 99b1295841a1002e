"""``make bench``: every benchmark, each printing its figures beside its target."""

import asyncio

from bench import backtest, history, live, load, scaleout, scoring, service
from service.rpc.server import run_loop
from service.settings import load_settings

scoring.main()
# On EVENT_LOOP, as ``python -m bench.service``: its load generator runs on the servers' loop.
run_loop(service.run(latency_ms=100.0, warm_requests=5000, rss_requests=100_000), load_settings().event_loop)
asyncio.run(scaleout.run(latency_ms=100.0))
asyncio.run(load.run(total=20_000, concurrency=100, latency_ms=20.0))
asyncio.run(backtest.run(latency_ms=100.0))
asyncio.run(history.run())
asyncio.run(live.run())
