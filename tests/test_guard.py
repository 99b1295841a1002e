"""The guard on a real grpc.aio server: unexpected failures never reach the caller as text,
and the server's deadline ends a call that overruns it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from service.guard import REUSED_ANSWERS, Guard, GuardedServer
from service.metrics import RPC_TALLY

SECRET_DETAIL = "stack detail with cg-SECRET-KEY-7f3a9"


async def _raises_runtime_error(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError(SECRET_DETAIL)


async def _raises_timeout_error(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise TimeoutError(SECRET_DETAIL)  # a library's own timeout, not the RPC's deadline


async def _overruns(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await asyncio.sleep(5)
    return b"late"


HANDLERS: dict[str, Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]] = {
    "RuntimeError": _raises_runtime_error,
    "TimeoutError": _raises_timeout_error,
    "Overruns": _overruns,
}


@pytest.fixture(scope="module")
async def target() -> AsyncIterator[str]:
    server = grpc.aio.server()
    GuardedServer(server, Guard(deadline_seconds=0.3)).add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Guarded", {name: grpc.unary_unary_rpc_method_handler(h) for name, h in HANDLERS.items()}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


async def _call(target: str, method: str) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/test.Guarded/{method}")(b"", timeout=5)
    return caught.value


@pytest.mark.parametrize("method", ["RuntimeError", "TimeoutError"])
async def test_an_unexpected_exception_is_internal_with_a_generic_message(target: str, method: str) -> None:
    error = await _call(target, method)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error: the failure was logged"


async def test_a_call_past_the_server_deadline_is_deadline_exceeded_saying_so(target: str) -> None:
    error = await _call(target, "Overruns")
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "deadline of 0.3 s" in (error.details() or "")


def test_a_reused_answer_is_serialized_once_and_a_new_one_again() -> None:
    calls: list[object] = []

    def serialize(message: object) -> bytes:
        calls.append(message)
        return repr(message).encode()

    async def behaviour(request: object, context: object) -> object:
        return request

    method = next(iter(REUSED_ANSWERS))
    handler = Guard(deadline_seconds=1).wrap(
        method, grpc.unary_unary_rpc_method_handler(behaviour, response_serializer=serialize)
    )
    first, second = ["first"], ["second"]
    assert handler.response_serializer(first) == b"['first']"
    assert handler.response_serializer(first) == b"['first']"
    assert handler.response_serializer(second) == b"['second']"
    assert calls == [first, second]  # the same object twice: its bytes were kept
    # Any other method serializes every answer: its servicer may change a message it hands out again.
    other = Guard(deadline_seconds=1).wrap(
        "/test.Guarded/Other", grpc.unary_unary_rpc_method_handler(behaviour, response_serializer=serialize)
    )
    assert other.response_serializer is serialize


async def test_a_call_past_the_clients_own_deadline_is_counted_as_deadline_exceeded(target: str) -> None:
    # grpc ends the call at the client's deadline (sooner than the server's 0.3 s); the guard still
    # counts it as a deadline, not as a client that went away.
    method = "/test.Guarded/Overruns"
    before = RPC_TALLY.row(method, "DEADLINE_EXCEEDED")[0]
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(method)(b"", timeout=0.1)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The server learns of it a moment after the client: wait for the count, not a fixed time.
    async with asyncio.timeout(10):
        while RPC_TALLY.row(method, "DEADLINE_EXCEEDED")[0] == before:  # noqa: ASYNC110 - a counter, no event to wait on
            await asyncio.sleep(0.01)
    assert RPC_TALLY.row(method, "CANCELLED")[0] == 0
