"""Staleness over REST through the real Envoy and server: the recorded twin serves fresh data (its
generated data moved to the present), every factor carries its data time within its max age; one
endpoint answering old data (the twin's "unshifted" fault: its recorded 2025-11-28 dates) gets its
factor dropped, named in missingFactors with the reason, and marked stale in debug output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest

from scoring import DEFAULT_CONFIG, FACTOR_NAMES
from tests.stack import running_stack
from twin import RecordedTwin

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
async def rest(twin: RecordedTwin) -> AsyncIterator[httpx.AsyncClient]:
    # No upstream cache and no signal memo: every request reaches the twin, so a fault shows at once.
    async with (
        running_stack(twin, cache_enabled=False, signal_cache_seconds=0) as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=15.0) as client,
    ):
        yield client


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_every_factor_of_the_demo_data_is_fresh_and_carries_its_data_time(
    rest: httpx.AsyncClient, faults: RecordedTwin
) -> None:
    body = (await rest.get("/signals/BTC", params={"debug": "true"})).json()
    assert body["missingFactors"] == [] and body["coverage"] == pytest.approx(1.0)
    decided = _time(body["timestamp"])
    factors = {f["factor"]: f for f in body["factors"]}
    assert set(factors) == set(FACTOR_NAMES)
    for name, factor in factors.items():
        age = decided - _time(factor["dataTime"])
        assert timedelta(0) <= age <= timedelta(hours=DEFAULT_CONFIG.max_age_hours[name]), (name, age)
        assert not factor.get("stale", False), name
    assert body["config"]["maxAgeHours"] == dict(DEFAULT_CONFIG.max_age_hours)


# (preferred source's endpoint, the fallback's provider and endpoint, factor, the preferred source's
# newest recorded time, the factor's max age)
STALE_CASES = [
    # hourly aggregated liquidations, then OKX's own liquidation orders; 9h max age
    (
        "/api/futures/liquidation/aggregated-history",
        ("okx", "/api/v5/public/liquidation-orders"),
        "liquidations",
        "2025-11-28T03:00:00Z",
        "9h",
    ),
    # the daily index, then alternative.me's; 36h
    ("/api/index/fear-greed-history", ("feargreed", "*"), "fear_greed", "2025-11-28T00:00:00Z", "36h"),
]


@pytest.mark.parametrize(("endpoint", "fallback", "factor", "recorded", "max_age"), STALE_CASES)
async def test_old_data_from_the_preferred_source_gives_way_to_a_fresh_fallback(
    rest: httpx.AsyncClient,
    faults: RecordedTwin,
    endpoint: str,
    fallback: tuple[str, str],
    factor: str,
    recorded: str,
    max_age: str,
) -> None:
    faults.set_fault("coinglass", endpoint, "unshifted")
    body = (await rest.get("/signals/BTC", params={"debug": "true"})).json()
    assert body["missingFactors"] == [] and body["coverage"] == pytest.approx(1.0)
    served = {f["factor"]: f for f in body["factors"]}[factor]
    assert served["source"].startswith(f"{fallback[0] if fallback[0] != 'feargreed' else 'alternative.me'}:")
    assert not served.get("stale", False)
    when = f"{recorded[:10]} {recorded[11:16]} UTC"
    assert served["fallbackReason"] == f"coinglass:{endpoint}: stale: data from {when}, older than {max_age}"
    age = _time(body["timestamp"]) - _time(served["dataTime"])
    assert age <= timedelta(hours=DEFAULT_CONFIG.max_age_hours[factor])


@pytest.mark.parametrize(("endpoint", "fallback", "factor", "recorded", "max_age"), STALE_CASES)
async def test_old_data_is_dropped_listed_with_the_reason_and_marked_stale_in_debug(
    rest: httpx.AsyncClient,
    faults: RecordedTwin,
    endpoint: str,
    fallback: tuple[str, str],
    factor: str,
    recorded: str,
    max_age: str,
) -> None:
    fresh = (await rest.get("/signals/BTC", params={"debug": "true"})).json()
    # Every source of the factor answers old data: it is dropped, with the preferred source's reason.
    faults.set_fault("coinglass", endpoint, "unshifted")
    faults.set_fault(*fallback, "unshifted")
    reply = await rest.get("/signals/BTC", params={"debug": "true"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    when = f"{recorded[:10]} {recorded[11:16]} UTC"
    assert body["missingFactors"] == [{"factor": factor, "reason": f"stale: data from {when}, older than {max_age}"}]
    weight = DEFAULT_CONFIG.weights[factor]
    assert body["coverage"] == pytest.approx(1 - weight / DEFAULT_CONFIG.total_weight)
    factors = {f["factor"]: f for f in body["factors"]}
    assert set(factors) == set(FACTOR_NAMES)  # the dropped factor is still shown, for debugging
    dropped = factors[factor]
    assert dropped["stale"] is True and dropped["dataTime"] == recorded
    assert dropped["contribution"] == 0 and dropped["metrics"] and dropped["source"].endswith(endpoint)
    assert not any(f.get("stale", False) for name, f in factors.items() if name != factor)
    assert factor not in {f["factor"] for f in body["topFactors"]}
    # The score is the weighted mean of the other factors: their contributions still add up to it.
    assert round(sum(f["contribution"] for f in factors.values()) + 50, 1) == pytest.approx(body["score"], abs=0.1)
    assert body["score"] != fresh["score"]
    # Without debug the same: dropped and said why, in the seed-compatible answer.
    plain = (await rest.get("/signals/BTC")).json()
    assert plain["missingFactors"] == body["missingFactors"] and plain["factors"] == []
    faults.clear_faults()
    again = (await rest.get("/signals/BTC")).json()
    assert again["missingFactors"] == [] and again["score"] == fresh["score"]


async def test_when_every_coin_factor_is_stale_the_signal_is_503_saying_so(twin: RecordedTwin) -> None:
    # Keyless (OKX and alternative.me only), every endpoint answering its recorded, year-old data.
    async with (
        running_stack(twin, keys=False, cache_enabled=False, signal_cache_seconds=0) as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=15.0) as client,
    ):
        # The fallback sources carry their data times too, and the twin's data is fresh.
        keyless = (await client.get("/signals/BTC", params={"debug": "true"})).json()
        decided = _time(keyless["timestamp"])
        assert {f["factor"] for f in keyless["factors"]} == set(FACTOR_NAMES) - {"social"}
        for factor in keyless["factors"]:
            assert factor["source"].startswith(("okx:", "alternative.me:")), factor
            age = decided - _time(factor["dataTime"])
            assert age <= timedelta(hours=DEFAULT_CONFIG.max_age_hours[factor["factor"]]), factor
            assert not factor.get("stale", False)
        twin.set_fault("okx", "*", "unshifted")
        twin.set_fault("feargreed", "*", "unshifted")
        try:
            reply = await client.get("/signals/BTC")
        finally:
            twin.clear_faults()
        assert reply.status_code == 503, reply.text
        message = reply.json()["message"]
        assert message.startswith("no market data available: ")
        assert "momentum: stale: data from 2025-11-28 03:00 UTC, older than 9h" in message
        assert "funding_rate: stale: data from 2025-11-28" in message and "older than 17h" in message
        assert "social: lunarcrush: not_configured (LUNARCRUSH_API_KEY is not set)" in message
        assert "fear_greed: stale: data from 2025-11-28 00:00 UTC, older than 36h" in message
        assert (await client.get("/signals/BTC")).status_code == 200  # fresh again without the fault
