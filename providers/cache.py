"""Upstream response cache: per-endpoint TTLs, request coalescing, stale-while-revalidate.

- **Coalescing**: concurrent identical calls (same provider, endpoint, parameters) share one
  upstream request; upstream quotas are paid for.
- **TTL per kind of data**: a ticker is stale after seconds, the fear & greed index after an hour.
- **Stale-while-revalidate**: past its TTL a value is still served (and reported stale) while one
  background refresh runs; if the refresh fails, the last good value keeps being served until it
  is ``max_stale`` seconds past its TTL. Only validated data is cached, never an error.

- **Across replicas** (with a shared store, Redis): entries are shared, and a miss takes a short
  lock in the store so one replica loads while the others poll for the outcome of its load
  (bounded by ``lock_seconds``; a dead holder's lock expires and the next poller loads). The
  outcome is the value, or the failure: a failed load publishes its error under its lock token as
  it unlocks, and the replicas that were waiting on that load raise it instead of calling upstream
  again, as in-process waiters share the load's task. Errors are never cached: a caller arriving
  after the failure loads again. (Only provider errors travel; any other exception is not shared
  and the waiting replica loads itself.) In-process coalescing stays in front of it: one Redis
  wait per key per process.

The store is a dict by default (cache_store.MemoryStore); cache_store.RedisStore shares it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from providers.cache_store import CacheStore, Entry, MemoryStore
from providers.telemetry import CACHE_EVENTS, record_cache_event

log = logging.getLogger("cryptosignals.cache")

# Sources served stale during the current request: the signal's debug output marks them.
stale_sources: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("stale_sources", default=None)


# How often a replica waiting for another replica's load looks for the value.
POLL_SECONDS = 0.02


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stale: int = 0
    coalesced: int = 0
    refresh_failures: int = 0
    shared_waits: int = 0  # loads answered by another replica's upstream call
    shared_failures: int = 0  # loads answered by another replica's failed upstream call (its error)
    by_event: dict[str, int] = field(default_factory=dict)


class UpstreamCache:
    def __init__(
        self,
        max_stale: float = 300.0,
        clock: Callable[[], float] | None = None,
        store: CacheStore | None = None,
        lock_seconds: float = 10.0,
    ) -> None:
        self._store: CacheStore = store or MemoryStore()
        # A shared store needs times every process agrees on: wall-clock, not this process's monotonic.
        clock = clock or (time.time if self._store.shared else time.monotonic)
        self._lock_seconds = lock_seconds
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._refreshing: set[Hashable] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._max_stale = max_stale
        self._clock = clock
        self.stats = CacheStats()
        # Counts every lookup in the cache metrics (a fresh reader counts its hits in the same series).
        self.on_event: Callable[[str, str], None] = record_cache_event

    def clear(self) -> None:
        self._store.clear()

    async def aclose(self) -> None:
        """Stop background refreshes and loads nobody waits for any more (shutdown)."""
        pending = [*self._tasks, *self._inflight.values()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def peek(self, key: Hashable) -> Any | None:
        """The value for ``key`` if it is fresh, else None; never loads."""
        entry = await self._store.get(key)
        return entry.value if entry is not None and self._clock() < entry.fresh_until else None

    def fresh_reader(self, key: Hashable, provider: str = "") -> Callable[[], Any | None] | None:
        """A function answering ``key``'s value while it is fresh, else None, without awaiting: only
        from an in-process store, a hit counted as ``get`` counts one. The warm request path keeps
        one per question and calls it on every request, so the lookups are done once, here. None
        when the store is shared (a read must go to the store)."""
        store = self._store
        if not isinstance(store, MemoryStore):
            return None
        entries, clock, stats = store.entries, self._clock, self.stats
        hits = CACHE_EVENTS.cell(provider or "unknown", "hit")  # what on_event("hit", provider) counts

        def read() -> Any | None:
            entry = entries.get(key)
            if entry is None or clock() >= entry.fresh_until:
                return None
            stats.hits += 1
            hits[0] += 1
            return entry.value

        return read

    async def get(self, key: Hashable, ttl: float, load: Callable[[], Awaitable[Any]], source: str = "") -> Any:
        """The cached value for ``key``, loading it (once, however many callers wait) when needed."""
        provider = source.split(":", 1)[0]
        entry = await self._store.get(key)
        now = self._clock()
        if entry is not None and now < entry.fresh_until:
            self.stats.hits += 1
            self.on_event("hit", provider)
            return entry.value
        if entry is not None and now < entry.expires_at:
            self.stats.stale += 1
            self.on_event("stale", provider)
            marks = stale_sources.get()
            if marks is not None:
                marks.add(source)
            if key not in self._refreshing and key not in self._inflight:
                self._refreshing.add(key)
                task = asyncio.ensure_future(self._refresh(key, ttl, load))
                self._tasks.add(task)  # a strong reference until done: the loop keeps only weak ones
                task.add_done_callback(self._tasks.discard)
            return entry.value
        self.stats.misses += 1
        self.on_event("miss", provider)
        return await self._load(key, ttl, load)

    async def _load(self, key: Hashable, ttl: float, load: Callable[[], Awaitable[Any]]) -> Any:
        """Join the load of ``key`` in flight, or start it.

        The load runs in its own task, shared by every waiter: a caller that gives up (its deadline
        passed, its client went away) stops waiting without cancelling it for the others, and the
        value still lands in the cache for the next caller.
        """
        pending = self._inflight.get(key)
        if pending is not None:
            self.stats.coalesced += 1
        else:
            pending = asyncio.ensure_future(self._fetch(key, ttl, load))
            self._inflight[key] = pending
            pending.add_done_callback(functools.partial(self._landed, key))
        return await asyncio.shield(pending)

    def _landed(self, key: Hashable, task: asyncio.Future[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: waiters re-raise it; if all gave up, nobody needs it

    async def _fetch(self, key: Hashable, ttl: float, load: Callable[[], Awaitable[Any]]) -> Any:
        """Load and store ``key``, or, while another replica holds its lock, wait for the outcome of
        that replica's load: its value, or its failure (as in-process waiters share the load's task)."""
        holder: str | None = None  # the other replica's load this one waits on
        deadline: float | None = None
        while True:
            claim = await self._store.lock(key, self._lock_seconds)
            if claim.token is not None:
                return await self._hold(key, ttl, load, claim.token, holder)
            holder = claim.holder or holder
            now = time.monotonic()
            if deadline is None:  # counted from the first refusal: the holder's lock expires by then
                deadline = now + self._lock_seconds
            elif now >= deadline:  # the lock keeps being taken: load rather than fail the request
                return await self._load_and_store(key, ttl, load)
            await asyncio.sleep(POLL_SECONDS)
            entry, failure = await self._outcome(key, holder)
            if entry is not None and self._clock() < entry.fresh_until:
                self.stats.shared_waits += 1
                return entry.value
            if failure is not None:
                self.stats.shared_failures += 1
                raise failure

    async def _hold(
        self, key: Hashable, ttl: float, load: Callable[[], Awaitable[Any]], token: str, waited_on: str | None
    ) -> Any:
        """Load ``key`` under its lock (``token``), unless the load waited on landed meanwhile; a
        failure is published with the unlock, for the replicas waiting on this load."""
        failure: BaseException | None = None
        try:
            if self._store.shared:
                # The previous holder may have stored it, or failed, between our last look and our lock.
                entry, failed = await self._outcome(key, waited_on)
                if entry is not None and self._clock() < entry.fresh_until:
                    self.stats.shared_waits += 1
                    return entry.value
                if failed is not None:
                    self.stats.shared_failures += 1
                    failure = failed  # passed on to whoever waits on this lock in turn
                    raise failed
            try:
                return await self._load_and_store(key, ttl, load)
            except Exception as exc:
                failure = exc
                raise
        finally:
            await self._store.unlock(key, token, failure, self._lock_seconds)

    async def _outcome(self, key: Hashable, holder: str | None) -> tuple[Entry | None, BaseException | None]:
        """``key``'s entry and, when a load was waited on, how it failed: both in one read batch."""
        if holder is None:
            return await self._store.get(key), None
        entry, failure = await asyncio.gather(self._store.get(key), self._store.failure(key, holder))
        return entry, failure

    async def _load_and_store(self, key: Hashable, ttl: float, load: Callable[[], Awaitable[Any]]) -> Any:
        value = await load()
        now = self._clock()
        await self._store.put(key, Entry(value, now + ttl, now + ttl + self._max_stale), ttl + self._max_stale)
        return value

    async def _refresh(self, key: Hashable, ttl: float, load: Callable[[], Awaitable[Any]]) -> None:
        try:
            await self._load(key, ttl, load)
        except Exception as exc:  # the last good value stays until it expires
            self.stats.refresh_failures += 1
            log.warning("background refresh of %s failed: %s", key, type(exc).__name__)
        finally:
            self._refreshing.discard(key)
