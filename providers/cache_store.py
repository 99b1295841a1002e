"""Where UpstreamCache keeps its entries: a dict in this process, or Redis shared by replicas.

The cache logic (TTLs, coalescing, stale-while-revalidate, max stale) lives in UpstreamCache and
is the same for both; a store only reads, writes and (for Redis) locks a key across processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from providers.cache_codec import CodecError, decode, decode_error, encode, encode_error
from providers.redis_link import REDIS_FAILURES, RedisLink

log = logging.getLogger("cryptosignals.cache")

# Held by the one loader in this process while Redis is not shared or not reachable.
LOCAL_LOCK = "local"

# Turns of the event loop a read batch stays open before its MGET is sent.
BATCH_TURNS = 2

# Take the lock, or say who holds it (in one step: the holder named is the one that refused us).
_LOCK = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, ARGV[1]} end
return {0, redis.call('get', KEYS[1]) or ''}
"""

# Publish a failed load's error under its lock token (for the replicas that waited on that load),
# then compare-and-delete: a loader whose lock expired must not delete the next holder's lock.
_UNLOCK = """
if ARGV[2] ~= '' then redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a lock request: ``token`` if this caller may load now; else ``holder``, the
    token of the load in progress (its failure is published under it), when the store knows it."""

    token: str | None
    holder: str | None = None


@dataclass
class Entry:
    value: Any
    fresh_until: float
    expires_at: float  # fresh_until + max_stale: after this the value is never served


class CacheStore(Protocol):
    # True when other processes read and write the same entries (cross-replica coalescing).
    shared: bool

    async def get(self, key: Hashable) -> Entry | None: ...

    async def put(self, key: Hashable, entry: Entry, keep_seconds: float) -> None: ...

    async def lock(self, key: Hashable, seconds: float) -> Claim:
        """A token if this caller may load ``key`` now; else the holder's while another process loads it."""
        ...

    async def unlock(self, key: Hashable, token: str, failure: BaseException | None = None, keep: float = 0) -> None:
        """Release ``key``'s lock; with ``failure``, first tell the processes waiting on this load
        (``failure(key, token)`` answers it for ``keep`` seconds)."""
        ...

    async def failure(self, key: Hashable, holder: str) -> BaseException | None:
        """How the load that held ``key``'s lock as ``holder`` failed, if it did and said so."""
        ...

    def clear(self) -> None: ...


class MemoryStore:
    """Entries in a dict: one process. Expired entries are replaced on the next load of their key."""

    shared = False

    def __init__(self) -> None:
        self.entries: dict[Hashable, Entry] = {}

    async def get(self, key: Hashable) -> Entry | None:
        return self.entries.get(key)

    async def put(self, key: Hashable, entry: Entry, keep_seconds: float) -> None:
        self.entries[key] = entry

    async def lock(self, key: Hashable, seconds: float) -> Claim:
        return Claim(LOCAL_LOCK)  # in-process coalescing in UpstreamCache already admits one loader

    async def unlock(self, key: Hashable, token: str, failure: BaseException | None = None, keep: float = 0) -> None:
        return None  # in-process waiters share the load's task, failure included

    async def failure(self, key: Hashable, holder: str) -> BaseException | None:
        return None

    def clear(self) -> None:
        self.entries.clear()


def redis_name(key: Hashable) -> str:
    """A readable Redis key name: ``okx:/api/v5/market/ticker:instId=BTC-USDT-SWAP``.

    The cache key is (provider, endpoint, sorted query parameters); keys travel in headers,
    never in parameters, so no secret reaches a key name (tests assert it)."""
    if not isinstance(key, tuple):
        return str(key)
    return ":".join(
        "&".join("=".join(map(str, pair)) for pair in part) if isinstance(part, tuple) else str(part) for part in key
    )


