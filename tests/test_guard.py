"""The guard on a real grpc.aio server: unexpected failures never reach the caller as text,
and the server's deadline ends a call that overruns it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from providers.errors import ErrorKind, ProviderError
from service.rpc.client_limit import ClientLimiter
from service.rpc.guard import REUSED_ANSWERS, Guard, GuardedServer, answers_ready
from service.rpc.metrics import RPC_TALLY
from signals.errors import BacktestRefusedError, SignalUnavailableError, WatchLimitError

SECRET_DETAIL = "stack detail with cg-SECRET-KEY-7f3a9"


async def _raises_runtime_error(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError(SECRET_DETAIL)


async def _raises_timeout_error(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise TimeoutError(SECRET_DETAIL)  # a library's own timeout, not the RPC's deadline


async def _statistics_bug(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise ValueError("math domain error")  # a numeric bug deep in a report, not a bad request


async def _refused(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise BacktestRefusedError("horizon_bars must be between 1 and 42, got 99")


async def _no_data(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise SignalUnavailableError("NOPE", {}, not_found=True)


async def _too_many(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise WatchLimitError("at most 2 streams per client: close one first")


async def _provider_plan(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise ProviderError("coinglass", "/api/futures/liquidation/heatmap", ErrorKind.PLAN, "upgrade")


OVERRUN_STARTS: list[float] = []  # when each Overruns call reached its handler


async def _overruns(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    OVERRUN_STARTS.append(time.monotonic())
    await asyncio.sleep(5)
    return b"late"


HANDLERS: dict[str, Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]] = {
    "RuntimeError": _raises_runtime_error,
    "TimeoutError": _raises_timeout_error,
    "Overruns": _overruns,
    "StatisticsBug": _statistics_bug,
    "Refused": _refused,
    "NoData": _no_data,
    "TooMany": _too_many,
    "ProviderPlan": _provider_plan,
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


@pytest.mark.parametrize("method", ["RuntimeError", "TimeoutError", "StatisticsBug"])
async def test_an_unexpected_exception_is_internal_with_a_generic_message(target: str, method: str) -> None:
    error = await _call(target, method)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error: the failure was logged"


@pytest.mark.parametrize(
    ("method", "code", "words"),
    [
        ("Refused", grpc.StatusCode.INVALID_ARGUMENT, "horizon_bars must be between 1 and 42"),
        ("NoData", grpc.StatusCode.NOT_FOUND, "unknown coin NOPE"),
        ("TooMany", grpc.StatusCode.RESOURCE_EXHAUSTED, "at most 2 streams per client"),
        ("ProviderPlan", grpc.StatusCode.PERMISSION_DENIED, "your coinglass plan does not include"),
    ],
)
async def test_a_domain_or_provider_error_gets_its_status_from_the_one_table(
    target: str, method: str, code: grpc.StatusCode, words: str
) -> None:
    error = await _call(target, method)
    assert error.code() == code
    assert words in (error.details() or "")


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
    # On a loaded machine grpc may drop a call whose 0.1 s deadline passed before its handler ran:
    # nothing to count then, so the call is made again (a handler that ran is what is judged).
    for _ in range(5):
        before, starts = RPC_TALLY.row(method, "DEADLINE_EXCEEDED")[0], len(OVERRUN_STARTS)
        async with grpc.aio.insecure_channel(target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary(method)(b"", timeout=0.1)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        if len(OVERRUN_STARTS) > starts:
            break
    assert len(OVERRUN_STARTS) > starts, "the handler never ran within the client's deadline in 5 calls"
    # The server learns of it a moment after the client: wait for the count, not a fixed time.
    async with asyncio.timeout(10):
        while RPC_TALLY.row(method, "DEADLINE_EXCEEDED")[0] == before:  # noqa: ASYNC110 - a counter, no event to wait on
            await asyncio.sleep(0.01)
    assert RPC_TALLY.row(method, "CANCELLED")[0] == 0


class _Warm:
    """A servicer whose answer is ready for b"warm" and must be computed for anything else."""

    def __init__(self) -> None:
        self.computed = 0

    def _ready(self, request: bytes) -> bytes | None:
        if request == b"broken":
            raise RuntimeError(SECRET_DETAIL)
        return b"ready" if request == b"warm" else None

    @answers_ready(_ready)
    async def Get(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.computed += 1
        await asyncio.sleep(0)  # a real computation awaits: the deadline bookkeeping applies
        return b"computed"


@pytest.fixture
async def warm_target() -> AsyncIterator[tuple[str, _Warm, list[float]]]:
    servicer = _Warm()
    server = grpc.aio.server()
    # One token per client, refilled once a second of this clock: a second call at once is over the limit.
    now = [0.0]
    limiter = ClientLimiter(1, 1, clock=lambda: now[0])
    GuardedServer(server, Guard(deadline_seconds=1, limiter=limiter)).add_registered_method_handlers(
        "test.Warm", {"Get": grpc.unary_unary_rpc_method_handler(servicer.Get)}
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", servicer, now
    await server.stop(0)


async def test_a_ready_answer_is_given_without_the_handler_and_counted_like_any_other(
    warm_target: tuple[str, _Warm, list[float]],
) -> None:
    target, servicer, _ = warm_target
    method = "/test.Warm/Get"
    ok_before = RPC_TALLY.row(method, "OK")[0]
    async with grpc.aio.insecure_channel(target) as channel:
        assert await channel.unary_unary(method)(b"warm", timeout=5) == b"ready"
        assert servicer.computed == 0
        # The client limit comes first, ready answer or not.
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await channel.unary_unary(method)(b"warm", timeout=5)
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert RPC_TALLY.row(method, "OK")[0] == ok_before + 1


async def test_an_answer_not_ready_runs_the_handler_and_a_failing_check_is_internal(
    warm_target: tuple[str, _Warm, list[float]],
) -> None:
    target, servicer, now = warm_target
    async with grpc.aio.insecure_channel(target) as channel:
        assert await channel.unary_unary("/test.Warm/Get")(b"cold", timeout=5) == b"computed"
    assert servicer.computed == 1
    now[0] += 1.0  # the client's token refills
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary("/test.Warm/Get")(b"broken", timeout=5)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error: the failure was logged"
