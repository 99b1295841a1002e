"""Faults upstream degrade one factor, never the whole response; keys never leak."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc

from tests.stack import FAKE_KEYS, Stack, running_stack
from twin import RecordedTwin

FAULTS = ["timeout", "rate_limit", "server_error", "html", "truncated_json", "error_envelope", "empty"]
# Which factors each provider feeds when it is the preferred source.
FACTORS_BY_PROVIDER = {
    "coinglass": {"liquidations", "funding_rate", "momentum", "long_short_ratio", "smart_money", "open_interest"},
    "lunarcrush": {"social"},
}


@pytest.fixture(scope="module")
async def fast_stack(twin: RecordedTwin) -> AsyncIterator[Stack]:
    # Short upstream timeout, no retries (a timeout fault costs ~0.5 s) and no cache: every call
    # must reach the faulty upstream. Caching has its own tests (test_cache.py).
    async with running_stack(
        twin, envoy=False, upstream_timeout_seconds=0.5, upstream_max_attempts=1, cache_enabled=False
    ) as stack:
        yield stack


async def _signal(stack: Stack, symbol: str = "BTC") -> signal_pb2.Signal:
    async with grpc.aio.insecure_channel(stack.grpc_target) as channel:
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        signal: signal_pb2.Signal = await stub.GetSignal(
            signal_pb2.GetSignalRequest(symbol=symbol, debug=True), timeout=10
        )
        return signal


def _break(twin: RecordedTwin, provider: str, endpoint: str, fault: str) -> None:
    """Switch a fault on; a timeout hangs 5 s, well past the stack's 0.5 s upstream timeout."""
    twin.set_fault(provider, endpoint, fault, seconds=5 if fault == "timeout" else None)


def _no_keys_in(text: str) -> None:
    for key in FAKE_KEYS.values():
        assert key not in text


