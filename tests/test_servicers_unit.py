"""Servicer unit tests under grpcio-testing: no sockets, no server, no twin.

The servicers get stub collaborators (a desk handing out a fixed LiveSignal, a Coinglass client
raising each kind of ProviderError) and are driven through grpc_testing with the real proto
descriptors (tests/aio_testing.py): request validation, proto mapping, every status code and its
message, auth metadata. The end-to-end tests through Envoy stay; these pin the servicer's own part,
fast and deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from cryptosignals.v1 import coinglass_pb2, signal_pb2

from providers.errors import ErrorKind, ProviderError
from scoring import (
    DEFAULT_CONFIG,
    FearGreedInput,
    FundingInput,
    LiquidationInput,
    LongShortInput,
    Missing,
    MomentumInput,
    OpenInterestInput,
    Provenance,
    ScoringConfig,
    SignalInputs,
    SmartMoneyInput,
    score_signal,
)
from service.rpc.auth import AuthInterceptor
from service.servicers.coinglass import CoinglassServicer
from service.servicers.signal import SignalServicer
from signals.coin_universe import CoinUniverse
from signals.desk import LiveSignal
from signals.errors import SignalUnavailableError
from signals.market import TIMEFRAMES, TimeframeView
from tests.aio_testing import AioTestServer

SIGNAL_SERVICE = signal_pb2.DESCRIPTOR.services_by_name["SignalService"]
COINGLASS_SERVICE = coinglass_pb2.DESCRIPTOR.services_by_name["CoinglassService"]
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CG = Provenance("coinglass:/api/futures/liquidation/aggregated-history", AT)
OKX = Provenance("okx:/api/v5/market/candles", AT)


def live_signal(symbol: str = "BTC") -> LiveSignal:
    inputs = SignalInputs(
        liquidations=LiquidationInput(2.0e7, 6.0e7, CG),
        funding_rate=FundingInput(0.01799, CG),
        momentum=MomentumInput({"1h": 0.4, "4h": 1.2, "24h": 3.5}, OKX),
        long_short_ratio=LongShortInput(72.4, CG),
        smart_money=SmartMoneyInput(55.0, CG),
        open_interest=OpenInterestInput(2.5, 1.0, CG),
        social=Missing("lunarcrush: auth (HTTP 401 key rejected)"),
        fear_greed=FearGreedInput(30.0, CG),
    )
    return LiveSignal(
        symbol=symbol,
        scored=score_signal(inputs, DEFAULT_CONFIG),
        computed_at=AT,
        price=79776.6,
        funding_rate_pct=0.01799,
        open_interest_usd=54557737074.0143,
        social_score=None,
        fallback_reasons={"momentum": "coinglass: plan (your plan does not include it)"},
        stale_endpoints=frozenset({"/api/v5/market/candles"}),
    )


class StubDesk:
    def __init__(self, answer: LiveSignal | Exception) -> None:
        self.universe = CoinUniverse(None)
        self.config = DEFAULT_CONFIG
        self.answer = answer
        self.asked: list[str] = []

    def config_of(self, profile: str | None) -> ScoringConfig:
        return self.config

    async def signal(self, symbol: str, profile: str | None = None) -> LiveSignal:
        self.asked.append(symbol)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def fresh_reader(self, symbol: str, profile: str | None = None) -> Callable[[], LiveSignal | None]:
        return lambda: None  # nothing memoised: every request asks ``signal``


DOCUMENT: Mapping[str, Any] = {"info": {"description": "test"}, "paths": {"/signals/{symbol}": {"get": {}}}}


class NoCandles:
    """The servicer's market data in these unit tests: no interval has candles (its views say so)."""

    async def timeframes(self, symbol: str) -> list[TimeframeView]:
        return [TimeframeView(interval, None, "no candles in this test") for interval in TIMEFRAMES]


def signal_server(desk: StubDesk, keys: tuple[str, ...] = ()) -> AioTestServer:
    servicer = SignalServicer(desk, None, {"okx": None}, dict(DOCUMENT), market=NoCandles())  # type: ignore[arg-type]
    return AioTestServer({SIGNAL_SERVICE: servicer}, [AuthInterceptor(keys)] if keys else [])


