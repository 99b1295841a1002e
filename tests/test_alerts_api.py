"""Webhook alerts end to end: REST through Envoy, conditions on the hub's signals, signed deliveries
to a loopback aiohttp receiver, retries, the outbox across a restart and across two replicas.

The twin drives transitions: a LunarCrush fault drops the social factor, which moves a coin's score
(and, in the recorded data, BTC's class). Stacks run without caches and with a fast refresh; every
wait is on an event (a request received, a signal evaluated, an outbox poll), bounded generously.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import httpx
import pytest
from cryptosignals.v1 import alerts_pb2, alerts_pb2_grpc

from records.alerts import FAILED, SENT
from records.db import Database
from records.jobs.alert_delivery import AlertManager
from records.jobs.webhooks import REFUSED_MESSAGE
from tests.postgres_server import PostgresServer
from tests.stack import Stack, running_stack
from tests.webhook_receiver import verify, webhook_receiver
from twin import RecordedTwin

SYMBOL = "BTC"
KEY = "key-alerts"
AUTH = {"Authorization": f"Bearer {KEY}"}
FAST: dict[str, Any] = {
    "signal_api_keys": f"{KEY},key-other",  # alerts need client keys
    "alert_allowed_ports": "1024-65535",  # the loopback receivers' ports
    "cache_enabled": False,
    "signal_cache_seconds": 0,
    "watch_refresh_seconds": 0.3,
    "alert_allow_private_targets": True,
    "alert_poll_seconds": 0.2,
    "alert_retry_base_seconds": 0.2,
    "alert_timeout_seconds": 1.0,
}


def break_social(twin: RecordedTwin) -> None:
    twin.set_fault("lunarcrush", "*", "server_error")


async def find_transition(rest: httpx.AsyncClient, twin: RecordedTwin) -> dict[str, Any]:
    """A condition that does not hold on the twin's data and holds once LunarCrush fails."""
    before = (await rest.get(f"/signals/{SYMBOL}")).json()
    break_social(twin)
    after = (await rest.get(f"/signals/{SYMBOL}")).json()
    twin.clear_faults()
    if after["signal"] != before["signal"] and after["signal"] != "NEUTRAL":
        return {"condition": f"becomes_{after['signal'].lower()}"}
    gap = after["score"] - before["score"]
    assert abs(gap) >= 1, f"the fault must move the score: {before['score']} -> {after['score']}"
    return {"condition": "score_above" if gap > 0 else "score_below", "threshold": before["score"] + gap / 2}


def manager_of(stack: Stack) -> AlertManager:
    manager = stack.server.app.alerts
    assert manager is not None
    return manager


async def create(rest: httpx.AsyncClient, condition: dict[str, Any], url: str, **headers: str) -> dict[str, Any]:
    answer = await rest.post("/alerts", json={"symbol": SYMBOL, "webhookUrl": url, **condition}, headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def until(manager: AlertManager, predicate: Callable[[], bool], timeout: float = 60) -> None:  # noqa: ASYNC109
    """Until ``predicate`` holds (re-checked after each evaluation and outbox round), bounded."""
    await asyncio.wait_for(manager.wait_until(predicate), timeout)


async def settle(manager: AlertManager, signals: int = 4) -> None:
    """Until this replica has evaluated ``signals`` more signals and polled its outbox after them."""
    target = manager.evaluated + signals
    await until(manager, lambda: manager.evaluated >= target)
    polls = manager.polls + 2
    await until(manager, lambda: manager.polls >= polls)


@pytest.fixture(scope="module")
async def alert_stack(twin: RecordedTwin) -> AsyncIterator[tuple[Stack, dict[str, Any]]]:
    twin.clear_faults()
    async with (
        running_stack(twin, **FAST) as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=30, headers=AUTH) as rest,
    ):
        await database_ready(stack)
        # Found before any alert exists, so no loop of the coin runs while the twin is broken.
        yield stack, await find_transition(rest, twin)


