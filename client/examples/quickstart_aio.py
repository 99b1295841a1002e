"""The same calls with asyncio stubs: a signal, a stream's first event, an error by status code.

CRYPTOSIGNALS_API_KEY=... python quickstart_aio.py signals.internal:50051
"""

from __future__ import annotations

import asyncio
import os
import sys

import grpc
from cryptosignals.v1 import live_pb2, live_pb2_grpc, signal_pb2, signal_pb2_grpc
from cryptosignals_client import aio_channel


async def main(target: str) -> None:
    async with aio_channel(target, api_key=os.environ.get("CRYPTOSIGNALS_API_KEY")) as ch:
        signals = signal_pb2_grpc.SignalServiceStub(ch)

        signal = await signals.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=10)
        print(f"signal {signal.symbol} {signal_pb2.Direction.Name(signal.signal)} score={signal.score:.1f}")

        stream = live_pb2_grpc.LiveServiceStub(ch).WatchSignals(live_pb2.WatchSignalsRequest(symbol="ETH"))
        async for event in stream:
            if event.kind == live_pb2.SIGNAL:
                print(f"event {event.symbol} {signal_pb2.Direction.Name(event.signal.signal)}")
                break
        stream.cancel()

        try:
            await signals.GetSignal(signal_pb2.GetSignalRequest(symbol="NOT_A_COIN!"))
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            print(f"refused {error.code().name}: {error.details()}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "localhost:50051"))
