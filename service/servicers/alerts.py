"""AlertService: webhook alerts on signal changes, each owned by the client key that made it.

The owner is the client key (a hash of the bearer key the auth interceptor has checked), so alerts
need SIGNAL_API_KEYS: without keys every call answers FAILED_PRECONDITION naming the setting. (The
caller's address is no owner: through Envoy every client has Envoy's, and one shared list let any
client read every webhook URL and delete any alert.) Listing shows the caller's alerts only, their
webhook URLs with the query string masked (the full URL is in the creation answer only, like the
secret). A refused webhook target gets one generic sentence; the reason is in the server log.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
import uuid

import grpc
from cryptosignals.v1 import alerts_pb2, alerts_pb2_grpc

from records.alerts import CONDITIONS, DOES_NOT_HOLD, HOLDS, UNKNOWN, Alert, holds
from records.jobs.alert_delivery import AlertManager
from records.jobs.webhooks import RefusedTarget, TargetError, mask_query, parse_target, redact_target
from service.edge.openapi import ALERT_ID_PATTERN
from service.mappers.signal import timestamp
from service.rpc.symbols import InvalidSymbolError, normalize_symbol
from signals.coin_universe import CoinUniverse
from signals.errors import SignalUnavailableError, unknown_coin_message
from signals.inputs import from_ms

log = logging.getLogger("cryptosignals.alerts")
MAX_SYMBOLS = 20
SCORE_CONDITIONS = ("score_above", "score_below")
NEEDS_KEYS = (
    "alerts need client keys: set SIGNAL_API_KEYS on this server, so that each alert has an owner "
    "and a client sees and deletes only its own"
)


def owner_of(context: grpc.aio.ServicerContext) -> str:
    # The key itself (the interceptor has checked it), however the scheme is spelled.
    header = str(dict(context.invocation_metadata() or ()).get("authorization", ""))
    token = header.partition(" ")[2].strip()
    return "key:" + hashlib.sha256(token.encode()).hexdigest()[:16]


def alert_message(alert: Alert, delivered: int = 0, pending: int = 0, *, full_url: bool = False) -> alerts_pb2.Alert:
    message = alerts_pb2.Alert(
        id=alert.id,
        symbols=alert.symbols,
        condition=alert.condition,
        webhook_url=alert.webhook_url if full_url else mask_query(alert.webhook_url),
        create_time=timestamp(from_ms(alert.created_ms)),
        delivered=delivered,
        pending=pending,
    )
    if alert.threshold is not None:
        message.threshold = alert.threshold
    return message


class AlertServicer(alerts_pb2_grpc.AlertServiceServicer):
    def __init__(
        self,
        manager: AlertManager | None,
        universe: CoinUniverse,
        *,
        keyed: bool,
        max_per_client: int,
        max_coins_per_client: int = 10,
        max_coins: int = 200,
    ) -> None:
        self._manager = manager
        self._universe = universe
        self._keyed = keyed
        self._max_per_client = max_per_client
        self._max_coins_per_client = max_coins_per_client
        self._max_coins = max_coins

    async def _owner(self, context: grpc.aio.ServicerContext) -> str:
        """The caller's owner id; FAILED_PRECONDITION naming SIGNAL_API_KEYS on a keyless server."""
        if not self._keyed:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, NEEDS_KEYS)
        return owner_of(context)

    async def _available(self, context: grpc.aio.ServicerContext) -> AlertManager:
        manager = self._manager
        if manager is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "alerts need the history database, and signal history is off (HISTORY_ENABLED=false)",
            )
            raise AssertionError("unreachable")
        if not manager.ready.is_set():
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "alerts are unavailable: the history database is not ready"
            )
        return manager

    async def _invalid(self, context: grpc.aio.ServicerContext, message: str) -> None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

    async def CreateAlert(
        self, request: alerts_pb2.CreateAlertRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.CreatedAlert:
        owner = await self._owner(context)
        raw = [s for s in (request.symbol, *request.symbols) if s]
        url = request.webhook_url.strip()
        condition = request.condition.strip().lower()
        threshold = request.threshold if request.HasField("threshold") else None
        try:
            if not raw:
                raise ValueError("symbol is required: the coin to watch, e.g. BTC")
            symbols = tuple(dict.fromkeys(normalize_symbol(s) for s in raw))
            if len(symbols) > MAX_SYMBOLS:
                raise ValueError(f"at most {MAX_SYMBOLS} symbols per alert, got {len(symbols)}")
            if condition not in CONDITIONS:
                raise ValueError(
                    f"condition must be becomes_long, becomes_short, score_above or score_below, "
                    f"got {request.condition[:32]!r}"
                )
            if condition in SCORE_CONDITIONS:
                if threshold is None:
                    raise ValueError(f"{condition} needs a threshold: a score between 0 and 100")
                if not 0 <= threshold <= 100:
                    raise ValueError(f"threshold must be a score between 0 and 100, got {threshold:g}")
            elif threshold is not None:
                raise ValueError(f"{condition} takes no threshold; score_above and score_below do")
            parse_target(url)
        except (ValueError, InvalidSymbolError) as exc:  # TargetError is a ValueError
            await self._invalid(context, str(exc))
            raise
        for symbol in symbols:
            if self._universe.refuses(symbol):
                await context.abort(grpc.StatusCode.NOT_FOUND, unknown_coin_message(symbol))
        manager = await self._available(context)
        try:
            await manager.sender.check(url)
        except RefusedTarget as exc:
            log.info("alerts: webhook target %s refused for %s: %s", redact_target(url), owner, exc.reason)
            await self._invalid(context, str(exc))
        except TargetError as exc:
            await self._invalid(context, str(exc))
        if await manager.store.count(owner) >= self._max_per_client:
            await self._invalid(context, f"at most {self._max_per_client} alerts per client: delete one first")
        await self._coins_allowed(manager, owner, symbols, context)
        # Where each coin stands now, so that only a later change fires ("becomes", "crosses").
        states: dict[str, str] = {}
        for symbol in symbols:
            try:
                live = await manager.hub.current(symbol)  # fresh: the hub's latest may be a round old
            except SignalUnavailableError as exc:
                if exc.not_found:
                    self._universe.remember_unknown(symbol)
                    await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
                states[symbol] = UNKNOWN
                continue
            now_holds = holds(condition, threshold, live.scored.direction, live.scored.score)
            states[symbol] = HOLDS if now_holds else DOES_NOT_HOLD
        alert = Alert(
            id=uuid.uuid4().hex,
            owner=owner,
            symbols=symbols,
            condition=condition,
            threshold=threshold,
            webhook_url=url,
            created_ms=int(time.time() * 1000),
        )
        secret = "whsec_" + secrets.token_urlsafe(32)
        if not await manager.store.create(alert, secret, states, self._max_per_client):
            await self._invalid(context, f"at most {self._max_per_client} alerts per client: delete one first")
        manager.added(alert)
        return alerts_pb2.CreatedAlert(alert=alert_message(alert, full_url=True), secret=secret)

    async def _coins_allowed(
        self, manager: AlertManager, owner: str, symbols: tuple[str, ...], context: grpc.aio.ServicerContext
    ) -> None:
        """Every coin an alert names is refreshed by the hub for as long as the alert lives, and a
        new coin costs cold signals at once: the coins alerts keep warm are capped per client key
        (400) and per server (429). Checked from the database, so replicas agree (a race between
        concurrent creates can pass a cap by the coins of one alert; the alert cap itself is atomic)."""
        everyone = await manager.store.all()
        mine = {s for alert in everyone if alert.owner == owner for s in alert.symbols}
        if len(mine | set(symbols)) > self._max_coins_per_client:
            await self._invalid(
                context,
                f"the alerts of one client watch at most {self._max_coins_per_client} coins "
                f"(ALERT_MAX_COINS_PER_CLIENT); yours watch {len(mine)}: delete an alert or reuse its coins",
            )
        watched = {s for alert in everyone for s in alert.symbols}
        if len(watched | set(symbols)) > self._max_coins:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this server's alerts watch {len(watched)} coins, its limit (ALERT_MAX_COINS): "
                "alerts on coins already watched are still accepted",
            )

    async def ListAlerts(
        self, request: alerts_pb2.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.AlertList:
        owner = await self._owner(context)
        manager = await self._available(context)
        owned = await manager.store.owned(owner)
        return alerts_pb2.AlertList(alerts=[alert_message(c.alert, c.delivered, c.pending) for c in owned])

    async def DeleteAlert(
        self, request: alerts_pb2.DeleteAlertRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.DeletedAlert:
        owner = await self._owner(context)
        alert_id = request.id
        if not re.fullmatch(ALERT_ID_PATTERN, alert_id):
            await self._invalid(context, f"id must be an alert id as POST /alerts returned it, got {request.id[:40]!r}")
        manager = await self._available(context)
        if not await manager.store.delete(owner, alert_id):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no alert {alert_id} among this client's alerts")
        manager.removed(alert_id)
        return alerts_pb2.DeletedAlert(id=alert_id)
