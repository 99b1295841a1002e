"""Long history through the real clients and the recorded twin on loopback: the bundled real
Coinglass 4h history (recorded/coinglass/history) paged with fetch_range, the documented
start_time/end_time/limit semantics, failures that must not be swallowed, OKX cursor paging."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from providers.cache import UpstreamCache
from providers.coinglass import TTLS, CoinglassClient
from providers.errors import ErrorKind, ProviderError
from providers.history import COINGLASS_PAGE_BARS, OKX_PAGE_BARS, bar_ms, fetch_range, okx_cursors, to_ms, windows
from providers.http import ProviderHttp
from providers.okx import OkxClient
from twin import RecordedTwin
from twin.cg_history import BUNDLED_DIR
from twin.store import RECORDED, Store

H4 = bar_ms("4h")
START = 1_731_585_600_000  # 2024-11-14 12:00 UTC: first bar of every bundled series but price
END = 1_747_123_200_000  # 2025-05-13 08:00 UTC: last bar of every bundled series
PRICE_START = 1_731_499_200_000  # 2024-11-13 12:00 UTC: the price file starts a day earlier
BARS = 1080
OKX_END = 1_764_298_800_000  # newest hourly row of the generated data as recorded (2025-11-28 03:00 UTC)
HOUR = bar_ms("1h")


def generated_end(twin: RecordedTwin) -> int:
    """The newest generated hourly row as the twin serves it: moved to the current hour at twin start."""
    return OKX_END + twin.time_shift_ms


def buckets_4h(first_hour: int, last_hour: int) -> list[int]:
    """Open times of the 4h (UTC) bars that hourly rows first_hour..last_hour fall into."""
    return sorted({t - t % H4 for t in range(first_hour, last_hour + 1, HOUR)})


def bundled(file: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((RECORDED / BUNDLED_DIR / f"{file}.BTC.json").read_text())["data"]
    return rows


@pytest.fixture(scope="module")
async def twin() -> AsyncIterator[RecordedTwin]:
    """This module's own twin: its tests count requests, and a stack's background work on the shared
    twin (the outcome filler reads OKX history-candles every minute) would add to the counts."""
    recorded = RecordedTwin()
    await recorded.start()
    yield recorded
    await recorded.stop()


@pytest.fixture
async def cg(twin: RecordedTwin) -> AsyncIterator[CoinglassClient]:
    twin.clear_faults()
    twin.clear_requests()
    http = ProviderHttp("coinglass", twin.base_urls()["COINGLASS_BASE_URL"], headers={"CG-API-KEY": "k"}, timeout=5)
    yield CoinglassClient(http)
    await http.aclose()
    twin.clear_faults()


@pytest.fixture
async def okx(twin: RecordedTwin) -> AsyncIterator[OkxClient]:
    twin.clear_faults()
    twin.clear_requests()
    http = ProviderHttp("okx", twin.base_urls()["OKX_BASE_URL"], timeout=5)
    yield OkxClient(http)
    await http.aclose()


@dataclass(frozen=True)
class Series:
    """One bundled series: how to ask the client for a window, and which fields to compare."""

    file: str
    endpoint: str
    fetch: Callable[[CoinglassClient, int, int], Awaitable[list[Any]]]
    ours: tuple[str, ...]  # the parsed row's fields ...
    theirs: tuple[str, ...]  # ... and the file row's keys they come from


OHLC = ("open", "high", "low", "close")
SERIES = [
    Series(
        "futures_price_history", "/api/futures/price/history",
        lambda c, a, b: c.price_history("BTCUSDT", "Binance", "4h", COINGLASS_PAGE_BARS, a, b),
        (*OHLC, "volume_usd"), (*OHLC, "volume_usd"),
    ),
    Series(
        "futures_liquidation_aggregated-history", "/api/futures/liquidation/aggregated-history",
        lambda c, a, b: c.liquidation_aggregated_history("BTC", ["Binance"], "4h", COINGLASS_PAGE_BARS, a, b),
        ("long_usd", "short_usd"), ("aggregated_long_liquidation_usd", "aggregated_short_liquidation_usd"),
    ),
    Series(
        "futures_global-long-short-account-ratio_history", "/api/futures/global-long-short-account-ratio/history",
        lambda c, a, b: c.global_long_short_account_ratio("BTCUSDT", "Binance", "4h", COINGLASS_PAGE_BARS, a, b),
        ("long_pct", "short_pct", "ratio"),
        ("global_account_long_percent", "global_account_short_percent", "global_account_long_short_ratio"),
    ),
    Series(
        "futures_top-long-short-position-ratio_history", "/api/futures/top-long-short-position-ratio/history",
        lambda c, a, b: c.top_long_short_position_ratio("BTCUSDT", "Binance", "4h", COINGLASS_PAGE_BARS, a, b),
        ("long_pct", "short_pct", "ratio"),
        ("top_position_long_percent", "top_position_short_percent", "top_position_long_short_ratio"),
    ),
    Series(
        "futures_top-long-short-account-ratio_history", "/api/futures/top-long-short-account-ratio/history",
        lambda c, a, b: c.top_long_short_account_ratio("BTCUSDT", "Binance", "4h", COINGLASS_PAGE_BARS, a, b),
        ("long_pct", "short_pct", "ratio"),
        ("top_account_long_percent", "top_account_short_percent", "top_account_long_short_ratio"),
    ),
    Series(
        "futures_funding-rate_oi-weight-history", "/api/futures/funding-rate/oi-weight-history",
        lambda c, a, b: c.funding_oi_weighted_history("BTC", "4h", COINGLASS_PAGE_BARS, a, b),
        OHLC, OHLC,
    ),
    Series(
        "futures_open-interest_aggregated-stablecoin-history",
        "/api/futures/open-interest/aggregated-stablecoin-history",
        lambda c, a, b: c.open_interest_stablecoin_history("BTC", ["Binance"], "4h", COINGLASS_PAGE_BARS, a, b),
        OHLC, OHLC,
    ),
]  # fmt: skip


async def whole(cg: CoinglassClient, series: Series, start: int = START, end: int = END) -> list[Any]:
    return await fetch_range(lambda a, b: series.fetch(cg, a, b), start, end, H4, COINGLASS_PAGE_BARS, lambda r: r.time)


def test_bundled_files_have_keys_of_their_own_in_the_store() -> None:
    store = Store()
    ours = sorted(k.removeprefix(BUNDLED_DIR + "/") for k in store.docs if k.startswith(BUNDLED_DIR + "/"))
    assert len(ours) == 10 and ours[-1] == "index_fear-greed-history"
    assert all(name.endswith(".BTC") for name in ours[:-1])
    assert "coinglass/BTC/futures_liquidation_aggregated-history" in store.docs  # generated keys as before


async def test_hourly_answers_are_the_generated_rows_as_before(twin: RecordedTwin) -> None:
    generated = twin.store.doc("coinglass/BTC/futures_liquidation_aggregated-history")["data"]
    async with httpx.AsyncClient(base_url=f"{twin.url}/coinglass", headers={"CG-API-KEY": "k"}) as http:
        params: dict[str, str | int] = {"exchange_list": "Binance", "symbol": "BTC", "interval": "1h", "limit": 1000}
        rows = (await http.get("/api/futures/liquidation/aggregated-history", params=params)).json()["data"]
    assert rows == generated[-1000:] and len(rows) == 720


@pytest.mark.parametrize("series", SERIES, ids=[s.file for s in SERIES])
async def test_the_whole_bundled_period_comes_back_bar_for_bar_in_two_requests(
    twin: RecordedTwin, cg: CoinglassClient, series: Series
) -> None:
    rows = await whole(cg, series)
    assert len(rows) == BARS
    times = [to_ms(r.time) for r in rows]
    assert times[0] == START and times[-1] == END
    assert {b - a for a, b in itertools.pairwise(times)} == {H4}
    assert twin.request_count("coinglass", series.endpoint) == math.ceil(BARS / COINGLASS_PAGE_BARS) == 2
    # Every value parsed as a float, equal to the file's (numbers or strings there).
    file_rows = {r["time"]: r for r in bundled(series.file)}
    for row in rows:
        source = file_rows[to_ms(row.time)]
        ours = [getattr(row, field) for field in series.ours]
        assert all(isinstance(v, float) for v in ours)
        assert ours == [float(source[key]) for key in series.theirs]


async def test_price_history_has_six_more_bars_before_the_other_series(twin: RecordedTwin, cg: CoinglassClient) -> None:
    price = SERIES[0]
    assert len(bundled(price.file)) == 1086
    rows = await whole(cg, price, PRICE_START, END)
    assert len(rows) == 1086 and to_ms(rows[0].time) == PRICE_START
    assert twin.request_count("coinglass", price.endpoint) == 2  # ceil(1086 / 1000)
    assert rows[-1].close == 103_495.6 and rows[-1].volume_usd == pytest.approx(1_803_556_583.3764)


async def test_a_second_backtest_is_served_from_the_cache(twin: RecordedTwin) -> None:
    cache = UpstreamCache()
    http = ProviderHttp("coinglass", twin.base_urls()["COINGLASS_BASE_URL"], headers={"CG-API-KEY": "k"},
                        cache=cache, ttls=TTLS)  # fmt: skip
    client = CoinglassClient(http)
    try:
        twin.clear_requests()
        first = await whole(client, SERIES[1])
        second = await whole(client, SERIES[1])
        assert first == second and len(first) == BARS
        assert twin.request_count("coinglass") == 2
    finally:
        await http.aclose()
        await cache.aclose()


async def test_all_exchange_open_interest_is_not_in_the_capture(cg: CoinglassClient) -> None:
    # Only the generated recent rows exist for aggregated-history: every window is "no data".
    rows = await fetch_range(
        lambda a, b: cg.open_interest_history("BTC", "4h", COINGLASS_PAGE_BARS, a, b),
        START, END, H4, COINGLASS_PAGE_BARS, lambda r: r.time,
    )  # fmt: skip
    assert rows == []


async def test_start_and_end_are_inclusive_bounds_on_the_bar_open(cg: CoinglassClient) -> None:
    rows = await cg.price_history("BTCUSDT", "Binance", "4h", 1000, START + H4, START + 3 * H4)
    assert [to_ms(r.time) for r in rows] == [START + H4, START + 2 * H4, START + 3 * H4]


async def test_more_rows_in_range_than_limit_answers_the_newest(cg: CoinglassClient) -> None:
    rows = await cg.price_history("BTCUSDT", "Binance", "4h", 5, START, START + 10 * H4)
    assert [to_ms(r.time) for r in rows] == [START + k * H4 for k in range(6, 11)]


async def test_without_end_the_range_runs_into_the_generated_recent_rows(
    cg: CoinglassClient, twin: RecordedTwin
) -> None:
    rows = await cg.liquidation_aggregated_history("BTC", ["Binance"], "4h", 1000, END - 2 * H4)
    times = [to_ms(r.time) for r in rows]
    assert times[:3] == [END - 2 * H4, END - H4, END]  # the bundled real history keeps its dates
    assert times[3] > END + 150 * 24 * HOUR  # then the generated period (its 720 hours, moved to the present)
    end = generated_end(twin)
    assert times[3:] == buckets_4h(end - 719 * HOUR, end)  # 180 bars, 181 when the shift splits a bar
    assert times[-1] == end - end % H4 and times == sorted(times)


async def test_an_empty_range_is_no_data(cg: CoinglassClient, twin: RecordedTwin) -> None:
    with pytest.raises(ProviderError) as caught:
        await cg.price_history("BTCUSDT", "Binance", "4h", 1000, START - 30 * H4, START - 25 * H4 - 1)
    assert caught.value.kind is ErrorKind.NOT_FOUND
    async with httpx.AsyncClient(base_url=twin.url, headers={"CG-API-KEY": "k"}) as http:
        r = await http.get(
            "/coinglass/api/futures/price/history",
            params={
                "exchange": "Binance",
                "symbol": "BTCUSDT",
                "interval": "4h",
                "limit": 10,
                "end_time": PRICE_START - 1,
            },
        )
    assert r.json() == {"code": "0", "msg": "success", "data": []}


async def test_limit_defaults_to_1000_and_is_capped_at_1000(twin: RecordedTwin) -> None:
    base: dict[str, str | int] = {
        "exchange_list": "Binance", "symbol": "BTC", "interval": "4h", "start_time": START, "end_time": END
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=f"{twin.url}/coinglass", headers={"CG-API-KEY": "k"}) as http:
        path = "/api/futures/liquidation/aggregated-history"
        default = (await http.get(path, params=base)).json()["data"]
        capped = (await http.get(path, params={**base, "limit": 5000})).json()["data"]
        seconds = (await http.get(path, params={**base, "start_time": START // 1000, "end_time": END // 1000})).json()
        no_limit = await http.get("/api/futures/price/history", params={"exchange": "Binance", "symbol": "BTCUSDT",
                                                                         "interval": "4h"})  # fmt: skip
    assert len(default) == len(capped) == 1000 and default[-1]["time"] == END
    assert seconds["data"] == default  # the docs give some bounds in seconds: both are read
    assert no_limit.json()["code"] == "400"  # price history documents limit as required


async def test_client_refuses_a_limit_over_1000_or_a_reversed_range(cg: CoinglassClient) -> None:
    with pytest.raises(ValueError, match="limit"):
        await cg.price_history("BTCUSDT", "Binance", "4h", 1001)
    with pytest.raises(ValueError, match="after"):
        await cg.funding_oi_weighted_history("BTC", "4h", 10, END, START)


async def test_bundled_4h_bars_are_not_served_as_1h_bars(cg: CoinglassClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await cg.top_long_short_position_ratio("BTCUSDT", "Binance", "1h", 1000, START, END)
    assert caught.value.kind is ErrorKind.NOT_FOUND


async def test_coarser_intervals_are_resampled_from_the_bundled_4h_bars(cg: CoinglassClient) -> None:
    day = 1_731_628_800_000  # 2024-11-15 00:00 UTC, a whole day of six 4h bars
    source = [r for r in bundled("futures_price_history") if day <= r["time"] < day + 6 * H4]
    (daily,) = await cg.price_history("BTCUSDT", "Binance", "1d", 1, day, day)
    assert (daily.open, daily.close) == (float(source[0]["open"]), float(source[-1]["close"]))
    assert daily.high == max(float(r["high"]) for r in source) and daily.low == min(float(r["low"]) for r in source)
    assert daily.volume_usd == pytest.approx(sum(float(r["volume_usd"]) for r in source))
    liq = await cg.liquidation_aggregated_history("BTC", ["Binance"], "8h", 1000, START, END)
    assert {to_ms(b.time) % (8 * HOUR) for b in liq} == {0} and len(liq) == 540
    # START (12:00) opens the 08:00 bucket, which is before START: the first bucket in range is 16:00.
    assert to_ms(liq[0].time) == START + H4
    first_8h = [
        r for r in bundled("futures_liquidation_aggregated-history") if r["time"] in (START + H4, START + 2 * H4)
    ]
    assert liq[0].long_usd == pytest.approx(sum(r["aggregated_long_liquidation_usd"] for r in first_8h))


async def test_a_failing_page_fails_the_whole_range(twin: RecordedTwin, cg: CoinglassClient) -> None:
    price = SERIES[0]
    twin.set_fault("coinglass", price.endpoint, "error_envelope", times=1)  # one page of the two
    with pytest.raises(ProviderError) as caught:
        await whole(cg, price)
    assert caught.value.kind is ErrorKind.UPSTREAM and caught.value.endpoint == price.endpoint
    twin.set_fault("coinglass", price.endpoint, "truncated_json", times=1)
    with pytest.raises(ProviderError) as caught:
        await whole(cg, price)
    assert caught.value.kind is ErrorKind.BAD_PAYLOAD
    assert len(await whole(cg, price)) == BARS  # and nothing is left broken


async def test_a_plan_without_sub_4h_history_fails_the_range_as_plan(twin: RecordedTwin, cg: CoinglassClient) -> None:
    twin.set_plan("hobbyist")
    try:
        with pytest.raises(ProviderError) as caught:
            await fetch_range(
                lambda a, b: cg.price_history("BTCUSDT", "Binance", "1h", COINGLASS_PAGE_BARS, a, b),
                START, END, HOUR, COINGLASS_PAGE_BARS, lambda r: r.time,
            )  # fmt: skip
        assert caught.value.kind is ErrorKind.PLAN
    finally:
        twin.set_plan("professional")


@pytest.mark.parametrize(
    ("path", "params", "keys"),
    [
        ("/api/futures/open-interest/aggregated-coin-margin-history",
         {"exchange_list": "Binance", "symbol": "BTC"}, ("open", "close")),
        ("/api/futures/aggregated-taker-buy-sell-volume/history",
         {"exchange_list": "Binance", "symbol": "BTC"}, ("aggregated_buy_volume_usd", "aggregated_sell_volume_usd")),
    ],
)  # fmt: skip
async def test_the_other_bundled_series_are_served_too(
    twin: RecordedTwin, path: str, params: dict[str, str], keys: tuple[str, ...]
) -> None:
    query: dict[str, str | int] = {**params, "interval": "4h", "start_time": START, "end_time": END}
    async with httpx.AsyncClient(base_url=f"{twin.url}/coinglass", headers={"CG-API-KEY": "k"}) as http:
        page = (await http.get(path, params={**query, "limit": 1000})).json()["data"]
        eth = (await http.get(path, params={**query, "symbol": "ETH"})).json()
    assert len(page) == 1000 and page[-1]["time"] == END and all(k in page[0] for k in keys)
    assert eth == {"code": "0", "msg": "success", "data": []}


async def test_fear_greed_serves_the_real_readings_before_the_generated_ones(cg: CoinglassClient) -> None:
    points = await cg.fear_greed_history()
    real = json.loads((RECORDED / BUNDLED_DIR / "index_fear-greed-history.json").read_text())["data"]
    assert len(points) == len(real["data_list"]) + 60
    assert points[0].time == datetime(2018, 2, 1, tzinfo=UTC) and points[0].value == 30.0
    in_period = [p for p in points if START <= to_ms(p.time) <= END]
    assert len(in_period) == 180 and all(0 <= p.value <= 100 for p in in_period)
    assert [p.time for p in points] == sorted(p.time for p in points)
    assert points[-1].value == 24  # the generated newest reading is still the newest


async def test_fear_greed_object_shape_with_millisecond_times_is_read() -> None:
    # The bundled file as the live API may send it: `data` an object, times in ms.
    twin = RecordedTwin()
    twin.store.docs["coinglass/index_fear-greed-history"] = json.loads(
        (RECORDED / BUNDLED_DIR / "index_fear-greed-history.json").read_text()
    )
    del twin.store.docs[f"{BUNDLED_DIR}/index_fear-greed-history"]
    await twin.start()
    http = ProviderHttp("coinglass", twin.base_urls()["COINGLASS_BASE_URL"], headers={"CG-API-KEY": "k"})
    try:
        points = await CoinglassClient(http).fear_greed_history()
    finally:
        await http.aclose()
        await twin.stop()
    assert len(points) == 2639 and points[-1].time.date().isoformat() == "2025-05-13"
    assert points[0].time == datetime(2018, 2, 1, tzinfo=UTC)


# ---- OKX ---------------------------------------------------------------------------------------


async def test_okx_history_candles_page_with_cursors(twin: RecordedTwin, okx: OkxClient) -> None:
    end = generated_end(twin)
    start = end - 719 * HOUR  # the twin's 720 hourly candles
    candles = await fetch_range(
        lambda a, b: okx.history_candles("BTC", "1H", *okx_cursors(a, b), limit=OKX_PAGE_BARS),
        start, end, HOUR, OKX_PAGE_BARS, lambda c: c.time,
    )  # fmt: skip
    times = [to_ms(c.time) for c in candles]
    assert len(candles) == 720 and times[0] == start and times[-1] == end
    assert {b - a for a, b in itertools.pairwise(times)} == {HOUR}
    assert twin.request_count("okx", "/api/v5/market/history-candles") == math.ceil(720 / OKX_PAGE_BARS) == 8
    four_hourly = await fetch_range(
        lambda a, b: okx.history_candles("BTC", "4H", *okx_cursors(a, b), limit=OKX_PAGE_BARS),
        start, end, H4, OKX_PAGE_BARS, lambda c: c.time,
    )  # fmt: skip
    assert [to_ms(c.time) for c in four_hourly] == [t for t in buckets_4h(start, end) if t >= start]
    assert len(four_hourly) >= 179 and all(to_ms(c.time) % H4 == 0 for c in four_hourly)


async def test_okx_history_candles_cursor_semantics(okx: OkxClient, twin: RecordedTwin) -> None:
    end = generated_end(twin)
    older = await okx.history_candles("BTC", "1H", after_ms=end - 10 * HOUR, limit=3)
    assert [to_ms(c.time) for c in older] == [end - k * HOUR for k in (11, 12, 13)]  # newest first
    newer = await okx.history_candles("BTC", "1H", before_ms=end - 3 * HOUR)
    assert [to_ms(c.time) for c in newer] == [end - k * HOUR for k in (0, 1, 2)]
    between = await okx.history_candles("BTC", "1H", *okx_cursors(end - 5 * HOUR, end - 4 * HOUR))
    assert [to_ms(c.time) for c in between] == [end - 4 * HOUR, end - 5 * HOUR]
    with pytest.raises(ValueError, match="limit"):
        await okx.history_candles("BTC", "1H", limit=101)


async def test_okx_funding_history_pages_on_funding_time(twin: RecordedTwin, okx: OkxClient) -> None:
    eight_h = bar_ms("8h")
    newest = (await okx.funding_rate_history("BTC", 1))[0].funding_time
    end = to_ms(newest)
    start = end - 89 * eight_h  # the twin's 90 settlements
    twin.clear_requests()
    rates = await fetch_range(
        lambda a, b: okx.funding_rate_history("BTC", 30, *okx_cursors(a, b)), start, end, eight_h, 30,
        lambda f: f.funding_time,
    )  # fmt: skip
    assert len(rates) == 90 and to_ms(rates[0].funding_time) == start and rates[-1].funding_time == newest
    # One call per fixed-boundary page: 90 settlements in pages of 30 touch 3 or 4 of them.
    pages = len(windows(start, end, eight_h, 30))
    assert pages in (3, 4) and twin.request_count("okx", "/api/v5/public/funding-rate-history") == pages
    page = await okx.funding_rate_history("BTC", 2, after_ms=end)
    assert [to_ms(f.funding_time) for f in page] == [end - eight_h, end - 2 * eight_h]  # newest first
