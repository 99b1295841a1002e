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
    from service.rpc.client_limit import ClientLimiter, Refusal

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


class AuthFailures:
    """Each address's bucket of failed key checks, shared by the RPCs and the metrics endpoint.

    ``limiter`` is one of its own (never the guard's), sized as the client limit. Until
    ``watch_until`` (on the limiter's clock) some address may have an empty bucket, so calls with a
    right key are checked against their caller's; the rest of the time, the common case, nothing is
    added to a call.
    """

    def __init__(self, limiter: ClientLimiter) -> None:
        self.limiter = limiter
        self.watch_until = 0.0

    def client(self, metadata: Sequence[tuple[str, str | bytes]], peer: str) -> str:
        """The bucket of the caller's address (x-forwarded-for believed only from trusted proxies)."""
        return self.limiter.client_of(metadata, peer, keys_checked=False)

    def spend(self, client: str) -> Refusal | None:
        """A failed check: one token; a Refusal when the bucket was already empty."""
        limiter = self.limiter
        self.watch_until = limiter.now() + limiter.burst / limiter.rate + 1.0
        return limiter.take(client)

    def watching(self) -> bool:
        return self.limiter.now() <= self.watch_until

    def blocked(self, client: str) -> Refusal | None:
        """A Refusal when ``client``'s bucket is empty now (spends nothing)."""
        return self.limiter.exhausted(client)


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, keys: Sequence[str], failures: AuthFailures | None = None) -> None:
        """``failures``: each address's failed checks; None: failed attempts are not limited (the
        client rate limit is off)."""
        self._keys = [k.encode() for k in keys]
        self._failures = failures

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
            return self._deny_and_spend(refused)
        handler = await continuation(handler_call_details)
        if failures is None or not failures.watching() or handler is None:
            return handler
        return self._unless_blocked(handler, failures)

    def _deny_and_spend(self, message: str) -> grpc.RpcMethodHandler:
        failures = self._failures
        assert failures is not None

        async def abort(request: object, context: grpc.aio.ServicerContext) -> None:
            refusal = failures.spend(failures.client(context.invocation_metadata() or (), context.peer()))
            if refusal is not None:
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, RATE_LIMITED_MESSAGE, trailing_metadata=refusal.metadata()
                )
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return grpc.unary_unary_rpc_method_handler(abort)

    @staticmethod
    def _unless_blocked(handler: grpc.RpcMethodHandler, failures: AuthFailures) -> grpc.RpcMethodHandler:
        """``handler``, first refusing a caller whose failure bucket is empty (a right key included):
        unary calls and streams alike, so no method tells a guesser that a key was right."""

        async def refuse_if_blocked(context: grpc.aio.ServicerContext) -> None:
            refusal = failures.blocked(failures.client(context.invocation_metadata() or (), context.peer()))
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
