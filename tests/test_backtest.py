"""GET /backtest/{symbol}: the served scorer replayed over the bundled real Coinglass history.

Through the real stack (Envoy, grpc.aio server, provider clients over loopback to the recorded
twin, which serves the bundled BTC 4h history of 2024-11-14..2025-05-13 with Coinglass's paging
semantics). Figures are re-derived here with the test's own arithmetic from the bars the API
returns, so a report that disagrees with its own bars fails.
"""

from __future__ import annotations

import math
import statistics as stats
from typing import Any

import httpx
import pytest

from tests.stack import Stack
from twin import RecordedTwin

PERIOD = {"start": "2024-11-15T00:00:00Z", "end": "2025-05-13T08:00:00Z"}
SERIES_ENDPOINTS = (
    "/api/futures/price/history",
    "/api/futures/liquidation/aggregated-history",
    "/api/futures/funding-rate/oi-weight-history",
    "/api/futures/global-long-short-account-ratio/history",
    "/api/futures/top-long-short-position-ratio/history",
    "/api/futures/open-interest/aggregated-history",
)


@pytest.fixture(scope="module")
async def report(rest: httpx.AsyncClient) -> dict[str, Any]:
    response = await rest.get("/backtest/BTC", params={**PERIOD, "include_bars": "true"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_backtest_answers_every_documented_section(report: dict[str, Any]) -> None:
    assert report["symbol"] == "BTC" and report["interval"] == "4h" and report["horizonBars"] == 6
    # 2024-11-15 00:00 .. 2025-05-13 08:00 is 179 days and 3 bars of 4h; the last 6 have no outcome yet.
    assert report["barsScored"] + report["barsWithoutOutcome"] + report["warmupBars"] == 179 * 6 + 3
    assert report["barsWithoutOutcome"] == 6
    assert report["barsScored"] >= 1000
    assert [c["signal"] for c in report["classes"]] == ["LONG", "SHORT", "NEUTRAL"]
    assert sum(c["count"] for c in report["classes"]) == report["barsScored"]
    assert [b["name"] for b in report["baselines"]] == ["always_long", "momentum_only", "random_entries"]
    assert report["randomEntries"]["draws"] >= 1000 and 0 < report["randomEntries"]["pValue"] <= 1
    assert report["lookahead"]["cutPoints"] >= 3 and report["lookahead"]["mismatches"] == 0
    assert report["statistics"]["blockBars"] >= report["horizonBars"]
    assert 1 < report["statistics"]["effectiveSampleSize"] < report["barsScored"]
    assert report["verdict"].startswith(("No edge", "Edge"))
    factors = {f["factor"]: f for f in report["factors"]}
    assert factors["social"]["coverage"] == 0  # LunarCrush has no history: said, not hidden
    assert any("social" in note for note in report["notes"])
    for name in ("liquidations", "funding_rate", "momentum", "long_short_ratio", "smart_money", "fear_greed"):
        assert factors[name]["coverage"] > 0.95, name
        assert -1 <= factors[name]["informationCoefficient"] <= 1 and 0 < factors[name]["icPValue"] <= 1
    # The capture has no all-exchange OI for this period: the stablecoin-margined series stands in, and says so.
    assert factors["open_interest"]["source"].endswith("aggregated-stablecoin-history")
    assert any("stablecoin" in note for note in report["notes"])


async def test_every_interval_contains_its_hit_rate(report: dict[str, Any]) -> None:
    for row in [*report["classes"], report["signalPositions"], *report["baselines"]]:
        if row["count"]:
            assert row["hitRateCi95Low"] <= row["hitRate"] <= row["hitRateCi95High"], row
            # Overlapping outcomes are worth fewer trials than bars: the interval is wider than naive.
            naive = 1.96 * math.sqrt(row["hitRate"] * (1 - row["hitRate"]) / row["count"])
            assert row["hitRateCi95High"] - row["hitRateCi95Low"] > 2 * naive * 0.99, row


async def test_report_agrees_with_its_own_bars_recomputed_independently(report: dict[str, Any]) -> None:
    bars = report["bars"]
    horizon = report["horizonBars"]
    assert len(bars) == report["barsScored"] + report["barsWithoutOutcome"]
    # Our own arithmetic: forward return from the bars' prices (consecutive 4h bars, no gaps here).
    for i, bar in enumerate(bars):
        if i + horizon < len(bars):
            expected = (bars[i + horizon]["price"] / bar["price"] - 1) * 100
            assert bar["forwardReturnPct"] == pytest.approx(expected, abs=1e-4)
        else:
            assert "forwardReturnPct" not in bar  # the horizon runs past end: counted nowhere
    with_outcome = [b for b in bars if "forwardReturnPct" in b]
    returns = [b["forwardReturnPct"] for b in with_outcome]
    always_long = report["baselines"][0]
    assert always_long["count"] == len(with_outcome)
    assert always_long["hitRate"] == pytest.approx(sum(r > 0 for r in returns) / len(returns), abs=1e-4)
    assert always_long["meanForwardReturnPct"] == pytest.approx(stats.fmean(returns), abs=1e-4)
    for row in report["classes"]:
        mine = [b["forwardReturnPct"] for b in with_outcome if b["signal"] == row["signal"]]
        assert row["count"] == len(mine)
        if mine:
            hits = sum(r < 0 for r in mine) if row["signal"] == "SHORT" else sum(r > 0 for r in mine)
            assert row["hitRate"] == pytest.approx(hits / len(mine), abs=1e-4)
            assert row["meanForwardReturnPct"] == pytest.approx(stats.fmean(mine), abs=1e-4)
            assert row["medianForwardReturnPct"] == pytest.approx(stats.median(mine), abs=1e-4)
    positions = [
        (1 if b["signal"] == "LONG" else -1) * b["forwardReturnPct"] for b in with_outcome if b["signal"] != "NEUTRAL"
    ]
    assert report["signalPositions"]["count"] == len(positions)
    if positions:
        assert report["signalPositions"]["meanForwardReturnPct"] == pytest.approx(stats.fmean(positions), abs=1e-4)
    # Scores obey the documented thresholds.
    for bar in bars:
        expected = "LONG" if bar["score"] >= 65 else "SHORT" if bar["score"] <= 35 else "NEUTRAL"
        assert bar["signal"] == expected


def _net(sign: int, bar: dict[str, Any], fee_bps: float) -> float:
    """Our own arithmetic: the position's return less a fee per side, less the funding a long pays."""
    return float(sign * bar["forwardReturnPct"] - 2 * fee_bps / 100 - sign * bar["fundingHoldPct"])


async def test_net_figures_agree_with_the_bars_fees_and_funding(report: dict[str, Any]) -> None:
    assert report["feeBps"] == 5
    with_outcome = [b for b in report["bars"] if "forwardReturnPct" in b]
    # The bundled history has a funding reading at every 4h bar: every hold's cost is known.
    assert all("fundingHoldPct" in b for b in with_outcome)
    assert any(b["fundingHoldPct"] > 0 for b in with_outcome) and any(b["fundingHoldPct"] < 0 for b in with_outcome)
    sign_of = {"LONG": 1, "SHORT": -1}
    for row in report["classes"]:
        side = sign_of.get(row["signal"])
        mine = [b for b in with_outcome if b["signal"] == row["signal"]]
        if side is None:  # NEUTRAL takes no position: no position or net figure
            assert "meanPositionReturnPct" not in row and "meanNetReturnPct" not in row
            assert row.get("netCount", 0) == 0
            continue
        assert mine, row
        gross = stats.fmean(side * b["forwardReturnPct"] for b in mine)
        assert row["meanPositionReturnPct"] == pytest.approx(gross, abs=1e-4)
        assert row["netCount"] == len(mine)
        assert row["meanNetReturnPct"] == pytest.approx(stats.fmean(_net(side, b, 5) for b in mine), abs=1e-4)
        # The existing field keeps its meaning: the price's move (a short's is the opposite sign).
        assert row["meanForwardReturnPct"] == pytest.approx(side * row["meanPositionReturnPct"], abs=1e-4)
    taken = [b for b in with_outcome if b["signal"] in sign_of]
    positions = report["signalPositions"]
    assert positions["netCount"] == len(taken)
    assert positions["meanNetReturnPct"] == pytest.approx(
        stats.fmean(_net(sign_of[b["signal"]], b, 5) for b in taken), abs=1e-4
    )
    always = report["baselines"][0]
    assert always["meanNetReturnPct"] == pytest.approx(stats.fmean(_net(1, b, 5) for b in with_outcome), abs=1e-4)
    for row in report["baselines"]:
        assert row["netCount"] > 0 and "meanNetReturnPct" in row, row


async def test_the_fee_moves_every_net_figure_by_its_round_trip(
    rest: httpx.AsyncClient, report: dict[str, Any]
) -> None:
    response = await rest.get("/backtest/BTC", params={**PERIOD, "fee_bps": 0})
    assert response.status_code == 200, response.text
    free = response.json()
    assert free.get("feeBps", 0) == 0
    for mine, theirs in zip(
        [*report["classes"][:2], report["signalPositions"], *report["baselines"]],
        [*free["classes"][:2], free["signalPositions"], *free["baselines"]],
        strict=True,
    ):
        # 5 bps a side: 0.10 % a round trip, on every position; gross figures unchanged.
        assert theirs["meanNetReturnPct"] - mine["meanNetReturnPct"] == pytest.approx(0.10, abs=2e-4)
        assert theirs["meanForwardReturnPct"] == mine["meanForwardReturnPct"]


async def test_answer_without_bars_fits_a_gpt_action(rest: httpx.AsyncClient) -> None:
    response = await rest.get("/backtest/BTC", params=PERIOD)
    assert response.status_code == 200
    assert len(response.text) < 100_000
    assert "bars" not in response.json() or response.json()["bars"] == []


async def test_a_backtest_costs_a_few_paged_calls_per_series_never_one_per_bar(
    rest: httpx.AsyncClient, twin: RecordedTwin, stack: Stack
) -> None:
    assert stack.server.app.cache is not None
    stack.server.app.cache.clear()  # nothing cached: every page is really asked for
    twin.clear_requests()
    # 1,000 bars of 4h fit two pages per series (pages of 1,000 bars on fixed boundaries).
    response = await rest.get(
        "/backtest/BTC", params={"start": "2024-11-20T00:00:00Z", "end": "2025-05-10T00:00:00Z", "horizon_bars": 3}
    )
    assert response.status_code == 200, response.text
    for endpoint in SERIES_ENDPOINTS:  # (a series the provider answered "no data" for stays remembered: 0)
        assert twin.request_count("coinglass", endpoint) <= 2, endpoint
    assert 1 <= twin.request_count("coinglass", "/api/futures/price/history") <= 2
    assert twin.request_count("coinglass") <= 2 * len(SERIES_ENDPOINTS) + 3  # + stablecoin OI, fear & greed


async def test_a_shifted_backtest_costs_only_the_pages_it_adds(rest: httpx.AsyncClient, twin: RecordedTwin) -> None:
    """Pages sit on fixed boundaries, so moving a period by a bar or a week reuses the cached pages:
    one client cannot spend the upstream budget by nudging ``start``."""
    base: dict[str, str | int] = {"start": "2024-11-20T00:00:00Z", "end": "2025-05-10T00:00:00Z", "horizon_bars": 3}
    assert (await rest.get("/backtest/BTC", params=base)).status_code == 200
    twin.clear_requests()
    for start, end in (
        ("2024-11-20T04:00:00Z", "2025-05-10T04:00:00Z"),
        ("2024-11-27T00:00:00Z", "2025-05-11T00:00:00Z"),
    ):
        response = await rest.get("/backtest/BTC", params={"start": start, "end": end, "horizon_bars": 3})
        assert response.status_code == 200, response.text
    assert twin.request_count("coinglass") == 0, [r.path for r in twin.requests]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"start": "2025-03-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"}, "must be before end"),
        ({"interval": "w1"}, "interval must be h4, h1 or d1"),
        ({"horizon_bars": 0}, "horizon_bars must be between 1 and 100"),
        ({"horizon_bars": 101}, "horizon_bars must be between 1 and 100"),
        ({"start": "yesterday"}, "start must be an RFC 3339 time"),
        ({"start": "2025-03-01T00:00:00Z", "end": "2025-03-04T00:00:00Z"}, "at least"),
        ({"start": "2015-01-01T00:00:00Z", "end": "2025-03-04T00:00:00Z"}, "over the limit"),
        ({"end": "2099-01-01T00:00:00Z"}, "in the future"),
        ({"fee_bps": 101}, "fee_bps must be between 0 and 100"),
        ({"fee_bps": -1}, "fee_bps must be between 0 and 100"),
    ],
)
async def test_bad_backtest_parameters_are_a_400_naming_the_problem(
    rest: httpx.AsyncClient, params: dict[str, Any], words: str
) -> None:
    response = await rest.get("/backtest/BTC", params=params)
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]


