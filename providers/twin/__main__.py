"""``python -m providers.twin --port 9900``: run the recorded twin until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal

from providers.twin.server import RecordedTwin


async def _run(host: str, port: int, latency_ms: float, plan: str) -> None:
    twin = RecordedTwin(plan=plan)
    twin.set_latency(latency_ms)
    await twin.start(host, port)
    print(f"recorded twin listening on {twin.url} (plan {plan}, latency {latency_ms:g} ms)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await twin.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="The providers' recorded twin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9900)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--plan", default="professional", choices=["hobbyist", "startup", "standard", "professional"])
    args = parser.parse_args()
    asyncio.run(_run(args.host, args.port, args.latency_ms, args.plan))


if __name__ == "__main__":
    main()
