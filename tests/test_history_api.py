"""GET /signals/{symbol}/history and /track-record through Envoy, and the outcome filler.

The twin lists BTC, ETH and SOL only; each test uses its own coin or its own time range.

The session stack records every served signal in its own SQLite file; tests write rows straight
into that database when they need a known history, and read it back through the API.
"""

from __future__ import annotations

import statistics as stats
import time
from typing import Any

import httpx
import pytest

from records.archive import SignalArchive
from records.jobs.outcomes import candle_open_for, fill_outcomes
from signals.inputs import HOUR_MS, to_ms
from tests.stack import Stack
from twin import RecordedTwin

INTERVAL_MS = 300_000


def _archive(stack: Stack) -> SignalArchive:
    archive = stack.server.app.archive
    assert archive is not None
    return archive


def _row(symbol: str, computed_ms: int, signal: str = "NEUTRAL", price: float = 100.0, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "bucket": computed_ms // INTERVAL_MS,
        "computed_ms": computed_ms,
        "score": {"LONG": 70.0, "SHORT": 30.0}.get(signal, 50.0),
        "signal": signal,
        "confidence": "medium",
        "coverage": 0.9,
        "price": price,
        "factors": [
            {
                "factor": "momentum",
                "sub_score": 61.5,
                "weight": 15.0,
                "contribution": 1.7,
                "source": "okx:/api/v5/market/candles",
                "data_time_ms": computed_ms,
                "metrics": {"price_change_4h_pct": 1.25},
            }
        ],
        "config_hash": "0123456789abcdef",
        **extra,
    }


async def test_a_served_signal_is_recorded_and_shown_again(rest: httpx.AsyncClient, stack: Stack) -> None:
    served = (await rest.get("/signals/ETH", params={"debug": "true"})).json()
    await _archive(stack).recorder.flush()
    page = (await rest.get("/signals/ETH/history")).json()
    assert page["symbol"] == "ETH"
    newest = page["entries"][0]
    assert newest["score"] == pytest.approx(served["score"], abs=0.01)
    assert newest["signal"] == served["signal"] and newest["confidence"] == served["confidence"]
    assert newest["price"] == served["price"]
    assert {f["factor"] for f in newest["factors"]} == {f["factor"] for f in served["factors"]}
    assert len(newest["configHash"]) == 16
    # Asked again within the same interval: still one row.
    await rest.get("/signals/ETH")
    await _archive(stack).recorder.flush()
    again = (await rest.get("/signals/ETH/history")).json()
    same_bucket = [e for e in again["entries"] if e["time"] == newest["time"]]
    assert len(same_bucket) == 1


async def test_history_pages_newest_first_with_opaque_tokens(rest: httpx.AsyncClient, stack: Stack) -> None:
    base = to_ms_iso("2025-01-01T00:00:00Z")
    await _archive(stack).database.insert([_row("BTC", base + i * INTERVAL_MS) for i in range(250)])
    params: dict[str, Any] = {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z", "page_size": 100}
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = (await rest.get("/signals/BTC/history", params={**params, "page_token": token})).json()
        pages += 1
        seen.extend(e["time"] for e in page["entries"])
        token = page["nextPageToken"]
        if not token:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"page_size": 1001}, "page_size must be between 1 and 1000"),
        ({"page_size": 0}, "page_size must be between 1 and 1000"),
        ({"start": "2025-02-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}, "start must not be after end"),
        ({"page_token": "not-a-token"}, "not a token this service issued"),
        ({"start": "last tuesday"}, "start must be an RFC 3339 time"),
    ],
)
async def test_bad_history_parameters_are_a_400(rest: httpx.AsyncClient, params: dict[str, Any], words: str) -> None:
    response = await rest.get("/signals/BTC/history", params=params)
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]


async def test_a_forged_or_foreign_page_token_is_refused(rest: httpx.AsyncClient, stack: Stack) -> None:
    base = to_ms_iso("2025-03-01T00:00:00Z")
    await _archive(stack).database.insert([_row("ETH", base + i * INTERVAL_MS) for i in range(5)])
    params: dict[str, Any] = {"start": "2025-03-01T00:00:00Z", "end": "2025-03-02T00:00:00Z", "page_size": 2}
    token = (await rest.get("/signals/ETH/history", params=params)).json()["nextPageToken"]
    assert token
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    response = await rest.get("/signals/ETH/history", params={**params, "page_token": forged})
    assert response.status_code == 400 and "forged" in response.json()["message"]
    foreign = await rest.get("/signals/ETH/history", params={**params, "page_size": 3, "page_token": token})
    assert foreign.status_code == 400 and "another request" in foreign.json()["message"]


