"""GET /ws from a real browser (headless Chromium, Debian's ``chromium``, driven by Playwright).

A browser cannot set headers on a WebSocket: the key rides as the subprotocol ``bearer.<key>``
beside ``cryptosignals.v1``. Skips (saying how to install it) without chromium, as tests/test_browser.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.stack import Stack, running_stack
from twin import RecordedTwin

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = "Debian's chromium is not installed: apt-get install -y chromium (.ci/run installs it)"
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason=MISSING)

# The page's script: open the socket with the key as a subprotocol, subscribe, and resolve with what
# the socket said until the first signal (or with the close code if it closed first).
SCRIPT = """
async ([url, protocols]) => new Promise((resolve) => {
  const seen = [];
  const ws = new WebSocket(url, protocols);
  ws.onopen = () => ws.send(JSON.stringify({type: "subscribe", symbols: ["BTC"]}));
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    seen.push(message);
    if (message.kind === "SIGNAL") { resolve({protocol: ws.protocol, seen}); ws.close(1000); }
  };
  ws.onclose = (event) => resolve({closed: event.code, seen});
})
"""


@pytest.fixture
async def keyed_stack(twin: RecordedTwin) -> AsyncIterator[Stack]:
    async with running_stack(twin, signal_api_keys="browser-key") as stack:
        yield stack


async def test_a_browser_subscribes_with_its_key_as_a_subprotocol(keyed_stack: Stack) -> None:
    from playwright.async_api import async_playwright

    if CHROMIUM is None:
        pytest.fail(f"CI=true: {MISSING}")
    url = keyed_stack.rest_url.replace("http://", "ws://") + "/ws"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(f"{keyed_stack.rest_url}/health")  # an http://127.0.0.1 origin, as a dashboard has
            result: dict[str, Any] = await page.evaluate(SCRIPT, [url, ["cryptosignals.v1", "bearer.browser-key"]])
            assert result.get("protocol") == "cryptosignals.v1", result
            kinds = [m["kind"] for m in result["seen"]]
            assert kinds[0] == "SUBSCRIBED" and kinds[-1] == "SIGNAL"
            assert result["seen"][-1]["signal"]["symbol"] == "BTC"
            # A wrong key: the upgrade is refused (401), which a browser sees as close code 1006.
            refused: dict[str, Any] = await page.evaluate(SCRIPT, [url, ["cryptosignals.v1", "bearer.wrong"]])
            assert refused == {"closed": 1006, "seen": []}
        finally:
            await browser.close()
