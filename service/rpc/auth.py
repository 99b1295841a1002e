"""Client authentication: with SIGNAL_API_KEYS set, calls need ``authorization: Bearer <key>``.

Through Envoy the REST ``Authorization`` header arrives as the gRPC ``authorization`` metadata, so
one check covers both. Health, API info, the OpenAPI document, the docs and dashboard pages and their
scripts and stylesheets stay open: load balancers, GPT Actions' schema import and people reading the docs have no key.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence

import grpc

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


def _key_matches(presented: str, keys: Sequence[bytes]) -> bool:
    candidate = presented.encode()
    # Compare against every key, without short-circuiting, in constant time per key.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    return matched


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [k.encode() for k in keys]

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        if method in OPEN_METHODS or method.startswith(OPEN_PREFIXES):
            return await continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        header = str(metadata.get("authorization", ""))
        scheme, _, token = header.partition(" ")
        if not header:
            return _deny("missing API key: send the header 'Authorization: Bearer <key>'")
        if scheme.lower() != "bearer" or not _key_matches(token.strip(), self._keys):
            return _deny("invalid API key")
        return await continuation(handler_call_details)


def _deny(message: str) -> grpc.RpcMethodHandler:
    async def abort(request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(abort)
