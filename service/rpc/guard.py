"""The guard around every unary RPC: the per-client rate limit, the RPC's deadline, metrics, a log line
for every failed or slow RPC, and no unexpected exception's text ever reaching the caller.

It wraps each method's handler once, when the servicer is registered (``GuardedServer`` stands in
for the server in the generated ``add_*_to_server`` functions), not as a grpc.aio server
interceptor: an interceptor runs a chain of coroutines on every call to find the handler, and the
warm signal path is short enough for that to be a fifth of it. Streaming handlers pass through
unwrapped (the live servicer bounds and counts its own streams).

The hot path is kept cheap: no timer per call (``Deadlines`` ends overrunning calls from one sweep
every ``SWEEP_SECONDS``), an answer ready without awaiting (``answers_ready``: a warm signal) handed
over before any deadline bookkeeping, metric children looked up once per (method, code), and no log
line for a fast successful call (Envoy's access log has one per REST request; LOG_LEVEL=DEBUG adds
the server's own line per RPC).

Without the guard, an exception's class name and text would reach the client (and through Envoy,
the REST caller); the guard logs it with a traceback and answers a generic message instead.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
import types
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

from providers.deadline import enter_deadline, leave_deadline
from providers.fairness import ClientShares, set_caller
from service.rpc.auth import OPEN_METHODS, OPEN_PREFIXES, RATE_LIMITED_MESSAGE
from service.rpc.client_limit import ClientLimiter
from service.rpc.metrics import RPC_LATENCY_BUCKETS, RPC_TALLY
from service.rpc.status import status_of

log = logging.getLogger("cryptosignals.rpc")
BAD_BYTES_MESSAGE = "request is not valid: every text parameter must be UTF-8 (use percent-encoded UTF-8 in URLs)"
INTERNAL_MESSAGE = "internal error: the failure was logged"
DEADLINE_SLACK = 0.05  # seconds
# A successful RPC slower than this is logged at INFO even when fast ones are not.
SLOW_RPC_SECONDS = 1.0
# Answers a servicer hands out again and again and never changes once made (a warm signal is one
# message object per computed signal): the bytes of the last one are kept for the next call.
REUSED_ANSWERS = frozenset({"/cryptosignals.v1.SignalService/GetSignal"})
# How often overrunning calls are looked for: a call ends at most this much past its deadline.
SWEEP_SECONDS = 0.05

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
HandlerT = TypeVar("HandlerT", bound=Callable[..., Awaitable[Any]])
Metadata = Sequence[tuple[str, str | bytes]]

# The metadata of the call being served, as grpc decoded it to find the handler (``_Routes``). Every
# call runs in its own task, so this is the task's own; the guard reads it instead of asking the
# context, which decodes the metadata again on every ask.
_call_metadata: ContextVar[Metadata | None] = ContextVar("rpc_call_metadata", default=None)


def answers_ready(ready: Callable[[Any, Any], Any]) -> Callable[[HandlerT], HandlerT]:
    """Marks a servicer's unary method whose answer is often ready without awaiting (a warm signal):
    ``ready(servicer, request)`` returns that answer, or None to run the method itself.

    The guard asks ``ready`` after the client limit and before the deadline bookkeeping: an answer
    handed over without awaiting cannot overrun a deadline or start an upstream call, so it needs
    neither the sweep's watch nor the deadline the upstream calls inherit. It is counted and timed
    like any other call.
    """

    def mark(method: HandlerT) -> HandlerT:
        method.answer_if_ready = ready  # type: ignore[attr-defined]
        return method

    return mark


class _Undecodable:
    """Stands for a request whose bytes did not parse.

    Through Envoy, a path or query parameter that is not UTF-8 (``/signals/%FF``) becomes a proto
    string field with bad UTF-8; grpcio's own failure would be UNKNOWN (HTTP 500) quoting the
    exception. Parsing tolerantly lets the guard answer INVALID_ARGUMENT instead.
    """


UNDECODABLE = _Undecodable()


def _remembering(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """``serialize``, answering the same message object as last time with the same bytes."""
    last: list[Any] = [None, b""]

    def serialize_once(message: Any) -> bytes:
        if message is last[0]:
            data: bytes = last[1]
            return data
        data = serialize(message)
        last[0], last[1] = message, data
        return data

    return serialize_once


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return UNDECODABLE

    return parse


class Deadlines:
    """Ends calls that overrun the server's deadline, from one sweep instead of a timer per call.

    Every call gets the same allowance, so the calls due first are the ones that started first: the
    in-flight calls are kept in start order (a dict keeps insertion order) and each sweep looks only
    at those due, stopping at the first that is not. A due call's task is cancelled and marked, so
    the guard tells the server's deadline from a client that went away (grpc cancels those too).
    A client's own, sooner deadline is grpc's to enforce: it cancels the call when it passes.

    The guard, on every call, adds the task to ``due`` (starting the sweeper when there is none) and
    takes it out when the call ends, reading ``expired`` to learn whether the sweep cancelled it:
    plain dict and set operations, not method calls, since this is the warm path.
    """

    def __init__(self, allowance: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.allowance = allowance
        self._clock = clock
        self.due: dict[asyncio.Task[Any], float] = {}  # in start order: task -> its deadline on this clock
        self.expired: set[asyncio.Task[Any]] = set()
        self.sweeper: asyncio.Task[None] | None = None

    def start_sweeper(self) -> None:
        self.sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="rpc-deadlines")

    async def _sweep(self) -> None:
        # Runs while calls keep coming; a sweep finding none in flight ends it (the next call starts
        # another). Warm calls finish without ever yielding, so most sweeps find none.
        try:
            while True:
                await asyncio.sleep(SWEEP_SECONDS)
                if not self.due:
                    break
                now = self._clock()
                while self.due:
                    task, at = next(iter(self.due.items()))
                    if at > now:
                        break
                    del self.due[task]
                    self.expired.add(task)
                    task.cancel()
        finally:  # ended, or cancelled with its loop: the next call starts a sweeper on its own loop
            if self.sweeper is asyncio.current_task():
                self.sweeper = None


class Guard:
    """Wraps unary handlers: bounded by ``deadline_seconds`` (or the client's sooner deadline),
    limited per client, logged, counted in metrics, never leaking an unexpected exception's text."""

    def __init__(
        self, deadline_seconds: float, limiter: ClientLimiter | None = None, shares: ClientShares | None = None
    ) -> None:
        self._deadline = deadline_seconds
        self._limiter = limiter
        self._deadlines = Deadlines(deadline_seconds)
        # Each client's share of the upstream budgets (providers/fairness.py); needs the client
        # limit, which names the client.
        self._shares = shares if shares is not None and shares.active and limiter is not None else None

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler is None or handler.unary_unary is None:
            return handler
        serialize = handler.response_serializer
        return grpc.unary_unary_rpc_method_handler(
            self._guarded(method, handler.unary_unary),
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=_remembering(serialize) if method in REUSED_ANSWERS and serialize else serialize,
        )

    def _guarded(self, method: str, behaviour: Behaviour) -> Behaviour:
        # Envoy checks every replica's health four times a second: those lines would drown the log.
        quiet = method.startswith("/grpc.health.v1.Health/")
        limiter = self._limiter
        limited = limiter is not None and limiter.limits(method)
        keys_checked = method not in OPEN_METHODS and not method.startswith(OPEN_PREFIXES)
        local_limit = limiter is not None and not limiter.shared
        ok = RPC_TALLY.row(method, "OK")
        ok_buckets: list[int] = ok[2]
        tally = RPC_TALLY.add
        deadlines = self._deadlines
        allowance = self._deadline
        # A client deadline equal to ours arrives a little shorter: only a clearly tighter one is hurried.
        hurried_below = allowance - min(0.5, allowance / 10)
        # Looked up once here rather than as attributes on every call: on the warm signal path, the
        # guard's own work is most of what the server adds to grpc's, and every lookup shows.
        call_metadata = _call_metadata.get
        clock = time.monotonic  # the deadlines' clock too: one reading serves both
        current_task = asyncio.current_task
        due, expired_tasks = deadlines.due, deadlines.expired
        debug_enabled = log.isEnabledFor
        bucket_of = bisect.bisect_left
        ready_answer = getattr(behaviour, "answer_if_ready", None)  # answers_ready
        ready = None if ready_answer is None else types.MethodType(ready_answer, getattr(behaviour, "__self__", None))
        shares = self._shares if limited else None

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = clock()
            code_name = "OK"
            task: asyncio.Task[Any] | None = None
            expired = False
            client_remaining: float | None = None
            client: str | None = None
            try:
                if limited:
                    assert limiter is not None
                    client = limiter.client_of(
                        call_metadata() or context.invocation_metadata() or (),
                        context.peer(),
                        keys_checked=keys_checked,
                    )
                    refusal = limiter.take(client) if local_limit else await limiter.take_async(client)
                    if refusal is not None:
                        await context.abort(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            RATE_LIMITED_MESSAGE,
                            trailing_metadata=refusal.metadata(),
                        )
                if request is UNDECODABLE:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, BAD_BYTES_MESSAGE)
                if ready is not None:
                    answer = ready(request)
                    if answer is not None:
                        return answer
                if shares is not None and client is not None:
                    # A client that spent its share of an upstream budget waits until it has room
                    # again (a warm answer above costs nothing and still passes); its calls' upstream
                    # requests are counted against it (the call's task carries the name).
                    spent = shares.wait(client)
                    if spent is not None:
                        bucket, wait = spent
                        seconds = str(math.ceil(wait))
                        await context.abort(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"this client's share of the {bucket} upstream budget is spent: retry in {seconds} s",
                            trailing_metadata=(("retry-after", seconds),),
                        )
                    set_caller(client)
                # The server's own deadline, or the client's (grpc-timeout) when that comes sooner;
                # upstream calls made for this RPC inherit it (providers/deadline.py).
                client_remaining = context.time_remaining()
                budget = allowance if client_remaining is None else min(allowance, client_remaining)
                task = current_task()
                assert task is not None
                due[task] = started + allowance  # watched by the sweep (Deadlines)
                if deadlines.sweeper is None:
                    deadlines.start_sweeper()
                deadline = enter_deadline(started + budget, budget < hurried_below)
                try:
                    return await behaviour(request, context)
                finally:
                    leave_deadline(deadline)
                    due.pop(task, None)  # the sweep may have taken it out already
                    if expired_tasks and task in expired_tasks:
                        expired_tasks.discard(task)
                        expired = True
            except grpc.aio.AbortError:
                code_name = ""  # context.abort(): the status and message were chosen deliberately
                raise
            except asyncio.CancelledError:
                if task is None or not expired:
                    # grpc cancels the call when the client goes away or the client's own, sooner
                    # deadline passes (it answers DEADLINE_EXCEEDED itself): counted as what it was.
                    # The client's clock ran before ours (the request's transit): a cancel within
                    # DEADLINE_SLACK of its deadline is that deadline, not a client that left.
                    passed = client_remaining is not None and clock() - started >= client_remaining - DEADLINE_SLACK
                    code_name = "DEADLINE_EXCEEDED" if passed else "CANCELLED"
                    raise
                task.uncancel()
                code_name = "DEADLINE_EXCEEDED"
                log.warning("rpc %s passed its deadline of %.1f s", method, allowance)
                await context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"the request did not complete within its deadline of {allowance:.1f} s",
                )
            except Exception as error:
                known = status_of(error)  # a domain or provider error: the one table's status
                if known is not None:
                    code_name = known[0].name
                    await context.abort(*known)
                code_name = "INTERNAL"
                log.exception("unhandled error in %s", method)
                await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
            finally:
                elapsed = clock() - started
                if code_name == "OK" and elapsed < SLOW_RPC_SECONDS:
                    ok[0] += 1  # tally(ok, elapsed), inlined
                    ok[1] += elapsed
                    ok_buckets[bucket_of(RPC_LATENCY_BUCKETS, elapsed)] += 1
                    if debug_enabled(logging.DEBUG):
                        log.debug("rpc %s OK %.1f ms", method, elapsed * 1000)
                else:
                    if not code_name:
                        code = context.code() if hasattr(context, "code") else None
                        code_name = getattr(code, "name", "UNKNOWN")
                    tally(ok if code_name == "OK" else RPC_TALLY.row(method, code_name), elapsed)
                    if not quiet:
                        log.info("rpc %s %s %.1f ms", method, code_name, elapsed * 1000)
                    elif debug_enabled(logging.DEBUG):
                        log.debug("rpc %s %s %.1f ms", method, code_name, elapsed * 1000)

        return guarded