async def test_a_period_before_any_history_is_a_400_not_an_empty_report(rest: httpx.AsyncClient) -> None:
    response = await rest.get("/backtest/BTC", params={"start": "2023-01-01T00:00:00Z", "end": "2023-06-01T00:00:00Z"})
    assert response.status_code == 400, response.text
    assert "history" in response.json()["message"]


async def test_a_provider_failing_halfway_is_a_503_naming_it_never_a_partial_report(
    rest: httpx.AsyncClient, faults: RecordedTwin, stack: Stack
) -> None:
    faults.set_fault("coinglass", "/api/futures/top-long-short-position-ratio/history", "server_error")
    assert stack.server.app.cache is not None
    stack.server.app.cache.clear()  # nothing cached, so the failing series is really asked for
    response = await rest.get("/backtest/BTC", params={"start": "2024-12-01T00:00:00Z", "end": "2025-04-01T00:00:00Z"})
    assert response.status_code == 503, response.text
    message = response.json()["message"]
    assert "coinglass /api/futures/top-long-short-position-ratio/history" in message
    assert "partial" in message


async def test_backtest_is_in_the_openapi_document_for_gpt_actions(rest: httpx.AsyncClient) -> None:
    document = (await rest.get("/openapi.json")).json()
    operation = document["paths"]["/backtest/{symbol}"]["get"]
    assert operation["operationId"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"symbol", "interval", "start", "end", "horizon_bars", "include_bars"} <= names


async def test_a_daily_backtest_replays_the_same_signal_on_1d_bars(rest: httpx.AsyncClient) -> None:
    """interval=1d (a real Coinglass history interval): the research panel's bar, on the API too."""
    response = await rest.get(
        "/backtest/BTC",
        params={"interval": "1d", "start": "2024-11-20T00:00:00Z", "end": "2025-05-10T00:00:00Z", "horizon_bars": 1},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["interval"] == "1d" and report["horizonBars"] == 1
    assert report["barsScored"] + report["barsWithoutOutcome"] + report["warmupBars"] == 172  # days, both ends in
    assert report["lookahead"]["mismatches"] == 0
