"""The signal archive: recorder, outcome filler and retention around one history database.

The service offers every signal it serves; the archive records them (and the watchlist) through
the buffered recorder, fills forward returns as horizons pass, prunes rows past retention, and
answers history pages and the track record. None of it is ever on a signal's path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence

from providers.clients import Clients
from records.db import Database
from records.jobs.outcomes import fill_outcomes
from records.jobs.recorder import Recorder
from records.models import HORIZONS
from records.recorded import RecordedSignal
from scoring import ScoringConfig
from signals.desk import LiveSignal, SignalDesk
from signals.errors import UnknownProfileError
from signals.track_record import TrackRecord, track_record

log = logging.getLogger("cryptosignals.history")
OUTCOME_EVERY_SECONDS = 60.0
PRUNE_EVERY_SECONDS = 3600.0


def config_hash(config: ScoringConfig) -> str:
    """16 hex characters identifying the scoring configuration (weights, thresholds, scales...)."""
    canonical = json.dumps(config.as_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class SignalArchive:
    def __init__(
        self,
        database: Database,
        desk: SignalDesk,
        clients: Clients,
        config: ScoringConfig,
        *,
        watchlist: Sequence[str],
        interval_seconds: int,
        retention_days: int,
        buffer_rows: int,
    ) -> None:
        self.database = database
        self.interval_seconds = interval_seconds
        self._clients = clients
        self._retention_ms = retention_days * 86_400_000
        self.default_profile = config.profile
        self.profiles = tuple(desk.profiles)
        self.recorder = Recorder(
            database,
            desk.signal,
            watchlist=watchlist,
            interval_seconds=interval_seconds,
            buffer_rows=buffer_rows,
            config_hash=config_hash(config),
            profile_hashes={name: config_hash(c) for name, c in desk.profiles.items()},
            # The watchlist is recorded under every profile served, so each has its own track record.
            profiles=[name for name in desk.profiles if name != config.profile],
        )

    def profile_of(self, name: str) -> str:
        """The profile a request names ("" is the default); UnknownProfileError if none is recorded."""
        profile = name or self.default_profile
        if profile not in self.profiles:
            raise UnknownProfileError(name, self.profiles)
        return profile

    async def start(self) -> None:
        await self.recorder.start(self._outcomes_loop, self._prune_loop)

    def offer(self, live: LiveSignal) -> None:
        self.recorder.offer(live)

    @property
    def available(self) -> bool:
        return self.recorder.ready.is_set() and not self.recorder.unavailable_reason

    @property
    def unavailable_reason(self) -> str:
        return self.recorder.unavailable_reason

    async def _outcomes_loop(self) -> None:
        while not self.recorder.stopping:
            try:
                await fill_outcomes(self.database, self._clients)
            except Exception as exc:
                log.warning("history: filling outcomes failed, retried in %.0f s: %s", OUTCOME_EVERY_SECONDS, exc)
            await self.recorder.sleep(OUTCOME_EVERY_SECONDS)

    async def _prune_loop(self) -> None:
        while not self.recorder.stopping:
            try:
                removed = await self.database.prune(int(time.time() * 1000) - self._retention_ms)
                if removed:
                    log.info("history: pruned %d rows past retention", removed)
            except Exception as exc:
                log.warning("history: pruning failed, retried in %.0f s: %s", PRUNE_EVERY_SECONDS, exc)
            await self.recorder.sleep(PRUNE_EVERY_SECONDS)

    async def page(
        self,
        symbol: str,
        start_ms: int,
        end_ms: int,
        size: int,
        before: tuple[int, int] | None,
        profile: str | None = None,
    ) -> list[RecordedSignal]:
        return await self.database.page(symbol, start_ms, end_ms, size, before, profile)

    async def track_record(self, symbol: str, horizon: str, days: int, profile: str = "seed") -> TrackRecord:
        """The live track record of one profile's signals (each profile is judged on its own rows)."""
        since = int(time.time() * 1000) - days * 86_400_000
        outcomes = await self.database.outcomes(symbol, horizon, since, profile)
        return track_record(
            [(o.computed_ms, o.signal, o.return_pct) for o in outcomes], HORIZONS[horizon], self.interval_seconds
        )

    async def aclose(self) -> None:
        await self.recorder.aclose()
