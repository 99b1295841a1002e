"""Pages over HTTP through Envoy: docs and dashboard from this service's own files, strict CSP,
pinned vendored bundles, the backtest chart as a PNG. The browser tests are tests/test_browser.py."""

from __future__ import annotations

import hashlib
import json
import re

import httpx
import pytest

from service.generated import OPENAPI_FILE
from service.web import pages
from tests.stack import running_stack
from twin import RecordedTwin

PERIOD = {"start": "2024-11-15T00:00:00Z", "end": "2025-05-13T08:00:00Z"}
PAGES = ("/docs", "/redoc", "/dashboard")


def references(html: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url)="([^"]+)"', html)


def test_vendored_bundles_match_their_pinned_hashes_and_carry_their_licences() -> None:
    for name, (path, pinned) in pages.VENDORED.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == pinned, f"{name} is not the pinned file"
    for directory in (pages.SWAGGER_UI_DIR, pages.REDOC_DIR):
        assert (directory / "LICENSE").stat().st_size > 500
    provenance = (pages.VENDOR / "PROVENANCE.md").read_text()
    assert "swagger-ui-dist` | 5.35.0" in provenance and "`redoc` | 2.5.4" in provenance


@pytest.mark.parametrize("path", PAGES)
async def test_pages_load_only_this_origins_files_under_a_strict_csp(rest: httpx.AsyncClient, path: str) -> None:
    response = await rest.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["connect-src"] == "'self'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in response.text  # every script is a file
    refs = references(response.text)
    assert refs and all(ref.startswith("/") and not ref.startswith("//") for ref in refs), refs
    for ref in refs:
        if ref.startswith("/assets/"):
            asset = await rest.get(ref)
            assert asset.status_code == 200, ref
            expected = "text/javascript" if ref.endswith(".js") else "text/css"
            assert asset.headers["content-type"].startswith(expected), ref
            assert asset.headers["x-content-type-options"] == "nosniff"


def test_the_documented_file_names_are_the_served_ones() -> None:
    document = json.loads(OPENAPI_FILE.read_text())
    served = {*pages.VENDORED, *pages.OWN}
    documented = set()
    for kind in ("js", "css"):
        (parameter,) = document["paths"][f"/assets/{kind}/{{name}}"]["get"]["parameters"]
        names = set(parameter["schema"]["enum"])
        assert all(name.endswith(f".{kind}") for name in names)
        documented |= names
    assert documented == served


async def test_served_bundles_are_the_pinned_bytes(rest: httpx.AsyncClient) -> None:
    for name, (_, pinned) in pages.VENDORED.items():
        kind = "js" if name.endswith(".js") else "css"
        response = await rest.get(f"/assets/{kind}/{name}")
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == pinned
        assert response.headers["cache-control"] == "public, max-age=3600"
    own = await rest.get("/assets/js/dashboard.js")
    assert own.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/assets/js/nope.js", "/assets/css/dashboard.js", "/assets/js/dashboard.css", "/assets/js/..%2fpages.py"]
)
async def test_unknown_files_are_a_json_404(rest: httpx.AsyncClient, path: str) -> None:
    response = await rest.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == 5


async def test_the_dashboard_names_the_watchlist(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, watchlist="ETH,SOL", history_interval_seconds=3600) as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=15) as rest,
    ):
        page = await rest.get("/dashboard")
    assert 'data-watchlist="ETH,SOL"' in page.text


async def test_the_backtest_chart_is_a_png_of_the_report(twin: RecordedTwin) -> None:
    # A cold backtest, matplotlib's first import and the drawing take seconds on a loaded 2-core
    # machine: a stack whose deadline allows it (the session stack's is 8 s).
    async with (
        running_stack(twin, rpc_deadline_seconds=60) as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=90) as rest,
    ):
        response = await rest.get("/backtest/BTC/chart", params=PERIOD)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(response.content[16:20], "big"), int.from_bytes(response.content[20:24], "big")
    assert (width, height) == (1320, 1210)  # 12 x 11 inches at 110 dpi, as make backtest draws it


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"start": "yesterday"}, 400, "start must be an RFC 3339 time"),
        ({**PERIOD, "interval": "w1"}, 400, "interval must be h4, h1 or d1"),
        ({"start": "2025-03-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"}, 400, "must be before end"),
    ],
)
async def test_a_bad_chart_request_is_a_json_error_naming_it(
    rest: httpx.AsyncClient, params: dict[str, str], status: int, message: str
) -> None:
    response = await rest.get("/backtest/BTC/chart", params=params)
    assert response.status_code == status
    assert message in response.json()["message"]


async def test_with_client_keys_pages_and_their_files_stay_open_the_chart_does_not(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, signal_api_keys="page-key") as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=15) as rest,
    ):
        for path in (*PAGES, "/assets/js/swagger-ui-bundle.js", "/assets/css/dashboard.css"):
            assert (await rest.get(path)).status_code == 200, path
        assert (await rest.get("/backtest/BTC/chart", params=PERIOD)).status_code == 401
