"""The documentation pages: Swagger UI and ReDoc from files this service serves (no CDN).

Both load ``/openapi.json``; their scripts and styles come from ``/assets/...`` (vendored, see
``service/web/pages.py``), so they work offline and under the strict ``DOCS_CSP``: no inline script.
"""

from __future__ import annotations

SWAGGER_UI = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cryptosignals API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/css/swagger-ui.css"></head>
<body><div id="swagger-ui" data-url="/openapi.json"></div>
<script src="/assets/js/swagger-ui-bundle.js"></script>
<script src="/assets/js/swagger-init.js"></script>
</body></html>
"""

REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cryptosignals API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/assets/js/redoc.standalone.js"></script>
</body></html>
"""
