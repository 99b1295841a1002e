"""Edge hardening (issue 24), through the real Envoy and the real server: bodies must be JSON (415),
the client is the TCP peer on every listener (a forged X-Forwarded-For picks no bucket), /metrics
needs a key when keys are set, failed key checks spend a bucket, and Envoy bounds its heap,
connections, header time and HTTP/2 streams, with HSTS over TLS."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from cryptosignals.v1 import live_pb2, live_pb2_grpc, signal_pb2, signal_pb2_grpc

from service.edge.envoy import H2_MAX_CONCURRENT_STREAMS, HSTS_VALUE
from service.rpc import server as server_module
from service.rpc.client_limit import ClientLimiter
from tests.stack import Stack, free_port, running_stack
from tests.test_tls import make_certificate
from twin import RecordedTwin

ALERT = b'{"symbol": "BTC", "condition": "becomes_long", "webhookUrl": "https://93.184.215.14/hook"}'


# --- Item 2: request bodies are JSON -------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data"],
)
async def test_a_body_that_is_not_json_is_415_before_the_transcoder(
    rest: httpx.AsyncClient, method: str, content_type: str | None
) -> None:
    headers = {"Origin": "https://evil.example"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    for path in ("/alerts", "/alerts/0123456789abcdef0123456789abcdef", "/alerts?x=1"):
        reply = await rest.request(method, path, content=ALERT, headers=headers)
        assert reply.status_code == 415, (method, path, content_type, reply.status_code, reply.text)
        assert reply.headers["content-type"].startswith("application/json")
        assert reply.json() == {
            "code": 3,
            "message": "request bodies must be JSON: send Content-Type: application/json",
        }


async def test_a_cross_site_simple_post_creates_no_alert(rest: httpx.AsyncClient) -> None:
    # What a web page can send without a CORS preflight: text/plain holding JSON.
    forged = await rest.post(
        "/alerts", content=ALERT, headers={"Content-Type": "text/plain", "Origin": "https://evil.example"}
    )
    assert forged.status_code == 415
    listed = await rest.get("/alerts")
    assert "93.184.215.14" not in listed.text


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=utf-8", "application/json;charset=UTF-8"]
)
async def test_json_bodies_pass_the_gate(rest: httpx.AsyncClient, content_type: str) -> None:
    # Malformed JSON: past the content-type gate, refused by the transcoder as bad JSON (400).
    reply = await rest.post("/alerts", content=b"{", headers={"Content-Type": content_type})
    assert reply.status_code == 400, reply.text
    # Reads and deletes carry no body: no content type asked.
    assert (await rest.get("/alerts")).status_code != 415
    assert (await rest.delete("/alerts/0123456789abcdef0123456789abcdef")).status_code != 415


async def test_native_grpc_through_the_rest_port_is_not_refused(stack: Stack) -> None:
    # gRPC over h2c on Envoy's REST port: its content type is application/grpc, not JSON.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.settings.port}") as channel:
        info = await signal_pb2_grpc.SignalServiceStub(channel).GetApiInfo(signal_pb2.GetApiInfoRequest(), timeout=30)
    assert info.name


# --- Item 3: the client is the TCP peer on every listener ----------------------------------------

# One token a second: of twenty calls made at once, at most a few pass however slowly they run.
RATE, BURST, CALLS = 1, 1, 20


@contextlib.asynccontextmanager
async def relay_from(local: str, port: int) -> AsyncIterator[int]:
    """A TCP relay on loopback whose connections reach 127.0.0.1:``port`` from ``local``: a gRPC
    client (which cannot pick its source address) is seen as another machine."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.fixture(scope="module")
