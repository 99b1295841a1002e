"""GET /signals/{symbol}/smc and GET /market/correlation through the real stack (Envoy, server, twin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc

from signals import smc
from signals.correlation import correlate
from signals.market import MarketData
from tests.stack import Stack, running_stack
from twin import RecordedTwin

PRICE_HISTORY = "/api/futures/price/history"


async def twin_candles(stack: Stack, coin: str, interval: str) -> list[smc.Candle]:
    """The twin's Coinglass price history, as the server asks for it, straight from the twin."""
    url = stack.twin.base_urls()["COINGLASS_BASE_URL"]
    params: dict[str, str | int] = {"exchange": "Binance", "symbol": f"{coin}USDT", "interval": interval, "limit": 300}
    async with httpx.AsyncClient(timeout=10) as client:
        rows = (await client.get(url + PRICE_HISTORY, params=params, headers={"CG-API-KEY": "x"})).json()["data"]
    return [
        smc.Candle(
            datetime.fromtimestamp(r["time"] / 1000, UTC),
            float(r["open"]),
            float(r["high"]),
            float(r["low"]),
            float(r["close"]),
        )
        for r in rows
    ]


async def twin_closed(stack: Stack, coin: str, interval: str, step: timedelta, end: datetime) -> list[smc.Candle]:
    """What the server reads of the twin's candles: closed by ``end``, the contiguous run ending newest."""
    return smc.contiguous_tail(smc.closed_bars(await twin_candles(stack, coin, interval), step, end), step)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_smc_over_rest_is_the_domains_structure_of_the_closed_candles(
    stack: Stack, rest: httpx.AsyncClient
) -> None:
    response = await rest.get("/signals/btc/smc", params={"interval": "4h", "bars": 120, "swing_bars": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["symbol"], body["interval"], body["source"]) == ("BTC", "4h", "coinglass:" + PRICE_HISTORY)
    assert body["bars"] == 120 and body["swingBars"] == 2 and body["equalTolerancePct"] == 0.1
    assert ts(body["end"]) <= datetime.now(UTC)  # never a bar still open
    assert response.headers["cache-control"] == "public, max-age=30"
    # The same structure as the domain computes on the twin's candles (the twin's data does not move).
    step = timedelta(hours=4)
    closed = (await twin_closed(stack, "BTC", "4h", step, ts(body["end"])))[-120:]
    expected = smc.analyze(closed, step, swing_bars=2)
    assert ts(body["start"]) == expected.first_time and ts(body["end"]) == expected.last_close_time
    assert body["trend"] == expected.trend
    assert [(s["kind"], s["price"]) for s in body["swings"]] == [(s.kind, s.price) for s in expected.swings]
    assert [(b["kind"], b["direction"], b["level"]) for b in body["breaks"]] == [
        (b.kind, b.direction, b.level) for b in expected.breaks
    ]
    assert len(body["orderBlocks"]) == len(expected.order_blocks)
    assert [g["filled"] for g in body["fairValueGaps"]] == [g.filled for g in expected.fair_value_gaps]
    assert expected.location is not None
    assert body["location"]["zone"] == expected.location.zone
    assert body["structureReading"] == smc.structure_reading(expected)


async def test_smc_over_grpc(channel: grpc.aio.Channel) -> None:
    stub = signal_pb2_grpc.SignalServiceStub(channel)
    answer = await stub.GetMarketStructure(signal_pb2.GetMarketStructureRequest(symbol="ETH", interval="h1"))
    assert (answer.symbol, answer.interval, answer.swing_bars) == ("ETH", "1h", 3)
    assert answer.bars == 200 and len(answer.swings) > 0


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"interval": "5m"}, 400, "interval must be one of 1h, 4h, 1d"),
        ({"bars": 5}, 400, "bars must be between 20 and 299"),
        ({"swing_bars": 0}, 400, "swing_bars must be between 1 and 10"),
        ({"equal_tolerance_pct": 9}, 400, "equal_tolerance_pct must be between 0 and 5"),
    ],
)
async def test_smc_bad_input_is_a_clear_400(
    rest: httpx.AsyncClient, query: dict[str, Any], status: int, message: str
) -> None:
    response = await rest.get("/signals/BTC/smc", params=query)
    assert response.status_code == status
    assert message in response.json()["message"]


async def test_smc_unknown_or_malformed_coins(rest: httpx.AsyncClient) -> None:
    assert (await rest.get("/signals/NOTACOIN/smc")).status_code == 404  # outside Coinglass's list: no upstream call
    assert (await rest.get("/signals/BTC!/smc")).status_code == 400


