"""Prometheus metrics of upstream calls and the cache (labels never carry keys or symbols)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric

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


class Tally:
    """A Prometheus counter family kept as plain ints and exposed at scrape time.

    For counts taken on every request: prometheus_client's Counter takes a lock and checks its state
    on each increment, several times the cost of this dict update. Not thread-safe by design: it is
    counted and scraped on the serving event loop.
    """

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self._name, self._documentation, self._labels = name, documentation, list(labels)
        self._counts: dict[tuple[str, ...], int] = {}
        self._cells: dict[tuple[str, ...], list[int]] = {}
        REGISTRY.register(self)

    def inc(self, *labels: str) -> None:
        self._counts[labels] = self._counts.get(labels, 0) + 1

    def cell(self, *labels: str) -> list[int]:
        """A one-element list counting ``labels`` (added to ``inc``'s count): a caller counting on
        every request keeps it and does ``cell[0] += 1``, no call and no lookup."""
        return self._cells.setdefault(labels, [0])

    def value(self, *labels: str) -> int:
        cell = self._cells.get(labels)
        return self._counts.get(labels, 0) + (cell[0] if cell is not None else 0)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labels)
        for labels in sorted({*self._counts, *self._cells}):
            family.add_metric(list(labels), self.value(*labels))
        yield family


CACHE_EVENTS = Tally(
    "cryptosignals_cache_events",
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


def record_cache_event(event: str, provider: str) -> None:
    # Every cache lookup (a warm signal is one): CACHE_EVENTS.inc's update, without its call.
    key = (provider or "unknown", event)
    _cache_event_counts[key] = _cache_event_counts.get(key, 0) + 1


_cache_event_counts = CACHE_EVENTS._counts
