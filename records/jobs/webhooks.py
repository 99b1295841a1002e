"""Webhook deliveries: where they may go, how they are signed, and the sender that POSTs them.

A target must be an http(s) URL on port 80, 443 or one ALERT_ALLOWED_PORTS names, whose host
resolves only to public addresses: not private, loopback, link-local, multicast or reserved, and
none of the IANA special-purpose ranges that reach other networks or none at all (6to4, Teredo,
NAT64, benchmarking, documentation ...). Every resolved address is checked, when the alert is made
and again on each connection, so a name re-pointed at a private address later is refused too,
unless private targets are allowed (development). A refused target gets one generic sentence
(``REFUSED_MESSAGE``): why it was refused (which address, whether the name resolves at all) is in
the server log only, so the API never answers questions about the server's network.

Names are resolved by ``WebhookResolver``: getaddrinfo on threads of its own, a bounded number at
once, never on the loop's default executor that the providers' HTTP clients resolve on.

Redirects are never followed; a redirect, a 5xx, any non-2xx answer, a timeout or a refused
connection is a failed attempt, retried with exponential backoff until the retry window ends. Logs
name the delivery, the target without its query, the attempt and the error, never the signing
secret.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

log = logging.getLogger("cryptosignals.alerts")

MAX_URL_LENGTH = 2048
MAX_BACKOFF_SECONDS = 3600.0
SIGNATURE_HEADER = "X-Signal-Signature"
TIMESTAMP_HEADER = "X-Signal-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Signal-Attempt"
DEFAULT_PORTS = frozenset({80, 443})
MAX_LOOKUPS = 8  # concurrent webhook DNS lookups per process (threads of the resolver's own)
REFUSED_MESSAGE = (
    "webhook_url is not an allowed webhook target: it must name a host that resolves, to public "
    "addresses only, on port 80, 443 or another port this server allows"
)

# IANA special-purpose ranges refused whatever Python's ipaddress flags say of them (the flags
# changed between Python versions, and some of these are "global" there): ranges that tunnel to
# or translate into other addresses (an IPv4 address inside 6to4 or NAT64 may be a private one),
# and ranges that are no real host's.
SPECIAL_PURPOSE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("6to4", ("2002::/16", "192.88.99.0/24")),
    ("Teredo", ("2001::/32",)),
    ("NAT64", ("64:ff9b::/96", "64:ff9b:1::/48")),
    ("benchmarking", ("198.18.0.0/15", "2001:2::/48")),
    ("documentation", ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")),
    ("IETF protocol assignment", ("192.0.0.0/24", "2001::/23")),
    ("shared address space", ("100.64.0.0/10",)),
    ("discard-only", ("100::/64",)),
    ("this-network", ("0.0.0.0/8",)),
)
_SPECIAL_NETWORKS = tuple(
    (kind, ipaddress.ip_network(network)) for kind, networks in SPECIAL_PURPOSE for network in networks
)


class TargetError(ValueError):
    """A webhook URL that is malformed (its message says how) or refused (``RefusedTarget``)."""


class RefusedTarget(TargetError):
    """A well-formed webhook URL that may not be used: the client is told ``REFUSED_MESSAGE``
    only; ``reason`` (which address, or that the name does not resolve) is for the server log."""

    def __init__(self, reason: str) -> None:
        super().__init__(REFUSED_MESSAGE)
        self.reason = reason


def sign(secret: str, timestamp: str, body: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``timestamp.body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def mask_query(url: str) -> str:
    """The URL as listed after creation: every query value and any fragment replaced by ``***``
    (tokens receivers put there are the client's secrets), parameter names kept."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return redact_target(url)
    masked = urlencode([(name, "***") for name, _ in query], safe="*") if parts.query else ""
    if parts.query and not query:
        masked = "***"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, masked, "***" if parts.fragment else ""))


def redact_target(url: str) -> str:
    """The URL for logs: scheme, host, port and path; no credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def forbidden_kind(address: str) -> str | None:
    """Why an address may not be a webhook target (a loopback address ...), or None if public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    for kind, network in _SPECIAL_NETWORKS:
        if ip.version == network.version and ip in network:
            return kind
    for kind, flag in (
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return kind
    if not ip.is_global:
        return "non-public"
    return None


def parse_ports(value: str) -> frozenset[int]:
    """ALERT_ALLOWED_PORTS: ports webhooks may use besides 80 and 443, "8080,8443" or ranges
    "9000-9100"; empty for none. ValueError with a sentence when malformed."""
    ports: set[int] = set()
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        low, dash, high = item.partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise ValueError(
                f"ALERT_ALLOWED_PORTS: {item!r} is not a port or a range of ports (8080, 9000-9100)"
            ) from None
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"ALERT_ALLOWED_PORTS: {item!r} is not within 1-65535 (low-high)")
        ports.update(range(first, last + 1))
    return frozenset(ports)


