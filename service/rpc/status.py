"""Mapping of domain errors to gRPC statuses (Envoy turns them into HTTP statuses)."""

from __future__ import annotations

import grpc

from providers.errors import ErrorKind, ProviderError
from service.rpc.symbols import InvalidSymbolError, normalize_symbol
from signals.coin_universe import CoinUniverse
from signals.desk import unknown_coin_message

# ARCHITECTURE.md: INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403,
# NOT_FOUND 404, RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, DEADLINE_EXCEEDED 504.
_STATUS_BY_KIND: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.AUTH: grpc.StatusCode.FAILED_PRECONDITION,  # our key is wrong: the operator must fix it
    ErrorKind.PLAN: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.UPSTREAM: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.BAD_PAYLOAD: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.NOT_CONFIGURED: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_for(error: ProviderError) -> grpc.StatusCode:
    return _STATUS_BY_KIND[error.kind]


def message_for(error: ProviderError) -> str:
    """The client-facing message: provider, endpoint and reason; never a key."""
    if error.kind is ErrorKind.PLAN:
        return f"your {error.provider} plan does not include {error.endpoint}"
    if error.kind is ErrorKind.NOT_CONFIGURED:
        return error.message
    return f"{error.provider} {error.endpoint}: {error.kind.value}: {error.message}"


async def abort_with(context: grpc.aio.ServicerContext, error: ProviderError) -> None:
    """Abort the RPC with the status and message for ``error`` (raises)."""
    await context.abort(status_for(error), message_for(error))


async def coin_or_abort(raw: str, context: grpc.aio.ServicerContext, universe: CoinUniverse) -> str:
    """The canonical coin for ``raw``; INVALID_ARGUMENT saying why it is not a symbol, or NOT_FOUND
    (before any upstream call) for a coin known not to exist (service/coin_universe.py)."""
    try:
        symbol = normalize_symbol(raw)
    except InvalidSymbolError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        raise
    if universe.refuses(symbol):
        await context.abort(grpc.StatusCode.NOT_FOUND, unknown_coin_message(symbol))
    return symbol
