"""A client written against the seed's documented answer reads ours with the same meaning.

Over REST through the real Envoy and the real server, against the recorded twin: the seed's field
names, JSON types and units (fundingRate a fraction per 8h, as exchanges report it; price and open
interest in USD; social score 0-100), its " | " between reason sentences, and every field we add
documented in the OpenAPI file.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.generated import OPENAPI_FILE
from tests.stack import running_stack
from twin import RecordedTwin
from twin.store import RECORDED

# The seed's documented example answer of GET /signals/{symbol}, verbatim.
SEED_EXAMPLE: dict[str, Any] = {
    "symbol": "BTC",
    "timestamp": "2025-01-01T00:00:00Z",
    "price": 97000.5,
    "fundingRate": 0.0001,
    "openInterest": 15000000000,
    "socialScore": 72.5,
    "signal": "LONG",
    "reason": (
        "Shorts were 70.0% of $120.0M liquidated in 24h - short squeeze, bullish"
        " | Funding +0.0100% per 8h - near the usual baseline, neutral"
    ),
}
# What each seed number means; our OpenAPI description of the field must say the same.
SEED_UNITS = {
    "price": "USD",
    "fundingRate": "fraction per 8 hours",
    "openInterest": "USD",
    "socialScore": "0-100",
}
FUNDING_SENTENCE = re.compile(r"Funding ([+-]\d+\.\d{4})% per 8h - ")


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"  # JSON has one number type: 15000000000 and 54557737074.01 are alike
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def recorded(path: str) -> Any:
    return json.loads((RECORDED / path).read_text())


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(OPENAPI_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
async def btc(rest: httpx.AsyncClient) -> dict[str, Any]:
    reply = await rest.get("/signals/BTC")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


@pytest.fixture(scope="module")
async def btc_debug(rest: httpx.AsyncClient) -> dict[str, Any]:
    reply = await rest.get("/signals/BTC", params={"debug": "true"})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


@pytest.fixture(scope="module")
async def okx_first(twin: RecordedTwin) -> AsyncIterator[httpx.AsyncClient]:
    """A stack whose factors prefer OKX: the headline funding rate is OKX's own."""
    async with (
        running_stack(twin, source_order="okx,coinglass") as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=15.0) as client,
    ):
        yield client


def test_the_seed_example_itself_writes_funding_as_a_fraction_per_8h() -> None:
    """The reference is consistent: its 0.0001 is the +0.0100% per 8h its own reason quotes."""
    quoted = FUNDING_SENTENCE.search(SEED_EXAMPLE["reason"])
    assert quoted is not None
    assert float(quoted[1]) == pytest.approx(SEED_EXAMPLE["fundingRate"] * 100)


async def test_every_seed_field_is_answered_with_the_seeds_json_type(btc: dict[str, Any]) -> None:
    for name, example in SEED_EXAMPLE.items():
        assert name in btc, f"{name} missing from our answer"
        assert json_type(btc[name]) == json_type(example), (name, btc[name], example)


async def test_symbol_signal_and_timestamp_read_as_in_the_seed(btc: dict[str, Any]) -> None:
    assert btc["symbol"] == "BTC"
    assert btc["signal"] in {"LONG", "SHORT", "NEUTRAL"}
    # RFC 3339 in UTC with a Z, as the seed writes it (ours carries fractional seconds).
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", btc["timestamp"]), btc["timestamp"]
    assert datetime.fromisoformat(btc["timestamp"]).tzinfo == UTC


async def test_reason_joins_the_top_factors_sentences_with_a_bar(btc: dict[str, Any]) -> None:
    sentences = [factor["explanation"] for factor in btc["topFactors"]]
    assert len(sentences) == 3
    assert btc["reason"] == " | ".join(sentences)
    assert ";" not in btc["reason"]
    # The seed's own sentences are separated the same way.
    assert SEED_EXAMPLE["reason"].count(" | ") == 1


