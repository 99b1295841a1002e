"""The one table from errors to gRPC statuses (Envoy turns them into HTTP statuses).

INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404, FAILED_PRECONDITION
400, RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, DEADLINE_EXCEEDED 504 (the transcoder's mapping).

Unary handlers simply let a domain or provider error rise: the guard (service/rpc/guard.py) answers
it through ``status_of``. Streams, which the guard does not wrap, call ``abort_for``. Any other
exception is a bug: INTERNAL with a log line, never a 400.
"""

from __future__ import annotations

import math
from typing import NoReturn

import grpc

from providers.errors import ErrorKind, ProviderError
from service.rpc.page_tokens import PageTokenError
from service.rpc.symbols import InvalidSymbolError, normalize_symbol
from signals.coin_universe import CoinUniverse
from signals.errors import DomainError, Failure, unknown_coin_message

_STATUS_BY_FAILURE: dict[Failure, grpc.StatusCode] = {
    Failure.REFUSED: grpc.StatusCode.INVALID_ARGUMENT,
    Failure.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Failure.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Failure.EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

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


Trailers = tuple[tuple[str, str], ...]


def _retry_after(seconds: float | None) -> Trailers:
    """``retry-after`` as trailing metadata (Envoy's transcoder makes it the HTTP header)."""
    return () if seconds is None else (("retry-after", str(max(1, math.ceil(seconds)))),)


def status_of(error: BaseException) -> tuple[grpc.StatusCode, str, Trailers] | None:
    """The status, client-facing message and trailers for an error the service knows; None for a
    bug. A spent budget (RESOURCE_EXHAUSTED) says when to come back (``retry-after``)."""
    if isinstance(error, DomainError):
        return _STATUS_BY_FAILURE[error.failure], str(error), _retry_after(error.retry_after)
    if isinstance(error, ProviderError):
        trailers = _retry_after(error.retry_after) if error.kind is ErrorKind.RATE_LIMITED else ()
        return status_for(error), message_for(error), trailers
    if isinstance(error, InvalidSymbolError | PageTokenError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error), ()
    return None


async def abort_for(context: grpc.aio.ServicerContext, error: BaseException) -> NoReturn:
    """Abort the RPC with the table's status for ``error`` (raises); a bug is re-raised as it is."""
    known = status_of(error)
    if known is None:
        raise error
    await context.abort(*known)
    raise AssertionError("unreachable: context.abort raises")


async def coin_or_abort(raw: str, context: grpc.aio.ServicerContext, universe: CoinUniverse) -> str:
    """The canonical coin for ``raw``; INVALID_ARGUMENT saying why it is not a symbol, or NOT_FOUND
    (before any upstream call) for a coin known not to exist (signals/coin_universe.py)."""
    try:
        symbol = normalize_symbol(raw)
    except InvalidSymbolError as exc:
        await abort_for(context, exc)
    if universe.refuses(symbol):
        await context.abort(grpc.StatusCode.NOT_FOUND, unknown_coin_message(symbol))
    return symbol
