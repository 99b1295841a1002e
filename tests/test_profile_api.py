"""profile=seed|research served through the real Envoy and grpc.aio server, on the recorded twin:
GET /signals/{symbol}, the stream and the backtest name the profile that made them; the default is
seed (SCORING_PROFILE), whose answer is unchanged."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from scoring.config import load_profile
from tests.stack import Stack

pytestmark = pytest.mark.asyncio
PERIOD = {"start": "2024-11-15T00:00:00Z", "end": "2025-05-13T08:00:00Z"}


async def test_the_default_is_seed_and_unchanged(rest: httpx.AsyncClient) -> None:
    plain = (await rest.get("/signals/BTC")).json()
    seed = (await rest.get("/signals/BTC", params={"profile": "seed"})).json()
    assert plain["profile"] == seed["profile"] == "seed"
    # The README's documented answer on the recorded data (tests/test_rest_api.py pins all of it).
    assert (plain["signal"], plain["score"], plain["confidence"]) == ("NEUTRAL", 38.82, "medium")
    assert (seed["signal"], seed["score"]) == (plain["signal"], plain["score"])


async def test_research_profile_is_served_with_its_own_reading(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/signals/BTC", params={"profile": "research", "debug": "true"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    research = load_profile("research")
    assert body["profile"] == "research"
    assert body["config"]["weights"] == {k: v for k, v in research.weights.items()}
    assert body["config"]["longThreshold"] == research.long_threshold
    # Only the factors the profile weighs move its score, and their words say how they are read.
    weighted = {name for name, w in research.weights.items() if w > 0}
    assert {f["factor"] for f in body["topFactors"]} <= weighted
    for factor in body["topFactors"]:
        if research.is_reversal(factor["factor"]):
            assert "reversal" in factor["explanation"], factor
    # Its confidence is measured: the out-of-sample band of its score (none for NEUTRAL).
    band = research.band(body["score"])
    if body["signal"] != "NEUTRAL" and band is not None:
        assert body["confidenceBand"]["hitRate"] == band.hit_rate
        assert body["confidenceBand"]["positions"] == band.positions
    else:
        assert "confidenceBand" not in body and body["confidence"] == "low"
    seed = (await rest.get("/signals/BTC", params={"debug": "true"})).json()
    assert body["score"] != seed["score"]
    assert "confidenceBand" not in seed


async def test_an_unknown_profile_is_refused(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/signals/BTC", params={"profile": "yolo"})
    assert reply.status_code == 400
    assert "unknown scoring profile" in reply.text


async def test_the_stream_serves_the_asked_profile(stack: Stack) -> None:
    async with (
        httpx.AsyncClient(base_url=stack.rest_url, timeout=30) as rest,
        rest.stream("GET", "/signals/BTC/stream", params={"profile": "research"}) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                event: dict[str, Any] = json.loads(line[5:])
                break
    assert event["kind"] == "SIGNAL"
    assert event["signal"]["profile"] == "research"


async def test_the_backtest_replays_the_asked_profile(rest: httpx.AsyncClient) -> None:
    # One at a time: one backtest per client (BACKTEST_MAX_PER_CLIENT).
    seed = await rest.get("/backtest/BTC", params={**PERIOD, "include_bars": "true"})
    research = await rest.get("/backtest/BTC", params={**PERIOD, "include_bars": "true", "profile": "research"})
    assert seed.status_code == 200, seed.text
    assert research.status_code == 200, research.text
    a, b = seed.json(), research.json()
    assert (a["profile"], b["profile"]) == ("seed", "research")
    # The same bars (the same history), scored by each profile.
    assert [x["time"] for x in a["bars"]] == [x["time"] for x in b["bars"]]
    assert [x["score"] for x in a["bars"]] != [x["score"] for x in b["bars"]]
    assert (await rest.get("/backtest/BTC", params={**PERIOD, "profile": "yolo"})).status_code == 400


async def test_the_backtest_reports_both_profiles_on_the_same_bars(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/backtest/BTC", params={**PERIOD, "compare_profiles": "true"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    by_name = {p["profile"]: p for p in body["profiles"]}
    assert set(by_name) == {"seed", "research"}
    assert by_name["seed"]["barsScored"] == by_name["research"]["barsScored"] == body["barsScored"]
    # Always long is the same on the same bars; each profile's own positions and verdict differ.
    # (its interval's block length is chosen per report, so only the point figures are compared)
    keys = ("count", "hitRate", "meanForwardReturnPct")
    seed_long, research_long = by_name["seed"]["alwaysLong"], by_name["research"]["alwaysLong"]
    assert [seed_long[k] for k in keys] == [research_long[k] for k in keys]
    assert by_name["seed"]["signalPositions"] == body["signalPositions"]
    assert by_name["research"]["verdict"]
