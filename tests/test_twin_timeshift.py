"""The recorded twin moves its GENERATED data to the present, so the demo's factors are fresh: one
whole-hour offset for every timestamp of every generated document (providers consistent with each
other), the bundled real history untouched, the merge of the two still one series, and an
"unshifted" fault that serves one endpoint's data with its recorded (old) dates."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from twin import RecordedTwin
from twin._model import END_MS, HOUR_MS
from twin.store import Store
from twin.timeshift import BUNDLED_PREFIX, is_generated, shift_document, shift_to

CG_KEY = {"CG-API-KEY": "test-key"}
H4 = 4 * HOUR_MS
BUNDLED_END = 1_747_123_200_000  # 2025-05-13 08:00 UTC: last bar of the bundled real 4h history


def _time_like(value: Any) -> int | None:
    """A value that looks like a timestamp of the recording's period (ms or s), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if value.isdigit():
            value = int(value)
        elif len(value) > 19 and value[4] == "-" and value[10] == "T":  # ISO 8601 (CoinAPI)
            return int(datetime.fromisoformat(value[:19]).replace(tzinfo=UTC).timestamp() * 1000)
        else:
            return None
    if isinstance(value, int):
        if 1_700_000_000_000 < value < 1_800_000_000_000:
            return value
        if 1_700_000_000 < value < 1_800_000_000:
            return value * 1000
    return None


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{path}/{i}")
    else:
        yield path, node


@pytest.fixture(scope="module")
def recorded() -> Store:
    return Store()


def test_the_offset_moves_the_newest_generated_bar_to_the_current_hour() -> None:
    now = END_MS + 400 * 24 * HOUR_MS + 37 * 60_000 + 5  # 37 min into an hour
    offset = shift_to(now)
    assert offset % HOUR_MS == 0 and END_MS + offset == now - 37 * 60_000 - 5
    assert shift_to(END_MS) == 0 and shift_to(END_MS + HOUR_MS - 1) == 0


def test_every_timestamp_of_every_generated_document_moves_by_the_offset_and_nothing_else_changes(
    recorded: Store,
) -> None:
    offset = 9_000 * HOUR_MS + 5 * HOUR_MS  # whole hours, not whole days or 8h periods
    shifted = Store(time_shift_ms=offset)
    moved = 0
    for key, doc in recorded.docs.items():
        before, after = dict(_leaves(doc)), dict(_leaves(shifted.docs[key]))
        assert before.keys() == after.keys(), key
        for path, value in before.items():
            if key == "coinglass/user_account_subscription" and path.endswith("expire_time"):
                assert after[path] == value  # the plan's expiry, not a data time
                continue
            old = _time_like(value)
            if old is None or not is_generated(key):
                assert after[path] == value, (key, path)
                continue
            assert _time_like(after[path]) == old + offset, (key, path)
            assert type(after[path]) is type(value), (key, path)
            moved += 1
    assert moved > 30_000  # every row of every series


def test_bundled_real_history_keeps_its_dates(recorded: Store) -> None:
    shifted = Store(time_shift_ms=1000 * HOUR_MS)
    bundled = [key for key in recorded.docs if key.startswith(BUNDLED_PREFIX)]
    assert len(bundled) == 10
    assert all(shifted.docs[key] == recorded.docs[key] for key in bundled)
    assert shift_document(bundled[0], recorded.docs[bundled[0]], HOUR_MS) is recorded.docs[bundled[0]]


def test_only_whole_hours() -> None:
    with pytest.raises(ValueError, match="whole hours"):
        shift_document("okx/BTC/market_candles", {"data": []}, 1_800_000)


@pytest.fixture(scope="module")
async def twin() -> AsyncIterator[RecordedTwin]:
    started = int(time.time() * 1000)
    recorded = RecordedTwin()
    await recorded.start()
    # The offset is taken once, at twin start: the newest generated hour is the hour the twin started in.
    assert END_MS + recorded.time_shift_ms in (started - started % HOUR_MS, started - started % HOUR_MS + HOUR_MS)
    yield recorded
    await recorded.stop()


@pytest.fixture
async def client(twin: RecordedTwin) -> AsyncIterator[httpx.AsyncClient]:
    twin.clear_faults()
    async with httpx.AsyncClient(base_url=twin.url, timeout=5.0) as http:
        yield http
    twin.clear_faults()


