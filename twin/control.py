"""HTTP control API under /_twin/: drive a twin running in another process (demo, benchmarks).

POST   /_twin/faults    {"provider", "endpoint"?, "kind", "latency_ms"?, "status"?, "retry_after"?,
                         "times"?, "code"?, "seconds"?}  or a list of those
GET    /_twin/faults    the active faults
DELETE /_twin/faults    clear every fault
GET    /_twin/requests  {"count", "counts": {"provider path": n}, "requests": [...]}; ?provider=&path= filter
DELETE /_twin/requests  forget recorded requests and counts
POST   /_twin/latency   {"ms": N}      global extra latency
POST   /_twin/plan      {"plan": "hobbyist" | "startup" | "standard" | "professional"}
GET    /_twin/health    200 {"status": "ok"}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from twin.server import RecordedTwin

FAULT_FIELDS = ("provider", "endpoint", "kind", "latency_ms", "status", "retry_after", "times", "code", "seconds")


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        body = json.dumps({"error": f"invalid JSON: {exc}"})
        raise web.HTTPBadRequest(text=body, content_type="application/json") from exc


def add_control_routes(app: web.Application, twin: RecordedTwin) -> None:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "plan": twin.plan, "latency_ms": twin.latency_ms})

    async def get_faults(_: web.Request) -> web.Response:
        return web.json_response({"faults": [f.to_json() for f in twin.faults.list()]})

    async def post_faults(request: web.Request) -> web.Response:
        body = await _body(request)
        specs = body if isinstance(body, list) else [body]
        if not all(isinstance(spec, dict) and "provider" in spec and "kind" in spec for spec in specs):
            return _bad("each fault needs at least 'provider' and 'kind'")
        unknown = {key for spec in specs for key in spec} - set(FAULT_FIELDS)
        if unknown:
            return _bad(f"unknown fault fields: {', '.join(sorted(unknown))}")
        try:
            faults = [twin.set_fault(**spec) for spec in specs]
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        return web.json_response({"faults": [f.to_json() for f in faults]})

    async def delete_faults(_: web.Request) -> web.Response:
        twin.clear_faults()
        return web.json_response({"faults": []})

    async def get_requests(request: web.Request) -> web.Response:
        provider = request.query.get("provider") or None
        path = request.query.get("path") or None
        rows = [
            r.to_json()
            for r in twin.requests
            if (provider is None or r.provider == provider) and (path is None or r.path == path)
        ]
        counts = {f"{p} {q}": n for (p, q), n in twin._counts.items()}
        return web.json_response({"count": twin.request_count(provider, path), "counts": counts, "requests": rows})

    async def delete_requests(_: web.Request) -> web.Response:
        twin.clear_requests()
        return web.json_response({"count": 0})

    async def post_latency(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("ms"), int | float):
            return _bad('expected {"ms": <number>}')
        twin.set_latency(float(body["ms"]))
        return web.json_response({"latency_ms": twin.latency_ms})

    async def post_plan(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("plan"), str):
            return _bad('expected {"plan": "hobbyist" | "startup" | "standard" | "professional"}')
        try:
            twin.set_plan(body["plan"])
        except ValueError as exc:
            return _bad(str(exc))
        return web.json_response({"plan": twin.plan})

    r = app.router
    r.add_get("/_twin/health", health)
    r.add_get("/_twin/faults", get_faults)
    r.add_post("/_twin/faults", post_faults)
    r.add_delete("/_twin/faults", delete_faults)
    r.add_get("/_twin/requests", get_requests)
    r.add_delete("/_twin/requests", delete_requests)
    r.add_post("/_twin/latency", post_latency)
    r.add_post("/_twin/plan", post_plan)