async def tls_stack(twin: RecordedTwin, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """HTTPS on the REST listener, the gRPC TLS listener, and a client limit of one call a second."""
    directory = tmp_path_factory.mktemp("certs")
    cert, key = make_certificate(directory, serial=4004)
    async with running_stack(
        twin,
        tls_cert_file=str(cert),
        tls_key_file=str(key),
        grpc_tls_port=free_port(),
        client_rate_limit_per_second=RATE,
        client_rate_limit_burst=BURST,
    ) as stack:
        yield stack


def _ca(stack: Stack) -> Path:
    assert stack.settings.tls_cert_file is not None
    return stack.settings.tls_cert_file


async def _count_refusals(calls: list[Callable[[], Awaitable[bool]]]) -> tuple[int, float]:
    """Runs the calls at once: (how many were refused, seconds the batch took)."""
    started = time.monotonic()
    refused = await asyncio.gather(*(call() for call in calls))
    return sum(refused), time.monotonic() - started


def _assert_limited(listener: str, refused: int, seconds: float) -> None:
    # One token at first, one more a second: at most BURST + the refills (and one for rounding) pass,
    # however slowly the machine ran the batch; a forged header that picked a bucket lets all pass.
    allowed = CALLS - refused
    assert refused >= 1, f"{listener}: all {CALLS} calls with forged X-Forwarded-For passed"
    assert allowed <= BURST + math.ceil(seconds * RATE) + 1, (listener, allowed, seconds)


def _forged(i: int) -> str:
    return f"198.51.100.{i + 1}"


async def test_rest_listener_ignores_a_forged_forwarded_for(tls_stack: Stack) -> None:
    transport = httpx.AsyncHTTPTransport(
        local_address="127.0.0.21", verify=ssl.create_default_context(cafile=_ca(tls_stack))
    )
    async with httpx.AsyncClient(base_url=tls_stack.rest_url, transport=transport, timeout=30) as client:

        async def call(i: int) -> bool:
            reply = await client.get("/", headers={"X-Forwarded-For": _forged(i)})
            assert reply.status_code in {200, 429}, reply.text
            return reply.status_code == 429

        refused, seconds = await _count_refusals([lambda i=i: call(i) for i in range(CALLS)])  # type: ignore[misc]
    _assert_limited("REST", refused, seconds)


async def _grpc_refusals(channel: grpc.aio.Channel) -> tuple[int, float]:
    stub = signal_pb2_grpc.SignalServiceStub(channel)

    async def call(i: int) -> bool:
        try:
            await stub.GetApiInfo(
                signal_pb2.GetApiInfoRequest(), metadata=(("x-forwarded-for", _forged(i)),), timeout=30
            )
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
            return True
        return False

    return await _count_refusals([lambda i=i: call(i) for i in range(CALLS)])  # type: ignore[misc]


async def test_grpc_tls_listener_ignores_a_forged_forwarded_for(tls_stack: Stack) -> None:
    """The review's reproduction: at one call a second, forged headers let all ten pass."""
    credentials = grpc.ssl_channel_credentials(root_certificates=_ca(tls_stack).read_bytes())
    async with (
        relay_from("127.0.0.22", tls_stack.settings.grpc_tls_port) as port,
        grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel,
    ):
        refused, seconds = await _grpc_refusals(channel)
    _assert_limited("gRPC TLS", refused, seconds)


async def test_direct_grpc_listener_ignores_a_forged_forwarded_for(tls_stack: Stack) -> None:
    # 127.0.0.23 is not a trusted proxy (TRUSTED_PROXIES: 127.0.0.1): its header is not believed.
    async with (
        relay_from("127.0.0.23", tls_stack.server.port) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        refused, seconds = await _grpc_refusals(channel)
    _assert_limited("gRPC", refused, seconds)


async def test_grpc_tls_streams_are_counted_per_real_client(twin: RecordedTwin, tmp_path: Path) -> None:
    """WATCH_MAX_PER_CLIENT: a forged X-Forwarded-For does not open a second stream through the gRPC
    TLS listener (the review: it did)."""
    cert, key = make_certificate(tmp_path, serial=5005)
    async with running_stack(
        twin,
        tls_cert_file=str(cert),
        tls_key_file=str(key),
        grpc_tls_port=free_port(),
        watch_max_per_client=1,
    ) as stack:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        async with (
            relay_from("127.0.0.51", stack.settings.grpc_tls_port) as port,
            grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel,
        ):
            live = live_pb2_grpc.LiveServiceStub(channel)
            first = live.WatchSignals(
                live_pb2.WatchSignalsRequest(symbol="BTC"), metadata=(("x-forwarded-for", _forged(1)),)
            )
            assert (await first.read()).symbol == "BTC"  # registered with the hub
            second = live.WatchSignals(
                live_pb2.WatchSignalsRequest(symbol="ETH"), metadata=(("x-forwarded-for", _forged(2)),)
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await second.read()
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            first.cancel()


# --- Item 10: HSTS over TLS, HTTP/2 limits, overload manager, header timeout ---------------------


async def test_https_answers_carry_hsts_and_plain_http_does_not(tls_stack: Stack, rest: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(
        base_url=tls_stack.rest_url, verify=ssl.create_default_context(cafile=_ca(tls_stack)), timeout=30
    ) as client:
        for path in ("/health", "/signals/NOT_A_COIN!", "/nope"):
            reply = await client.get(path)
            assert reply.headers.get("strict-transport-security") == HSTS_VALUE, (path, reply.status_code)
    assert "strict-transport-security" not in (await rest.get("/health")).headers


def _h2_settings(sock: socket.socket) -> dict[int, int]:
    """Sends the HTTP/2 preface and returns the server's first SETTINGS (id -> value)."""
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + struct.pack(">I", 0)[1:] + bytes([4, 0]) + struct.pack(">I", 0))
    buffered = b""

    def read(n: int) -> bytes:
        nonlocal buffered
        while len(buffered) < n:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before SETTINGS"
            buffered += chunk
        data, buffered = buffered[:n], buffered[n:]
        return data

    while True:
        header = read(9)
        length = int.from_bytes(header[:3], "big")
        kind, flags = header[3], header[4]
        payload = read(length)
        if kind == 4 and not flags & 1:  # SETTINGS, not an ACK
            return {
                int.from_bytes(payload[i : i + 2], "big"): int.from_bytes(payload[i + 2 : i + 6], "big")
                for i in range(0, length, 6)
            }


MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE = 3, 4


def test_http2_clients_get_bounded_streams_and_windows(tls_stack: Stack) -> None:
    context = ssl.create_default_context(cafile=_ca(tls_stack))
    context.set_alpn_protocols(["h2"])
    for port in (tls_stack.settings.port, tls_stack.settings.grpc_tls_port):
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.selected_alpn_protocol() == "h2"
            settings = _h2_settings(tls)
        assert settings.get(MAX_CONCURRENT_STREAMS) == H2_MAX_CONCURRENT_STREAMS, (port, settings)
        assert settings.get(INITIAL_WINDOW_SIZE) == 65536, (port, settings)


CAP = 3


@pytest.fixture(scope="module")
async def capped(twin: RecordedTwin) -> AsyncIterator[Stack]:
    """Envoy holding three client connections at most and waiting a second for request headers."""
    async with running_stack(
        twin, envoy_overrides={"max_connections": CAP, "request_headers_timeout_seconds": 1}
    ) as stack:
        yield stack


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the peer closes (a reset counts as closed)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


async def test_a_client_slow_to_send_its_headers_is_cut_off(capped: Stack) -> None:
    def slow_client() -> bytes:
        with socket.create_connection(("127.0.0.1", capped.settings.port), timeout=60) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")  # and never the blank line
            return _read_all(sock)

    answer = await asyncio.to_thread(slow_client)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


async def test_connections_past_the_cap_are_closed_and_the_heap_is_watched(capped: Stack) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"

    def over_the_cap() -> bytes:
        held = []
        try:
            for _ in range(CAP):
                sock = socket.create_connection(("127.0.0.1", capped.settings.port), timeout=60)
                held.append(sock)
                sock.sendall(request)
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # kept alive: an active connection
            with socket.create_connection(("127.0.0.1", capped.settings.port), timeout=60) as extra:
                with contextlib.suppress(OSError):
                    extra.sendall(request)
                return _read_all(extra)
        finally:
            for sock in held:
                sock.close()

    assert await asyncio.to_thread(over_the_cap) == b""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{capped.settings.envoy_admin_port}", timeout=30) as admin:
        stats = (await admin.get("/stats")).text
        assert "overload.envoy.resource_monitors.fixed_heap.pressure" in stats
        assert "overload.envoy.overload_actions.stop_accepting_requests.active" in stats
        # The held connections are gone once Envoy has seen them close (the next test needs room).
        deadline = time.monotonic() + 30
        while (await admin.get("/stats", params={"filter": "^http.rest.downstream_cx_active$"})).text.strip() != (
            "http.rest.downstream_cx_active: 0"
        ):
            assert time.monotonic() < deadline, "Envoy still counts the closed connections"
            await asyncio.sleep(0.05)


# --- Item 10: /metrics needs a key, failed key checks spend a bucket -----------------------------


@pytest.fixture(scope="module")
async def keyed(twin: RecordedTwin) -> AsyncIterator[Stack]:
    async with running_stack(
        twin, signal_api_keys="key-one", client_rate_limit_per_second=1, client_rate_limit_burst=3
    ) as stack:
        yield stack


async def test_metrics_need_a_key_when_keys_are_set(keyed: Stack, rest: httpx.AsyncClient) -> None:
    direct = f"http://127.0.0.1:{keyed.server.metrics.port}/metrics"
    # Each from its own address, two failures each: within the failure bucket (3), so the right key
    # is still served (the frozen-clock test below checks what a third failure costs).
    bad = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic key-one"}]
    checks = [(f"{keyed.rest_url}/metrics", "127.0.0.33", bad[:2]), (direct, "127.0.0.34", bad[1:])]
    for url, address, attempts in checks:
        async with httpx.AsyncClient(timeout=30, transport=httpx.AsyncHTTPTransport(local_address=address)) as client:
            for headers in attempts:
                refused = await client.get(url, headers=headers)
                assert refused.status_code == 401, (url, headers)
                assert refused.json()["code"] == 16 and "cryptosignals_" not in refused.text
                assert refused.headers["www-authenticate"] == "Bearer"
            allowed = await client.get(url, headers={"Authorization": "Bearer key-one"})
            assert allowed.status_code == 200 and "cryptosignals_rpc_requests_total" in allowed.text
    # Without keys nothing changes: Prometheus scrapes as before.
    assert (await rest.get("/metrics")).status_code == 200


async def test_failed_key_checks_spend_the_callers_bucket(keyed: Stack) -> None:
    def client_from(address: str) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=address)
        return httpx.AsyncClient(base_url=keyed.rest_url, transport=transport, timeout=30)

    async with client_from("127.0.0.31") as guesser, client_from("127.0.0.32") as other:
        started = time.monotonic()
        guesses = await asyncio.gather(
            *(guesser.get("/market/BTC", headers={"Authorization": f"Bearer guess-{i}"}) for i in range(30))
        )
        seconds = time.monotonic() - started
        statuses = [r.status_code for r in guesses]
        assert set(statuses) <= {401, 429}, statuses
        # Three failures at once, then one more a second: the rest are refused without a key check.
        assert statuses.count(401) <= 3 + math.ceil(seconds) + 1, (statuses, seconds)
        assert statuses.count(429) >= 1, statuses
        refused = next(r for r in guesses if r.status_code == 429)
        assert refused.json()["code"] == 8 and int(refused.headers["retry-after"]) >= 1
        # Another address with the right key is not affected.
        assert (await other.get("/market/BTC", headers={"Authorization": "Bearer key-one"})).status_code == 200


async def test_an_address_out_of_failures_is_refused_even_with_the_right_key(
    twin: RecordedTwin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once an address has spent its failure bucket, no answer tells it whether a key was right:
    unary calls and streams with the right key are refused too, until the bucket refills. The failure
    buckets' clock is frozen here, so nothing refills while the test runs, however slowly."""
    now = [1000.0]

    def frozen(settings: Any) -> ClientLimiter:
        return ClientLimiter(1, 3, settings.trusted_proxy_networks, clock=lambda: now[0])

    monkeypatch.setattr(server_module, "auth_failures", frozen)
    async with (
        running_stack(
            twin, signal_api_keys="key-one", client_rate_limit_per_second=1, client_rate_limit_burst=3
        ) as stack,
        relay_from("127.0.0.42", stack.server.port) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        signals = signal_pb2_grpc.SignalServiceStub(channel)
        live = live_pb2_grpc.LiveServiceStub(channel)

        async def market(key: str) -> grpc.StatusCode:
            try:
                await signals.GetMarket(
                    signal_pb2.GetMarketRequest(symbol="BTC"),
                    metadata=(("authorization", f"Bearer {key}"),),
                    timeout=30,
                )
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        codes = [await market(f"guess-{i}") for i in range(4)]
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
        assert await market("key-one") == grpc.StatusCode.RESOURCE_EXHAUSTED
        stream = live.WatchSignals(
            live_pb2.WatchSignalsRequest(symbol="BTC"), metadata=(("authorization", "Bearer key-one"),), timeout=30
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream.read()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # The metrics port shares the failure buckets: blocked there too, and guessing there costs.
        metrics = f"http://127.0.0.1:{stack.server.metrics.port}/metrics"
        right = {"Authorization": "Bearer key-one"}
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.42")) as same:
            assert (await same.get(metrics, headers=right)).status_code == 429
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.43")) as scraper:
            guessed = [(await scraper.get(metrics, headers={"Authorization": f"Bearer g{i}"})) for i in range(4)]
            assert [r.status_code for r in guessed] == [401, 401, 401, 429]
            assert guessed[-1].json()["code"] == 8 and guessed[-1].headers["retry-after"] == "1"
            assert (await scraper.get(metrics, headers=right)).status_code == 429
        # Another address is not affected; this one is served again once its bucket refills.
        async with httpx.AsyncClient(base_url=stack.rest_url, timeout=30) as other:
            answer = await other.get("/market/BTC", headers={"Authorization": "Bearer key-one"})
            assert answer.status_code == 200
        now[0] += 10
        assert await market("key-one") == grpc.StatusCode.OK
