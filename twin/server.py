"""RecordedTwin: one loopback aiohttp server answering like the five upstream APIs.

URL scheme: http://HOST:PORT/<provider>/<the provider's own path>, provider one of coinglass, okx,
coinapi, lunarcrush, feargreed. Control API under /_twin/ for a twin in another process.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from twin import coinglass, misc, okx, timeshift
from twin.aliases import CoinAliases
from twin.control import add_control_routes
from twin.faults import (
    PROVIDERS,
    Fault,
    FaultKind,
    FaultTable,
    echo_key,
    emptied,
    error_envelope,
    html_page,
    make_fault,
    rate_limited,
    server_error,
    truncated,
)
from twin.reply import Reply
from twin.store import Store

ENV_NAMES = {
    "coinglass": "COINGLASS_BASE_URL",
    "okx": "OKX_BASE_URL",
    "coinapi": "COINAPI_BASE_URL",
    "lunarcrush": "LUNARCRUSH_BASE_URL",
    "feargreed": "FEAR_GREED_BASE_URL",
}
MAX_KEPT_REQUESTS = 10_000  # full records kept; counts stay exact however long a benchmark runs


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    provider: str
    method: str
    path: str  # without the "/<provider>" prefix, e.g. /api/v5/market/candles
    query: dict[str, str]
    headers: dict[str, str]
    # When it arrived (wall-clock, the clock a shared cache's entries use): tests compare it with TTLs.
    at: float = field(default_factory=time.time, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "method": self.method, "path": self.path, "query": self.query,
                "headers": self.headers}  # fmt: skip


class RecordedTwin:
    def __init__(
        self,
        *,
        plan: str = "professional",
        latency_ms: float = 0.0,
        store: Store | None = None,
        shift_to_present: bool = True,
        follow_clock: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # The generated data is moved to the present (its newest bar: the current hour), here, once;
        # the bundled real history keeps its dates (timeshift.py). shift_to_present=False serves the
        # data as recorded, and so does the "unshifted" fault for one endpoint. follow_clock (a twin
        # that runs for days: `make demo`) moves it again when a new hour starts, between requests;
        # tests keep one offset for the whole run, so answers do not change under them.
        self._clock = clock
        self._follow_clock = follow_clock and shift_to_present and store is None
        shift = timeshift.shift_to(self._now_ms()) if shift_to_present else 0
        self.store = store or Store(time_shift_ms=shift)
        self._as_recorded: Store | None = None if self.store.time_shift_ms else self.store
        self.faults = FaultTable()
        self.aliases = CoinAliases()
        self._plan = "professional"
        self.set_plan(plan)
        self._latency = latency_ms / 1000.0
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_KEPT_REQUESTS)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._minute = 0
        self._cg_used = 0
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._url = ""

    # lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        add_control_routes(app, self)
        app.router.add_route("*", "/{provider}/{tail:.*}", self._handle)
        # handler_cancellation: a client that gives up (timeout fault) frees its handler at once.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]  # the real port when port=0
        self._url = f"http://{host}:{bound_port}"

    async def stop(self) -> None:
        self._stopping.set()  # releases hanging "timeout" handlers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("the twin is not started")
        return self._url

    def base_urls(self) -> dict[str, str]:
        return {env: f"{self.url}/{provider}" for provider, env in ENV_NAMES.items()}

    # faults, latency, plan
    def set_fault(
        self,
        provider: str,
        endpoint: str = "*",
        kind: FaultKind | str = FaultKind.SERVER_ERROR,
        latency_ms: float = 0.0,
        status: int | None = None,
        retry_after: int | None = None,
        times: int | None = None,
        code: str | None = None,
        seconds: float | None = None,
    ) -> Fault:
        extra = {} if seconds is None else {"seconds": seconds}
        fault = make_fault(provider, endpoint, kind, latency_ms, status, retry_after, times, code, **extra)
        self.faults.set(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_coin_aliases(self, aliases: dict[str, str]) -> None:
        """Serve each alias the data of a recorded coin, ``{"XRP": "BTC"}`` (twin/aliases.py)."""
        self.aliases.set(aliases)

    def set_latency(self, ms: float) -> None:
        """Extra latency on every provider answer (benchmarks: a realistic upstream round trip)."""
        self._latency = max(0.0, ms) / 1000.0

    @property
    def latency_ms(self) -> float:
        return self._latency * 1000.0

    def set_plan(self, plan: str) -> None:
        if plan.lower() not in coinglass.PLANS:
            raise ValueError(f"unknown Coinglass plan {plan!r}; expected one of {', '.join(coinglass.PLANS)}")
        self._plan = plan.lower()

    @property
    def plan(self) -> str:
        return self._plan

    @plan.setter
    def plan(self, plan: str) -> None:
        self.set_plan(plan)

    # request recording
    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._requests)

    def clear_requests(self) -> None:
        self._requests.clear()
        self._counts.clear()

    def request_count(self, provider: str | None = None, path: str | None = None) -> int:
        want = None if path is None else (path.rstrip("/") or "/")
        return sum(
            n
            for (p, q), n in self._counts.items()
            if (provider is None or p == provider) and (want is None or q == want)
        )

    # serving
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        provider = request.match_info["provider"]
        if provider not in PROVIDERS:
            return web.Response(status=404, text=f"unknown provider prefix /{provider}")
        path = "/" + request.match_info["tail"]
        query = dict(request.query)
        self._counts[(provider, path.rstrip("/") or "/")] += 1
        self._requests.append(RecordedRequest(provider, request.method, path, query, dict(request.headers)))
        fault = self.faults.take(provider, path)
        delay = self._latency + (fault.latency_ms / 1000.0 if fault else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is not None and fault.kind == "timeout":
            await self._hang(request, fault.seconds)
        if self._follow_clock:
            self._follow()
        store = self.store
        if fault is not None and fault.kind == "unshifted":
            store = self._recorded_store()
        if self.aliases:
            path, query = self.aliases.rewrite(path), self.aliases.rewrite_query(query)
        reply = self._faulty(provider, fault, request) or self._answer(provider, path, query, request, store)
        if fault is not None and fault.kind == "truncated_json":
            reply = truncated(reply)
        elif fault is not None and fault.kind == "empty":
            reply = emptied(reply)
        response = web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        response.content_type = reply.content_type
        return response

    def _faulty(self, provider: str, fault: Fault | None, request: web.Request) -> Reply | None:
        if fault is None:
            return None
        if fault.kind == "echo_key":
            return echo_key(provider, fault.status, request.headers)
        if fault.kind == "rate_limit":
            return rate_limited(provider, fault.retry_after)
        if fault.kind == "server_error":
            return server_error(provider, fault.status)
        if fault.kind == "html":
            return html_page(provider, fault.status)
        if fault.kind == "error_envelope":
            return error_envelope(provider, fault.code)
        return None  # latency, timeout, truncated_json, empty: derived from the normal answer

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _follow(self) -> None:
        """A new hour has started: move the generated data again (a fresh Store; bundled docs reloaded)."""
        shift = timeshift.shift_to(self._now_ms())
        if shift != self.store.time_shift_ms:
            self.store = Store(self.store.root, time_shift_ms=shift)

    def _recorded_store(self) -> Store:
        """The data as recorded (2025-11-28), loaded on first use of the "unshifted" fault."""
        if self._as_recorded is None:
            self._as_recorded = Store(self.store.root)
        return self._as_recorded

    @property
    def time_shift_ms(self) -> int:
        """How far the generated data's timestamps were moved (whole hours, ms); 0 when served as recorded."""
        return self.store.time_shift_ms

    def _answer(self, provider: str, path: str, query: dict[str, str], request: web.Request, store: Store) -> Reply:
        if provider == "okx":
            return okx.handle(store, path, query)
        if provider == "coinglass":
            denied = coinglass.authorise(store, request.headers, path, self._plan, query)
            reply = denied or self.aliases.listed(path, coinglass.handle(store, path, query, self._plan))
            return self._with_cg_limits(reply)
        if provider == "coinapi":
            return misc.coinapi(store, path, request.headers)
        if provider == "lunarcrush":
            return misc.lunarcrush(store, path, request.headers)
        return misc.feargreed(store, path, query)

    def _with_cg_limits(self, reply: Reply) -> Reply:
        # Coinglass reports the plan's per-minute budget and the use so far on every answer.
        minute = int(time.monotonic() // 60)
        if minute != self._minute:
            self._minute, self._cg_used = minute, 0
        self._cg_used += 1
        headers = {
            **reply.headers,
            "API-KEY-MAX-LIMIT": str(coinglass.RATE_LIMITS[self._plan]),
            "API-KEY-USE-LIMIT": str(self._cg_used),
        }
        return Reply(reply.status, reply.body, reply.content_type, headers)

    async def _hang(self, request: web.Request, seconds: float) -> None:
        """Answer nothing for `seconds`, or until the client leaves or the twin stops."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=0.1)
            except TimeoutError:
                continue