async def test_a_signal_maps_to_the_proto_field_by_field() -> None:
    live = live_signal()
    server = signal_server(StubDesk(live))
    plain = await server.call("GetSignal", signal_pb2.GetSignalRequest(symbol="btc-usdt-swap"))
    debug = await server.call("GetSignal", signal_pb2.GetSignalRequest(symbol="BTC", debug=True))
    assert plain.code == debug.code == grpc.StatusCode.OK, (plain.details, debug.details)
    scored, message = live.scored, plain.response
    assert message.symbol == "BTC" and message.timestamp.ToDatetime(tzinfo=UTC) == AT
    assert message.score == round(scored.score, 2) and message.coverage == round(scored.coverage, 4)
    assert signal_pb2.Direction.Name(message.signal) == scored.direction
    assert signal_pb2.Confidence.Name(message.confidence) == scored.confidence
    assert message.reason == scored.reason and message.reason.count(" | ") == 2
    assert [(f.factor, f.contribution) for f in message.top_factors] == [
        (f.name, round(f.contribution, 2)) for f in scored.top_factors
    ]
    assert message.price == 79776.6
    assert message.funding_rate == 0.0001799  # percent per 8h -> fraction per 8h
    assert message.open_interest == 54557737074.0143
    assert not message.HasField("social_score")  # unknown is absent, not 0
    assert [(m.factor, m.reason) for m in message.missing_factors] == [
        ("social", "lunarcrush: auth (HTTP 401 key rejected)")
    ]
    assert not message.factors and not message.HasField("config")
    # debug: the same numbers plus every factor's detail and the config.
    detail = {f.factor: f for f in debug.response.factors}
    assert set(detail) == {f.name for f in scored.factors}
    assert detail["momentum"].fallback_reason == "coinglass: plan (your plan does not include it)"
    assert detail["momentum"].stale and not detail["liquidations"].stale
    assert detail["liquidations"].source == CG.source
    assert detail["liquidations"].data_time.ToDatetime(tzinfo=UTC) == AT
    assert dict(debug.response.config.weights) == dict(DEFAULT_CONFIG.weights)
    assert debug.response.score == message.score


@pytest.mark.parametrize(
    ("raw", "needle"),
    [("", "symbol"), ("BTC!", "symbol"), ("X" * 31, "symbol"), ("../etc", "symbol")],
)
async def test_a_bad_symbol_is_invalid_argument_before_the_desk_is_asked(raw: str, needle: str) -> None:
    desk = StubDesk(live_signal())
    outcome = await signal_server(desk).call("GetSignal", signal_pb2.GetSignalRequest(symbol=raw))
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in outcome.details and len(outcome.details) < 200
    assert desk.asked == []


async def test_a_coin_known_not_to_exist_is_not_found_before_the_desk_is_asked() -> None:
    desk = StubDesk(live_signal())
    desk.universe.remember_unknown("NOPE")
    outcome = await signal_server(desk).call("GetSignal", signal_pb2.GetSignalRequest(symbol="nope"))
    assert (outcome.code, outcome.details) == (
        grpc.StatusCode.NOT_FOUND,
        "unknown coin NOPE: no provider has data for it",
    )
    assert desk.asked == []


@pytest.mark.parametrize(
    ("not_found", "code", "details"),
    [
        (True, grpc.StatusCode.NOT_FOUND, "unknown coin ABC: no provider has data for it"),
        (
            False,
            grpc.StatusCode.UNAVAILABLE,
            "no market data available: momentum: okx: timeout (no answer within 2.0 s); social: no source",
        ),
    ],
)
async def test_a_signal_without_data_is_its_status_with_every_reason(
    not_found: bool, code: grpc.StatusCode, details: str
) -> None:
    reasons = {"momentum": "okx: timeout (no answer within 2.0 s)", "social": "no source"}
    desk = StubDesk(SignalUnavailableError("ABC", reasons, not_found))
    outcome = await signal_server(desk).call("GetSignal", signal_pb2.GetSignalRequest(symbol="ABC"))
    assert (outcome.code, outcome.details) == (code, details)
    assert desk.asked == ["ABC"]


class FailingCoinglass:
    def __init__(self, error: ProviderError) -> None:
        self.error = error

    async def coin_market(self, coin: str) -> Any:
        raise self.error


