"""Webhook targets, signatures and the sender, without a server: which addresses are refused, what
a URL may look like, the README's verification snippet against the signer, backoff, and the sender
refusing loopback targets at delivery time, not following redirects, bounding a hang."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from records.webhooks import (
    GuardedResolver,
    TargetError,
    WebhookSender,
    backoff_seconds,
    check_target,
    forbidden_kind,
    parse_target,
    redact_target,
    sign,
)
from tests.webhook_receiver import readme_verify, webhook_receiver


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.10", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_addresses(address: str, kind: str | None) -> None:
    assert forbidden_kind(address) == kind


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "required"),
        ("example.com/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http://", "no host"),
        ("http://a b/", "spaces"),
        ("http://x/\n", "control"),
        ("http://host:99999/", "not a valid URL"),
        ("https://user:secret@example.com/", "credentials"),
        ("https://example.com/" + "a" * 2100, "longer than 2048"),
    ],
)
def test_malformed_urls_are_refused_with_a_sentence(url: str, words: str) -> None:
    with pytest.raises(TargetError, match=words):
        parse_target(url)


def test_well_formed_urls() -> None:
    assert parse_target("https://example.com/hook?x=1") == ("example.com", 443)
    assert parse_target("http://93.184.215.14:8080/h") == ("93.184.215.14", 8080)
    assert redact_target("https://u:p@example.com:8443/hook?token=abc#f") == "https://example.com:8443/hook"


async def test_every_resolved_address_is_checked() -> None:
    with pytest.raises(TargetError, match="loopback"):
        await check_target("http://localhost:8080/hook", allow_private=False)
    await check_target("http://localhost:8080/hook", allow_private=True)
    with pytest.raises(TargetError, match="does not resolve"):
        await check_target("http://no-such-host.invalid/hook", allow_private=True)
    with pytest.raises(OSError, match="loopback"):
        await GuardedResolver(allow_private=False).resolve("localhost", 80)


def test_the_readme_snippet_verifies_what_the_signer_signs() -> None:
    verify = readme_verify()
    secret, body = "whsec_test", b'{"id":"k","symbol":"BTC"}'
    timestamp = str(int(time.time()))
    headers = {"X-Signal-Timestamp": timestamp, "X-Signal-Signature": sign(secret, timestamp, body.decode())}
    assert verify(secret, headers, body)
    assert not verify("whsec_other", headers, body)
    assert not verify(secret, headers, body + b" ")
    old = str(int(time.time()) - 3600)
    assert not verify(secret, {**headers, "X-Signal-Timestamp": old}, body)  # a replay
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Signal-Signature"] == f"sha256={expected}"


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff_seconds(n, 30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff_seconds(20, 30) == 3600


async def test_the_sender() -> None:
    async with webhook_receiver() as receiver:
        strict = WebhookSender(timeout=1.0, allow_private=False)
        error = await strict.send(receiver.url, "s", "{}", "key", 1)
        assert error is not None and error.startswith("refused:") and "loopback" in error
        assert receiver.received == []  # never connected
        await strict.aclose()

        sender = WebhookSender(timeout=0.5, allow_private=True)
        assert await sender.send(receiver.url, "s", "{}", "key", 1) is None
        receiver.answer = lambda _: "redirect"
        error = await sender.send(receiver.url, "s", "{}", "key", 2)
        assert error is not None and error.startswith("redirect 302") and "(not followed)" in error
        receiver.answer = lambda _: 503
        assert await sender.send(receiver.url, "s", "{}", "key", 3) == "status 503"
        receiver.answer = lambda _: "hang"
        assert await sender.send(receiver.url, "s", "{}", "key", 4) == "no answer within 0.5 s"
        assert [r.path for r in receiver.received] == ["/hook"] * 4
        await sender.aclose()