async def test_every_provider_answers_in_the_present_and_they_agree(
    twin: RecordedTwin, client: httpx.AsyncClient
) -> None:
    newest = END_MS + twin.time_shift_ms
    assert abs(time.time() * 1000 - newest) < 2 * HOUR_MS
    swap = {"instId": "BTC-USDT-SWAP"}
    candles = (await client.get("/okx/api/v5/market/candles", params={**swap, "bar": "1H"})).json()["data"]
    assert int(candles[0][0]) == newest
    price = (
        await client.get(
            "/coinglass/api/futures/price/history",
            params={"exchange": "Binance", "symbol": "BTCUSDT", "interval": "1h", "limit": 24},
            headers=CG_KEY,
        )
    ).json()["data"]
    assert [r["time"] for r in price] == [newest - k * HOUR_MS for k in range(23, -1, -1)]
    assert price[-1]["close"] == candles[0][4]  # one model, one hour, one close: still consistent
    ratios = (
        await client.get(
            "/okx/api/v5/rubik/stat/contracts/long-short-account-ratio-contract", params={**swap, "period": "1H"}
        )
    ).json()["data"]
    assert int(ratios[0][0]) == newest
    funding = (await client.get("/okx/api/v5/public/funding-rate", params=swap)).json()["data"][0]
    assert int(funding["nextFundingTime"]) - int(funding["fundingTime"]) == 8 * HOUR_MS  # intervals survive
    assert newest - 8 * HOUR_MS < int(funding["fundingTime"]) - 8 * HOUR_MS <= newest
    fng = (await client.get("/feargreed/fng/")).json()["data"][0]
    assert 0 <= newest - int(fng["timestamp"]) * 1000 < 24 * HOUR_MS
    rate = (await client.get("/coinapi/v1/exchangerate/BTC/USD", headers={"X-CoinAPI-Key": "k"})).json()
    assert datetime.fromisoformat(rate["time"][:19]).replace(tzinfo=UTC) - datetime.fromtimestamp(
        newest / 1000, UTC
    ) < timedelta(hours=1)


async def test_the_merged_4h_series_is_real_history_then_the_generated_rows_in_the_present(
    twin: RecordedTwin, client: httpx.AsyncClient
) -> None:
    rows = (
        await client.get(
            "/coinglass/api/futures/liquidation/aggregated-history",
            params={"exchange_list": "Binance", "symbol": "BTC", "interval": "4h", "start_time": BUNDLED_END - H4},
            headers=CG_KEY,
        )
    ).json()["data"]
    times = [r["time"] for r in rows]
    newest = END_MS + twin.time_shift_ms
    assert times[:2] == [BUNDLED_END - H4, BUNDLED_END]  # real dates
    assert times[2:] == sorted({t - t % H4 for t in range(newest - 719 * HOUR_MS, newest + 1, HOUR_MS)})
    hourly = twin.store.doc("coinglass/BTC/futures_liquidation_aggregated-history")["data"]
    newest_bar = [r for r in hourly if r["time"] >= times[-1]]
    assert rows[-1]["aggregated_long_liquidation_usd"] == pytest.approx(
        sum(r["aggregated_long_liquidation_usd"] for r in newest_bar)
    )  # the partial newest 4h bar sums the hours it has so far, as upstream


async def test_the_unshifted_fault_serves_one_endpoint_with_its_recorded_dates(
    twin: RecordedTwin, client: httpx.AsyncClient
) -> None:
    params: dict[str, str | int] = {"exchange_list": "Binance", "symbol": "BTC", "interval": "1h", "limit": 3}
    path = "/coinglass/api/futures/liquidation/aggregated-history"
    twin.set_fault("coinglass", "/api/futures/liquidation/aggregated-history", "unshifted")
    old = (await client.get(path, params=params, headers=CG_KEY)).json()["data"]
    assert [r["time"] for r in old] == [END_MS - 2 * HOUR_MS, END_MS - HOUR_MS, END_MS]  # 2025-11-28
    other = (await client.get("/okx/api/v5/market/candles", params={"instId": "BTC-USDT-SWAP"})).json()["data"]
    assert int(other[0][0]) == END_MS + twin.time_shift_ms  # other endpoints stay in the present
    twin.clear_faults()
    fresh = (await client.get(path, params=params, headers=CG_KEY)).json()["data"]
    assert [r["time"] for r in fresh] == [r["time"] + twin.time_shift_ms for r in old]
    assert [r["aggregated_long_liquidation_usd"] for r in fresh] == [r["aggregated_long_liquidation_usd"] for r in old]


async def test_a_twin_can_serve_the_data_as_recorded() -> None:
    twin = RecordedTwin(shift_to_present=False)
    assert twin.time_shift_ms == 0
    await twin.start()
    try:
        async with httpx.AsyncClient(base_url=twin.url) as http:
            candles = (await http.get("/okx/api/v5/market/candles", params={"instId": "ETH-USDT-SWAP"})).json()
    finally:
        await twin.stop()
    assert int(candles["data"][0][0]) == END_MS


async def test_a_long_running_twin_follows_the_clock_hour_by_hour() -> None:
    now = [(END_MS + 1000 * HOUR_MS + 59 * 60_000) / 1000]  # seconds, as time.time()
    twin = RecordedTwin(follow_clock=True, clock=lambda: now[0])
    assert twin.time_shift_ms == 1000 * HOUR_MS
    await twin.start()
    try:
        async with httpx.AsyncClient(base_url=twin.url) as http:

            async def newest() -> int:
                reply = await http.get("/okx/api/v5/market/candles", params={"instId": "BTC-USDT-SWAP"})
                return int(reply.json()["data"][0][0])

            assert await newest() == END_MS + 1000 * HOUR_MS
            now[0] += 60  # the next hour has started
            assert await newest() == END_MS + 1001 * HOUR_MS
            assert twin.time_shift_ms == 1001 * HOUR_MS
    finally:
        await twin.stop()
    # Without follow_clock (the default, as tests use it) the offset is the one taken at start.
    fixed = RecordedTwin(clock=lambda: now[0])
    now[0] += 7200
    assert fixed.time_shift_ms == 1001 * HOUR_MS
