"""Webhook targets, signatures, the resolver, the sender and the dispatcher: which addresses and
ports are refused, what a URL may look like and how it is listed, the README's verification snippet
against the signer, backoff, lookups on threads of their own and bounded, the sender refusing
loopback targets at delivery time, not following redirects, bounding a hang; the dispatcher
delivering to other targets while one hangs, and never resending a delivery recorded as sent."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from records.alerts import DOES_NOT_HOLD, PENDING, SENT, Alert, AlertStore, Delivery
from records.db import Database
from records.jobs.alert_delivery import TARGET_CONCURRENCY, AlertManager
from records.jobs.webhooks import (
    REFUSED_MESSAGE,
    GuardedResolver,
    RefusedTarget,
    TargetError,
    WebhookResolver,
    WebhookSender,
    backoff_seconds,
    check_target,
    forbidden_kind,
    mask_query,
    parse_ports,
    parse_target,
    redact_target,
    sign,
)
from service.settings import Settings
from signals.desk import LiveSignal
from signals.hub import SignalHub
from tests.webhook_receiver import readme_verify, webhook_receiver


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.10", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "shared address space"),  # carrier-grade NAT
        # IANA special-purpose ranges, whatever Python's flags say of them.
        ("2002:7f00:1::1", "6to4"),  # 127.0.0.1 behind a 6to4 relay: Python calls it global
        ("2002:808:808::1", "6to4"),
        ("192.88.99.1", "6to4"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("64:ff9b::7f00:1", "NAT64"),  # 127.0.0.1 through a NAT64 gateway
        ("64:ff9b::808:808", "NAT64"),
        ("64:ff9b:1::1", "NAT64"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.254", "benchmarking"),
        ("2001:2::1", "benchmarking"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.1", "documentation"),
        ("203.0.113.255", "documentation"),
        ("2001:db8::1", "documentation"),
        ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated)
        ("198.17.255.255", None),
        ("2003::1", None),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_addresses(address: str, kind: str | None) -> None:
    assert forbidden_kind(address) == kind


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "required"),
        ("example.com/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http://", "no host"),
        ("http://a b/", "spaces"),
        ("http://x/\n", "control"),
        ("http://host:99999/", "not a valid URL"),
        ("https://user:secret@example.com/", "credentials"),
        ("https://example.com/" + "a" * 2100, "longer than 2048"),
    ],
)
def test_malformed_urls_are_refused_with_a_sentence(url: str, words: str) -> None:
    with pytest.raises(TargetError, match=words):
        parse_target(url)


def test_well_formed_urls() -> None:
    assert parse_target("https://example.com/hook?x=1") == ("example.com", 443)
    assert parse_target("http://93.184.215.14:8080/h") == ("93.184.215.14", 8080)
    assert redact_target("https://u:p@example.com:8443/hook?token=abc#f") == "https://example.com:8443/hook"


def test_listed_urls_have_query_values_and_fragment_masked() -> None:
    assert mask_query("https://example.com/hook?token=abc&x=1#f") == "https://example.com/hook?token=***&x=***#***"
    assert mask_query("https://example.com:8443/hook?abc") == "https://example.com:8443/hook?abc=***"
    assert mask_query("https://example.com/hook") == "https://example.com/hook"


def test_allowed_ports() -> None:
    assert parse_ports("") == frozenset()
    assert parse_ports("8080, 8443,9000-9002") == {8080, 8443, 9000, 9001, 9002}
    for bad in ("http", "0", "70000", "9-8", "1-"):
        with pytest.raises(ValueError, match="ALERT_ALLOWED_PORTS"):
            parse_ports(bad)
    assert Settings(_env_file=None).alert_allowed_port_set == frozenset()  # type: ignore[call-arg]
    configured = Settings(_env_file=None, alert_allowed_ports="8443,9000-9001")  # type: ignore[call-arg]
    assert configured.alert_allowed_port_set == {8443, 9000, 9001}
    with pytest.raises(ValidationError, match="ALERT_ALLOWED_PORTS"):
        Settings(_env_file=None, alert_allowed_ports="8080,ssh")  # type: ignore[call-arg]


async def test_every_resolved_address_is_checked_and_refusals_say_one_thing() -> None:
    resolver = WebhookResolver()
    try:
        with pytest.raises(RefusedTarget) as refused:
            await check_target("http://localhost/hook", allow_private=False, resolver=resolver)
        assert str(refused.value) == REFUSED_MESSAGE and "127.0.0.1" not in str(refused.value)
        assert "resolves to" in refused.value.reason and "loopback" in refused.value.reason
        await check_target("http://localhost/hook", allow_private=True, resolver=resolver)
        with pytest.raises(RefusedTarget) as refused:
            await check_target("http://no-such-host.invalid/hook", allow_private=True, resolver=resolver)
        assert str(refused.value) == REFUSED_MESSAGE and "does not resolve" in refused.value.reason
        with pytest.raises(OSError, match="loopback"):
            await GuardedResolver(resolver, allow_private=False, timeout=5).resolve("localhost", 80)
    finally:
        resolver.close()


async def test_ports_other_than_80_443_and_the_allowed_ones_are_refused() -> None:
    resolver = WebhookResolver()
    try:
        await check_target("http://93.184.215.14/h", allow_private=False, resolver=resolver)
        await check_target("https://93.184.215.14/h", allow_private=False, resolver=resolver)
        await check_target("http://93.184.215.14:443/h", allow_private=False, resolver=resolver)
        for url in ("http://93.184.215.14:8080/h", "https://93.184.215.14:22/h"):
            with pytest.raises(RefusedTarget, match="not an allowed webhook target") as refused:
                await check_target(url, allow_private=False, resolver=resolver)
            assert "ALERT_ALLOWED_PORTS" in refused.value.reason
        await check_target("http://93.184.215.14:8080/h", allow_private=False, resolver=resolver, allowed_ports={8080})
        # Private targets allowed (development) still keep to the ports.
        with pytest.raises(RefusedTarget):
            await check_target("http://127.0.0.1:6379/", allow_private=True, resolver=resolver)
    finally:
        resolver.close()


async def test_webhook_lookups_never_use_the_loops_default_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The providers' HTTP clients resolve on the loop's default executor (``loop.getaddrinfo``). A
    webhook host whose DNS hangs must not take those threads, nor wait behind them: webhook lookups
    run on the resolver's own threads."""
    loop = asyncio.get_running_loop()
    on_default: list[tuple[Any, ...]] = []
    original = loop.run_in_executor

    def spy(executor: Any, func: Any, *args: Any) -> Any:
        if executor is None and args[:1] == ("localhost",):
            on_default.append(args)
        return original(executor, func, *args)

    monkeypatch.setattr(loop, "run_in_executor", spy)
    resolver = WebhookResolver()
    try:
        await check_target("http://localhost/hook", allow_private=True, resolver=resolver, timeout=60)
        with pytest.raises(RefusedTarget):
            await check_target("http://localhost/hook", allow_private=False, resolver=resolver, timeout=60)
        await GuardedResolver(resolver, allow_private=True, timeout=60).resolve("localhost", 80)
    finally:
        resolver.close()
    assert on_default == []


