"""Funding rates in one unit: OKX's per-interval fractions become percent per 8h in the client, and the
signal's headline writes that as a fraction per 8h (what OKX and Binance report, and the seed too)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers.errors import ErrorKind, ProviderError
from providers.http import ProviderHttp
from providers.okx import OkxClient
from service.mappers.signal import funding_fraction
from twin.store import RECORDED

HOUR_MS = 3_600_000


def okx_with(rows: list[dict[str, Any]]) -> OkxClient:
    """An OKX client whose upstream answers ``rows`` (no network: the fetch is replaced)."""
    client = OkxClient(ProviderHttp("okx", "http://127.0.0.1:9"))

    async def data(endpoint: str, params: dict[str, Any]) -> list[Any]:
        return rows

    client._data = data  # type: ignore[method-assign]
    return client


def recorded_funding(interval_hours: float | None) -> dict[str, Any]:
    """The recorded BTC funding row, with the next settlement ``interval_hours`` after this one."""
    row: dict[str, Any] = json.loads((RECORDED / "okx/BTC/public_funding-rate.json").read_text())["data"][0]
    row = {**row, "fundingRate": "0.0001"}
    if interval_hours is None:
        del row["nextFundingTime"]
    else:
        row["nextFundingTime"] = str(int(row["fundingTime"]) + int(interval_hours * HOUR_MS))
    return row


@pytest.mark.parametrize(
    ("interval_hours", "pct_per_8h"),
    [(8, 0.01), (4, 0.02), (2, 0.04), (1, 0.08), (None, 0.01)],  # no next settlement: OKX's usual 8h
)
async def test_okx_rate_per_interval_becomes_percent_per_8h(interval_hours: float | None, pct_per_8h: float) -> None:
    funding = await okx_with([recorded_funding(interval_hours)]).funding_rate("BTC")
    assert funding.rate_pct == pytest.approx(pct_per_8h)
    assert funding.interval_hours == (interval_hours or 8)


async def test_okx_interval_that_makes_no_sense_is_a_bad_payload() -> None:
    row = recorded_funding(8)
    row["nextFundingTime"] = row["fundingTime"]
    with pytest.raises(ProviderError) as caught:
        await okx_with([row]).funding_rate("BTC")
    assert caught.value.kind is ErrorKind.BAD_PAYLOAD


async def test_okx_history_takes_each_rate_s_interval_from_the_settlements() -> None:
    start = 1_764_000_000_000
    rows = [  # newest first: the instrument moved from 8h to 4h settlements
        {"instId": "X-USDT-SWAP", "fundingRate": "0.0001", "fundingTime": str(start + 16 * HOUR_MS)},
        {"instId": "X-USDT-SWAP", "fundingRate": "0.0001", "fundingTime": str(start + 12 * HOUR_MS)},
        {"instId": "X-USDT-SWAP", "fundingRate": "0.0001", "fundingTime": str(start + 8 * HOUR_MS)},
        {"instId": "X-USDT-SWAP", "fundingRate": "0.0001", "fundingTime": str(start)},
    ]
    history = await okx_with(rows).funding_rate_history("X")
    assert [h.interval_hours for h in history] == [4, 4, 8, 8]
    assert [h.rate_pct for h in history] == pytest.approx([0.02, 0.02, 0.01, 0.01])
    single = await okx_with(rows[:1]).funding_rate_history("X")
    assert single[0].interval_hours == 8


@pytest.mark.parametrize(
    ("pct_per_8h", "fraction"),
    [(0.01, 0.0001), (0.01799, 0.0001799), (-0.0050795, -0.000050795), (0.0, 0.0), (0.375, 0.00375)],
)
def test_headline_funding_is_a_fraction_without_float_noise(pct_per_8h: float, fraction: float) -> None:
    assert funding_fraction(pct_per_8h) == fraction