class _GuardedGenericHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A generic handler whose unary handlers are guarded (each wrapped once, on first use)."""

    def __init__(self, inner: grpc.GenericRpcHandler, guard: Guard) -> None:
        self._inner = inner
        self._guard = guard
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._guard.wrap(method, handler)
        if len(self._wrapped) < 1000:  # methods are few; a bound all the same
            self._wrapped[method] = (handler, wrapped)
        return wrapped


class _Routes(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Every registered method's guarded handler, found by one dict lookup. The call's metadata,
    which grpc has already decoded for this lookup, is left for the guard (``_call_metadata``)."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}
        self._keep_metadata = _call_metadata.set

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self.handlers.get(handler_call_details.method)
        if handler is not None:
            self._keep_metadata(handler_call_details.invocation_metadata)
        return handler


class GuardedServer:
    """The server as the generated ``add_*_to_server`` functions see it: every handler they register
    is guarded first. Everything else is the server's own.

    Methods the generated code registers as "registered methods" are served from one routing table
    (a generic handler) instead: grpc.aio keeps a pending request per registered method and, on every
    call, waits on all of them at once (``asyncio.wait`` over ~36 tasks here), a per-call cost that
    grows with the number of methods. With one table there is one pending request, whatever the count.
    """

    def __init__(self, server: grpc.aio.Server, guard: Guard) -> None:
        self._server = server
        self._guard = guard
        self._routes = _Routes()
        server.add_generic_rpc_handlers((self._routes,))

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_GuardedGenericHandler(h, self._guard) for h in handlers))

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        for name, handler in handlers.items():
            method = f"/{service}/{name}"
            self._routes.handlers[method] = self._guard.wrap(method, handler)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
