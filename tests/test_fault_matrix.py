"""The upstream fault matrix through the real Envoy: every Coinglass fault answers its mapped HTTP status
with a JSON message, within the deadline; and across every fault, no provider key appears in any
response body, error message, log line, metric label or Envoy's log."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.stack import FAKE_KEYS, Stack, running_stack
from twin import RecordedTwin

FAULTS = ["timeout", "rate_limit", "server_error", "html", "truncated_json", "error_envelope", "empty"]
# gRPC status the client sees (as HTTP through Envoy) when Coinglass itself fails that way.
MAPPED_STATUS = {
    "timeout": (504, 4),  # DEADLINE_EXCEEDED
    "rate_limit": (429, 8),  # RESOURCE_EXHAUSTED: back off
    "server_error": (503, 14),  # UNAVAILABLE
    "html": (503, 14),
    "truncated_json": (503, 14),
    "error_envelope": (503, 14),
    "empty": (404, 5),  # NOT_FOUND: Coinglass has no data for the coin
}
COINGLASS_PATHS = [
    "/coinglass/markets/BTC",
    "/coinglass/liquidations/BTC",
    "/coinglass/long-short-ratio/BTC",
    "/coinglass/funding-rate/BTC",
    "/coinglass/open-interest/BTC",
]
UPSTREAM_TIMEOUT = 0.5
DEADLINE = 3.0
# Every surface a key could leak through: debug output, raw provider data, probes, health, metrics.
SWEEP_PATHS = [
    "/signals/BTC?debug=true",
    "/market/BTC",
    "/debug/premium/BTC",
    "/coinglass/dashboard/BTC",
    "/coinglass/funding-rate/BTC",
    "/health",
    "/metrics",
]


@pytest.fixture(scope="module")
async def matrix_stack(twin: RecordedTwin) -> AsyncIterator[Stack]:
    # No cache and no retries: every call meets the fault; a timeout costs one upstream timeout.
    async with running_stack(
        twin,
        upstream_timeout_seconds=UPSTREAM_TIMEOUT,
        upstream_max_attempts=1,
        cache_enabled=False,
        rpc_deadline_seconds=DEADLINE,
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
async def client(matrix_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=matrix_stack.rest_url, timeout=DEADLINE + 5) as http:
        yield http


def _break(twin: RecordedTwin, provider: str, fault: str) -> None:
    twin.set_fault(provider, "*", fault, seconds=5 if fault == "timeout" else None)


def _assert_no_keys(text: str, where: str) -> None:
    for name, key in FAKE_KEYS.items():
        assert key not in text, f"{name} leaked in {where}"


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("path", COINGLASS_PATHS)
async def test_coinglass_fault_is_its_mapped_status_with_a_json_message_in_time(
    faults: RecordedTwin, client: httpx.AsyncClient, path: str, fault: str
) -> None:
    _break(faults, "coinglass", fault)
    started = time.monotonic()
    response = await client.get(path)
    elapsed = time.monotonic() - started
    status, code = MAPPED_STATUS[fault]
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["message"].startswith("coinglass /api/"), body["message"]  # names the provider and endpoint
    assert elapsed < DEADLINE


@pytest.mark.parametrize("fault", FAULTS)
async def test_every_provider_failing_one_way_leaks_no_key_anywhere(
    faults: RecordedTwin, matrix_stack: Stack, client: httpx.AsyncClient, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    _break(faults, "*", fault)
    bodies = []
    with caplog.at_level(logging.DEBUG):
        for path in SWEEP_PATHS:
            response = await client.get(path)
            assert response.status_code < 500 or response.json()["message"], (path, response.text)
            bodies.append((path, response.text))
    for path, text in bodies:
        _assert_no_keys(text, f"GET {path}")
    _assert_no_keys(caplog.text, "the server's log")
    assert matrix_stack.envoy is not None
    _assert_no_keys(matrix_stack.envoy.log_path.read_text(), "Envoy's log")


async def test_all_providers_down_is_503_naming_each_provider_in_time(
    faults: RecordedTwin, client: httpx.AsyncClient
) -> None:
    _break(faults, "*", "timeout")
    started = time.monotonic()
    response = await client.get("/signals/BTC")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    message = response.json()["message"]
    for provider in ("coinglass", "okx", "lunarcrush"):
        assert f"{provider}: timeout" in message, message
    assert elapsed < DEADLINE