async def test_track_record_is_the_backtest_summary_of_the_recorded_outcomes(
    rest: httpx.AsyncClient, stack: Stack
) -> None:
    now = int(time.time() * 1000)
    rows = []
    for i in range(60):
        signal = ("LONG", "SHORT", "NEUTRAL")[i % 3]
        rows.append(_row("BTC", now - (i + 1) * 3_600_000, signal, return_24h_pct=((i * 7) % 11 - 5) / 2))
    await _archive(stack).database.insert(rows)
    record = (await rest.get("/signals/BTC/track-record", params={"horizon": "24h", "days": 30})).json()
    assert record["signalsWithOutcome"] == 60
    returns = [r["return_24h_pct"] for r in rows]
    by_class = {c["signal"]: c for c in record["classes"]}
    longs = [r["return_24h_pct"] for r in rows if r["signal"] == "LONG"]
    shorts = [r["return_24h_pct"] for r in rows if r["signal"] == "SHORT"]
    assert by_class["LONG"]["count"] == len(longs)
    assert by_class["LONG"]["hitRate"] == pytest.approx(sum(r > 0 for r in longs) / len(longs), abs=1e-4)
    assert by_class["SHORT"]["hitRate"] == pytest.approx(sum(r < 0 for r in shorts) / len(shorts), abs=1e-4)
    assert by_class["LONG"]["meanForwardReturnPct"] == pytest.approx(stats.fmean(longs), abs=1e-4)
    always = record["baselines"][0]
    assert always["name"] == "always_long" and always["count"] == 60
    assert always["hitRate"] == pytest.approx(sum(r > 0 for r in returns) / 60, abs=1e-4)
    for row in [*record["classes"], record["signalPositions"], always]:
        assert row["hitRateCi95Low"] <= row["hitRate"] <= row["hitRateCi95High"]
    assert record["horizonRows"] == 24 * 3600 // 300
    assert record["verdict"]


async def test_the_track_record_is_kept_per_profile(rest: httpx.AsyncClient, stack: Stack) -> None:
    await _archive(stack).recorder.ready.wait()
    now = int(time.time() * 1000)
    rows = [
        {**_row("ETH", now - (i + 1) * 3_600_000, "SHORT", return_24h_pct=1.0), "profile": "research"}
        for i in range(10)
    ]
    await _archive(stack).database.insert(rows)
    seed = (await rest.get("/signals/ETH/track-record")).json()
    research = (await rest.get("/signals/ETH/track-record", params={"profile": "research"})).json()
    assert (seed.get("profile"), seed.get("signalsWithOutcome", 0)) == ("seed", 0), seed
    assert (research["profile"], research["signalsWithOutcome"]) == ("research", 10)
    start = "2000-01-01T00:00:00Z"
    params: dict[str, Any] = {"start": start, "page_size": 1000}
    research_rows = (await rest.get("/signals/ETH/history", params={**params, "profile": "research"})).json()
    assert {e.get("profile") for e in research_rows["entries"]} == {"research"}
    assert len(research_rows["entries"]) >= 10
    seed_rows = (await rest.get("/signals/ETH/history", params=params)).json()
    assert {e.get("profile") for e in seed_rows.get("entries", [])} <= {"seed"}
    bad = await rest.get("/signals/ETH/track-record", params={"profile": "yolo"})
    assert bad.status_code == 400 and "unknown scoring profile" in bad.json()["message"]


async def test_bad_track_record_parameters_are_a_400(rest: httpx.AsyncClient) -> None:
    bad_horizon = await rest.get("/signals/BTC/track-record", params={"horizon": "2h"})
    assert bad_horizon.status_code == 400 and "horizon must be 1h, 4h or 24h" in bad_horizon.json()["message"]
    bad_days = await rest.get("/signals/BTC/track-record", params={"days": 0})
    assert bad_days.status_code == 400 and "days must be between 1 and 365" in bad_days.json()["message"]


async def test_outcomes_are_filled_from_confirmed_candles_never_early_and_only_once(
    stack: Stack, twin: RecordedTwin
) -> None:
    archive = _archive(stack)
    clients = stack.server.app.clients
    candles = await clients.okx.candles("SOL", bar="1H", limit=100)  # the twin's hourly SOL candles
    confirmed = sorted((c for c in candles if c.confirmed), key=lambda c: c.time)
    closes = {to_ms(c.time): c.close for c in confirmed}
    first, last_close = to_ms(confirmed[0].time), to_ms(confirmed[-1].time) + HOUR_MS
    decided = first + 30 * 60_000  # half past the first hour of the twin's data
    late = last_close - 30 * 60_000  # its 1h horizon ends after the last confirmed candle
    await archive.database.insert([_row("SOL", decided, price=150.0), _row("SOL", late, price=150.0)])
    now = last_close + 60_000
    filled = await fill_outcomes(archive.database, clients, now_ms=now)
    assert filled >= 2  # 1h and 4h of the first row (24h too if the data reaches)
    rows = {r.computed_ms: r for r in await archive.database.page("SOL", decided, late, 10, None)}
    expected_1h = (closes[candle_open_for(decided + 3_600_000)] / 150.0 - 1) * 100
    assert rows[decided].returns_pct["1h"] == pytest.approx(expected_1h)
    expected_4h = (closes[candle_open_for(decided + 4 * 3_600_000)] / 150.0 - 1) * 100
    assert rows[decided].returns_pct["4h"] == pytest.approx(expected_4h)
    assert rows[late].returns_pct["1h"] is None  # its candle has not closed by `now`: never early
    assert await fill_outcomes(archive.database, clients, now_ms=now) == 0  # idempotent


async def test_health_reports_the_history_database(rest: httpx.AsyncClient) -> None:
    health = (await rest.get("/health")).json()
    assert health["history"]["available"] is True
    assert health["history"]["detail"] == ""


def to_ms_iso(text: str) -> int:
    from datetime import datetime

    return to_ms(datetime.fromisoformat(text))
