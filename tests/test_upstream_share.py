"""Each client's share of the upstream budgets: one client cannot spend the paid quota of all.

The review's reproduction: with a Coinglass budget of 30 a minute, six uncached calls from one
client left nothing for anyone. Here the budget is 8 a minute and a client's share is half of it:
one client key spends its 4 calls, then gets 429 with Retry-After, and the other key still gets
its answers. Real stack: Envoy, the server, the provider clients over loopback to the twin.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from providers.fairness import ClientShares, charged_to
from tests.stack import Stack, running_stack
from twin import RecordedTwin

KEYS = {"mine": "key-greedy", "theirs": "key-patient"}
PATHS = [
    f"/coinglass/{kind}/{coin}"
    for coin in ("BTC", "ETH", "SOL")
    for kind in ("markets", "perpetual-market", "funding-rate", "open-interest", "long-short-ratio")
]


@pytest.fixture
async def shared(twin: RecordedTwin) -> AsyncIterator[Stack]:
    async with running_stack(
        twin,
        signal_api_keys=",".join(KEYS.values()),
        rate_limits="coinglass=8,okx=0,okx_rubik=0,coinapi=0,lunarcrush=0,feargreed=0",
        rate_limit_max_wait_seconds=0.2,
        client_rate_limit_per_second=1000,
        client_rate_limit_burst=1000,
        client_upstream_share=0.5,
    ) as stack:
        await stack.server.app.desk.universe.settled()  # the coin list is the server's own call
        yield stack


async def test_one_client_spends_its_share_then_waits_and_others_keep_theirs(shared: Stack, twin: RecordedTwin) -> None:
    async with httpx.AsyncClient(base_url=shared.rest_url, timeout=30) as rest:

        async def get(who: str, path: str) -> httpx.Response:
            return await rest.get(path, headers={"Authorization": f"Bearer {KEYS[who]}"})

        twin.clear_requests()
        answers = []
        for path in PATHS:  # every path a new, uncached upstream call (or several)
            answers.append(await get("mine", path))
            if answers[-1].status_code == 429:
                break
        refused = answers[-1]
        assert refused.status_code == 429, [a.status_code for a in answers]
        assert "share of the coinglass" in refused.json()["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert twin.request_count("coinglass") <= 4  # the share: half of 8 a minute
        # Refused up front from now on, until its oldest call leaves the minute.
        again = await get("mine", PATHS[-1])
        assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
        # Another client still has its own share.
        theirs = await get("theirs", "/coinglass/markets/BTC")
        assert theirs.status_code == 200, theirs.text


async def test_a_spent_share_leaves_cached_answers_and_background_work_alone() -> None:
    """Unit: only calls charged to a client count; a call with no client (the recorder, the hub,
    alerts) is bounded by the budget alone; the wait is until the oldest call leaves the window."""
    now = [0.0]
    shares = ClientShares({"coinglass": 8}, 0.5, clock=lambda: now[0])
    with charged_to("key:a"):
        assert [shares.take("coinglass") for _ in range(4)] == [None] * 4
        now[0] = 10.0
        assert shares.take("coinglass") == pytest.approx(50.0)
    assert shares.take("coinglass") is None  # no client: not counted
    spent = shares.wait("key:a")
    assert spent is not None and spent[0] == "coinglass" and spent[1] == pytest.approx(50.0)
    assert shares.wait("key:b") is None
    now[0] = 60.5
    assert shares.wait("key:a") is None  # the minute has passed
    with charged_to("key:a"):
        assert shares.take("coinglass") is None
    assert not ClientShares({"coinglass": 8}, 1.0).active  # the whole budget: no limit beyond it


async def test_tasks_started_for_a_call_are_charged_to_its_client() -> None:
    shares = ClientShares({"okx": 2}, 0.5)

    async def upstream() -> float | None:
        return shares.take("okx")

    with charged_to("key:a"):
        first, second = await asyncio.gather(upstream(), upstream())
    assert first is None and second is not None  # a share of 1: the second concurrent call waits


async def test_a_backtest_over_the_budget_is_a_429_saying_when_to_come_back(twin: RecordedTwin) -> None:
    """The review saw a 503 ("local budget ... exhausted") for a spent budget: it is a 429 with
    Retry-After like every rate-limited answer; 503 stays for a provider that is down."""
    async with (
        running_stack(twin, rate_limits="coinglass=2", rate_limit_max_wait_seconds=0.1, cache_enabled=False) as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=30) as rest,
    ):
        await stack.server.app.desk.universe.settled()
        reply = await rest.get("/backtest/BTC", params={"start": "2025-01-01T00:00:00Z", "end": "2025-03-01T00:00:00Z"})
    assert reply.status_code == 429, reply.text
    assert "requests/min" in reply.json()["message"] and "partial" in reply.json()["message"]
    assert int(reply.headers["retry-after"]) >= 1
