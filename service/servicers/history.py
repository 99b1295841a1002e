"""HistoryService: recorded signals a page at a time, and the live track record."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from cryptosignals.v1 import history_pb2, history_pb2_grpc

from records.archive import SignalArchive
from records.models import HORIZONS
from service.mappers.backtest import class_message, parse_time, strategy_message
from service.mappers.history import history_entry
from service.rpc.page_tokens import PageTokenError, PageTokens
from service.rpc.status import coin_or_abort
from signals.coin_universe import CoinUniverse
from signals.inputs import to_ms

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DEFAULT_DAYS = 30
# The name of the page token secret in the history database (when PAGE_TOKEN_SECRET is not set).
PAGE_TOKEN_SECRET_NAME = "page_token"  # noqa: S105 - a name, not the secret

log = logging.getLogger("cryptosignals.history")


class HistoryServicer(history_pb2_grpc.HistoryServiceServicer):
    def __init__(self, archive: SignalArchive | None, universe: CoinUniverse, tokens: PageTokens | None) -> None:
        """``tokens`` None: signed with the secret kept in the history database (made on first use)."""
        self._archive = archive
        self._universe = universe
        self._tokens = tokens
        self._tokens_lock = asyncio.Lock()

    async def _page_tokens(self, archive: SignalArchive, context: grpc.aio.ServicerContext) -> PageTokens:
        if self._tokens is not None:
            return self._tokens
        async with self._tokens_lock:
            if self._tokens is None:
                try:
                    secret = await archive.database.shared_secret(PAGE_TOKEN_SECRET_NAME)
                except Exception:
                    log.exception("cannot read or store the page token secret")
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE, "signal history is unavailable: its database did not answer"
                    )
                self._tokens = PageTokens(secret)
        return self._tokens

    async def _available(self, context: grpc.aio.ServicerContext) -> SignalArchive:
        archive = self._archive
        if archive is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "signal history is off (HISTORY_ENABLED=false)")
            raise AssertionError("unreachable")
        if not archive.recorder.ready.is_set():
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"signal history is unavailable: {archive.unavailable_reason}"
            )
        return archive

    async def GetSignalHistory(
        self, request: history_pb2.GetSignalHistoryRequest, context: grpc.aio.ServicerContext
    ) -> history_pb2.SignalHistoryPage:
        symbol = await coin_or_abort(request.symbol, context, self._universe)
        size = request.page_size if request.HasField("page_size") else DEFAULT_PAGE_SIZE
        archive: SignalArchive | None = None
        try:
            if not 1 <= size <= MAX_PAGE_SIZE:
                raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {size}")
            end = parse_time(request.end, "end")
            start = parse_time(request.start, "start")
            position = None
            if request.page_token:
                archive = await self._available(context)
                position = (await self._page_tokens(archive, context)).read(request.page_token)
            # Without an explicit end, "now" as the first page resolved it, which its token carries:
            # every page of one listing covers the same range.
            if end is not None:
                end_ms = to_ms(end)
            elif position is not None:
                end_ms = position["b"]
            else:
                end_ms = int(time.time() * 1000)
            start_ms = to_ms(start) if start is not None else end_ms - DEFAULT_DAYS * 86_400_000
            if start_ms > end_ms:
                raise ValueError("start must not be after end")
            request_key: dict[str, object] = {"s": symbol, "a": start_ms, "b": end_ms, "n": size}
            if request.profile:  # a token is for one profile's pages (the default's keep their old key)
                request_key["p"] = request.profile
            before = None
            if position is not None:
                if any(position[k] != v for k, v in request_key.items()):
                    raise PageTokenError("page_token belongs to another request: keep symbol, start, end and page_size")
                before = (position["t"], position["i"])
        except (ValueError, PageTokenError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        archive = archive or await self._available(context)
        tokens = await self._page_tokens(archive, context)
        profile = archive.profile_of(request.profile[:32])  # UnknownProfileError: a 400 (rpc/status.py)
        rows = await archive.page(symbol, start_ms, end_ms, size + 1, before, profile)
        page = history_pb2.SignalHistoryPage(symbol=symbol, entries=[history_entry(r) for r in rows[:size]])
        if len(rows) > size:
            last = rows[size - 1]
            page.next_page_token = tokens.encode({**request_key, "t": last.computed_ms, "i": last.id})
        return page

    async def GetTrackRecord(
        self, request: history_pb2.GetTrackRecordRequest, context: grpc.aio.ServicerContext
    ) -> history_pb2.TrackRecord:
        symbol = await coin_or_abort(request.symbol, context, self._universe)
        horizon = (request.horizon or "24h").strip().lower()
        days = request.days if request.HasField("days") else DEFAULT_DAYS
        if horizon not in HORIZONS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"horizon must be 1h, 4h or 24h, got {request.horizon[:32]!r}"
            )
        if not 1 <= days <= 365:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"days must be between 1 and 365, got {days}")
        archive = await self._available(context)
        profile = archive.profile_of(request.profile[:32])  # UnknownProfileError: a 400 (rpc/status.py)
        record = await archive.track_record(symbol, horizon, days, profile)
        message = history_pb2.TrackRecord(
            profile=profile,
            symbol=symbol,
            horizon=horizon,
            days=days,
            signals_with_outcome=record.signals_with_outcome,
            horizon_rows=record.horizon_rows,
            block_rows=record.block_rows,
            verdict=record.verdict,
        )
        if record.summary is not None:
            summary = record.summary
            message.classes.extend(class_message(c) for c in summary.classes)
            message.signal_positions.CopyFrom(strategy_message(summary.positions))
            message.baselines.append(strategy_message(summary.always_long))
        return message
