"""Alerts at work on each replica: conditions evaluated on the hub's signals, the outbox dispatched.

- The hub runs the loop of every coin with an alert (``hub.keep``) and hands each new signal to
  ``on_signal``; the evaluator records per alert and coin whether the condition holds, and a turn
  from "does not hold" to "holds" writes one delivery (compare-and-set: one replica wins).
- The dispatcher claims due deliveries from the outbox and starts one task per delivery (at most
  ``MAX_IN_FLIGHT`` at once, ``TARGET_CONCURRENCY`` per webhook URL); it never waits for a batch,
  so a target that hangs holds its own attempts only, until the timeout, and every other
  delivery goes on. Each attempt marks its delivery sent, or due again after a backoff, or given
  up once the retry window has passed.
- Once an attempt has its answer, recording it is shielded from shutdown, and shutdown gives back
  only the leases of attempts that had no answer yet: a delivery recorded as sent is never sent
  again. The guarantee is at least once (an answer lost to a timeout or a crash means a resend
  with the same ``Idempotency-Key``).
- Every ``poll_seconds`` the alert list is reloaded (alerts made or deleted on other replicas)
  and the outbox polled (retries that came due, deliveries written by other replicas); every
  ``PRUNE_EVERY_SECONDS`` finished deliveries older than the retention are pruned.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from prometheus_client import Counter

from records.alerts import Alert, AlertStore, Delivery, holds
from records.jobs.webhooks import MAX_LOOKUPS, WebhookResolver, WebhookSender, backoff_seconds, redact_target
from signals.desk import LiveSignal
from signals.hub import SignalHub

log = logging.getLogger("cryptosignals.alerts")
LEASE_MARGIN_SECONDS = 30.0
MAX_IN_FLIGHT = 64  # attempts in flight on one replica
TARGET_CONCURRENCY = 2  # attempts in flight to one webhook URL on one replica
CLAIM_BATCH = 20
PRUNE_EVERY_SECONDS = 3600.0
ATTEMPTS = Counter(
    "cryptosignals_alert_delivery_attempts_total",
    "Webhook delivery attempts by outcome: sent, failed (retried), given_up.",
    ["outcome"],
)
FIRED = Counter("cryptosignals_alerts_fired_total", "Alert transitions that wrote a delivery (this replica).")


def _now_ms() -> int:
    return int(time.time() * 1000)


def delivery_body(key: str, alert: Alert, live: LiveSignal) -> str:
    """The JSON a webhook receives (compact: the signature covers these exact bytes)."""
    return json.dumps(
        {
            "id": key,
            "alert_id": alert.id,
            "symbol": live.symbol,
            "condition": alert.condition,
            "threshold": alert.threshold,
            "signal": live.scored.direction,
            "score": round(live.scored.score, 2),
            "price": live.price,
            "computed_at": live.computed_at.isoformat(),
        },
        separators=(",", ":"),
    )


class AlertManager:
    def __init__(
        self,
        store: AlertStore,
        hub: SignalHub,
        ready: asyncio.Event,
        *,
        timeout_seconds: float,
        retry_base_seconds: float,
        retry_hours: float,
        poll_seconds: float,
        allow_private: bool,
        allowed_ports: Iterable[int] = (),
        max_lookups: int = MAX_LOOKUPS,
    ) -> None:
        self.store = store
        self.hub = hub
        self.ready = ready  # the database is migrated (the history recorder sets it)
        self.retry_base_seconds = retry_base_seconds
        self.retry_ms = int(retry_hours * 3_600_000)
        # Finished deliveries (sent or given up) are kept as long as a pending one is retried.
        self.retention_ms = self.retry_ms
        self.poll_seconds = poll_seconds
        self.sender = WebhookSender(
            timeout=timeout_seconds,
            allow_private=allow_private,
            allowed_ports=allowed_ports,
            resolver=WebhookResolver(max_lookups),
        )
        self.lease_ms = int((timeout_seconds * 2 + LEASE_MARGIN_SECONDS) * 1000)
        self._alerts: dict[str, Alert] = {}
        self._added_since_reload: dict[str, Alert] = {}  # made here while a reload was reading
        self._seen: dict[tuple[str, str], bool] = {}  # (alert, coin) -> held at the last signal here
        self._signals: dict[str, LiveSignal] = {}  # newest unevaluated signal per coin
        self._signal_arrived = asyncio.Event()
        self._outbox_wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._attempts: dict[int, asyncio.Task[None]] = {}  # delivery id -> its attempt, in flight
        self._per_url: collections.Counter[str] = collections.Counter()  # attempts in flight per URL
        self._unanswered: dict[int, Delivery] = {}  # attempts in flight with no answer yet
        self._recording: set[asyncio.Task[None]] = set()  # answers being recorded (shielded)
        self._tasks: list[asyncio.Task[None]] = []
        self.loaded = asyncio.Event()
        # Counters (tests wait on them through ``wait_until``).
        self.evaluated = 0  # signals evaluated
        self.fired = 0  # deliveries this replica wrote
        self.sent = 0  # deliveries this replica delivered
        self.failures = 0  # failed attempts by this replica
        self.polls = 0  # outbox polls finished
        self.prunes = 0  # prune rounds finished

    # ---- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.hub.add_listener(self.on_signal)
        self._tasks = [
            asyncio.create_task(self._run(self._evaluate_loop), name="alerts-evaluate"),
            asyncio.create_task(self._run(self._dispatch_loop), name="alerts-dispatch"),
            asyncio.create_task(self._run(self._reload_loop), name="alerts-reload"),
            asyncio.create_task(self._run(self._prune_loop), name="alerts-prune"),
        ]

    async def _run(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        await self.ready.wait()
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "alerts: %s failed; again in %.1f s", getattr(loop, "__name__", "a loop"), self.poll_seconds
                )
                await asyncio.sleep(self.poll_seconds)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        attempts = list(self._attempts.values())
        for attempt in attempts:
            attempt.cancel()
        await asyncio.gather(*attempts, return_exceptions=True)
        # Attempts that had their answer are being recorded: wait for that (a delivery recorded as
        # sent is never sent again), then give back the leases of those cut short before any
        # answer: due again at once, for this replica after a restart or another one now.
        await asyncio.gather(*list(self._recording), return_exceptions=True)
        if self._unanswered:
            with contextlib.suppress(Exception):
                await self.store.release(list(self._unanswered.values()), _now_ms())
            self._unanswered.clear()
        await self.sender.aclose()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate`` holds, re-checked after each evaluation and outbox round."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ---- the alert list ------------------------------------------------------------------------

    def _keep_coins(self) -> None:
        self.hub.keep({symbol for alert in self._alerts.values() for symbol in alert.symbols})

    def added(self, alert: Alert) -> None:
        self._alerts[alert.id] = alert
        self._added_since_reload[alert.id] = alert
        self._keep_coins()

    def removed(self, alert_id: str) -> None:
        self._alerts.pop(alert_id, None)
        self._added_since_reload.pop(alert_id, None)
        self._keep_coins()

    async def _reload_loop(self) -> None:
        while True:
            self._added_since_reload = {}
            fresh = {alert.id: alert for alert in await self.store.all()}
            self._alerts = {**fresh, **self._added_since_reload}
            self._seen = {key: held for key, held in self._seen.items() if key[0] in self._alerts}
            self._keep_coins()
            self.loaded.set()
            await asyncio.sleep(self.poll_seconds)

    # ---- conditions ----------------------------------------------------------------------------

    def on_signal(self, live: LiveSignal) -> None:
        """The hub's listener: never waits; the evaluator takes the newest signal of each coin."""
        self._signals[live.symbol] = live
        self._signal_arrived.set()

    async def _evaluate_loop(self) -> None:
        await self.loaded.wait()
        while True:
            await self._signal_arrived.wait()
            self._signal_arrived.clear()
            signals, self._signals = self._signals, {}
            for live in signals.values():
                await self._evaluate(live)
                self.evaluated += 1
            await self._notify()

    async def _evaluate(self, live: LiveSignal) -> None:
        now = _now_ms()
        for alert in [a for a in self._alerts.values() if live.symbol in a.symbols]:
            now_holds = holds(alert.condition, alert.threshold, live.scored.direction, live.scored.score)
            if self._seen.get((alert.id, live.symbol)) is now_holds:
                continue  # no change here since the last signal: nothing to record (saves a write per alert)

            def body(key: str, alert: Alert = alert) -> str:
                return delivery_body(key, alert, live)

            fired = await self.store.observe(alert.id, live.symbol, now_holds, body, now)
            self._seen[(alert.id, live.symbol)] = now_holds
            if fired:
                self.fired += 1
                FIRED.inc()
                log.info(
                    "alert %s fired: %s %s (signal %s, score %.2f)",
                    alert.id,
                    live.symbol,
                    alert.condition,
                    live.scored.direction,
                    live.scored.score,
                )
                self._outbox_wake.set()

    # ---- the outbox ----------------------------------------------------------------------------

    async def _prune_loop(self) -> None:
        while True:
            removed = await self.store.prune(_now_ms() - self.retention_ms)
            if removed:
                log.info("alerts: pruned %d finished deliveries past retention", removed)
            self.prunes += 1
            await self._notify()
            await asyncio.sleep(PRUNE_EVERY_SECONDS)

    async def _dispatch_loop(self) -> None:
        while True:
            self._outbox_wake.clear()
            room = MAX_IN_FLIGHT - len(self._attempts)
            limit = min(CLAIM_BATCH, room)
            claimed: list[Delivery] = []
            held_back: list[Delivery] = []
            if limit > 0:
                busy = [url for url, n in self._per_url.items() if n >= TARGET_CONCURRENCY]
                claimed = await self.store.claim(_now_ms(), self.lease_ms, limit=limit, skip_urls=busy)
                for delivery in claimed:
                    if self._per_url[delivery.url] >= TARGET_CONCURRENCY:
                        held_back.append(delivery)  # its URL filled up within this batch
                    else:
                        self._start(delivery)
                if held_back:
                    await self.store.release(held_back, _now_ms())
            self.polls += 1
            await self._notify()
            if limit <= 0 or len(claimed) < limit or held_back:
                # Drained, or no room: until a delivery is written, an attempt ends, or the poll.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outbox_wake.wait(), self.poll_seconds)

    def _start(self, delivery: Delivery) -> None:
        self._per_url[delivery.url] += 1
        self._unanswered[delivery.id] = delivery
        attempt = asyncio.create_task(self._deliver(delivery), name=f"alerts-deliver-{delivery.id}")
        self._attempts[delivery.id] = attempt

        def finished(_: asyncio.Task[None]) -> None:
            self._attempts.pop(delivery.id, None)
            self._per_url[delivery.url] -= 1
            if self._per_url[delivery.url] <= 0:
                del self._per_url[delivery.url]
            self._outbox_wake.set()  # room for another attempt

        attempt.add_done_callback(finished)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            error = await self.sender.send(
                delivery.url, delivery.secret, delivery.body, delivery.idempotency_key, delivery.attempts
            )
        except Exception as exc:  # the sender answers its errors; anything else is a failed attempt too
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        # Answered (or failed for good): whatever happens from here, this attempt is not given back.
        self._unanswered.pop(delivery.id, None)
        record = asyncio.create_task(self._record(delivery, error))
        self._recording.add(record)
        record.add_done_callback(self._recording.discard)
        await asyncio.shield(record)

    async def _record(self, delivery: Delivery, error: str | None) -> None:
        try:
            await self._record_outcome(delivery, error)
        except Exception:
            # The lease runs out and the delivery is attempted again: at least once.
            log.exception("alert %s: recording delivery %s failed", delivery.alert_id, delivery.idempotency_key)
        finally:
            await self._notify()

    async def _record_outcome(self, delivery: Delivery, error: str | None) -> None:
        now = _now_ms()
        if error is None:
            recorded = await self.store.sent(delivery, now)
            self.sent += 1
            ATTEMPTS.labels("sent").inc()
            log.info(
                "alert %s: delivery %s sent (attempt %d)%s",
                delivery.alert_id,
                delivery.idempotency_key,
                delivery.attempts,
                "" if recorded else "; it was no longer pending (recorded already, or its alert deleted)",
            )
            return
        self.failures += 1
        wait = backoff_seconds(delivery.attempts, self.retry_base_seconds)
        retry_at = now + int(wait * 1000)
        give_up = retry_at > delivery.created_ms + self.retry_ms
        held = await self.store.failed(delivery, error, None if give_up else retry_at, now)
        target = redact_target(delivery.url)
        if not held:
            ATTEMPTS.labels("failed").inc()
            log.warning(
                "alert %s: delivery %s to %s failed (attempt %d): %s; its lease had moved on, nothing recorded",
                delivery.alert_id,
                delivery.idempotency_key,
                target,
                delivery.attempts,
                error,
            )
            return
        ATTEMPTS.labels("given_up" if give_up else "failed").inc()
        if give_up:
            log.error(
                "alert %s: delivery %s to %s given up after %d attempts: %s",
                delivery.alert_id,
                delivery.idempotency_key,
                target,
                delivery.attempts,
                error,
            )
        else:
            log.warning(
                "alert %s: delivery %s to %s failed (attempt %d): %s; retry in %.1f s",
                delivery.alert_id,
                delivery.idempotency_key,
                target,
                delivery.attempts,
                error,
                wait,
            )