@pytest.mark.parametrize("fault", FAULTS)
async def test_coinglass_fault_falls_back_to_okx_for_every_factor(
    faults: RecordedTwin, fast_stack: Stack, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    _break(faults, "coinglass", "*", fault)
    with caplog.at_level(logging.DEBUG):
        signal = await _signal(fast_stack)
    by_factor = {f.factor: f for f in signal.factors}
    for factor in FACTORS_BY_PROVIDER["coinglass"]:
        assert by_factor[factor].source.startswith("okx:"), (fault, factor, by_factor[factor].source)
        assert by_factor[factor].fallback_reason.startswith("coinglass:"), by_factor[factor].fallback_reason
    assert signal.coverage == pytest.approx(1.0)
    _no_keys_in(str(signal))
    _no_keys_in(caplog.text)


@pytest.mark.parametrize("fault", FAULTS)
async def test_lunarcrush_fault_leaves_only_social_missing(
    faults: RecordedTwin, fast_stack: Stack, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    _break(faults, "lunarcrush", "*", fault)
    with caplog.at_level(logging.DEBUG):
        signal = await _signal(fast_stack)
    missing = {m.factor: m.reason for m in signal.missing_factors}
    assert set(missing) == {"social"}
    assert missing["social"].startswith("lunarcrush:")
    assert signal.coverage == pytest.approx(0.9)
    assert not signal.HasField("social_score")
    _no_keys_in(str(signal))
    _no_keys_in(caplog.text)


@pytest.mark.parametrize("fault", FAULTS)
async def test_fear_greed_fault_on_both_sources_leaves_only_fear_greed_missing(
    faults: RecordedTwin, fast_stack: Stack, fault: str
) -> None:
    for provider, endpoint in (("coinglass", "/api/index/fear-greed-history"), ("feargreed", "*")):
        _break(faults, provider, endpoint, fault)
    signal = await _signal(fast_stack)
    missing = {m.factor: m.reason for m in signal.missing_factors}
    assert set(missing) == {"fear_greed"}
    assert "coinglass:" in missing["fear_greed"] and "feargreed:" in missing["fear_greed"]


@pytest.mark.parametrize("fault", ["timeout", "rate_limit", "server_error", "html", "truncated_json", "error_envelope"])
async def test_okx_fault_with_coinglass_healthy_keeps_every_factor(
    faults: RecordedTwin, fast_stack: Stack, fault: str
) -> None:
    _break(faults, "okx", "*", fault)
    signal = await _signal(fast_stack)
    assert signal.coverage == pytest.approx(1.0)
    assert all(f.source.split(":")[0] != "okx" for f in signal.factors)


async def test_signal_answers_even_when_okx_and_coinglass_are_both_down(
    faults: RecordedTwin, fast_stack: Stack
) -> None:
    faults.set_fault("okx", "*", "server_error")
    faults.set_fault("coinglass", "*", "server_error")
    signal = await _signal(fast_stack)
    assert {f.factor for f in signal.factors} == {"social", "fear_greed"}
    assert signal.confidence == signal_pb2.low
    assert signal.coverage == pytest.approx(0.15)


async def test_all_providers_down_is_unavailable_naming_each_failure(faults: RecordedTwin, fast_stack: Stack) -> None:
    for provider in ("okx", "coinglass", "lunarcrush", "feargreed", "coinapi"):
        faults.set_fault(provider, "*", "server_error", status=503)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _signal(fast_stack)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    details = caught.value.details() or ""
    for provider in ("okx", "coinglass", "lunarcrush"):
        assert f"{provider}:" in details


async def test_without_any_key_the_signal_uses_okx_and_fear_greed_for_seven_factors(twin: RecordedTwin) -> None:
    async with running_stack(twin, envoy=False, keys=False) as stack:
        signal = await _signal(stack)
    used = {f.factor: f.source for f in signal.factors}
    assert len(used) >= 6
    assert set(used) == FACTORS_BY_PROVIDER["coinglass"] | {"fear_greed"}
    assert all(source.startswith(("okx:", "alternative.me:")) for source in used.values())
    missing = {m.factor: m.reason for m in signal.missing_factors}
    assert missing == {"social": "lunarcrush: not_configured (LUNARCRUSH_API_KEY is not set)"}
    assert signal.coverage == pytest.approx(0.9)


async def test_keyless_signal_calls_only_keyless_providers(twin: RecordedTwin) -> None:
    twin.clear_requests()
    async with running_stack(twin, envoy=False, keys=False) as stack:
        await _signal(stack, "SOL")
    providers = {r.provider for r in twin.requests}
    assert providers <= {"okx", "feargreed"}


async def test_clients_send_documented_paths_headers_and_parameters(twin: RecordedTwin, fast_stack: Stack) -> None:
    twin.clear_requests()
    await _signal(fast_stack, "ETH")
    seen = {(r.provider, r.path): r for r in twin.requests}
    candles = seen[("okx", "/api/v5/market/candles")]
    assert candles.query["instId"] == "ETH-USDT-SWAP" and candles.query["bar"] == "1H"
    cg = seen[("coinglass", "/api/futures/liquidation/aggregated-history")]
    assert cg.headers["CG-API-KEY"] == FAKE_KEYS["coinglass_api_key"]
    assert cg.query["symbol"] == "ETH" and cg.query["interval"] == "1h" and "Binance" in cg.query["exchange_list"]
    ratio = seen[("coinglass", "/api/futures/global-long-short-account-ratio/history")]
    assert ratio.query == {**ratio.query, "exchange": "Binance", "symbol": "ETHUSDT"}
    lunar = seen[("lunarcrush", "/public/coins/ETH/v1")]
    assert lunar.headers["Authorization"] == f"Bearer {FAKE_KEYS['lunarcrush_api_key']}"
    assert ("lunarcrush", "/public/topic/ethereum/v1") in seen
    # OKX and alternative.me are keyless: no provider key may travel to them.
    for (provider, _), request in seen.items():
        if provider in {"okx", "feargreed"}:
            for key in FAKE_KEYS.values():
                assert key not in str(request.headers)


@pytest.mark.parametrize("fault", FAULTS)
async def test_coinapi_fault_shows_in_the_market_snapshot_and_nothing_else_breaks(
    faults: RecordedTwin, fast_stack: Stack, fault: str
) -> None:
    _break(faults, "coinapi", "*", fault)
    async with grpc.aio.insecure_channel(fast_stack.grpc_target) as channel:
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        snapshot = await stub.GetMarket(signal_pb2.GetMarketRequest(symbol="BTC"), timeout=10)
    statuses = {s.provider: s for s in snapshot.sources}
    assert statuses["coinapi"].status == "error" and statuses["coinapi"].error_kind
    assert all(s.status == "ok" for name, s in statuses.items() if name != "coinapi")
    _no_keys_in(str(snapshot))
    assert (await _signal(fast_stack)).coverage == pytest.approx(1.0)


async def test_source_order_is_configurable(twin: RecordedTwin) -> None:
    async with running_stack(twin, envoy=False, source_order="okx,coinglass") as stack:
        signal = await _signal(stack)
    sources = {f.factor: f.source.split(":")[0] for f in signal.factors}
    assert {sources[f] for f in FACTORS_BY_PROVIDER["coinglass"]} == {"okx"}
    assert sources["fear_greed"] == "coinglass"  # OKX has no fear & greed: the next source in order


async def test_a_plan_without_1h_history_keeps_aggregated_data_at_4h(twin: RecordedTwin) -> None:
    twin.set_plan("hobbyist")
    try:
        async with running_stack(twin, envoy=False) as stack:
            twin.clear_requests()
            signal = await _signal(stack)
    finally:
        twin.set_plan("professional")
    sources = {f.factor: f.source.split(":")[0] for f in signal.factors}
    for factor in ("liquidations", "long_short_ratio", "smart_money"):
        assert sources[factor] == "coinglass", (factor, sources)
    # Both also read coins-markets, which needs Standard: no coarser grain to fall back to.
    assert sources["momentum"] == sources["open_interest"] == "okx"
    ratio_queries = [r.query for r in twin.requests if r.path == "/api/futures/global-long-short-account-ratio/history"]
    assert [q["interval"] for q in ratio_queries] == ["1h", "4h"]