def parse_target(url: str) -> tuple[str, int]:
    """(host, port) of a well-formed webhook URL; TargetError with a sentence otherwise."""
    if not url:
        raise TargetError("webhook_url is required: the http(s) URL deliveries are POSTed to")
    if len(url) > MAX_URL_LENGTH:
        raise TargetError(f"webhook_url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise TargetError("webhook_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"webhook_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetError("webhook_url must be an http:// or https:// URL")
    if not parts.hostname:
        raise TargetError("webhook_url has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetError("webhook_url must not carry credentials (user:password@): deliveries are signed instead")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class WebhookResolver:
    """getaddrinfo for webhook hosts on threads of its own, at most ``max_lookups`` at once.

    Never the loop's default executor, which the providers' HTTP clients resolve on: a webhook
    host whose DNS hangs cannot take their threads. A lookup that outlives its timeout keeps its
    thread (getaddrinfo cannot be interrupted) and its slot until it returns, so hung lookups never
    pile up threads or queue work behind them: later lookups wait for a slot within their own
    timeout and fail as "does not resolve" when none frees up."""

    def __init__(self, max_lookups: int = MAX_LOOKUPS) -> None:
        self.max_lookups = max_lookups
        self._executor = ThreadPoolExecutor(max_lookups, thread_name_prefix="webhook-dns")
        self._slots = asyncio.Semaphore(max_lookups)

    async def lookup(
        self,
        host: str,
        port: int,
        timeout: float,  # noqa: ASYNC109 - a bound on the slot wait and the lookup together
        family: int = socket.AF_UNSPEC,
    ) -> list[tuple[Any, ...]]:
        """getaddrinfo's answer (SOCK_STREAM); OSError or TimeoutError when it has none in time."""
        if _ip_literal(host):  # no DNS, no thread
            return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            await self._slots.acquire()
            try:
                future = loop.run_in_executor(
                    self._executor, functools.partial(socket.getaddrinfo, host, port, family, socket.SOCK_STREAM)
                )
            except BaseException:
                self._slots.release()
                raise
            future.add_done_callback(self._done)
            return list(await asyncio.shield(future))

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._slots.release()
        if not future.cancelled():
            future.exception()  # retrieved: a lookup given up on may still fail later

    async def addresses(self, host: str, port: int, timeout: float) -> list[str]:  # noqa: ASYNC109
        infos = await self.lookup(host, port, timeout)
        return [str(info[4][0]) for info in infos]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def check_target(
    url: str,
    *,
    allow_private: bool,
    resolver: WebhookResolver,
    allowed_ports: Iterable[int] = (),
    timeout: float = 5.0,  # noqa: ASYNC109
) -> None:
    """Refuse a malformed URL (TargetError saying how), and a port not allowed, a host that does
    not resolve, or (unless ``allow_private``) one any of whose addresses is not public
    (RefusedTarget: one generic sentence for the client, the reason for the log)."""
    host, port = parse_target(url)
    if port not in DEFAULT_PORTS and port not in set(allowed_ports):
        raise RefusedTarget(f"port {port} is not 80, 443 or one of ALERT_ALLOWED_PORTS")
    try:
        addresses = await resolver.addresses(host, port, timeout)
    except (OSError, TimeoutError) as exc:
        raise RefusedTarget(f"{host[:100]} does not resolve ({type(exc).__name__}: {str(exc)[:100]})") from None
    if allow_private:
        return
    for address in addresses:
        kind = forbidden_kind(address)
        if kind is not None:
            raise RefusedTarget(f"{host[:100]} resolves to {address}, a {kind} address")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for deliveries: ``WebhookResolver``, refusing names that resolve to any
    non-public address (a name re-pointed since the alert was made)."""

    def __init__(self, resolver: WebhookResolver, allow_private: bool, timeout: float) -> None:
        self._resolver = resolver
        self._allow_private = allow_private
        self._timeout = timeout

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await self._resolver.lookup(host, port, self._timeout, family)
        results: list[ResolveResult] = []
        for info_family, _, proto, _, address in infos:
            resolved = str(address[0])
            if info_family == socket.AF_INET6 and len(address) >= 4 and address[3]:
                resolved = f"{resolved}%{address[3]}"  # a link-local address's scope
            if not self._allow_private:
                kind = forbidden_kind(resolved)
                if kind is not None:
                    raise OSError(f"{host} resolves to {resolved}, a {kind} address: refused")
            results.append(
                ResolveResult(
                    hostname=host,
                    host=resolved,
                    port=int(address[1]),
                    family=info_family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        return results

    async def close(self) -> None:
        pass  # the WebhookResolver is its owner's to close


def backoff_seconds(attempts: int, base: float) -> float:
    """Wait after the ``attempts``-th failure: base, 2 base, 4 base ... at most an hour."""
    return float(min(base * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS))


class WebhookSender:
    """POSTs one signed delivery; answers None when delivered, else why it failed.

    Owns the ``WebhookResolver`` that both the alert API (checks at creation) and the deliveries
    use."""

    def __init__(
        self,
        *,
        timeout: float,
        allow_private: bool,
        allowed_ports: Iterable[int] = (),
        resolver: WebhookResolver | None = None,
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.allowed_ports = frozenset(allowed_ports)
        self.resolver = resolver or WebhookResolver()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.resolver, self.allow_private, self.timeout), limit=100
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def check(self, url: str) -> None:
        """``check_target`` with this sender's rules and resolver."""
        await check_target(
            url,
            allow_private=self.allow_private,
            resolver=self.resolver,
            allowed_ports=self.allowed_ports,
            timeout=self.timeout,
        )

    async def send(self, url: str, secret: str, body: str, key: str, attempt: int) -> str | None:
        try:
            # IP literals never reach the resolver: check them (and names, once more) here.
            await self.check(url)
        except RefusedTarget as exc:
            return f"refused: {exc.reason}"
        except TargetError as exc:
            return f"refused: {exc}"
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "cryptosignals-alerts/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            IDEMPOTENCY_HEADER: key,
            ATTEMPT_HEADER: str(attempt),
        }
        try:
            async with self._client().post(url, data=body.encode(), headers=headers, allow_redirects=False) as answer:
                if 200 <= answer.status < 300:
                    return None
                if 300 <= answer.status < 400:
                    location = redact_target(answer.headers.get("Location", "?"))
                    return f"redirect {answer.status} to {location} (not followed)"
                return f"status {answer.status}"
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {str(exc)[:200]}"
        except OSError as exc:
            return f"{type(exc).__name__}: {str(exc)[:200]}"

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.resolver.close()
