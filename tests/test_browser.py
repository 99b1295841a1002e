"""The pages in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Each test loads a page from the real stack (twin, server, Envoy), records every request the page
makes and asserts none leaves loopback (anything else is also aborted, so a regression cannot reach
the internet), that the page raised no error and broke no CSP rule, and that it rendered. Screenshots
go to ``artifacts/screenshots/`` (ignored by git) for a person to look at.

Without Debian's chromium the tests skip saying how to install it; ``.ci/run`` installs it, so CI
never skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from service.generated import OPENAPI_FILE
from tests.stack import Stack, running_stack
from twin import RecordedTwin

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = "Debian's chromium is not installed: apt-get install -y chromium (.ci/run installs it)"
# CI installs chromium: there a missing browser is a failure (in the fixture), never a silent skip.
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason=MISSING)
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# A loaded 2-core machine: generous, and every wait is on an event, never a sleep.
WAIT_MS = 60_000
FAST: dict[str, Any] = {"cache_enabled": False, "signal_cache_seconds": 0, "watch_refresh_seconds": 0.3}
BACKTEST_PERIOD = "start=2024-11-15T00:00:00Z&end=2025-05-13T08:00:00Z"
HISTORY_STEP_MS = 300_000
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@dataclass
class Visit:
    """What a page did: every URL it asked for, errors it raised, CSP rules it broke."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)

    def assert_clean(self, base_url: str, expected_blocks: tuple[str, ...] = ()) -> None:
        assert self.requests, "the page made no request at all"
        # WebSockets (not seen by the route guard): this origin's host and port, ws: for http:.
        socket_origin = base_url.replace("http://", "ws://", 1)
        assert all(url.startswith(socket_origin + "/") for url in self.websockets), self.websockets
        outside = [
            url
            for url in self.requests
            if not url.startswith(("data:", "blob:")) and urlsplit(url).hostname not in LOOPBACK
        ]
        assert not outside, f"requests left loopback: {outside}"
        assert all(url.startswith((base_url, "data:", "blob:")) for url in self.requests), self.requests
        assert not self.errors, f"page errors: {self.errors}"
        unexpected = [v for v in self.csp_violations if not any(f"'{url}'" in v for url in expected_blocks)]
        assert not unexpected, f"Content-Security-Policy violations: {unexpected}"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    if CHROMIUM is None:
        pytest.fail(f"CI=true: {MISSING}")

    async with async_playwright() as playwright:
        # Playwright's own browser download cannot work here: Debian's chromium instead.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def open_page(browser: Any) -> AsyncIterator[Any]:
    """A function opening a fresh page that records what it does; it returns (page, visit)."""
    contexts = []

    async def opener() -> tuple[Any, Visit]:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        visit = Visit()

        async def guard(route: Any) -> None:
            url = route.request.url
            visit.requests.append(url)
            host = urlsplit(url).hostname
            if url.startswith(("data:", "blob:")) or host in LOOPBACK:
                await route.continue_()
            else:
                await route.abort()

        await context.route("**/*", guard)
        page = await context.new_page()
        page.on("pageerror", lambda error: visit.errors.append(str(error)))

        def console(message: Any) -> None:
            if "Content Security Policy" in message.text:
                visit.csp_violations.append(message.text)

        page.on("console", console)
        page.on("websocket", lambda socket: visit.websockets.append(socket.url))
        return page, visit

    yield opener
    for context in contexts:
        await context.close()


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


def operation_count() -> int:
    document = json.loads(OPENAPI_FILE.read_text())
    return sum(len(ops) for ops in document["paths"].values())


async def test_swagger_ui_lists_every_operation_offline(stack: Stack, open_page: Any) -> None:
    page, visit = await open_page()
    await page.goto(f"{stack.rest_url}/docs")
    operations = page.locator(".opblock")
    await operations.nth(operation_count() - 1).wait_for(timeout=WAIT_MS)
    assert await operations.count() == operation_count()
    assert await page.locator(".opblock-summary-path", has_text="/signals/{symbol}/history").count() == 1
    await page.screenshot(path=screenshot_path("docs"), full_page=True)
    visit.assert_clean(stack.rest_url)
    assert f"{stack.rest_url}/assets/js/swagger-ui-bundle.js" in visit.requests
    assert f"{stack.rest_url}/openapi.json" in visit.requests


