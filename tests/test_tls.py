"""HTTPS on the REST listener (TLS_CERT_FILE / TLS_KEY_FILE): ALPN h2 and http/1.1, and a renewed
certificate served without a restart (Envoy's file-based secret discovery)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import socket
import ssl
import time
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.edge.envoy import render_config, tls_sds_document
from service.settings import load_settings
from tests.launcher_process import Launcher
from tests.stack import free_port


def make_certificate(directory: Path, serial: int) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, written as cert.pem and key.pem.
    Each file is replaced atomically (written aside, then renamed), as certbot's renewal does."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for path, data in ((key_path, key_pem), (cert_path, certificate.public_bytes(serialization.Encoding.PEM))):
        aside = path.with_name(f".{path.name}.new")
        aside.write_bytes(data)
        os.replace(aside, path)
    return cert_path, key_path


def _handshake(port: int, alpn: list[str], ca: Path | None = None) -> tuple[str | None, int]:
    """The ALPN protocol Envoy chose and the serial number of the certificate it served."""
    context = ssl.create_default_context(cafile=str(ca)) if ca else ssl.create_default_context()
    if ca is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return tls.selected_alpn_protocol(), x509.load_der_x509_certificate(der).serial_number


async def _grpc_signal(port: int, ca_pem: bytes) -> str:
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    async with grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reply = await signal_pb2_grpc.SignalServiceStub(channel).GetSignal(
            signal_pb2.GetSignalRequest(symbol="btc"), timeout=15
        )
        return str(reply.symbol)


def test_tls_settings_go_together(tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path, 1)
    with pytest.raises(SystemExit, match="TLS_CERT_FILE and TLS_KEY_FILE go together"):
        load_settings(_env_file=None, tls_cert_file=str(cert))
    with pytest.raises(SystemExit, match="GRPC_TLS_PORT needs a certificate"):
        load_settings(_env_file=None, grpc_tls_port=50443)
    with_rest_pair = load_settings(_env_file=None, grpc_tls_port=50443, tls_cert_file=str(cert), tls_key_file=str(cert))
    assert with_rest_pair.grpc_tls_files == (cert.resolve(), cert.resolve())
    with pytest.raises(SystemExit, match=r"TLS_KEY_FILE: .*does not exist"):
        load_settings(_env_file=None, tls_cert_file=str(cert), tls_key_file=str(tmp_path / "missing.pem"))


def test_plain_http_renders_no_transport_socket(tmp_path: Path) -> None:
    plain = render_config(port=8000, grpc_port=50051, admin_port=9901)
    assert "transport_socket" not in plain and "# plain HTTP" in plain
    sds = tmp_path / "tls-sds.yaml"
    secure = render_config(port=8000, grpc_port=50051, admin_port=9901, tls_sds=sds)
    assert "DownstreamTlsContext" in secure and "alpn_protocols: ['h2', 'http/1.1']" in secure
    assert f"watched_directory: {{path: '{tmp_path}'}}" in secure
    document = tls_sds_document(Path("/c/cert.pem"), Path("/c/key.pem"))
    assert "filename: '/c/cert.pem'" in document and "filename: '/c/key.pem'" in document


def test_rest_listener_serves_https_and_picks_up_a_renewed_certificate(tmp_path: Path) -> None:
    certs = tmp_path / "live"
    cert, key = make_certificate(certs, serial=1001)
    first_ca = tmp_path / "first-ca.pem"
    first_ca.write_bytes(cert.read_bytes())
    grpc_cert, grpc_key = make_certificate(tmp_path / "grpc", serial=3003)
    grpc_tls_port = free_port()
    launcher = Launcher(
        tmp_path,
        "--demo",
        TLS_CERT_FILE=str(cert),
        TLS_KEY_FILE=str(key),
        GRPC_TLS_PORT=str(grpc_tls_port),
        GRPC_TLS_CERT_FILE=str(grpc_cert),
        GRPC_TLS_KEY_FILE=str(grpc_key),
    )
    try:
        launcher.wait_for("ready; Ctrl-C")
        # gRPC over TLS through Envoy, with its own certificate (h2 only).
        assert _handshake(grpc_tls_port, ["h2"], grpc_cert) == ("h2", 3003)
        assert asyncio.run(_grpc_signal(grpc_tls_port, grpc_cert.read_bytes())) == "BTC"
        launcher.wait_for(rf"REST +https://localhost:{launcher.port}/")
        url = f"https://127.0.0.1:{launcher.port}"
        verified = httpx.get(f"{url}/signals/BTC", verify=ssl.create_default_context(cafile=str(first_ca)), timeout=15)
        assert verified.status_code == 200, verified.text
        assert verified.json()["signal"] in {"LONG", "SHORT", "NEUTRAL"}
        assert _handshake(launcher.port, ["h2", "http/1.1"], first_ca) == ("h2", 1001)
        assert _handshake(launcher.port, ["http/1.1"], first_ca) == ("http/1.1", 1001)
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the TLS port
            httpx.get(f"http://127.0.0.1:{launcher.port}/health", timeout=5)

        # Renewal: new key and certificate in place of the old; the next handshakes get them.
        make_certificate(certs, serial=2002)
        started = time.monotonic()
        while (served := _handshake(launcher.port, ["http/1.1"])[1]) != 2002:
            assert served == 1001
            assert time.monotonic() - started < 30, "the renewed certificate was not picked up"
        print(f"\nrenewed certificate served {time.monotonic() - started:.2f} s after the files changed")
        renewed = httpx.get(f"{url}/health", verify=ssl.create_default_context(cafile=str(cert)), timeout=15)
        assert renewed.status_code == 200
        assert "started envoy" in launcher.output() and launcher.output().count("started envoy") == 1  # no restart
    finally:
        launcher.close()
