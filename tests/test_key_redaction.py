"""Provider keys never travel further than the provider's own header, even when a provider echoes them.

The twin's ``echo_key`` fault answers with the caller's key in the error body, in response headers
and (3xx) in the redirect's Location. Each provider client, each error the service builds from such
an answer, every response surface, the server's log and Envoy's log are swept for the keys; the
error messages are checked to say ``[redacted]`` where the provider's text held the key, so the
sweep cannot pass merely because the echo never reached our code.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from providers.errors import ProviderError
from service.app import App
from tests.stack import FAKE_KEYS, Stack, running_stack, stack_settings
from twin import RecordedTwin

# 200: the provider's error envelope; 401/403: key rejected; 500: server error; 302/307: redirects.
STATUSES = [200, 401, 403, 500, 302, 307]
SWEEP_PATHS = [
    "/signals/BTC?debug=true",
    "/signals/ETH",
    "/market/BTC",
    "/debug/premium/BTC",
    "/coinglass/dashboard/BTC",
    "/coinglass/markets/BTC",
    "/coinglass/liquidations/BTC?include_orders=true&include_map=true",
    "/health",
    "/metrics",
]
KEYED = ("coinglass", "coinapi", "lunarcrush")


def assert_no_keys(text: str, where: str) -> None:
    for name, key in FAKE_KEYS.items():
        assert key not in text, f"{name} leaked in {where}"


@pytest.fixture
async def app(twin: RecordedTwin) -> AsyncIterator[App]:
    built = await App.create(stack_settings(twin, cache_enabled=False, upstream_max_attempts=1))
    try:
        yield built
    finally:
        await built.aclose()


def calls(app: App) -> dict[str, Callable[[], Awaitable[Any]]]:
    return {
        "coinglass": lambda: app.clients.coinglass.coin_market("BTC"),
        "coinapi": lambda: app.clients.coinapi.exchange_rate("BTC", "USD"),
        "lunarcrush": lambda: app.clients.lunarcrush.social("BTC"),
    }


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("provider", KEYED)
async def test_a_provider_echoing_its_key_gets_an_error_without_it(
    faults: RecordedTwin, app: App, provider: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    faults.set_fault(provider, "*", "echo_key", status=status)
    faults.clear_requests()
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as caught:
        await calls(app)[provider]()
    error = caught.value
    # The twin did get the key and echo it: what follows is redaction, not absence.
    sent = [r for r in faults.requests if r.provider == provider]
    assert sent and any(key in str(sent[0].headers) for key in FAKE_KEYS.values())
    for text, where in ((str(error), "str()"), (repr(error), "repr()"), (error.reason, "reason"), (caplog.text, "log")):
        assert_no_keys(text, f"{provider} HTTP {status}: the error's {where}")
    if 300 <= status < 400:
        assert error.kind.value == "upstream"
        assert "a redirect to " in error.message and "/login" in error.message, error.message
        assert "api_key" not in error.message  # the Location's query is dropped
    else:
        assert "[redacted]" in error.message, error.message  # the provider's text, with the key cut out


def test_redaction_covers_url_encoded_spellings() -> None:
    from providers.http import ProviderHttp

    layer = ProviderHttp("coinglass", "http://127.0.0.1:9", secret="a b/c+d")
    for spelling in ("a b/c+d", "a%20b%2Fc%2Bd", "a+b%2Fc%2Bd"):
        assert layer.redact(f"key={spelling}!") == "key=[redacted]!"
    assert layer.redact("x" * 500) == "x" * 300


@pytest.fixture(scope="module")
async def echo_stack(twin: RecordedTwin) -> AsyncIterator[Stack]:
    async with running_stack(
        twin, cache_enabled=False, upstream_max_attempts=1, upstream_timeout_seconds=1.0, rpc_deadline_seconds=4.0
    ) as stack:
        yield stack


@pytest.mark.parametrize("status", STATUSES)
async def test_every_provider_echoing_its_key_leaks_it_nowhere(
    faults: RecordedTwin, echo_stack: Stack, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    faults.set_fault("*", "*", "echo_key", status=status)
    bodies: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=echo_stack.rest_url, timeout=10) as client:
        with caplog.at_level(logging.DEBUG):
            for path in SWEEP_PATHS:
                response = await client.get(path)
                headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
                bodies.append((path, f"{headers}\n\n{response.text}"))
    echoed = [r for r in faults.requests if r.provider in KEYED]
    assert echoed, "no keyed provider was asked: the sweep proves nothing"
    for path, text in bodies:
        assert_no_keys(text, f"GET {path}")
    assert_no_keys(caplog.text, "the server's log")
    assert echo_stack.envoy is not None
    assert_no_keys(echo_stack.envoy.log_path.read_text(), "Envoy's log")
    if not 300 <= status < 400:
        # The echoed text reached the answers, redacted (the premium probe names each endpoint's error).
        assert any("[redacted]" in text for _, text in bodies), [t[:200] for _, t in bodies]
