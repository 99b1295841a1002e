"""Per-client rate limit, enforced in the server so REST (through Envoy) and direct gRPC callers alike
are limited: a token bucket per client key when SIGNAL_API_KEYS is set, else per client address.

The client address is the gRPC peer's, unless that peer is a trusted proxy (TRUSTED_PROXIES; Envoy on
loopback by default): then ``x-forwarded-for`` is read from the right, skipping trusted proxies, and
the first address that is not one is the client. Envoy appends the address it saw (it runs with
``use_remote_address``), so a client cannot pick its bucket by sending a forged chain: whatever it
writes stands to the left of its real address. A malformed entry ends the walk at the last trusted
hop's view (the peer or the entry to its right), never at text the client chose.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from providers.redis_link import REDIS_FAILURES, RedisLink
from service.rpc.auth import OPEN_METHODS, OPEN_PREFIXES

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Buckets kept at most; past it, the ones that have refilled completely (idle clients) are dropped,
# and if none has, all of them (a flood of distinct addresses must not grow memory without bound).
MAX_BUCKETS = 100_000

# Never limited: a health check of an overloaded service must still pass.
EXEMPT_METHODS = frozenset({"/cryptosignals.v1.SignalService/GetHealth"})
EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)


def parse_networks(value: str) -> tuple[Network, ...]:
    """``127.0.0.1/32,::1,10.0.0.0/8`` -> networks; raises ValueError naming a bad entry."""
    networks: list[Network] = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"each entry must be an IP address or CIDR (e.g. 10.0.0.0/8), got {item[:64]!r}") from None
    return tuple(networks)


def peer_address(peer: str) -> str:
    """grpc's ``ipv4:127.0.0.1:5000`` / ``ipv6:[::1]:5000`` / ``unix:...`` -> the address part."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return peer


@dataclass(frozen=True)
class Refusal:
    """Over the limit: what the 429 / RESOURCE_EXHAUSTED answer says."""

    limit: int
    retry_after: int
    reset: int

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            ("retry-after", str(self.retry_after)),
            ("x-ratelimit-limit", str(self.limit)),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", str(self.reset)),
        )


