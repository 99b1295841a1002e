"""Load without errors (the small variant of ``python -m bench.load``).

Twin, server and Envoy run as separate processes, as in production; the twin serves faults for
four providers while 2,000 REST calls arrive over 100 connections. Every answer must be a full
JSON body: 200, or a mapped 503 where a provider is down for good; no transport error at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.load import drive, switch_faults
from bench.service import Deployment, rss_mb


@pytest.fixture
async def deployment() -> AsyncIterator[Deployment]:
    running = Deployment(latency_ms=20)
    try:
        await running.start()
        yield running
    finally:
        running.stop()


@pytest.mark.timeout(60)
async def test_2000_requests_at_100_connections_with_faults_upstream(deployment: Deployment) -> None:
    await switch_faults(deployment.twin)
    base_url = f"http://127.0.0.1:{deployment.port}"
    assert deployment.server is not None
    await drive(base_url, 100, 20)  # warm-up
    before = rss_mb(deployment.server.pid)
    report = await drive(base_url, 2000, 100)
    after = rss_mb(deployment.server.pid)
    assert not report.transport_errors, report.summary()
    assert not report.bad_answers, "\n".join(report.bad_answers[:10])
    assert sum(report.statuses.values()) == 2000
    assert set(report.statuses) <= {200, 503}, report.summary()
    # The only 503s are the endpoint whose provider always fails; the other faults are absorbed.
    failing = {path for (path, status) in report.by_path if status == 503}
    assert failing <= {"/coinglass/liquidations/ETH/heatmap"}, report.by_path
    assert report.statuses[200] >= 1800
    assert after < 150 and after - before < 30, (before, after)
