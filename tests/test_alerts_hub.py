"""The hub's small API for alerts: ``keep`` runs a coin's loop without watchers, and listeners
hear every new signal of it; a kept loop outlives its watchers and stops when no longer kept."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from signals.desk import LiveSignal
from signals.hub import SignalHub
from tests.test_history_db import live_signal


def _hub() -> tuple[SignalHub, asyncio.Queue[LiveSignal]]:
    rounds = 0

    async def signal_of(symbol: str) -> LiveSignal:
        nonlocal rounds
        rounds += 1
        return live_signal(symbol, datetime.now(UTC), momentum=float(rounds % 5))

    hub = SignalHub(signal_of, refresh_seconds=0.01)
    heard: asyncio.Queue[LiveSignal] = asyncio.Queue()
    hub.add_listener(heard.put_nowait)
    return hub, heard


async def _next_of(heard: asyncio.Queue[LiveSignal], symbol: str) -> LiveSignal:
    while True:
        live = await asyncio.wait_for(heard.get(), 10)
        if live.symbol == symbol:
            return live


async def test_a_kept_coin_is_refreshed_without_watchers_and_listeners_hear_it() -> None:
    hub, heard = _hub()
    hub.keep({"BTC"})
    assert (await _next_of(heard, "BTC")).symbol == "BTC"
    assert hub.watcher_count == 0
    hub.keep(set())  # no longer kept, nobody watches: the loop stops
    assert "BTC" not in hub._loops
    await hub.aclose()


async def test_a_kept_loop_outlives_its_watchers_and_a_watched_one_outlives_keep() -> None:
    hub, heard = _hub()
    watcher = hub.watch(("ETH",), "client")
    hub.keep({"ETH"})
    loop = hub._loops["ETH"]
    hub.leave(watcher)
    assert hub._loops.get("ETH") is loop and not loop.done()  # alerts still need it: same loop
    await _next_of(heard, "ETH")
    watcher = hub.watch(("ETH",), "client")
    assert hub._loops["ETH"] is loop  # one loop per coin, whoever needs it
    hub.keep(set())
    assert hub._loops.get("ETH") is loop  # the watcher still needs it
    hub.leave(watcher)
    assert "ETH" not in hub._loops
    await hub.aclose()


async def test_keep_after_shutdown_starts_nothing() -> None:
    hub, _ = _hub()
    await hub.aclose()
    hub.keep({"SOL"})
    assert not hub._loops
