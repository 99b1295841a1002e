"""Prometheus metrics of upstream calls and the cache (labels never carry keys or symbols)."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import Counter, Histogram

UPSTREAM_REQUESTS = Counter(
    "cryptosignals_upstream_requests_total",
    "Upstream HTTP requests by provider, endpoint and outcome (ok or an error kind).",
    ["provider", "endpoint", "outcome"],
)
UPSTREAM_LATENCY = Histogram(
    "cryptosignals_upstream_latency_seconds",
    "Upstream HTTP request latency.",
    ["provider", "endpoint"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
UPSTREAM_ERRORS = Counter(
    "cryptosignals_upstream_errors_total",
    "Failed upstream calls (after retries, including error envelopes sent with HTTP 200) by kind.",
    ["provider", "endpoint", "kind"],
)
CACHE_EVENTS = Counter(
    "cryptosignals_cache_events_total",
    "Upstream cache lookups by provider and result: hit, miss or stale.",
    ["provider", "event"],
)

# Paths that embed a coin or topic: one label per endpoint, not per symbol (bounded cardinality).
_TEMPLATES = (
    (re.compile(r"^/v1/exchangerate/[^/]+/[^/]+$"), "/v1/exchangerate/{base}/{quote}"),
    (re.compile(r"^/public/coins/[^/]+/v1$"), "/public/coins/{coin}/v1"),
    (re.compile(r"^/public/topic/[^/]+/v1$"), "/public/topic/{topic}/v1"),
)


def endpoint_label(endpoint: str) -> str:
    for pattern, template in _TEMPLATES:
        if pattern.match(endpoint):
            return template
    return endpoint


_cache_event_children: dict[tuple[str, str], Any] = {}


def record_cache_event(event: str, provider: str) -> None:
    # Called on every cache lookup (a warm signal is one): the labelled child is looked up once.
    child = _cache_event_children.get((provider, event))
    if child is None:
        child = _cache_event_children[(provider, event)] = CACHE_EVENTS.labels(provider or "unknown", event)
    child.inc()