@pytest.fixture
async def rest(alert_stack: tuple[Stack, dict[str, Any]], faults: RecordedTwin) -> AsyncIterator[httpx.AsyncClient]:
    stack, _ = alert_stack
    async with httpx.AsyncClient(base_url=stack.rest_url, timeout=30, headers=AUTH) as client:
        yield client
        for alert in (await client.get("/alerts")).json().get("alerts", []):
            await client.delete(f"/alerts/{alert['id']}")


async def test_an_alert_fires_once_with_a_signed_post(
    alert_stack: tuple[Stack, dict[str, Any]], rest: httpx.AsyncClient, faults: RecordedTwin
) -> None:
    stack, condition = alert_stack
    manager = manager_of(stack)
    async with webhook_receiver() as receiver:
        created = await create(rest, condition, receiver.url)
        secret, alert = created["secret"], created["alert"]
        assert secret.startswith("whsec_") and alert["symbols"] == [SYMBOL]
        assert alert["condition"] == condition["condition"]
        break_social(faults)
        [got] = await receiver.wait_for(lambda r: len(r) >= 1)
        assert verify(secret, got.headers, got.body)
        assert not verify("whsec_wrong", got.headers, got.body)
        assert got.headers["Content-Type"] == "application/json"
        payload = httpx.Response(200, content=got.body).json()
        assert payload["id"] == got.headers["Idempotency-Key"]
        assert payload["alert_id"] == alert["id"] and payload["symbol"] == SYMBOL
        assert payload["condition"] == condition["condition"]
        assert isinstance(payload["score"], float) and payload["signal"] in {"LONG", "SHORT", "NEUTRAL"}
        # The condition keeps holding: no second delivery.
        await settle(manager)
        assert len(receiver.received) == 1
        listed = (await rest.get("/alerts")).json()["alerts"]
        assert [(a["id"], a["delivered"], a.get("pending", 0)) for a in listed] == [(alert["id"], 1, 0)]
        assert "secret" not in listed[0]
        deleted = await rest.delete(f"/alerts/{alert['id']}")
        assert deleted.status_code == 200 and deleted.json() == {"id": alert["id"]}
        assert (await rest.get("/alerts")).json().get("alerts", []) == []
        again = await rest.delete(f"/alerts/{alert['id']}")
        assert again.status_code == 404 and "no alert" in again.json()["message"]


