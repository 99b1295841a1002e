"""grpcio-testing for grpc.aio servicers: the real proto descriptors, no sockets, no server.

grpc_testing drives synchronous servicers, each RPC in its own thread. This adapter hands every
RPC's coroutine to the test's event loop (where the servicer's collaborators live), gives the
servicer an aio-style context (``await context.abort(...)``) over grpc_testing's, and runs the
server interceptors first, as grpc.aio does, so auth metadata is tested on the same path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc_testing  # type: ignore[import-untyped]
from google.protobuf.descriptor import ServiceDescriptor

from service.rpc.status import status_of


@dataclass(frozen=True)
class CallDetails:
    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


class AioContext:
    """What our servicers use of ``grpc.aio.ServicerContext``, over grpc_testing's context."""

    def __init__(self, context: Any) -> None:
        self._context = context

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        self._context.abort(code, details)  # records the status, then raises

    def invocation_metadata(self) -> Any:
        return self._context.invocation_metadata()

    def time_remaining(self) -> float | None:
        remaining: float | None = self._context.time_remaining()
        return remaining


class _AioServicer:
    def __init__(
        self, service: ServiceDescriptor, servicer: Any, loop: asyncio.AbstractEventLoop, interceptors: Sequence[Any]
    ) -> None:
        self._service, self._servicer, self._loop, self._interceptors = service, servicer, loop, interceptors

    def __getattr__(self, name: str) -> Any:
        method = f"/{self._service.full_name}/{name}"
        implementation = getattr(self._servicer, name)

        async def resolve(index: int, details: CallDetails) -> Any:
            """The handler after interceptors[index:], as grpc.aio chains them."""
            if index == len(self._interceptors):
                return grpc.unary_unary_rpc_method_handler(implementation)
            return await self._interceptors[index].intercept_service(lambda d: resolve(index + 1, d), details)

        async def call(request: Any, context: AioContext) -> Any:
            handler = await resolve(0, CallDetails(method, tuple(context.invocation_metadata() or ())))
            try:
                return await handler.unary_unary(request, context)
            except Exception as error:
                # What the guard does for every unary handler in the server: a domain or provider
                # error is answered by the one status table (service/rpc/status.py).
                known = status_of(error)
                if known is None:
                    raise
                await context.abort(*known)

        def behaviour(request: Any, context: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(call(request, AioContext(context)), self._loop).result()

        return behaviour


@dataclass(frozen=True)
class Outcome:
    response: Any
    code: grpc.StatusCode
    details: str


class AioTestServer:
    def __init__(self, servicers: dict[ServiceDescriptor, Any], interceptors: Sequence[Any] = ()) -> None:
        loop = asyncio.get_running_loop()
        self._server = grpc_testing.server_from_dictionary(
            {service: _AioServicer(service, s, loop, interceptors) for service, s in servicers.items()},
            grpc_testing.strict_real_time(),
        )
        self._services = list(servicers)

    async def call(
        self, method: str, request: Any, metadata: Sequence[tuple[str, str]] = (), deadline: float = 10.0
    ) -> Outcome:
        descriptor = next(s.methods_by_name[method] for s in self._services if method in s.methods_by_name)
        rpc = self._server.invoke_unary_unary(descriptor, tuple(metadata), request, deadline)
        response, _, code, details = await asyncio.to_thread(rpc.termination)
        return Outcome(response, code, details)
