"""Start-up errors are one line naming the setting and the fix, a non-zero exit and no traceback (issue 14)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.edge import envoy
from service.edge.envoy import EnvoyStartError, write_config
from tests.stack import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def taken() -> Iterator[int]:
    """A port some other process listens on."""
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def run_server(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(free_port()),
        "METRICS_PORT": str(free_port()),
        "WS_PORT": str(free_port()),
        **env,
    }
    # cwd: an empty directory, so no developer's .env is read.
    return subprocess.run(
        [sys.executable, "-m", "service.rpc.server"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_taken_metrics_port(tmp_path: Path, taken: int) -> None:
    assert_one_line(run_server(tmp_path, METRICS_PORT=str(taken)), "METRICS_PORT", str(taken), "free port")


def test_a_taken_grpc_port(tmp_path: Path, taken: int) -> None:
    assert_one_line(run_server(tmp_path, GRPC_HOST="0.0.0.0", GRPC_PORT=str(taken)), "GRPC_PORT", "free port")


def test_a_bad_setting(tmp_path: Path) -> None:
    assert_one_line(run_server(tmp_path, CLIENT_RATE_LIMIT_PER_SECOND="lots"), "CLIENT_RATE_LIMIT_PER_SECOND")


def test_a_taken_http_or_admin_port_is_named_before_envoy_starts(tmp_path: Path, taken: int) -> None:
    with pytest.raises(EnvoyStartError, match=r"^port \d+ \(PORT\) is not free: .*set PORT to a free port$"):
        write_config(tmp_path / "envoy.yaml", port=taken, grpc_port=1, admin_port=free_port())
    with pytest.raises(EnvoyStartError, match="ENVOY_ADMIN_PORT"):
        write_config(tmp_path / "envoy.yaml", port=free_port(), grpc_port=1, admin_port=taken)


def test_a_missing_envoy_is_one_line_the_launcher_reports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"envoy not found.*make gen"):  # the launcher reports RuntimeErrors
        envoy.envoy_binary()


def test_a_taken_websocket_port(tmp_path: Path, taken: int) -> None:
    assert_one_line(run_server(tmp_path, WS_PORT=str(taken)), "WS_PORT", str(taken), "free port")