async def test_redoc_lists_every_operation_offline(stack: Stack, open_page: Any) -> None:
    page, visit = await open_page()
    await page.goto(f"{stack.rest_url}/redoc")
    sections = page.locator("[data-section-id^='operation/']")
    await sections.nth(operation_count() - 1).wait_for(state="attached", timeout=WAIT_MS)
    assert await sections.count() == operation_count()
    await page.screenshot(path=screenshot_path("redoc"))
    # ReDoc 2.5.4 always draws its vendor's logo from their CDN (the "API docs by Redocly" link): the
    # CSP blocks it before any request is made, and ReDoc hides the broken image. Nothing else.
    visit.assert_clean(stack.rest_url, expected_blocks=(REDOC_LOGO,))
    assert REDOC_LOGO not in visit.requests
    assert f"{stack.rest_url}/assets/js/redoc.standalone.js" in visit.requests


def history_row(
    symbol: str, computed_ms: int, signal: str, score: float, profile: str = "seed", return_24h: float | None = None
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "profile": profile,
        "return_24h_pct": return_24h,
        "bucket": computed_ms // HISTORY_STEP_MS,
        "computed_ms": computed_ms,
        "score": score,
        "signal": signal,
        "confidence": "medium",
        "coverage": 0.9,
        "price": 80_000.0,
        "factors": [],
        "config_hash": "0123456789abcdef",
    }


PROFILES = ("seed", "research")


