"""The providers' recorded twin: one loopback HTTP server answering like the five upstream APIs.

Each provider lives under its own path prefix, so a client's base URL is ``<twin>/<provider>``:
``/coinglass`` (open-api-v4.coinglass.com), ``/okx`` (www.okx.com), ``/coinapi`` (rest.coinapi.io),
``/lunarcrush`` (lunarcrush.com/api4), ``/feargreed`` (api.alternative.me). Faults are switched per
provider and endpoint from Python or over HTTP (``/_twin/...``), so a twin in another process (the
demo, the benchmarks) can be driven too. Every request is recorded for tests to assert on.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from providers.twin import routes
from providers.twin.faults import Fault, FaultKind, apply_fault

PROVIDERS = ("coinglass", "okx", "coinapi", "lunarcrush", "feargreed")
BASE_URL_VARIABLES = {
    "coinglass": "COINGLASS_BASE_URL",
    "okx": "OKX_BASE_URL",
    "coinapi": "COINAPI_BASE_URL",
    "lunarcrush": "LUNARCRUSH_BASE_URL",
    "feargreed": "FEAR_GREED_BASE_URL",
}
_MAX_RECORDED = 50_000  # keep memory bounded under benchmark load; counts stay exact


@dataclass(frozen=True)
class RecordedRequest:
    provider: str
    method: str
    path: str  # without the provider prefix
    query: dict[str, str]
    headers: dict[str, str] = field(repr=False)


class RecordedTwin:
    def __init__(self, plan: str = "professional") -> None:
        self._recorded = routes.Recorded()
        self._faults: dict[tuple[str, str], Fault] = {}
        self._latency_ms = 0.0
        self.plan = plan
        self.requests: list[RecordedRequest] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._host = "127.0.0.1"

    # ---- control -------------------------------------------------------------------------------

    def set_fault(
        self,
        provider: str,
        endpoint: str = "*",
        kind: FaultKind | str = FaultKind.SERVER_ERROR,
        *,
        latency_ms: float = 0.0,
        status: int = 500,
        retry_after: float = 1.0,
        times: int | None = None,
    ) -> None:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}: one of {', '.join(PROVIDERS)}")
        self._faults[(provider, endpoint)] = Fault(FaultKind(kind), latency_ms, status, retry_after, times)

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_latency(self, ms: float) -> None:
        self._latency_ms = ms

    def set_plan(self, plan: str) -> None:
        if plan not in routes.PLANS:
            raise ValueError(f"unknown plan {plan!r}: one of {', '.join(routes.PLANS)}")
        self.plan = plan

    def clear_requests(self) -> None:
        self.requests.clear()
        self._counts.clear()

    def request_count(self, provider: str | None = None, path: str | None = None) -> int:
        return sum(n for (p, e), n in self._counts.items() if provider in (None, p) and path in (None, e))

    # ---- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def base_urls(self) -> dict[str, str]:
        return {variable: f"{self.url}/{provider}" for provider, variable in BASE_URL_VARIABLES.items()}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/_twin/{action}", self._control)
        app.router.add_route("GET", "/{provider}/{tail:.*}", self._upstream)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=1024)
        await site.start()
        self._host = host
        server = site._server  # aiohttp exposes the bound port only here
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- handlers ------------------------------------------------------------------------------

    def _fault_for(self, provider: str, path: str) -> Fault | None:
        for key in ((provider, path), (provider, "*")):
            fault = self._faults.get(key)
            if fault is None:
                continue
            if fault.times is not None:
                if fault.times <= 0:
                    del self._faults[key]
                    continue
                fault.times -= 1
            return fault
        return None

    async def _upstream(self, request: web.Request) -> web.StreamResponse:
        provider = request.match_info["provider"]
        if provider not in PROVIDERS:
            return web.json_response({"error": f"unknown provider {provider}"}, status=404)
        path = "/" + request.match_info["tail"]
        query = dict(request.query)
        self._counts[(provider, path)] += 1
        if len(self.requests) < _MAX_RECORDED:
            self.requests.append(RecordedRequest(provider, request.method, path, query, dict(request.headers)))
        if self._latency_ms:
            await asyncio.sleep(self._latency_ms / 1000)
        normal = self._answer(provider, path, query, request)
        fault = self._fault_for(provider, path)
        if fault is not None:
            faulty = await apply_fault(fault, provider, normal)
            if faulty is not None:
                return faulty
        return normal

    def _answer(self, provider: str, path: str, query: dict[str, str], request: web.Request) -> web.Response:
        if provider == "okx":
            return routes.okx(self._recorded, path, query)
        if provider == "coinglass":
            return routes.coinglass(self._recorded, path, query, request.headers.get("CG-API-KEY", ""), self.plan)
        if provider == "coinapi":
            return routes.coinapi(self._recorded, path, request.headers.get("X-CoinAPI-Key", ""))
        if provider == "lunarcrush":
            return routes.lunarcrush(self._recorded, path, request.headers.get("Authorization", ""))
        return routes.feargreed(self._recorded, path, query)

    async def _control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        body: dict[str, Any] = await request.json() if request.can_read_body else {}
        try:
            if action == "health":
                return web.json_response({"status": "ok"})
            if action == "faults" and request.method == "POST":
                self.set_fault(
                    body["provider"],
                    body.get("endpoint", "*"),
                    body["kind"],
                    latency_ms=float(body.get("latency_ms", 0)),
                    status=int(body.get("status", 500)),
                    retry_after=float(body.get("retry_after", 1)),
                    times=body.get("times"),
                )
            elif action == "faults" and request.method == "DELETE":
                self.clear_faults()
            elif action == "requests" and request.method == "GET":
                return web.json_response(
                    {
                        "count": self.request_count(),
                        "by_endpoint": [
                            {"provider": p, "path": e, "count": n} for (p, e), n in sorted(self._counts.items())
                        ],
                        "requests": [
                            {k: v for k, v in asdict(r).items() if k != "headers"} for r in self.requests[-200:]
                        ],
                    }
                )
            elif action == "requests" and request.method == "DELETE":
                self.clear_requests()
            elif action == "latency" and request.method == "POST":
                self.set_latency(float(body["ms"]))
            elif action == "plan" and request.method == "POST":
                self.set_plan(str(body["plan"]))
            else:
                return web.json_response({"error": f"unknown control {request.method} {action}"}, status=404)
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"status": "ok"})