async def test_lookups_are_bounded_and_one_given_up_on_keeps_its_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """getaddrinfo cannot be cancelled: a lookup past its timeout keeps its thread. The resolver keeps
    its slot too until the thread returns, so hung lookups never pile up threads (the review: "DNS
    lookups 'cancelled' by wait_for keep their threads"); later ones wait for a slot in their timeout."""
    loop = asyncio.get_running_loop()
    release = threading.Event()
    lock = threading.Lock()
    entered: asyncio.Queue[str] = asyncio.Queue()
    running, most, threads = 0, 0, set()

    real_getaddrinfo = socket.getaddrinfo

    def hanging_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        nonlocal running, most
        if not host.endswith(".test"):  # anything else in the process resolves as usual
            return real_getaddrinfo(host, port, *args, **kwargs)
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.current_thread().name)
        loop.call_soon_threadsafe(entered.put_nowait, host)
        try:
            release.wait(120)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(socket, "getaddrinfo", hanging_getaddrinfo)
    resolver = WebhookResolver(max_lookups=2)
    try:
        with pytest.raises(TimeoutError):
            await resolver.addresses("given-up.test", 80, timeout=0.01)
        assert await entered.get() == "given-up.test"  # its thread runs on, and holds a slot
        waiting = [asyncio.create_task(resolver.addresses(f"w{n}.test", 80, timeout=120)) for n in range(4)]
        assert (await entered.get()).startswith("w")  # the other slot
        with pytest.raises(TimeoutError):  # both slots held until a lookup returns: none starts
            await resolver.addresses("late.test", 80, timeout=0.05)
        assert entered.empty() and running == 2
        release.set()
        assert await asyncio.gather(*waiting) == [["93.184.215.14"]] * 4
        assert most == 2
        assert threads and all(name.startswith("webhook-dns") for name in threads)
    finally:
        release.set()
        resolver.close()