class RedisStore:
    """Entries in Redis, shared by every replica, with a local copy used while Redis is unreachable.

    Times in entries are wall-clock (``time.time``): monotonic clocks differ between processes.
    Redis evicts an entry at its ``expires_at`` (key TTL), so nothing needs cleaning up.

    Reads are pipelined: every ``get`` issued while a read batch is open (this turn of the
    event loop and the next two, which is when one signal's concurrent fan-out asks for all of its
    endpoints) is answered by one MGET, so a signal costs one round trip and one connection to
    read, not one per endpoint, and a cold burst does not need a connection per lookup.
    """

    shared = True

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._lock = link.client.register_script(_LOCK)
        self._unlock = link.client.register_script(_UNLOCK)
        # Written through on every put: while Redis is down the cache degrades to in-process.
        self.local = MemoryStore()
        self._batch: dict[str, list[asyncio.Future[bytes | None]]] = {}
        self._flushes: set[asyncio.Task[None]] = set()
        self.read_round_trips = 0  # MGETs sent (each answering a batch of lookups)
        self.lookups = 0  # keys asked of Redis

    async def get(self, key: Hashable) -> Entry | None:
        local = self.local.entries.get(key)
        if local is not None and time.time() < local.fresh_until:
            return local  # still fresh here: whatever Redis holds is no fresher; saves a round trip
        if not self._link.available:
            return local
        name = self._link.key("cache", redis_name(key))
        try:
            raw = await self._read(name)
        except REDIS_FAILURES as exc:
            self._link.failed("cache_get", exc)
            return await self.local.get(key)
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            entry = Entry(decode(record["v"].encode()), float(record["fresh"]), float(record["expires"]))
        except (CodecError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("unreadable shared cache entry %s (%s): treated as a miss", name, type(exc).__name__)
            return None
        # Kept here too: served without a round trip while fresh, and while Redis is down.
        self.local.entries[key] = entry
        return entry

    def _read(self, name: str) -> asyncio.Future[bytes | None]:
        """The raw value of ``name``, read in the open batch (one is opened if none is)."""
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        waiting = self._batch.setdefault(name, [])
        waiting.append(future)
        self.lookups += 1
        if len(self._batch) == 1 and len(waiting) == 1:  # the first lookup of a new batch
            task = asyncio.ensure_future(self._flush())
            self._flushes.add(task)  # a strong reference until done: the loop keeps only weak ones
            task.add_done_callback(self._flushes.discard)
        return future

    async def _flush(self) -> None:
        # Let the callers started in this turn of the loop (a signal's fan-out, and the gathers it
        # starts in turn, e.g. LunarCrush's two calls) join the batch: two turns, no wall-clock wait.
        for _ in range(BATCH_TURNS):
            await asyncio.sleep(0)
        batch, self._batch = self._batch, {}
        names = list(batch)
        try:
            self.read_round_trips += 1
            values: list[bytes | None] = await self._link.client.mget(names)  # type: ignore[assignment]
        except asyncio.CancelledError:
            for futures in batch.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as exc:
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for name, value in zip(names, values, strict=True):
            for future in batch[name]:
                if not future.done():
                    future.set_result(value)

    async def put(self, key: Hashable, entry: Entry, keep_seconds: float) -> None:
        await self.local.put(key, entry, keep_seconds)
        if not self._link.available:
            return
        try:
            value = encode(entry.value).decode()
        except CodecError as exc:
            log.warning("%s: kept in this process only", exc)
            return
        record = json.dumps({"v": value, "fresh": entry.fresh_until, "expires": entry.expires_at})
        try:
            await self._link.client.set(
                self._link.key("cache", redis_name(key)), record, px=max(1, int(keep_seconds * 1000))
            )
        except REDIS_FAILURES as exc:
            self._link.failed("cache_put", exc)

    async def lock(self, key: Hashable, seconds: float) -> Claim:
        if not self._link.available:
            return Claim(LOCAL_LOCK)
        token = secrets.token_hex(8)
        try:
            taken, holder = await self._lock(
                keys=[self._link.key("lock", redis_name(key))], args=[token, max(1, int(seconds * 1000))]
            )
        except REDIS_FAILURES as exc:
            self._link.failed("cache_lock", exc)
            return Claim(LOCAL_LOCK)
        if taken:
            return Claim(token)
        holder = holder.decode() if isinstance(holder, bytes) else str(holder)
        return Claim(None, holder or None)

    async def unlock(self, key: Hashable, token: str, failure: BaseException | None = None, keep: float = 0) -> None:
        if token == LOCAL_LOCK or not self._link.available:
            return
        error = encode_error(failure) if failure is not None else None
        record = json.dumps({"holder": token, "error": error.decode()}) if error is not None else ""
        name = redis_name(key)
        try:
            await self._unlock(
                keys=[self._link.key("lock", name), self._link.key("failed", name)],
                args=[token, record, max(1, int(keep * 1000))],
            )
        except REDIS_FAILURES as exc:  # the lock expires on its own; the waiters load themselves
            self._link.failed("cache_unlock", exc)

    async def failure(self, key: Hashable, holder: str) -> BaseException | None:
        if not self._link.available:
            return None
        name = self._link.key("failed", redis_name(key))
        try:
            raw = await self._read(name)  # in the open read batch: with the entry's, one MGET
        except REDIS_FAILURES as exc:
            self._link.failed("cache_get", exc)
            return None
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            if record.get("holder") != holder:
                return None  # another load's failure (an earlier one): not the one waited on
            return decode_error(str(record["error"]).encode())
        except (CodecError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("unreadable shared failure %s (%s): ignored", name, type(exc).__name__)
            return None

    def clear(self) -> None:
        self.local.clear()