async def test_funding_rate_is_the_recorded_rate_as_a_fraction_per_8h(
    btc: dict[str, Any], btc_debug: dict[str, Any]
) -> None:
    # With a Coinglass key the rate is Coinglass's open-interest-weighted one, which Coinglass
    # writes in percent: its latest close, 0.017990 (%), is 0.0001799 as a fraction.
    history = recorded("coinglass/BTC/futures_funding-rate_oi-weight-history.json")["data"]
    latest_pct = float(history[-1]["close"])
    assert btc["fundingRate"] == pytest.approx(latest_pct / 100, rel=1e-9)
    assert btc["fundingRate"] != pytest.approx(latest_pct)  # the old, percent reading
    # The funding factor's own sentence quotes the same rate in percent, as the seed's reason does.
    funding = next(f for f in btc_debug["factors"] if f["factor"] == "funding_rate")
    assert funding["explanation"].startswith(f"Funding {btc['fundingRate'] * 100:+.4f}% per 8h - ")
    assert funding["metrics"]["funding_rate_pct"] == pytest.approx(btc["fundingRate"] * 100, abs=5e-5)


async def test_funding_rate_from_okx_is_okx_s_own_fraction(okx_first: httpx.AsyncClient) -> None:
    # OKX reports a fraction per funding interval; BTC-USDT-SWAP settles every 8h (fundingTime to
    # nextFundingTime), so the answer is OKX's number unchanged.
    okx = recorded("okx/BTC/public_funding-rate.json")["data"][0]
    assert int(okx["nextFundingTime"]) - int(okx["fundingTime"]) == 8 * 3600 * 1000
    body = (await okx_first.get("/signals/BTC", params={"debug": "true"})).json()
    funding = next(f for f in body["factors"] if f["factor"] == "funding_rate")
    assert funding["source"] == "okx:/api/v5/public/funding-rate"
    assert body["fundingRate"] == pytest.approx(float(okx["fundingRate"]), rel=1e-9)
    market = (await okx_first.get("/market/BTC")).json()
    assert market["okx"]["fundingRate"] == pytest.approx(float(okx["fundingRate"]), rel=1e-9)


async def test_price_open_interest_and_social_score_are_in_the_seeds_units(
    btc: dict[str, Any], rest: httpx.AsyncClient
) -> None:
    market = (await rest.get("/market/BTC")).json()
    assert btc["price"] == market["okx"]["lastPrice"]  # USD
    assert btc["openInterest"] == pytest.approx(market["coinglass"]["openInterestUsd"])  # USD, all exchanges
    assert btc["openInterest"] > 1e9  # billions of USD for BTC, as the seed's 15000000000; coins would be ~1e5
    assert btc["socialScore"] == market["lunarcrush"]["galaxyScore"]
    assert 0 <= btc["socialScore"] <= 100


async def test_the_openapi_file_states_the_seeds_units(openapi: dict[str, Any]) -> None:
    signal = openapi["components"]["schemas"]["Signal"]["properties"]
    for name, unit in SEED_UNITS.items():
        assert unit in signal[name]["description"], (name, signal[name]["description"])
    assert '" | "' in signal["reason"]["description"]


def _undocumented(body: Any, schema: dict[str, Any], schemas: dict[str, Any], where: str) -> list[str]:
    """Fields of ``body`` without a described property in ``schema``, recursively."""
    if "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    if isinstance(body, list):
        return [p for item in body for p in _undocumented(item, schema.get("items", {}), schemas, f"{where}[]")]
    if not isinstance(body, dict) or "additionalProperties" in schema:
        return []  # a value, or a map keyed by data (its values are described by the map)
    problems = []
    for key, value in body.items():
        prop = schema.get("properties", {}).get(key)
        if prop is None or not prop.get("description"):
            problems.append(f"{where}.{key}")
        else:
            problems += _undocumented(value, prop, schemas, f"{where}.{key}")
    return problems


async def test_every_field_beyond_the_seeds_is_documented(
    btc: dict[str, Any], btc_debug: dict[str, Any], openapi: dict[str, Any]
) -> None:
    schemas = openapi["components"]["schemas"]
    extra = set(btc) - set(SEED_EXAMPLE)
    assert {"score", "confidence", "topFactors", "coverage", "missingFactors"} <= extra
    for body in (btc, btc_debug):
        assert _undocumented(body, {"$ref": "#/components/schemas/Signal"}, schemas, "Signal") == []