def test_the_readme_snippet_verifies_what_the_signer_signs() -> None:
    verify = readme_verify()
    secret, body = "whsec_test", b'{"id":"k","symbol":"BTC"}'
    timestamp = str(int(time.time()))
    headers = {"X-Signal-Timestamp": timestamp, "X-Signal-Signature": sign(secret, timestamp, body.decode())}
    assert verify(secret, headers, body)
    assert not verify("whsec_other", headers, body)
    assert not verify(secret, headers, body + b" ")
    old = str(int(time.time()) - 3600)
    assert not verify(secret, {**headers, "X-Signal-Timestamp": old}, body)  # a replay
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Signal-Signature"] == f"sha256={expected}"


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff_seconds(n, 30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff_seconds(20, 30) == 3600


async def test_the_sender() -> None:
    async with webhook_receiver() as receiver:
        port = int(receiver.url.split(":")[2].split("/")[0])
        strict = WebhookSender(timeout=1.0, allow_private=False, allowed_ports={port})
        error = await strict.send(receiver.url, "s", "{}", "key", 1)
        assert error is not None and error.startswith("refused:") and "loopback" in error  # the log says why
        assert receiver.received == []  # never connected
        await strict.aclose()
        closed = WebhookSender(timeout=1.0, allow_private=True)  # the port is not allowed
        error = await closed.send(receiver.url, "s", "{}", "key", 1)
        assert error is not None and "ALERT_ALLOWED_PORTS" in error and receiver.received == []
        await closed.aclose()

        sender = WebhookSender(timeout=0.5, allow_private=True, allowed_ports={port})
        assert await sender.send(receiver.url, "s", "{}", "key", 1) is None
        receiver.answer = lambda _: "redirect"
        error = await sender.send(receiver.url, "s", "{}", "key", 2)
        assert error is not None and error.startswith("redirect 302") and "(not followed)" in error
        receiver.answer = lambda _: 503
        assert await sender.send(receiver.url, "s", "{}", "key", 3) == "status 503"
        receiver.answer = lambda _: "hang"
        assert await sender.send(receiver.url, "s", "{}", "key", 4) == "no answer within 0.5 s"
        assert [r.path for r in receiver.received] == ["/hook"] * 4
        await sender.aclose()


# ---- the dispatcher ---------------------------------------------------------------------------


async def _never(symbol: str) -> LiveSignal:
    await asyncio.Event().wait()  # the hub's loops of the alerts' coins: no signal in these tests
    raise AssertionError("unreachable")


async def _manager(store: AlertStore, timeout: float) -> AlertManager:  # noqa: ASYNC109
    ready = asyncio.Event()
    ready.set()
    manager = AlertManager(
        store,
        SignalHub(_never, refresh_seconds=60),
        ready,
        timeout_seconds=timeout,
        retry_base_seconds=60,
        retry_hours=1,
        poll_seconds=0.2,
        allow_private=True,
        allowed_ports=range(1024, 65536),
    )
    await manager.start()
    return manager


async def _fire(store: AlertStore, alert_id: str, url: str) -> None:
    """An alert on ``url`` whose condition has just turned true: one pending delivery."""
    alert = Alert(alert_id, "key:one", ("BTC",), "becomes_long", None, url, 1_000)
    assert await store.create(alert, f"whsec_{alert_id}", {"BTC": DOES_NOT_HOLD}, 100)
    assert await store.observe(alert_id, "BTC", True, lambda key: f'{{"id":"{key}"}}', int(time.time() * 1000))


async def test_a_hanging_target_delays_only_itself(tmp_path: Path) -> None:
    """The review: the dispatcher waited for a whole batch, so one hanging target delayed every
    owner's deliveries. Here five deliveries to a target that never answers (within a 45 s timeout)
    hold TARGET_CONCURRENCY attempts, and a delivery written meanwhile to another target is made at
    once, while they still hang."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'alerts.db'}")
    await database.migrate()
    store = AlertStore(database)
    async with webhook_receiver() as hanging, webhook_receiver() as healthy:
        hanging.answer = lambda _: "hang"
        manager = await _manager(store, timeout=45)
        try:
            for n in range(5):
                await _fire(store, f"hang{n}", hanging.url)
            await hanging.wait_for(lambda r: len(r) >= TARGET_CONCURRENCY)
            await _fire(store, "fine", healthy.url)
            await healthy.wait_for(lambda r: len(r) >= 1)
            await asyncio.wait_for(manager.wait_until(lambda: manager.sent >= 1), 60)
            # The hanging attempts have neither ended nor been joined by more to the same target.
            assert manager.failures == 0 and len(hanging.received) == TARGET_CONCURRENCY
            [row] = await store.deliveries("fine")
            assert row.status == SENT
        finally:
            await manager.aclose()
    # Shutdown gave the hanging attempts' leases back: due again, the cut-short attempt not counted.
    rows = [r for n in range(5) for r in await store.deliveries(f"hang{n}")]
    assert all(r.status == PENDING and r.attempts == 0 and r.lease is None for r in rows)
    await database.aclose()


class _GatedStore(AlertStore):
    """Recording a delivery as sent waits for the test's gate (a slow database at shutdown)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.recording = asyncio.Event()
        self.gate = asyncio.Event()

    async def sent(self, delivery: Delivery, now_ms: int) -> bool:
        self.recording.set()
        await self.gate.wait()
        return await super().sent(delivery, now_ms)


async def test_shutdown_never_resends_a_delivery_that_got_its_answer(tmp_path: Path) -> None:
    """The review: release() at shutdown could resend a delivered POST. Shutdown comes while the
    receiver's 200 is being recorded: the record completes, and the delivery is not due again."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'alerts.db'}")
    await database.migrate()
    store = _GatedStore(database)
    async with webhook_receiver() as receiver:
        manager = await _manager(store, timeout=30)
        await _fire(store, "a1", receiver.url)
        await asyncio.wait_for(store.recording.wait(), 60)  # answered 200; being recorded
        loops = list(manager._tasks)
        closing = asyncio.create_task(manager.aclose())
        await asyncio.wait_for(asyncio.wait(loops), 60)  # shutdown has cancelled the dispatcher
        store.gate.set()
        await asyncio.wait_for(closing, 60)
    [row] = await store.deliveries("a1")
    assert row.status == SENT and len(receiver.received) == 1
    assert await store.claim(10**13, 1_000) == []  # nothing to send again, on any replica
    await database.aclose()


async def test_the_dispatcher_prunes_finished_deliveries_past_the_retention(tmp_path: Path) -> None:
    """Delivered and abandoned rows are pruned once they finished longer ago than the retention
    (ALERT_RETRY_HOURS); pending ones stay."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'alerts.db'}")
    await database.migrate()
    store = AlertStore(database)
    for alert_id in ("old-sent", "old-given-up", "recent", "pending"):
        await _fire(store, alert_id, "http://93.184.215.14/hook")
    hour = 3_600_000
    now = int(time.time() * 1000)
    claimed = {d.alert_id: d for d in await store.claim(now, 60_000)}
    assert await store.sent(claimed["old-sent"], now - 2 * hour)  # finished two hours ago
    assert await store.failed(claimed["old-given-up"], "status 500", None, now - 2 * hour)
    assert await store.sent(claimed["recent"], now)
    await store.release([claimed["pending"]], now + 10**9)  # not due while the manager runs
    manager = await _manager(store, timeout=5)  # retention: retry_hours=1
    try:
        await asyncio.wait_for(manager.wait_until(lambda: manager.prunes >= 1), 60)
    finally:
        await manager.aclose()
    rows = {r.alert_id: r.status for r in await store.deliveries()}
    assert rows == {"recent": SENT, "pending": PENDING}
    await database.aclose()