async def test_a_500_is_retried_with_backoff_and_logged_without_the_secret(
    alert_stack: tuple[Stack, dict[str, Any]],
    rest: httpx.AsyncClient,
    faults: RecordedTwin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, condition = alert_stack
    caplog.set_level(logging.INFO, logger="cryptosignals.alerts")
    async with webhook_receiver() as receiver:
        receiver.answer = lambda _: 500 if len(receiver.received) <= 2 else 200
        created = await create(rest, condition, receiver.url)
        break_social(faults)
        got = await receiver.wait_for(lambda r: len(r) >= 3)
        assert len({r.headers["Idempotency-Key"] for r in got}) == 1  # one delivery, attempted three times
        assert [r.headers["X-Signal-Attempt"] for r in got[:3]] == ["1", "2", "3"]
        assert all(verify(created["secret"], r.headers, r.body) for r in got)
        assert len({r.body for r in got}) == 1
        manager = manager_of(alert_stack[0])
        await until(manager, lambda: manager.sent >= 1 and "sent (attempt 3)" in caplog.text)
    assert "status 500" in caplog.text and "retry in 0.2 s" in caplog.text and "retry in 0.4 s" in caplog.text
    assert created["secret"] not in caplog.text


async def test_a_redirect_is_not_followed_but_retried(
    alert_stack: tuple[Stack, dict[str, Any]],
    rest: httpx.AsyncClient,
    faults: RecordedTwin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, condition = alert_stack
    caplog.set_level(logging.INFO, logger="cryptosignals.alerts")
    async with webhook_receiver() as receiver:
        receiver.answer = lambda r: "redirect" if len(receiver.received) == 1 else 200
        await create(rest, condition, receiver.url)
        break_social(faults)
        got = await receiver.wait_for(lambda r: len(r) >= 2)
        assert [r.path for r in got] == ["/hook", "/hook"]  # never /elsewhere
        assert got[0].headers["Idempotency-Key"] == got[1].headers["Idempotency-Key"]
    assert "redirect 302 to http://127.0.0.1" in caplog.text and "(not followed)" in caplog.text


async def test_a_hanging_webhook_times_out_and_is_retried(
    alert_stack: tuple[Stack, dict[str, Any]],
    rest: httpx.AsyncClient,
    faults: RecordedTwin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, condition = alert_stack
    caplog.set_level(logging.INFO, logger="cryptosignals.alerts")
    async with webhook_receiver() as receiver:
        receiver.answer = lambda r: "hang" if len(receiver.received) == 1 else 200
        await create(rest, condition, receiver.url)
        break_social(faults)
        got = await receiver.wait_for(lambda r: len(r) >= 2)
        assert got[0].headers["Idempotency-Key"] == got[1].headers["Idempotency-Key"]
    assert "no answer within 1 s" in caplog.text


async def test_a_delivery_is_given_up_when_its_retry_window_ends(
    alert_stack: tuple[Stack, dict[str, Any]],
    rest: httpx.AsyncClient,
    faults: RecordedTwin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack, condition = alert_stack
    manager = manager_of(stack)
    caplog.set_level(logging.INFO, logger="cryptosignals.alerts")
    window, manager.retry_ms = manager.retry_ms, 1000  # ALERT_RETRY_HOURS, shortened to a second
    try:
        async with webhook_receiver() as receiver:
            receiver.answer = lambda _: 500
            created = await create(rest, condition, receiver.url)
            break_social(faults)
            await until(manager, lambda: "given up" in caplog.text)
            [row] = await manager.store.deliveries(created["alert"]["id"])
    finally:
        manager.retry_ms = window
    assert row.status == FAILED and row.last_error == "status 500"
    assert row.attempts == len(receiver.received) >= 2  # 0.2 s, 0.4 s ... until the second is over
    assert created["secret"] not in caplog.text


async def test_a_pending_delivery_survives_a_restart(twin: RecordedTwin, faults: RecordedTwin, tmp_path: Any) -> None:
    settings = {**FAST, "data_dir": str(tmp_path)}
    async with webhook_receiver() as receiver:
        receiver.answer = lambda _: 500  # down while the first server runs
        async with (
            running_stack(twin, **settings) as first,
            httpx.AsyncClient(base_url=first.rest_url, timeout=30, headers=AUTH) as rest,
        ):
            await database_ready(first)
            condition = await find_transition(rest, faults)
            created = await create(rest, condition, receiver.url)
            break_social(faults)
            failed = await receiver.wait_for(lambda r: len(r) >= 1)
        key = failed[0].headers["Idempotency-Key"]
        receiver.answer = lambda _: 200  # back up; a new server on the same database
        async with running_stack(twin, envoy=False, **settings) as second:
            manager = manager_of(second)
            await until(manager, lambda: manager.sent >= 1)
            rows = await manager.store.deliveries(created["alert"]["id"])
        delivered = [r for r in receiver.received if r.headers["Idempotency-Key"] == key]
        assert len(delivered) >= 2 and verify(created["secret"], delivered[-1].headers, delivered[-1].body)
        assert [(r.idempotency_key, r.status) for r in rows] == [(key, SENT)]


async def test_two_replicas_on_one_postgresql_deliver_once(
    twin: RecordedTwin, faults: RecordedTwin, postgres: PostgresServer
) -> None:
    fresh = Database(postgres.url)  # the session's server: start from an empty schema
    await fresh.downgrade("base")
    await fresh.aclose()
    settings = {**FAST, "database_url": postgres.url}
    async with (
        webhook_receiver() as receiver,
        running_stack(twin, **settings) as first,
        running_stack(twin, envoy=False, **settings) as second,
        httpx.AsyncClient(base_url=first.rest_url, timeout=30, headers=AUTH) as rest,
    ):
        await database_ready(first, second)
        condition = await find_transition(rest, faults)
        created = await create(rest, condition, receiver.url)
        alert_id = created["alert"]["id"]
        managers = [manager_of(first), manager_of(second)]
        await until(managers[1], lambda: alert_id in managers[1]._alerts)  # the other replica loaded it
        break_social(faults)
        [got] = await receiver.wait_for(lambda r: len(r) >= 1)
        assert verify(created["secret"], got.headers, got.body)
        for manager in managers:  # both evaluated the broken twin's signals and polled the outbox since
            await settle(manager)
        assert len(receiver.received) == 1
        assert sum(m.fired for m in managers) == 1 and sum(m.sent for m in managers) == 1
        assert len(await managers[0].store.deliveries(alert_id)) == 1


async def database_ready(*stacks: Stack) -> None:
    """Until each replica's history database is migrated: alerts answer 503 before that."""
    for stack in stacks:
        assert stack.server.app.archive is not None
        await asyncio.wait_for(stack.server.app.archive.recorder.ready.wait(), 60)


def _sentence(answer: httpx.Response) -> str:
    assert answer.status_code == 400, answer.text
    message = str(answer.json()["message"])
    assert message[0].isalpha() and len(message.split()) >= 4, message
    return message


@pytest.fixture(scope="module")
async def strict_stack(twin: RecordedTwin) -> AsyncIterator[Stack]:
    """Private targets refused (the production default), client keys, two alerts per key."""
    async with running_stack(twin, signal_api_keys="key-one,key-two", alert_max_per_client=2) as stack:
        await database_ready(stack)
        yield stack


async def test_forbidden_and_malformed_targets_are_refused(
    strict_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """A malformed URL gets a sentence saying what is wrong with it; a well-formed one that may not
    be used gets one generic sentence, whatever the reason: the answer never tells what a name
    resolves to (the review saw "resolves to 127.0.0.1"), or whether it resolves at all. The reason
    is in the server log."""
    caplog.set_level(logging.INFO, logger="cryptosignals.alerts")
    async with httpx.AsyncClient(
        base_url=strict_stack.rest_url, timeout=30, headers={"Authorization": "Bearer key-one"}
    ) as rest:

        async def refused(url: str) -> str:
            body = {"symbol": SYMBOL, "condition": "becomes_long", "webhookUrl": url}
            return _sentence(await rest.post("/alerts", json=body))

        for url in (
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://10.1.2.3/hook",
            "https://192.168.1.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://no-such-host.invalid/hook",
            # IANA special-purpose ranges: 6to4 (here of 127.0.0.1), Teredo, NAT64 (of 127.0.0.1),
            # benchmarking, documentation.
            "http://[2002:7f00:1::1]/hook",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
            "http://[64:ff9b::7f00:1]/hook",
            "http://[64:ff9b:1::1]/hook",
            "http://198.18.0.1/hook",
            "http://[2001:2::1]/hook",
            "http://192.0.2.1/hook",
            "http://198.51.100.7/hook",
            "http://203.0.113.9/hook",
            "http://[2001:db8::1]/hook",
            # Public, but a port that is neither 80, 443 nor one of ALERT_ALLOWED_PORTS.
            "http://93.184.215.14:8080/hook",
            "https://93.184.215.14:22/hook",
        ):
            assert await refused(url) == REFUSED_MESSAGE, url
        assert "http:// or https://" in await refused("ftp://93.184.215.14/hook")
        assert "http:// or https://" in await refused("not-a-url")
        assert "spaces" in await refused("http://example.com/a hook")
        assert "required" in await refused("")
        assert "credentials" in await refused("http://user:pw@93.184.215.14/hook")
        assert (await rest.get("/alerts")).json().get("alerts", []) == []
    log = caplog.text
    assert "resolves to 127.0.0.1, a loopback address" in log
    assert "no-such-host.invalid does not resolve" in log
    assert "a 6to4 address" in log and "a NAT64 address" in log and "a documentation address" in log
    assert "port 8080 is not 80, 443 or one of ALERT_ALLOWED_PORTS" in log


async def test_a_keyless_server_refuses_alerts_naming_the_setting(stack: Stack, channel: grpc.aio.Channel) -> None:
    """Without SIGNAL_API_KEYS there is no owner to tell clients apart (through Envoy every client
    has Envoy's address): the review saw one client list and delete another's alerts. Every
    AlertService call answers FAILED_PRECONDITION saying which setting alerts need."""
    assert not stack.settings.client_api_keys
    public = "http://93.184.215.14/hook?token=t"
    async with httpx.AsyncClient(base_url=stack.rest_url, timeout=30) as rest:
        made = await rest.post("/alerts", json={"symbol": SYMBOL, "condition": "becomes_long", "webhookUrl": public})
        listed = await rest.get("/alerts")
        deleted = await rest.delete("/alerts/0123456789abcdef0123456789abcdef")
    for answer in (made, listed, deleted):
        assert answer.status_code == 400, answer.text
        assert "SIGNAL_API_KEYS" in answer.json()["message"]
    stub = alerts_pb2_grpc.AlertServiceStub(channel)
    calls = (
        stub.CreateAlert(alerts_pb2.CreateAlertRequest(symbol=SYMBOL, condition="becomes_long", webhook_url=public)),
        stub.ListAlerts(alerts_pb2.ListAlertsRequest()),
        stub.DeleteAlert(alerts_pb2.DeleteAlertRequest(id="0123456789abcdef0123456789abcdef")),
    )
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "set SIGNAL_API_KEYS" in str(refused.value.details())


async def test_listed_webhook_urls_have_their_query_masked(strict_stack: Stack) -> None:
    """The full URL (query tokens and all) is in the creation answer only, like the secret."""
    url = "http://93.184.215.14/hook?token=abc123secret&user=me#frag-secret"
    async with httpx.AsyncClient(
        base_url=strict_stack.rest_url, timeout=30, headers={"Authorization": "Bearer key-one"}
    ) as rest:
        created = await create(rest, {"condition": "becomes_long"}, url)
        assert created["alert"]["webhookUrl"] == url
        listed = await rest.get("/alerts")
        assert (await rest.delete(f"/alerts/{created['alert']['id']}")).status_code == 200
    [alert] = listed.json()["alerts"]
    assert alert["webhookUrl"] == "http://93.184.215.14/hook?token=***&user=***#***"
    assert "abc123secret" not in listed.text and "frag-secret" not in listed.text


async def test_concurrent_creates_through_the_api_never_exceed_the_cap(strict_stack: Stack) -> None:
    """The review's race (40 concurrent POSTs left 34 alerts with a cap of 20), at this stack's cap of 2."""
    public = "http://93.184.215.14/hook"
    headers = {"Authorization": "Bearer key-two"}
    async with httpx.AsyncClient(base_url=strict_stack.rest_url, timeout=60, headers=headers) as rest:
        body = {"symbol": SYMBOL, "condition": "becomes_long", "webhookUrl": public}
        answers = await asyncio.gather(*(rest.post("/alerts", json=body) for _ in range(12)))
        listed = (await rest.get("/alerts")).json().get("alerts", [])
        for alert in listed:
            assert (await rest.delete(f"/alerts/{alert['id']}")).status_code == 200
    assert sorted(a.status_code for a in answers) == [200] * 2 + [400] * 10
    assert all("at most 2 alerts per client" in a.json()["message"] for a in answers if a.status_code == 400)
    assert len(listed) == 2


async def test_bad_conditions_and_the_limit_are_400_with_a_sentence(strict_stack: Stack) -> None:
    public = "http://93.184.215.14/hook"  # a public address literal: checked without DNS, never called here
    headers = {"Authorization": "Bearer key-two"}
    async with httpx.AsyncClient(base_url=strict_stack.rest_url, timeout=30, headers=headers) as rest:

        async def post(**body: Any) -> httpx.Response:
            return await rest.post("/alerts", json={"symbol": SYMBOL, "webhookUrl": public, **body})

        assert "condition must be" in _sentence(await post(condition="becomes_sideways"))
        assert "condition must be" in _sentence(await post())
        assert "needs a threshold" in _sentence(await post(condition="score_above"))
        assert "between 0 and 100" in _sentence(await post(condition="score_below", threshold=101))
        assert "takes no threshold" in _sentence(await post(condition="becomes_long", threshold=50))
        assert "symbol is required" in _sentence(await rest.post("/alerts", json={"condition": "becomes_long"}))
        assert (await post(condition="becomes_long", symbol="NOSUCHCOIN")).status_code == 404
        ids = []
        for _ in range(2):
            answer = await post(condition="becomes_long")
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["alert"]["id"])
        assert "at most 2 alerts per client" in _sentence(await post(condition="becomes_short"))
        assert "must be an alert id" in _sentence(await rest.delete("/alerts/not-an-id!"))
        for alert_id in ids:
            assert (await rest.delete(f"/alerts/{alert_id}")).status_code == 200


async def test_each_key_sees_and_deletes_only_its_own_alerts(strict_stack: Stack) -> None:
    public = "http://93.184.215.14/hook"
    async with httpx.AsyncClient(base_url=strict_stack.rest_url, timeout=30) as rest:
        one = {"Authorization": "Bearer key-one"}
        two = {"Authorization": "Bearer key-two"}
        mine = await create(rest, {"condition": "becomes_short"}, public, **one)
        alert_id = mine["alert"]["id"]
        assert (await rest.get("/alerts", headers=two)).json().get("alerts", []) == []
        assert (await rest.delete(f"/alerts/{alert_id}", headers=two)).status_code == 404
        assert [a["id"] for a in (await rest.get("/alerts", headers=one)).json()["alerts"]] == [alert_id]
        spelled = {"Authorization": "bearer key-one"}  # the scheme is case-insensitive: the same key
        assert [a["id"] for a in (await rest.get("/alerts", headers=spelled)).json()["alerts"]] == [alert_id]
        assert (await rest.get("/alerts")).status_code == 401
        assert (await rest.delete(f"/alerts/{alert_id}", headers=one)).status_code == 200


async def test_the_coins_alerts_keep_warm_are_capped_per_client_and_per_server(twin: RecordedTwin) -> None:
    """Each coin an alert names is refreshed for as long as the alert lives: one key may not keep
    every coin warm (400), nor may all keys together past the server's cap (429); alerts on coins
    already watched still pass."""
    settings = {**FAST, "alert_max_coins_per_client": 2, "alert_max_coins": 2}
    async with webhook_receiver() as receiver, running_stack(twin, **settings) as stack:
        await database_ready(stack)
        async with httpx.AsyncClient(base_url=stack.rest_url, timeout=30) as rest:

            async def post(key: str, symbols: list[str]) -> httpx.Response:
                body = {"symbols": symbols, "condition": "becomes_long", "webhookUrl": receiver.url}
                return await rest.post("/alerts", json=body, headers={"Authorization": f"Bearer {key}"})

            assert (await post(KEY, ["BTC", "ETH"])).status_code == 200
            mine = await post(KEY, ["SOL"])
            assert mine.status_code == 400 and "ALERT_MAX_COINS_PER_CLIENT" in mine.json()["message"]
            assert (await post(KEY, ["ETH"])).status_code == 200  # a coin it watches already
            theirs = await post("key-other", ["SOL"])
            assert theirs.status_code == 429 and "ALERT_MAX_COINS" in theirs.json()["message"]
            assert (await post("key-other", ["BTC"])).status_code == 200  # watched already: no new load