async def test_correlation_over_rest(stack: Stack, rest: httpx.AsyncClient) -> None:
    response = await rest.get("/market/correlation", params={"symbols": "BTC,ETH,SOL", "interval": "1d", "window": 20})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["symbols"] == ["BTC", "ETH", "SOL"] and body["window"] == 20 and body["interval"] == "1d"
    rows = body["rows"]
    for i, row in enumerate(rows):
        assert row["correlations"][i] == pytest.approx(1.0)
        for j in range(3):
            assert row["correlations"][j] == pytest.approx(rows[j]["correlations"][i])
    assert rows[0]["betaToBtc"] == pytest.approx(1.0)
    assert ts(body["end"]) - ts(body["start"]) == timedelta(days=21)  # 20 returns: 21 closes
    # The domain's answer on the twin's daily candles.
    step = timedelta(days=1)
    closes = {
        coin: {
            c.time: c.close
            for c in smc.contiguous_tail(
                smc.closed_bars(await twin_candles(stack, coin, "1d"), step, ts(body["end"])), step
            )
        }
        for coin in ("BTC", "ETH", "SOL")
    }
    expected = correlate(closes, ["BTC", "ETH", "SOL"], 20, step)
    assert rows[1]["correlations"][2] == pytest.approx(expected.matrix[1][2], abs=1e-6)
    assert rows[2]["betaToBtc"] == pytest.approx(expected.beta_to_btc["SOL"], abs=1e-6)
    # /market/{symbol} is still the market snapshot: the literal path wins over the variable.
    assert "okx" in (await rest.get("/market/BTC")).json()


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({}, 400, "symbols is required"),
        ({"symbols": "BTC"}, 400, "2 to 10 different coins"),
        ({"symbols": ",".join(["BTC", "ETH"] * 6)}, 400, "2 to 10 coins, got 12"),
        ({"symbols": "BTC,ETH", "window": 2}, 400, "window must be between 5 and 298"),
        ({"symbols": "BTC,ETH", "interval": "1w"}, 400, "interval must be one of"),
        ({"symbols": "BTC,ETH", "interval": "1d", "window": 200}, 400, "fewer than window=200"),
        ({"symbols": "BTC,NOTACOIN"}, 404, "unknown coin NOTACOIN"),
        ({"symbols": "BTC,E$H"}, 400, ""),
    ],
)
async def test_correlation_bad_input(rest: httpx.AsyncClient, query: dict[str, Any], status: int, message: str) -> None:
    response = await rest.get("/market/correlation", params=query)
    assert response.status_code == status, response.text
    assert message in response.json()["message"]


async def test_one_upstream_call_per_coin_and_interval_per_ttl(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, envoy=False) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        stub = signal_pb2_grpc.SignalServiceStub(channel)

        def price_calls(coin: str, interval: str) -> int:
            return sum(
                1
                for r in twin.requests
                if r.path == PRICE_HISTORY
                and r.query.get("symbol") == f"{coin}USDT"
                and r.query.get("interval") == interval
            )

        before = {c: price_calls(c, "4h") for c in ("BTC", "ETH")}
        await stub.GetMarketStructure(signal_pb2.GetMarketStructureRequest(symbol="BTC", interval="4h", bars=50))
        await stub.GetMarketStructure(signal_pb2.GetMarketStructureRequest(symbol="BTC", interval="4h", bars=150))
        await stub.GetCorrelation(signal_pb2.GetCorrelationRequest(symbols="BTC,ETH", interval="4h", window=10))
        await stub.GetCorrelation(signal_pb2.GetCorrelationRequest(symbols="ETH,BTC", interval="4h", window=60))
        assert {c: price_calls(c, "4h") - before[c] for c in ("BTC", "ETH")} == {"BTC": 1, "ETH": 1}


async def test_okx_candles_without_a_coinglass_key(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, envoy=False, keys=False) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        answer = await stub.GetMarketStructure(
            signal_pb2.GetMarketStructureRequest(symbol="SOL", interval="1d", bars=20)
        )
        assert answer.source == "okx:/api/v5/market/candles"
        assert "COINGLASS_API_KEY is not set" in answer.fallback_reason
        assert answer.end.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)
        assert answer.end.ToDatetime(tzinfo=UTC).hour == 0  # 1Dutc: days from 00:00 UTC
        # An unknown coin: every source says so (404), and asking again costs no upstream call.
        request = signal_pb2.GetMarketStructureRequest(symbol="ZZZQ", interval="4h")
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.GetMarketStructure(request)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        asked = twin.request_count("okx")
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await stub.GetMarketStructure(request)
        assert again.value.code() == grpc.StatusCode.NOT_FOUND and twin.request_count("okx") == asked


async def test_a_debug_signal_shows_the_structure_on_three_timeframes_side_by_side(
    stack: Stack, rest: httpx.AsyncClient, faults: RecordedTwin
) -> None:
    body = (await rest.get("/signals/ETH", params={"debug": "true"})).json()
    views = {v["interval"]: v for v in body["timeframes"]}
    assert set(views) == {"1h", "4h", "1d"}
    market = MarketData(stack.server.app.clients)  # the server's clients: the same cached candles
    for interval, view in views.items():
        domain = await market.structure("ETH", interval, 200)
        assert view["trend"] == domain.structure.trend, interval
        assert view["bars"] == domain.structure.bars and view["source"] == domain.history.source
    trends = {v["trend"] for v in views.values()}
    assert body["timeframesAligned"] is (len(trends) == 1 and trends != {"none"})
    assert not (await rest.get("/signals/ETH")).json().get("timeframes")  # debug only
    # An interval whose candles cannot be had says so; the signal is still served.
    faults.set_fault("coinglass", "/api/futures/price/history", "server_error")
    faults.set_fault("okx", "/api/v5/market/candles", "server_error")
    cache = stack.server.app.providers.cache
    assert cache is not None
    cache.clear()  # nothing cached: the broken sources are really asked
    broken = await rest.get("/signals/SOL", params={"debug": "true"})
    assert broken.status_code == 200, broken.text
    assert all(v["error"] and v["trend"] == "none" for v in broken.json()["timeframes"])
    assert broken.json()["timeframesAligned"] is False
