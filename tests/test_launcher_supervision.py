"""The launcher supervises: a killed replica or Envoy is restarted while the others serve, without
one failed call; a part that keeps dying, or cannot start, stops everything loudly."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.launcher_process import Launcher, two_free_ports

CLIENTS = 8
# The target is 5 s; a loaded 2-core CI machine gets a generous margin (the figure is printed).
BACK_WITHIN_SECONDS = 15.0


class Load:
    """CLIENTS threads calling GET /signals/BTC until stopped; every status and error is counted."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.done = 0
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]

    def _client(self) -> None:
        with httpx.Client(timeout=30.0) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(f"{self.url}/signals/BTC").status_code
                except httpx.HTTPError as exc:
                    status, error = 0, f"{type(exc).__name__}: {exc}"
                else:
                    error = ""
                with self._changed:
                    self.statuses[status] += 1
                    if error:
                        self.errors.append(error)
                    self.done += 1
                    self._changed.notify_all()

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def wait_calls(self, count: int, timeout: float = 60.0) -> None:
        """Until ``count`` more calls have been answered."""
        with self._changed:
            target = self.done + count
            if not self._changed.wait_for(lambda: self.done >= target, timeout):
                pytest.fail(f"load made only {self.done} of {target} calls in {timeout:.0f} s")

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def _host_stats(admin_port: int, grpc_port: int) -> dict[str, str]:
    """Envoy's view of one replica: its /clusters lines as {stat: value}."""
    text = httpx.get(f"http://127.0.0.1:{admin_port}/clusters", timeout=5).text
    prefix = f"grpc_server::127.0.0.1:{grpc_port}::"
    return {
        line[len(prefix) :].split("::", 1)[0]: line.rsplit("::", 1)[1]
        for line in text.splitlines()
        if line.startswith(prefix)
    }


def _launcher_metric(launcher: Launcher, name: str, instance: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{launcher.metrics_port}/metrics", timeout=5).text
    match = re.search(rf'^{name}\{{instance="{re.escape(instance)}",part="[a-z]+"\}} (\S+)$', text, re.MULTILINE)
    return float(match[1]) if match else 0.0


def test_a_replica_killed_under_load_costs_no_call_and_comes_back(tmp_path: Path) -> None:
    grpc_port = two_free_ports()
    launcher = Launcher(
        tmp_path,
        "--demo",
        REPLICAS="2",
        GRPC_PORT=str(grpc_port),
        METRICS_PORT=str(two_free_ports()),
        LOG_LEVEL="WARNING",  # a line per call would be most of the machine's work
    )
    victim = f"server on port {grpc_port + 1}"
    try:
        launcher.wait_for("ready; Ctrl-C")
        with Load(f"http://127.0.0.1:{launcher.port}") as load:
            load.wait_calls(200)
            mark = launcher.mark()
            os.kill(launcher.pid_of(victim), signal.SIGKILL)
            killed = time.monotonic()
            launcher.wait_for(rf"{re.escape(victim)} is back and serving", timeout=60, after=mark)
            # Back means Envoy's health check passed again and it routes calls to it.
            before = int(_host_stats(launcher.admin_port, grpc_port + 1).get("rq_total", "0"))
            while True:
                stats = _host_stats(launcher.admin_port, grpc_port + 1)
                if stats.get("health_flags") == "healthy" and int(stats.get("rq_total", "0")) > before:
                    break
                assert time.monotonic() - killed < 60, stats
                load.wait_calls(1)
            back_seconds = time.monotonic() - killed
            print(f"\nreplica SIGKILLed under load: back and serving through Envoy in {back_seconds:.2f} s")
            load.wait_calls(200)
        restarts = _launcher_metric(launcher, "cryptosignals_launcher_restarts_total", victim)
        deaths = _launcher_metric(launcher, "cryptosignals_launcher_deaths_total", victim)
        launcher.process.send_signal(signal.SIGINT)
        code = launcher.wait_exit()
    finally:
        launcher.close()
    output = launcher.output()
    assert load.errors == [], load.errors[:5]
    assert set(load.statuses) == {200}, (load.statuses, output[-3000:])
    assert back_seconds < BACK_WITHIN_SECONDS, f"{back_seconds:.1f} s"
    assert (restarts, deaths) == (1.0, 1.0), output[-3000:]
    assert f"{victim} exited unexpectedly with signal SIGKILL" in output
    assert code == 0, output[-3000:]
    print(f"{load.done} calls, statuses {dict(load.statuses)}")


def test_a_replica_that_keeps_dying_is_given_up_with_its_last_lines(tmp_path: Path) -> None:
    # No watchlist: the recorder's upstream calls would log after "listening" and push it out of the
    # quoted tail (the last 20 lines), which is what this test reads.
    launcher = Launcher(tmp_path, "--demo", WATCHLIST="")
    label = f"server on port {launcher.env['GRPC_PORT']}"
    try:
        launcher.wait_for("ready; Ctrl-C")
        mark = 0
        for death in range(1, 6):
            pid = launcher.pid_of(label, after=mark)
            if death > 1:  # killed once it serves again: each death is a real crash, not a start-up failure
                launcher.wait_for(rf"{re.escape(label)} is back and serving", after=mark)
            mark = launcher.mark()
            os.kill(pid, signal.SIGKILL)
            launcher.wait_for(rf"{re.escape(label)} exited unexpectedly", after=mark)
        code = launcher.wait_exit()
    finally:
        launcher.close()
    output = launcher.output()
    assert code == 3, output[-3000:]
    assert f"{label} died 5 times within 60 s: giving up" in output
    # The last lines it wrote are quoted, indented, after the verdict.
    quoted = output.split("Its last lines:", 1)[1].splitlines()
    assert any("grpc server listening" in line for line in quoted[:25]), quoted[:25]
    assert "stopping: draining" not in output  # not a Ctrl-C


def test_envoy_killed_is_restarted_and_serves_again(tmp_path: Path) -> None:
    launcher = Launcher(tmp_path, "--demo")
    label = f"envoy on port {launcher.port}"
    try:
        launcher.wait_for("ready; Ctrl-C")
        mark = launcher.mark()
        os.kill(launcher.pid_of(label), signal.SIGKILL)
        launcher.wait_for(rf"{re.escape(label)} is back and serving", after=mark)
        reply = httpx.get(f"http://127.0.0.1:{launcher.port}/signals/BTC", timeout=15)
        restarts = _launcher_metric(launcher, "cryptosignals_launcher_restarts_total", label)
        launcher.process.send_signal(signal.SIGTERM)
        code = launcher.wait_exit()
    finally:
        launcher.close()
    output = launcher.output()
    assert reply.status_code == 200, (reply.text, output[-3000:])
    assert restarts == 1.0
    assert code == 0, output[-3000:]
    # SIGTERM drains in order: the server before Envoy.
    assert "stopping: draining the server(s), then Envoy" in output


def test_a_replica_with_a_bad_setting_stops_the_launcher_with_one_line(tmp_path: Path) -> None:
    # The launcher's own settings are fine; the second replica's metrics port (65535 + 1) is not.
    launcher = Launcher(tmp_path, "--demo", REPLICAS="2", GRPC_PORT=str(two_free_ports()), METRICS_PORT="65535")
    try:
        code = launcher.wait_exit(60)
    finally:
        launcher.close()
    output = launcher.output()
    assert code == 3, output
    failures = [line for line in output.splitlines() if "start-up failed" in line]
    assert len(failures) == 1 and "invalid configuration: METRICS_PORT" in failures[0], output
    assert "restarting" not in output
