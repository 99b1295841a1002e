"""The one-command launcher: starts the server and Envoy (and the twin in demo mode), stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.launcher_process import Launcher, two_free_ports
from tests.stack import free_port


def _launch(tmp_path, *args: str, **extra_env: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "GRPC_PORT": str(free_port()),
        "ENVOY_ADMIN_PORT": str(free_port()),
        "TWIN_PORT": str(free_port()),
        "METRICS_PORT": str(free_port()),
        "WS_PORT": str(two_free_ports()),  # replica i listens on WS_PORT + i
        "LAUNCHER_METRICS_PORT": str(free_port()),
        "SHUTDOWN_GRACE_SECONDS": "1",
        **extra_env,
        # The served stack takes its per-client rate limit from the settings (checked in the demo test).
        "CLIENT_RATE_LIMIT_PER_SECOND": "1000",
        "CLIENT_RATE_LIMIT_BURST": "2000",
    }
    for key in ("COINGLASS_API_KEY", "COINAPI_KEY", "LUNARCRUSH_API_KEY", "SIGNAL_API_KEYS"):
        env.pop(key, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "service.commands.launcher", *args],
        env=env,
        cwd=tmp_path,  # no .env there
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return process, port


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 40) -> str:
    """Until the launcher says it is ready (from then on it supervises its parts); returns its output
    so far. Envoy answering is not enough: the launcher may still be running its own checks."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline().decode()
        if not line:
            pytest.fail("launcher exited before it was ready:\n" + "".join(lines))
        lines.append(line)
        if "ready; Ctrl-C" in line:
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
            return "".join(lines)
    pytest.fail("launcher did not become ready:\n" + "".join(lines))


def test_demo_serves_signals_offline_and_stops_cleanly_on_ctrl_c(tmp_path) -> None:
    process, port = _launch(tmp_path, "--demo")
    try:
        early = _wait_ready(port, process)
        reply = httpx.get(f"http://127.0.0.1:{port}/signals/BTC", timeout=10)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        process.send_signal(signal.SIGINT)
        code = process.wait(20)
    finally:
        if process.poll() is None:
            process.kill()
    output = early + (process.stdout.read().decode() if process.stdout else "")
    # The launcher's own output explains any failure below.
    assert reply.status_code == 200, (reply.text, output)
    assert reply.json()["signal"] in {"LONG", "SHORT", "NEUTRAL"}
    # The limit is per client, in the server: its bucket (x-ratelimit-limit on a 429) is the setting's.
    assert 'cryptosignals_client_rate_limit{quantity="burst"} 2000.0' in metrics.text
    assert 'cryptosignals_client_rate_limit{quantity="per_second"} 1000.0' in metrics.text
    assert code == 0, output
    assert "ready" in output and f"localhost:{port}" in output


def test_launcher_gives_up_naming_envoy_when_envoy_keeps_dying(tmp_path) -> None:
    """Envoy is restarted like a replica (tests/test_launcher_supervision.py); one that keeps dying
    stops everything with exit code 4 and its last lines."""
    launcher = Launcher(tmp_path, "--demo")
    label = f"envoy on port {launcher.port}"
    try:
        launcher.wait_for("ready; Ctrl-C")
        mark = 0
        for death in range(1, 6):
            pid = launcher.pid_of(label, after=mark)
            if death > 1:
                launcher.wait_for(rf"{re.escape(label)} is back and serving", after=mark)
            mark = launcher.mark()
            os.kill(pid, signal.SIGKILL)
            launcher.wait_for(rf"{re.escape(label)} exited unexpectedly with signal SIGKILL", after=mark)
        code = launcher.wait_exit()
    finally:
        launcher.close()
    output = launcher.output()
    assert code == 4, output[-3000:]
    assert f"{label} died 5 times within 60 s: giving up" in output


def test_replicas_start_behind_one_envoy_sharing_redis(tmp_path, redis_url: str) -> None:
    admin_port = free_port()
    process, port = _launch(
        tmp_path,
        "--demo",
        REPLICAS="2",
        REDIS_URL=redis_url,
        ENVOY_ADMIN_PORT=str(admin_port),
        GRPC_PORT=str(two_free_ports()),
        METRICS_PORT=str(two_free_ports()),
    )
    try:
        early = _wait_ready(port, process)
        answers = [httpx.get(f"http://127.0.0.1:{port}/signals/BTC", timeout=10) for _ in range(6)]
        clusters = httpx.get(f"http://127.0.0.1:{admin_port}/clusters", timeout=5).text
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert {a.status_code for a in answers} == {200}
    served = [line for line in clusters.splitlines() if line.startswith("grpc_server::") and "::rq_total::" in line]
    assert len(served) == 2 and all(int(line.rsplit("::", 1)[1]) >= 2 for line in served), served
    assert "replicas 2 servers" in early
