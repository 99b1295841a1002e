"""python -m twin --host 127.0.0.1 --port 9900 [--latency-ms N] [--plan professional] [--as-recorded]

Runs the recorded twin until SIGINT/SIGTERM; prints one line with its URL once it is listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from twin.coinglass import PLANS
from twin.server import RecordedTwin


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m twin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9900, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="extra latency on every provider answer")
    parser.add_argument("--plan", default="professional", choices=PLANS, help="simulated Coinglass plan")
    parser.add_argument(
        "--as-recorded",
        action="store_true",
        help="serve the generated data with its recorded dates (2025-11-28) instead of moved to the present",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    # A standalone twin (make demo) may run for days: its data follows the clock, hour by hour.
    twin = RecordedTwin(
        plan=args.plan, latency_ms=args.latency_ms, shift_to_present=not args.as_recorded, follow_clock=True
    )
    await twin.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"recorded twin listening on {twin.url} (plan {twin.plan})", flush=True)
    try:
        await stop.wait()
    finally:
        await twin.stop()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
