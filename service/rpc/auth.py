"""Client authentication: with SIGNAL_API_KEYS set, calls need ``authorization: Bearer <key>``.

Through Envoy the REST ``Authorization`` header arrives as the gRPC ``authorization`` metadata, so
one check covers both. Health, API info, the OpenAPI document, the docs and dashboard pages and their
scripts and stylesheets stay open: load balancers, GPT Actions' schema import and people reading the docs have no key.

Failed attempts are not free (with the client rate limit on): every 401 spends a token of the
caller's address's failure bucket (the client limit's size and refill), and once it is empty the
caller's calls to keyed methods are refused with RESOURCE_EXHAUSTED (429) before any key is compared,
right ones included, until it refills: guessing keys runs at the client limit's refill rate at most.
The failure buckets are separate from the address's ordinary one (open methods such as the docs spend
that), and kept by each replica.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from service.rpc.client_limit import ClientLimiter

OPEN_METHODS = frozenset(
    {
        "/cryptosignals.v1.SignalService/GetApiInfo",
        "/cryptosignals.v1.SignalService/GetHealth",
        "/cryptosignals.v1.SignalService/GetActionSchema",
        "/cryptosignals.v1.SignalService/GetOpenApiDocument",
        "/cryptosignals.v1.SignalService/GetSwaggerUiPage",
        "/cryptosignals.v1.SignalService/GetRedocPage",
        "/cryptosignals.v1.PageService/GetDashboardPage",
        "/cryptosignals.v1.PageService/GetScript",
        "/cryptosignals.v1.PageService/GetStylesheet",
    }
)
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def key_matches(presented: str, keys: Sequence[bytes]) -> bool:
    candidate = presented.encode()
    # Compare against every key, without short-circuiting, in constant time per key.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    return matched


def bearer_key(header: str, keys: Sequence[bytes]) -> str | None:
    """Why ``header`` (an Authorization value) is refused, or None when it carries one of ``keys``."""
    scheme, _, token = header.partition(" ")
    if not header:
        return "missing API key: send the header 'Authorization: Bearer <key>'"
    if scheme.lower() != "bearer" or not key_matches(token.strip(), keys):
        return "invalid API key"
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, keys: Sequence[str], failures: ClientLimiter | None = None) -> None:
        """``failures``: a limiter of its own (never the guard's) holding each address's failure
        bucket; None: failed attempts are not limited (the client rate limit is off)."""
        self._keys = [k.encode() for k in keys]
        self._failures = failures
        # Until this time (the limiter's clock) some address may have an empty failure bucket: calls are checked
        # against their caller's. Before it and after, the common case, nothing is added to a call.
        self._watch_until = 0.0

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        if method in OPEN_METHODS or method.startswith(OPEN_PREFIXES):
            return await continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        refused = bearer_key(str(metadata.get("authorization", "")), self._keys)
        failures = self._failures
        if refused is not None:
            if failures is None:
                return _deny(refused)
            self._watch_until = failures.now() + failures.burst / failures.rate + 1.0
            return self._deny_and_spend(refused)
        handler = await continuation(handler_call_details)
        if failures is None or failures.now() > self._watch_until or handler is None:
            return handler
        return self._unless_blocked(handler, failures)

    def _deny_and_spend(self, message: str) -> grpc.RpcMethodHandler:
        failures = self._failures
        assert failures is not None

        async def abort(request: object, context: grpc.aio.ServicerContext) -> None:
            client = failures.client_of(context.invocation_metadata() or (), context.peer(), keys_checked=False)
            refusal = failures.take(client)
            if refusal is not None:
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, RATE_LIMITED_MESSAGE, trailing_metadata=refusal.metadata()
                )
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return grpc.unary_unary_rpc_method_handler(abort)

    @staticmethod
    def _unless_blocked(handler: grpc.RpcMethodHandler, failures: ClientLimiter) -> grpc.RpcMethodHandler:
        """``handler``, first refusing a caller whose failure bucket is empty (a right key included):
        unary calls and streams alike, so no method tells a guesser that a key was right."""

        async def refuse_if_blocked(context: grpc.aio.ServicerContext) -> None:
            client = failures.client_of(context.invocation_metadata() or (), context.peer(), keys_checked=False)
            refusal = failures.exhausted(client)
            if refusal is not None:
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, RATE_LIMITED_MESSAGE, trailing_metadata=refusal.metadata()
                )

        codecs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await refuse_if_blocked(context)
                return await unary(request, context)

            return grpc.unary_unary_rpc_method_handler(checked, **codecs)
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            async def checked_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                await refuse_if_blocked(context)
                answer = stream(request, context)
                if hasattr(answer, "__aiter__"):  # an async generator
                    async for message in answer:
                        yield message
                else:  # a coroutine writing with context.write
                    await answer

            return grpc.unary_stream_rpc_method_handler(checked_stream, **codecs)
        return handler  # no client-streaming methods here


# As the guard words its own refusals (service/rpc/guard.py imports this module, so it lives here).
RATE_LIMITED_MESSAGE = "too many requests: slow down and retry"


def _deny(message: str) -> grpc.RpcMethodHandler:
    async def abort(request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(abort)
