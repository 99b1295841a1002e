"""Call cryptosignals from another service (blocking stubs): a signal, a stream's first event, an error.

    pip install cryptosignals-client
    CRYPTOSIGNALS_API_KEY=... python quickstart.py signals.internal:50051

The key is read from the environment (never from the command line, where `ps` shows it); without
one, calls go out without a key (a server without SIGNAL_API_KEYS accepts them).
"""

from __future__ import annotations

import os
import sys

import grpc
from cryptosignals.v1 import live_pb2, live_pb2_grpc, signal_pb2, signal_pb2_grpc
from cryptosignals_client import channel


def main(target: str) -> None:
    with channel(target, api_key=os.environ.get("CRYPTOSIGNALS_API_KEY")) as ch:
        signals = signal_pb2_grpc.SignalServiceStub(ch)

        # A signal: retried on UNAVAILABLE; the channel's 20 s deadline, shortened to 10 s for this call.
        signal = signals.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=10)
        direction = signal_pb2.Direction.Name(signal.signal)
        print(f"signal {signal.symbol} {direction} score={signal.score:.1f} {signal.reason}")

        # A stream: the current signal at once, then one event per change (and heartbeats).
        stream = live_pb2_grpc.LiveServiceStub(ch).WatchSignals(live_pb2.WatchSignalsRequest(symbol="ETH"))
        for event in stream:
            if event.kind == live_pb2.SIGNAL:
                print(f"event {event.symbol} {signal_pb2.Direction.Name(event.signal.signal)}")
                break
        stream.cancel()

        # An error, handled by its status code.
        try:
            signals.GetSignal(signal_pb2.GetSignalRequest(symbol="NOT_A_COIN!"))
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                print(f"refused {error.code().name}: {error.details()}")
            elif error.code() == grpc.StatusCode.UNAUTHENTICATED:
                sys.exit(f"check CRYPTOSIGNALS_API_KEY: {error.details()}")
            else:
                raise


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "localhost:50051")
