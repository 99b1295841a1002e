"""Webhook deliveries: where they may go, how they are signed, and the dispatcher that sends them.

A target must be an http(s) URL whose host resolves only to public addresses (every resolved
address is checked, when the alert is made and again on each connection, so a name re-pointed at
a private address later is refused too) unless private targets are allowed. Redirects are never
followed; a redirect, a 5xx, any non-2xx answer, a timeout or a refused connection is a failed
attempt, retried with exponential backoff until the retry window ends. Logs name the delivery,
the target without its query, the attempt and the error, never the signing secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import socket
import time
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

log = logging.getLogger("cryptosignals.alerts")

MAX_URL_LENGTH = 2048
MAX_BACKOFF_SECONDS = 3600.0
SIGNATURE_HEADER = "X-Signal-Signature"
TIMESTAMP_HEADER = "X-Signal-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Signal-Attempt"


class TargetError(ValueError):
    """A webhook URL that is malformed or points somewhere it may not."""


def sign(secret: str, timestamp: str, body: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``timestamp.body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return "sha256=" + mac.hexdigest()


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
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
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


async def check_target(url: str, *, allow_private: bool, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Refuse a malformed URL, a host that does not resolve, and (unless ``allow_private``) one
    any of whose addresses is private, loopback or link-local."""
    host, port = parse_target(url)
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except (OSError, TimeoutError):
        raise TargetError(f"the webhook host {host[:100]} does not resolve") from None
    if allow_private:
        return
    for info in infos:
        address = str(info[4][0])
        kind = forbidden_kind(address)
        if kind is not None:
            raise TargetError(
                f"webhook_url resolves to {address}, a {kind} address: webhooks must be on public addresses"
            )


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing names that resolve to any non-public address."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            for result in results:
                kind = forbidden_kind(result["host"])
                if kind is not None:
                    raise OSError(f"{host} resolves to {result['host']}, a {kind} address: refused")
        return results

    async def close(self) -> None:
        await self._inner.close()


def backoff_seconds(attempts: int, base: float) -> float:
    """Wait after the ``attempts``-th failure: base, 2 base, 4 base ... at most an hour."""
    return float(min(base * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS))


class WebhookSender:
    """POSTs one signed delivery; answers None when delivered, else why it failed."""

    def __init__(self, *, timeout: float, allow_private: bool) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allow_private), limit=100)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def send(self, url: str, secret: str, body: str, key: str, attempt: int) -> str | None:
        try:
            # IP literals never reach the resolver: check them (and names, once more) here.
            await check_target(url, allow_private=self.allow_private, timeout=self.timeout)
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
