"""Alerts at work on each replica: conditions evaluated on the hub's signals, the outbox dispatched.

- The hub runs the loop of every coin with an alert (``hub.keep``) and hands each new signal to
  ``on_signal``; the evaluator records per alert and coin whether the condition holds, and a turn
  from "does not hold" to "holds" writes one delivery (compare-and-set: one replica wins).
- The dispatcher claims due deliveries from the outbox, POSTs them signed, and marks them sent, or
  due again after a backoff, or given up once the retry window has passed.
- Every ``poll_seconds`` the alert list is reloaded (alerts made or deleted on other replicas)
  and the outbox polled (retries that came due, deliveries written by other replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import Counter

from records.alerts import Alert, AlertStore, Delivery, holds
from records.webhooks import WebhookSender, backoff_seconds, redact_target
from signals.desk import LiveSignal
from signals.hub import SignalHub

log = logging.getLogger("cryptosignals.alerts")
LEASE_MARGIN_SECONDS = 30.0
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
    ) -> None:
        self.store = store
        self.hub = hub
        self.ready = ready  # the database is migrated (the history recorder sets it)
        self.retry_base_seconds = retry_base_seconds
        self.retry_ms = int(retry_hours * 3_600_000)
        self.poll_seconds = poll_seconds
        self.sender = WebhookSender(timeout=timeout_seconds, allow_private=allow_private)
        self.lease_ms = int((timeout_seconds * 2 + LEASE_MARGIN_SECONDS) * 1000)
        self._alerts: dict[str, Alert] = {}
        self._added_since_reload: dict[str, Alert] = {}  # made here while a reload was reading
        self._seen: dict[tuple[str, str], bool] = {}  # (alert, coin) -> held at the last signal here
        self._signals: dict[str, LiveSignal] = {}  # newest unevaluated signal per coin
        self._signal_arrived = asyncio.Event()
        self._outbox_wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._in_flight: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.loaded = asyncio.Event()
        # Counters (tests wait on them through ``wait_until``).
        self.evaluated = 0  # signals evaluated
        self.fired = 0  # deliveries this replica wrote
        self.sent = 0  # deliveries this replica delivered
        self.failures = 0  # failed attempts by this replica
        self.polls = 0  # outbox polls finished

    # ---- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.hub.add_listener(self.on_signal)
        self._tasks = [
            asyncio.create_task(self._run(self._evaluate_loop), name="alerts-evaluate"),
            asyncio.create_task(self._run(self._dispatch_loop), name="alerts-dispatch"),
            asyncio.create_task(self._run(self._reload_loop), name="alerts-reload"),
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
        if self._in_flight:
            # Attempts cut short by shutdown: due again at once, for this replica after a restart or another one now.
            with contextlib.suppress(Exception):
                await self.store.release(sorted(self._in_flight), _now_ms())
            self._in_flight.clear()
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

    async def _dispatch_loop(self) -> None:
        while True:
            self._outbox_wake.clear()
            claimed = await self.store.claim(_now_ms(), self.lease_ms)
            if claimed:
                await asyncio.gather(*(self._deliver(d) for d in claimed))
            self.polls += 1
            await self._notify()
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outbox_wake.wait(), self.poll_seconds)

    async def _deliver(self, delivery: Delivery) -> None:
        self._in_flight.add(delivery.id)
        error = await self.sender.send(
            delivery.url, delivery.secret, delivery.body, delivery.idempotency_key, delivery.attempts
        )
        now = _now_ms()
        if error is None:
            await self.store.sent(delivery.id, now)
            self._in_flight.discard(delivery.id)
            self.sent += 1
            ATTEMPTS.labels("sent").inc()
            log.info(
                "alert %s: delivery %s sent (attempt %d)",
                delivery.alert_id,
                delivery.idempotency_key,
                delivery.attempts,
            )
            return
        self.failures += 1
        wait = backoff_seconds(delivery.attempts, self.retry_base_seconds)
        retry_at = now + int(wait * 1000)
        give_up = retry_at > delivery.created_ms + self.retry_ms
        await self.store.failed(delivery.id, error, None if give_up else retry_at)
        self._in_flight.discard(delivery.id)
        ATTEMPTS.labels("given_up" if give_up else "failed").inc()
        target = redact_target(delivery.url)
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
