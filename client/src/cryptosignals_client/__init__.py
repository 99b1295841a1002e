"""Channels to the cryptosignals gRPC API with what every caller would otherwise write again.

``channel()`` (blocking stubs) and ``aio_channel()`` (asyncio stubs) return a channel that

* sends the API key as ``authorization: Bearer <key>`` on every call: as call credentials over TLS,
  and through an interceptor on a plaintext channel (gRPC refuses call credentials on plaintext,
  which a service mesh's sidecar or loopback still needs);
* speaks TLS when asked (``tls=True``; the system's roots, or ``root_certificates``);
* carries a service config: a deadline for every unary call (``timeout``, 20 s by default: the
  longest a call may take; a call's own ``timeout=`` can shorten it, never lengthen it, so pass a
  larger ``timeout`` or None to the channel for longer calls) and a retry policy for the
  idempotent reads: UNAVAILABLE (no server reachable, a server shutting down, or a data provider
  failing) is retried up to 3 more times with backoff, under retry throttling. Creating and
  deleting alerts are never retried, and streams have no default deadline (a stream is retried
  only until its first event arrives).

The stubs are the generated ones, ``cryptosignals.v1.*_pb2_grpc``, shipped in the same wheel.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import grpc
import grpc.aio

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "RETRIED_STATUS_CODES",
    "aio_channel",
    "channel",
    "service_config",
]

PACKAGE = "cryptosignals.v1"
# Above the server's own deadline (RPC_DEADLINE_SECONDS, 15 s by default), so that the server's
# DEADLINE_EXCEEDED, with its message, arrives before the client gives up.
DEFAULT_TIMEOUT_SECONDS = 20.0
RETRIED_STATUS_CODES = ("UNAVAILABLE",)

# Reads, safe to send again: every RPC of these services.
_READ_SERVICES = ("SignalService", "CoinglassService", "HistoryService", "BacktestService", "PageService")
# Streams: retried until their first message (gRPC commits a call once a response arrives), no deadline.
_STREAM_SERVICES = ("LiveService",)
# AlertService: ListAlerts is a read; CreateAlert and DeleteAlert change state and are never retried.


def _retry_policy() -> dict[str, Any]:
    return {
        "maxAttempts": 4,
        "initialBackoff": "0.1s",
        "maxBackoff": "2s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": list(RETRIED_STATUS_CODES),
    }


def service_config(timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> dict[str, Any]:
    """The gRPC service config the channels carry (``grpc.service_config``), as a dict."""
    deadline = {} if timeout is None else {"timeout": f"{timeout:.3f}s"}
    return {
        "methodConfig": [
            {
                "name": [{"service": f"{PACKAGE}.{s}"} for s in _READ_SERVICES]
                + [{"service": f"{PACKAGE}.AlertService", "method": "ListAlerts"}],
                **deadline,
                "retryPolicy": _retry_policy(),
            },
            {"name": [{"service": f"{PACKAGE}.{s}"} for s in _STREAM_SERVICES], "retryPolicy": _retry_policy()},
            {"name": [{"service": f"{PACKAGE}.AlertService"}], **deadline},
        ],
        # Each failed attempt costs a token, each success gives a tenth of one back, and no retry is
        # sent while fewer than half of the 10 tokens are left: a server that is down is not sent
        # four times the load.
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }


def channel(
    target: str,
    *,
    api_key: str | None = None,
    tls: bool = False,
    root_certificates: bytes | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A blocking channel to ``target`` (``host:port``); use it with ``*_pb2_grpc.*Stub``.

    ``tls`` (implied by ``root_certificates``) verifies the server against the system's roots or
    ``root_certificates`` (PEM). ``timeout`` is the deadline of every unary call in seconds, which a
    call's own ``timeout=`` may shorten but not lengthen (None: none). ``options`` are more channel
    options, e.g. ``("grpc.max_receive_message_length", ...)``.
    """
    tls = tls or root_certificates is not None
    channel_options = _options(timeout, options)
    if tls:
        return grpc.secure_channel(target, _credentials(api_key, root_certificates), channel_options)
    plain = grpc.insecure_channel(target, channel_options)
    if api_key is None:
        return plain
    return grpc.intercept_channel(plain, _BearerInterceptor(_metadata(api_key)))


def aio_channel(
    target: str,
    *,
    api_key: str | None = None,
    tls: bool = False,
    root_certificates: bytes | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """The asyncio counterpart of ``channel()``: the same arguments, a ``grpc.aio.Channel``."""
    tls = tls or root_certificates is not None
    channel_options = _options(timeout, options)
    if tls:
        return grpc.aio.secure_channel(target, _credentials(api_key, root_certificates), channel_options)
    interceptors = [] if api_key is None else _aio_interceptors(_metadata(api_key))
    return grpc.aio.insecure_channel(target, channel_options, interceptors=interceptors)


def _options(timeout: float | None, options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(service_config(timeout))),
        *options,
    ]


def _credentials(api_key: str | None, root_certificates: bytes | None) -> grpc.ChannelCredentials:
    transport = grpc.ssl_channel_credentials(root_certificates=root_certificates)
    if api_key is None:
        return transport
    # access_token_call_credentials sends "authorization: Bearer <key>", only over a secure channel.
    return grpc.composite_channel_credentials(transport, grpc.access_token_call_credentials(api_key))


def _metadata(api_key: str) -> tuple[str, str]:
    if not api_key or api_key != api_key.strip() or "\n" in api_key:
        raise ValueError("api_key must be a non-empty key without surrounding whitespace")
    return ("authorization", f"Bearer {api_key}")


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _BearerInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds the bearer key to every call of a blocking plaintext channel."""

    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header

    def _details(self, details: Any) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), self._header],
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


def _aio_details(details: Any, header: tuple[str, str]) -> Any:
    metadata = grpc.aio.Metadata(*(details.metadata or ()), header)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _HeaderCarrier:
    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header


# grpc.aio files an interceptor under the first kind it is an instance of: one class per kind.
class _AioUnaryUnary(_HeaderCarrier, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_aio_details(details, self._header), request)


class _AioUnaryStream(_HeaderCarrier, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_aio_details(details, self._header), request)


class _AioStreamUnary(_HeaderCarrier, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(_aio_details(details, self._header), request_iterator)


class _AioStreamStream(_HeaderCarrier, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(_aio_details(details, self._header), request_iterator)


def _aio_interceptors(header: tuple[str, str]) -> list[grpc.aio.ClientInterceptor]:
    return [_AioUnaryUnary(header), _AioUnaryStream(header), _AioStreamUnary(header), _AioStreamStream(header)]
