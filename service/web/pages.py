"""Pages for people and the files they load, all served by this service: no CDN, strict CSP.

Every asset is a file under ``service/web/static/``: our own (the dashboard, the docs' start-up
script) and the vendored Swagger UI and ReDoc bundles, whose SHA-256 is pinned here (and checked
by ``tests/test_pages.py``; ``service/web/static/vendor/PROVENANCE.md`` says where they come from).
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import grpc

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
SWAGGER_UI_DIR = VENDOR / "swagger-ui-dist-5.35.0"
REDOC_DIR = VENDOR / "redoc-2.5.4"

# name -> (file, pinned SHA-256 of a vendored file, or None for our own)
VENDORED: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (
        SWAGGER_UI_DIR / "swagger-ui-bundle.js",
        "e6a898692f2d768e807c3ba4626068a69a2c5dd960dd6c76f3e4d3a3de180af2",
    ),
    "swagger-ui.css": (
        SWAGGER_UI_DIR / "swagger-ui.css",
        "5ed08757e53da3e026d6cbecc61fe5d43585c9560b302d534ad56692519a273d",
    ),
    "redoc.standalone.js": (
        REDOC_DIR / "redoc.standalone.js",
        "dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b",
    ),
}
OWN: dict[str, Path] = {
    "dashboard.js": STATIC / "dashboard.js",
    "dashboard.css": STATIC / "dashboard.css",
    "swagger-init.js": STATIC / "swagger-init.js",
}
SCRIPT_TYPE = "text/javascript; charset=utf-8"
STYLESHEET_TYPE = "text/css; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"

# The pages' Content-Security-Policy: nothing but this origin. Scripts only from files (no inline
# script, no eval). The dashboard's WebSocket (/ws) is this origin too: CSP Level 3 matches 'self'
# against ws: and wss: of the page's own host and port (Chromium, Firefox, Safari 15.4+), so
# connect-src 'self' allows it and nothing else (a ws:/wss: scheme source would allow any host).
# Swagger UI and ReDoc (styled-components) inject <style> elements, hence 'unsafe-inline' for styles
# on the docs pages only; ReDoc runs its search index in a blob: worker;
# both draw a few icons as data: images. The dashboard shows the backtest PNG it fetched as a blob:.
_BASE_CSP = (
    "default-src 'self'",
    "script-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
DASHBOARD_CSP = "; ".join((*_BASE_CSP, "style-src 'self'", "img-src 'self' blob:"))
DOCS_CSP = "; ".join(
    (*_BASE_CSP, "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "worker-src 'self' blob:")
)


@dataclass(frozen=True)
class Asset:
    name: str
    data: bytes
    content_type: str
    vendored: bool

    @property
    def cache_control(self) -> str:
        # Vendored files change only with a new version; ours change with every deploy.
        return "public, max-age=3600" if self.vendored else "no-cache"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def asset(name: str) -> Asset | None:
    """The named script or stylesheet, read once; None for any other name (a 404)."""
    if name in VENDORED:
        path, vendored = VENDORED[name][0], True
    elif name in OWN:
        path, vendored = OWN[name], False
    else:
        return None
    content_type = SCRIPT_TYPE if name.endswith(".js") else STYLESHEET_TYPE
    return Asset(name, path.read_bytes(), content_type, vendored)


def dashboard_page(watchlist: list[str]) -> str:
    """The dashboard's HTML: the coins come from WATCHLIST; the rest is drawn by dashboard.js."""
    coins = html.escape(",".join(watchlist))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cryptosignals dashboard</title>
<link rel="stylesheet" href="/assets/css/dashboard.css">
</head>
<body data-watchlist="{coins}">
<header>
  <h1>cryptosignals</h1>
  <nav><a href="/docs">API (Swagger UI)</a> <a href="/redoc">API reference (ReDoc)</a></nav>
</header>
<main>
  <section aria-labelledby="live-title">
    <h2 id="live-title">Live signals</h2>
    <p class="note">The cards update from one WebSocket for every coin (<code>/ws</code>), or each
    coin's stream (<code>/signals/{{symbol}}/stream</code>) if the socket cannot be used; the chart
    is the recorded score history (<code>/signals/{{symbol}}/history</code>) with LONG and SHORT
    marks, extended by each live signal.</p>
    <div id="cards"></div>
  </section>
  <section aria-labelledby="backtest-title">
    <h2 id="backtest-title">Backtest</h2>
    <form id="backtest-form">
      <label>coin <select id="backtest-symbol" name="symbol"></select></label>
      <label>start <input id="backtest-start" name="start" placeholder="180 days before end"></label>
      <label>end <input id="backtest-end" name="end" placeholder="now"></label>
      <button type="submit">run</button>
    </form>
    <p id="backtest-status" class="note"></p>
    <div class="backtest-panel">
      <img id="backtest-chart" alt="backtest chart" hidden>
      <div id="backtest-figures" aria-live="polite"></div>
    </div>
    <p class="note">Position returns in percent per position: a SHORT gains when the price falls.
    Net: after a taker fee on entry and on exit and the funding paid (received by shorts) at each 8 h
    settlement held (<code>/backtest/{{symbol}}</code>, <code>fee_bps</code>).</p>
  </section>
  <section aria-labelledby="track-title">
    <h2 id="track-title">Live track records</h2>
    <p class="note">How the recorded signals of each scoring profile did
    (<code>/signals/{{symbol}}/track-record?profile=seed|research</code>).</p>
    <div id="track-records"></div>
  </section>
</main>
<script src="/assets/js/dashboard.js"></script>
</body>
</html>
"""


async def send_page_headers(context: grpc.aio.ServicerContext, csp: str | None, cache_control: str) -> None:
    """A page's headers as initial metadata: Envoy's transcoder turns them into HTTP headers."""
    headers = [("cache-control", cache_control), ("x-content-type-options", "nosniff")]
    if csp is not None:
        headers.append(("content-security-policy", csp))
    await context.send_initial_metadata(headers)