def track_row(profile: str, i: int) -> tuple[str, float]:
    """The i-th hand-made recorded signal of a profile with its 24 h outcome: classes in runs of 12
    (shifted by one run for research), rises two windows of 7 in three."""
    signal = ("LONG", "SHORT", "NEUTRAL")[(i // 12 + PROFILES.index(profile)) % 3]
    return signal, 1.5 if (i // 7) % 3 else -1.0


@pytest.fixture
async def dashboard_stack(faults: RecordedTwin) -> AsyncIterator[Stack]:
    """Caches off and a fast refresh, so a change in the twin's data reaches the page within a round;
    a recorded history with LONG and SHORT rows (the last day, every 5 minutes, BTC), and for both
    profiles a day of older BTC rows whose 24 h outcome is known (the track records)."""
    # The backtest runs uncached here (caches off) on a loaded machine: a deadline to match.
    async with running_stack(
        faults, watchlist="BTC,ETH", history_interval_seconds=3600, rpc_deadline_seconds=40, **FAST
    ) as stack:
        archive = stack.server.app.archive
        assert archive is not None
        await asyncio.wait_for(archive.recorder.ready.wait(), 30)
        now = int(time.time() * 1000) // HISTORY_STEP_MS * HISTORY_STEP_MS - HISTORY_STEP_MS
        rows = []
        for i in range(288, 0, -1):
            score = 50 + 22 * ((i % 48) / 24 - 1) * (1 if (i // 48) % 2 else -1)
            signal = "LONG" if score >= 65 else "SHORT" if score <= 35 else "NEUTRAL"
            rows.append(history_row("BTC", now - i * HISTORY_STEP_MS, signal, round(score, 2)))
        for profile in PROFILES:
            for i in range(288):
                signal, outcome = track_row(profile, i)
                at = now - (2 * 288 - i) * HISTORY_STEP_MS  # two days ago: the 24 h horizon has passed
                rows.append(history_row("BTC", at, signal, 50.0, profile, outcome))
        await archive.database.insert(rows)
        yield stack


def _pct(value: float | None) -> str:
    """dashboard.js's fmtPct."""
    return "-" if value is None else ("+" if value > 0 else "") + f"{value:.2f}%"


async def test_dashboard_streams_updates_draws_history_and_the_backtest(dashboard_stack: Stack, open_page: Any) -> None:
    from playwright.async_api import expect

    stack = dashboard_stack
    page, visit = await open_page()
    await page.goto(f"{stack.rest_url}/dashboard?{BACKTEST_PERIOD}")
    btc = page.locator(".card[data-symbol='BTC']")
    # Waits are selectors and expect(): the page's CSP forbids the eval behind wait_for_function.
    await page.locator(".card[data-symbol='BTC']:not([data-updates='0'])").wait_for(timeout=WAIT_MS)
    assert await btc.locator("[data-role='signal']").inner_text() in {"LONG", "SHORT", "NEUTRAL"}
    first_score = await btc.locator("[data-role='score']").inner_text()
    assert await page.locator(".card[data-symbol='ETH']").count() == 1

    # The history chart: the recorded rows, with LONG and SHORT marks.
    await btc.locator("svg.chart path.score-line").wait_for(timeout=WAIT_MS)
    # 288 rows written here, 288 older seed rows (the track record's), the watchlist's own row(s).
    note = btc.locator("[data-role='chart-note']")
    await expect(note).to_contain_text(re.compile(r"^(57[67]|5[89]\d) recorded signals"), timeout=WAIT_MS)
    assert await btc.locator("svg.chart polygon.mark.long").count() > 10
    assert await btc.locator("svg.chart polygon.mark.short").count() > 10

    # The live cards are fed by the one WebSocket, not by a stream per coin.
    assert await btc.get_attribute("data-transport") == "websocket"
    assert await page.locator("body").get_attribute("data-transport") == "websocket"
    assert visit.websockets == [stack.rest_url.replace("http://", "ws://") + "/ws"]
    assert not any("/stream" in url for url in visit.requests)

    # The backtest chart: a PNG the server drew, loaded and decoded.
    chart = page.locator("#backtest-chart")
    await chart.wait_for(state="visible", timeout=WAIT_MS)
    assert await chart.evaluate("image => image.naturalWidth") == 1320

    # Beside it, the report's figures from /backtest/{symbol}: the same numbers as the JSON.
    figures = page.locator("#backtest-figures table.figures")
    await figures.wait_for(timeout=WAIT_MS)
    async with httpx.AsyncClient(base_url=stack.rest_url, timeout=60) as rest:
        report = (await rest.get("/backtest/BTC", params=dict(p.split("=") for p in BACKTEST_PERIOD.split("&")))).json()
    rows = {
        "LONG": report["classes"][0],
        "SHORT": report["classes"][1],
        "signal": report["signalPositions"],
        "always_long": report["baselines"][0],
        "random_entries": report["baselines"][2],
    }
    for key, row in rows.items():
        cells = await figures.locator(f"tr[data-row='{key}'] td").all_inner_texts()
        gross = row.get("meanPositionReturnPct", row["meanForwardReturnPct"])
        assert cells == [str(row["count"]), f"{row['hitRate'] * 100:.1f}%", _pct(gross), _pct(row["meanNetReturnPct"])]
    # A SHORT's position return is the opposite of the price's move.
    assert rows["SHORT"]["meanPositionReturnPct"] == pytest.approx(-rows["SHORT"]["meanForwardReturnPct"])
    caption = await figures.locator("caption").inner_text()
    assert "net of 5 bps a side" in caption and f"p = {report['randomEntries']['pValue']:.3f}" in caption
    assert await page.locator("#backtest-figures [data-role='verdict']").inner_text() == report["verdict"]

    # Both profiles' live track records, a row per watchlist coin.
    for profile in ("seed", "research"):
        track = page.locator(f".track[data-profile='{profile}'] table.figures")
        await track.wait_for(timeout=WAIT_MS)
        assert await track.locator("tbody tr").count() == 2
        cells = await track.locator("tr[data-symbol='BTC'] td").all_inner_texts()
        assert int(cells[0]) == 288, cells  # BTC's rows with a 24 h outcome
        longs = [r for r in (track_row(profile, i) for i in range(288)) if r[0] == "LONG"]
        hit = sum(outcome > 0 for _, outcome in longs) / len(longs)  # seed 61/96, research 64/96
        assert cells[1] == f"{hit * 100:.1f}% ({len(longs)})", cells
        assert cells[-1], cells  # the record's verdict
        eth = await track.locator("tr[data-symbol='ETH'] td").all_inner_texts()
        assert eth[0] == "0", eth  # ETH has no recorded outcome yet: said, not hidden
    await page.screenshot(path=screenshot_path("dashboard"), full_page=True)

    # The twin's data changes (LunarCrush fails: social drops out of the score); the card shows it.
    changed_at = time.monotonic()
    stack.twin.set_fault("lunarcrush", "*", "server_error")
    await expect(btc.locator("[data-role='missing']")).to_contain_text("social", timeout=WAIT_MS)
    seconds = time.monotonic() - changed_at
    assert seconds < 20, f"the streamed update took {seconds:.1f} s"
    assert await btc.locator("[data-role='score']").inner_text() != first_score
    print(f"dashboard: streamed update shown {seconds:.2f} s after the twin's data changed")
    await page.screenshot(path=screenshot_path("dashboard-after-change"), full_page=True)
    visit.assert_clean(stack.rest_url)
    assert any("/signals/BTC/history" in url for url in visit.requests)
    assert any("/signals/ETH/track-record?profile=research" in url for url in visit.requests)


async def test_dashboard_reconnects_then_falls_back_to_sse_when_the_socket_goes(
    dashboard_stack: Stack, open_page: Any
) -> None:
    """The WebSocket server stops (1001, then nothing answers /ws): the page retries with backoff,
    gives up after three sockets in a row fail, and each card takes its SSE stream instead."""
    from playwright.async_api import expect

    stack = dashboard_stack
    page, visit = await open_page()
    await page.goto(f"{stack.rest_url}/dashboard?{BACKTEST_PERIOD}")
    btc = page.locator(".card[data-symbol='BTC']")
    await page.locator(".card[data-symbol='BTC'][data-transport='websocket']:not([data-updates='0'])").wait_for(
        timeout=WAIT_MS
    )
    await stack.server.live_socket.stop()
    body = page.locator("body")
    await expect(body).to_have_attribute("data-transport", "sse", timeout=WAIT_MS)
    assert "3 sockets in a row failed" in (await body.get_attribute("data-fallback") or "")
    assert await btc.get_attribute("data-transport") == "sse"
    # The SSE stream delivers (its first event is the current signal): the card says where from.
    await expect(btc.locator("[data-role='meta']")).to_contain_text("via sse", timeout=WAIT_MS)
    assert len(visit.websockets) == 4, visit.websockets  # the first socket and three attempts
    assert any("/signals/BTC/stream" in url for url in visit.requests)
    assert any("/signals/ETH/stream" in url for url in visit.requests)
    await page.screenshot(path=screenshot_path("dashboard-sse-fallback"), full_page=True)
    visit.assert_clean(stack.rest_url)


async def test_with_client_keys_the_dashboard_sends_the_key_it_was_given_in_the_fragment(
    faults: RecordedTwin, open_page: Any
) -> None:
    """SIGNAL_API_KEYS set: the page takes the key from #key=... (no request carries a fragment),
    drops it from the address bar, opens the WebSocket with the subprotocols cryptosignals.v1 and
    bearer.<key>, and sends the key as a header on its fetches."""
    from playwright.async_api import expect

    async with running_stack(faults, watchlist="BTC", signal_api_keys="page-key", **FAST) as stack:
        page, visit = await open_page()
        sent: list[dict[str, str]] = []
        page.on("request", lambda request: sent.append(request.headers) if "/history" in request.url else None)
        await page.goto(f"{stack.rest_url}/dashboard?{BACKTEST_PERIOD}#key=page-key")
        # Connected and fed: the server accepted the key from the bearer.<key> subprotocol.
        btc = page.locator(".card[data-symbol='BTC'][data-transport='websocket']:not([data-updates='0'])")
        await btc.wait_for(timeout=WAIT_MS)
        assert "#" not in page.url and "page-key" not in page.url
        await expect(page.locator("[data-role='chart-note']")).to_contain_text("recorded signals", timeout=WAIT_MS)
        assert sent and all(headers.get("authorization") == "Bearer page-key" for headers in sent)
        assert all("page-key" not in url for url in visit.requests + visit.websockets)
        visit.assert_clean(stack.rest_url)

        # Without the key (a fresh tab), the socket is refused (401 before the upgrade) every time:
        # the page stops retrying and falls back to SSE, which is refused too, and says so.
        page, visit = await open_page()
        await page.goto(f"{stack.rest_url}/dashboard?{BACKTEST_PERIOD}")
        await expect(page.locator("body")).to_have_attribute("data-transport", "sse", timeout=WAIT_MS)
        assert len(visit.websockets) == 3
        meta = page.locator(".card[data-symbol='BTC'] [data-role='meta']")
        await expect(meta).to_contain_text("stream unavailable", timeout=WAIT_MS)