ENDPOINT = "/api/futures/coins-markets"
KIND_STATUS = [
    (ErrorKind.AUTH, grpc.StatusCode.FAILED_PRECONDITION, f"coinglass {ENDPOINT}: auth: HTTP 401 key rejected"),
    (ErrorKind.PLAN, grpc.StatusCode.PERMISSION_DENIED, f"your coinglass plan does not include {ENDPOINT}"),
    (ErrorKind.RATE_LIMITED, grpc.StatusCode.RESOURCE_EXHAUSTED, f"coinglass {ENDPOINT}: rate_limited: HTTP 429"),
    (ErrorKind.NOT_FOUND, grpc.StatusCode.NOT_FOUND, f"coinglass {ENDPOINT}: not_found: no data"),
    (ErrorKind.UPSTREAM, grpc.StatusCode.UNAVAILABLE, f"coinglass {ENDPOINT}: upstream: HTTP 502"),
    (ErrorKind.TIMEOUT, grpc.StatusCode.DEADLINE_EXCEEDED, f"coinglass {ENDPOINT}: timeout: no answer"),
    (ErrorKind.BAD_PAYLOAD, grpc.StatusCode.UNAVAILABLE, f"coinglass {ENDPOINT}: bad_payload: HTML"),
    (ErrorKind.NOT_CONFIGURED, grpc.StatusCode.FAILED_PRECONDITION, "COINGLASS_API_KEY is not set"),
]


def test_every_error_kind_has_a_case() -> None:
    assert {kind for kind, _, _ in KIND_STATUS} == set(ErrorKind)


@pytest.mark.parametrize(("kind", "code", "details"), KIND_STATUS)
async def test_each_provider_error_kind_is_its_status_and_message(
    kind: ErrorKind, code: grpc.StatusCode, details: str
) -> None:
    message = {
        ErrorKind.AUTH: "HTTP 401 key rejected",
        ErrorKind.PLAN: "Upgrade plan",
        ErrorKind.RATE_LIMITED: "HTTP 429",
        ErrorKind.NOT_FOUND: "no data",
        ErrorKind.UPSTREAM: "HTTP 502",
        ErrorKind.TIMEOUT: "no answer",
        ErrorKind.BAD_PAYLOAD: "HTML",
        ErrorKind.NOT_CONFIGURED: "COINGLASS_API_KEY is not set",
    }[kind]
    client = FailingCoinglass(ProviderError("coinglass", ENDPOINT, kind, message))
    servicer = CoinglassServicer(client, "Binance", ["Binance"], CoinUniverse(None))  # type: ignore[arg-type]
    server = AioTestServer({COINGLASS_SERVICE: servicer})
    outcome = await server.call("GetCoinMarket", coinglass_pb2.GetCoinMarketRequest(symbol="ETH"))
    assert (outcome.code, outcome.details) == (code, details)


async def test_a_bad_interval_is_invalid_argument_naming_the_allowed_values() -> None:
    client = FailingCoinglass(ProviderError("coinglass", ENDPOINT, ErrorKind.UPSTREAM, "never asked"))
    servicer = CoinglassServicer(client, "Binance", ["Binance"], CoinUniverse(None))  # type: ignore[arg-type]
    outcome = await AioTestServer({COINGLASS_SERVICE: servicer}).call(
        "GetOpenInterest", coinglass_pb2.GetOpenInterestRequest(symbol="BTC", interval="h2")
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.details == "interval must be one of h1, h4, h8, h12, d1 (or 1h, 4h, 8h, 12h, 1d), got 'h2'"


@pytest.mark.parametrize(
    ("metadata", "code", "details"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED, "missing API key: send the header 'Authorization: Bearer <key>'"),
        ((("authorization", "Bearer wrong"),), grpc.StatusCode.UNAUTHENTICATED, "invalid API key"),
        ((("authorization", "Basic key-2"),), grpc.StatusCode.UNAUTHENTICATED, "invalid API key"),
        ((("authorization", "Bearer key-2"),), grpc.StatusCode.OK, ""),
        ((("authorization", "bearer  key-1 "),), grpc.StatusCode.OK, ""),
    ],
)
async def test_auth_metadata_decides_before_the_servicer(
    metadata: tuple[tuple[str, str], ...], code: grpc.StatusCode, details: str
) -> None:
    desk = StubDesk(live_signal())
    server = signal_server(desk, keys=("key-1", "key-2"))
    outcome = await server.call("GetSignal", signal_pb2.GetSignalRequest(symbol="BTC"), metadata)
    assert (outcome.code, outcome.details) == (code, details)
    assert desk.asked == (["BTC"] if code == grpc.StatusCode.OK else [])
    # Open methods need no key.
    info = await server.call("GetApiInfo", signal_pb2.GetApiInfoRequest())
    assert info.code == grpc.StatusCode.OK and info.response.name == "cryptosignals"
