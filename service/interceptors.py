"""Server interceptors: the per-client rate limit, the RPC's deadline, metrics, a log line for every
failed or slow RPC, and a guard that turns unexpected exceptions into INTERNAL.

The hot path is kept cheap: one wrapper per RPC, metric children looked up once per (method, code),
and no log line for a fast successful call (Envoy's access log has one per REST request; set
LOG_LEVEL=DEBUG for the server's own line per RPC).

Without the guard, an exception's class name and text would reach the client (and through Envoy,
the REST caller); the guard logs it with a traceback and answers a generic message instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from providers.deadline import deadline_in
from service.client_limit import ClientLimiter
from service.metrics import RPC_LATENCY, RPC_REQUESTS

log = logging.getLogger("cryptosignals.rpc")
BAD_BYTES_MESSAGE = "request is not valid: every text parameter must be UTF-8 (use percent-encoded UTF-8 in URLs)"
RATE_LIMITED_MESSAGE = "too many requests: slow down and retry"
# A successful RPC slower than this is logged at INFO even when fast ones are not.
SLOW_RPC_SECONDS = 1.0

_metric_children: dict[tuple[str, str], tuple[Any, Any]] = {}


def _record(method: str, code_name: str, elapsed: float) -> None:
    children = _metric_children.get((method, code_name))
    if children is None:
        children = (RPC_REQUESTS.labels(method, code_name), RPC_LATENCY.labels(method, code_name))
        _metric_children[(method, code_name)] = children
    children[0].inc()
    children[1].observe(elapsed)


class _Undecodable:
    """Stands for a request whose bytes did not parse.

    Through Envoy, a path or query parameter that is not UTF-8 (``/signals/%FF``) becomes a proto
    string field with bad UTF-8; grpcio's own failure would be UNKNOWN (HTTP 500) quoting the
    exception. Parsing tolerantly lets the guard answer INVALID_ARGUMENT instead.
    """


UNDECODABLE = _Undecodable()


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return UNDECODABLE

    return parse


def _wrap_unary(
    method: str,
    behaviour: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
    deadline_seconds: float,
    limiter: ClientLimiter | None = None,
) -> Any:
    # Envoy checks every replica's health four times a second: those lines would drown the log.
    quiet = method.startswith("/grpc.health.v1.Health/")

    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        if limiter is not None:
            client = limiter.client(method, context.invocation_metadata() or (), context.peer())
            refusal = await limiter.take_async(client) if client is not None else None
            if refusal is not None:
                _record(method, "RESOURCE_EXHAUSTED", time.perf_counter() - started)
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, RATE_LIMITED_MESSAGE, trailing_metadata=refusal.metadata()
                )
        # The server's own deadline, or the client's (grpc-timeout) when that comes sooner; upstream
        # calls made for this RPC inherit it (providers/deadline.py).
        client_remaining = context.time_remaining()
        budget = deadline_seconds if client_remaining is None else min(deadline_seconds, client_remaining)
        limit: asyncio.Timeout | None = None
        answered = False  # returned normally: OK, without asking the context (the common case)
        try:
            if request is UNDECODABLE:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, BAD_BYTES_MESSAGE)
            # A client deadline equal to ours arrives a little shorter: only a clearly tighter one is hurried.
            hurried = budget < deadline_seconds - min(0.5, deadline_seconds / 10)
            with deadline_in(budget, hurried=hurried):
                async with asyncio.timeout(budget) as limit:
                    response = await behaviour(request, context)
            answered = True
            return response
        except grpc.aio.AbortError:
            raise  # context.abort(): the status and message were chosen deliberately
        except TimeoutError:
            if limit is None or not limit.expired():  # someone else's timeout: an unexpected error
                log.exception("unhandled timeout in %s", method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error: the failure was logged")
            log.warning("rpc %s passed its deadline of %.1f s", method, budget)
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"the request did not complete within its deadline of {budget:.1f} s"
            )
        except Exception:
            log.exception("unhandled error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error: the failure was logged")
        finally:
            elapsed = time.perf_counter() - started
            code = None if answered or not hasattr(context, "code") else context.code()
            code_name = "OK" if code is None else getattr(code, "name", "OK")
            _record(method, code_name, elapsed)
            if (code_name != "OK" or elapsed >= SLOW_RPC_SECONDS) and not quiet:
                log.info("rpc %s %s %.1f ms", method, code_name, elapsed * 1000)
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("rpc %s %s %.1f ms", method, code_name, elapsed * 1000)

    return guarded


class GuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Every unary RPC: bounded by ``deadline_seconds`` (or the client's sooner deadline), logged,
    counted in metrics, and never leaking an unexpected exception's text."""

    def __init__(
        self,
        deadline_seconds: float,
        limiter: ClientLimiter | None = None,
    ) -> None:
        self._deadline = deadline_seconds
        self._limiter = limiter
        # grpc looks the same handler up for every call of a method: wrap it once, not per call.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method: str = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = grpc.unary_unary_rpc_method_handler(
            _wrap_unary(
                handler_call_details.method,
                handler.unary_unary,
                self._deadline,
                self._limiter,
            ),
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
        if len(self._wrapped) < 1000:  # methods are few; a bound all the same
            self._wrapped[method] = (handler, wrapped)
        return wrapped