class ClientLimiter:
    """Token buckets of ``burst`` tokens refilled at ``rate`` per second, one per client."""

    shared = False  # True: buckets live elsewhere (Redis) and ``take_async`` must be awaited

    def __init__(
        self,
        rate: float,
        burst: int,
        trusted: Sequence[Network] = (),
        *,
        keyed: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, math.ceil(rate))
        self._trusted = tuple(trusted)
        self._keyed = keyed
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # client -> [tokens, last refill time]
        self._trust_memo: dict[str, bool] = {}
        self._address_memo: dict[tuple[str, str | None], str] = {}

    def _is_trusted(self, address: str) -> bool:
        known = self._trust_memo.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            trusted = False
        else:
            trusted = any(ip in network for network in self._trusted)
        if len(self._trust_memo) < 10_000:
            self._trust_memo[address] = trusted
        return trusted

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: the peer's, or read from ``x-forwarded-for`` when the peer is trusted."""
        return self._address_bucket(peer, forwarded_for)[3:]

    def _address_bucket(self, peer: str, forwarded_for: str | None) -> str:
        """``ip:<the client's address>``, the bucket's name of a client known by its address."""
        # Envoy's few connections and a client's repeated chain make the same question every call.
        memo_key = (peer, forwarded_for)
        known = self._address_memo.get(memo_key)
        if known is None:
            known = "ip:" + self._client_address(peer, forwarded_for)
            if len(self._address_memo) >= 10_000:
                self._address_memo.clear()
            self._address_memo[memo_key] = known
        return known

    def _client_address(self, peer: str, forwarded_for: str | None) -> str:
        address = peer_address(peer)
        if not forwarded_for or not self._is_trusted(address):
            return address
        for hop in reversed(forwarded_for.split(",")):
            candidate = hop.strip()
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                return address  # garbage in the chain: the last address a trusted hop vouched for
            if not self._is_trusted(candidate):
                return candidate
            address = candidate
        return address

    def limits(self, method: str) -> bool:
        """Whether calls of ``method`` spend from a bucket (health checks never do)."""
        return method not in EXEMPT_METHODS and not method.startswith(EXEMPT_PREFIXES)

    def client(self, method: str, metadata: Sequence[tuple[str, str | bytes]], peer: str) -> str | None:
        """The bucket's name, or None for a method that is never limited."""
        if not self.limits(method):
            return None
        return self.client_of(
            metadata, peer, keys_checked=method not in OPEN_METHODS and not method.startswith(OPEN_PREFIXES)
        )

    def client_of(self, metadata: Sequence[tuple[str, str | bytes]], peer: str, *, keys_checked: bool) -> str:
        """The bucket's name of a call with ``metadata`` from ``peer``; ``keys_checked``: its method
        needs a client key (the guard decides that once per method)."""
        forwarded: str | None = None
        authorization: str | None = None
        for name, value in metadata:
            if name == "x-forwarded-for" and isinstance(value, str):
                forwarded = value if forwarded is None else f"{forwarded},{value}"
            elif name == "authorization" and isinstance(value, str):
                authorization = value
        if self._keyed and authorization is not None and keys_checked:
            # Only methods the auth interceptor checked reach here with a key it accepted.
            return "key:" + authorization.partition(" ")[2].strip()
        known = self._address_memo.get((peer, forwarded))  # _address_bucket's memo, read here on every call
        return known if known is not None else self._address_bucket(peer, forwarded)

    def take(self, client: str) -> Refusal | None:
        """Spend one token of ``client``'s bucket; a Refusal when it is empty."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._evict(now)
            self._buckets[client] = [self.burst - 1.0, now]
            return None
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return None
        bucket[0] = tokens
        return Refusal(
            limit=self.burst,
            retry_after=max(1, math.ceil((1.0 - tokens) / self.rate)),
            reset=max(1, math.ceil((self.burst - tokens) / self.rate)),
        )

    def now(self) -> float:
        """The buckets' clock."""
        return self._clock()

    def exhausted(self, client: str) -> Refusal | None:
        """A Refusal when ``client``'s bucket is empty now; spends nothing (this process's buckets only)."""
        bucket = self._buckets.get(client)
        if bucket is None:
            return None
        tokens = min(float(self.burst), bucket[0] + (self._clock() - bucket[1]) * self.rate)
        if tokens >= 1.0:
            return None
        return Refusal(
            limit=self.burst,
            retry_after=max(1, math.ceil((1.0 - tokens) / self.rate)),
            reset=max(1, math.ceil((self.burst - tokens) / self.rate)),
        )

    async def take_async(self, client: str) -> Refusal | None:
        """``take``, for the interceptor: the shared limiter asks Redis here."""
        return self.take(client)

    def _evict(self, now: float) -> None:
        full = [
            name for name, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.burst
        ]
        for name in full:
            del self._buckets[name]
        if len(self._buckets) >= MAX_BUCKETS:
            self._buckets.clear()


# One client's bucket in Redis: refilled from the time Redis itself reports (one clock for every
# replica), spent atomically; it expires once it would be full again. Returns {allowed, tokens}.
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(held[1]) or burst
local since = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - since) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class SharedClientLimiter(ClientLimiter):
    """The same buckets, kept in Redis (REDIS_URL) so every replica spends from one per client.

    Redis unreachable: this replica falls back to its own buckets (the link warns and retries after
    a few seconds), so a Redis outage never refuses a call it would not refuse alone.
    """

    shared = True

    def __init__(
        self, link: RedisLink, rate: float, burst: int, trusted: Sequence[Network] = (), *, keyed: bool = False
    ):
        super().__init__(rate, burst, trusted, keyed=keyed)
        self._link = link
        self._take = link.client.register_script(_TAKE)

    async def take_async(self, client: str) -> Refusal | None:
        if not self._link.available:
            return self.take(client)
        # Key names never hold a client key itself: a digest of it.
        name = self._link.key("client", hashlib.sha256(client.encode()).hexdigest()[:32])
        try:
            allowed, tokens = await self._take(keys=[name], args=[self.rate, self.burst])
        except REDIS_FAILURES as exc:
            self._link.failed("client_limit", exc)
            return self.take(client)
        if int(allowed):
            return None
        left = float(tokens)
        return Refusal(
            limit=self.burst,
            retry_after=max(1, math.ceil((1.0 - left) / self.rate)),
            reset=max(1, math.ceil((self.burst - left) / self.rate)),
        )


def caller_of(context: grpc.aio.ServicerContext, identity: ClientLimiter, method: str) -> str:
    """Who is calling ``method``, named as the client rate limit names it: the client key when keys
    are on, else the caller's address (X-Forwarded-For believed only from TRUSTED_PROXIES, i.e. Envoy)."""
    metadata = [(k, v) for k, v in (context.invocation_metadata() or ())]
    return identity.client(method, metadata, str(context.peer())) or "anonymous"
