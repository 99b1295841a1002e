"""The launcher as a subprocess whose output is read as it comes: tests wait for its lines (events),
and a busy replica's log never fills the pipe and stalls it."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.stack import free_port


def two_free_ports() -> int:
    """A port p with p+1 free too, from 20000-30000: below the kernel's ephemeral range, and apart
    from the 10000-19999 free_port() draws the other ports from."""
    for _ in range(100):
        first = random.randint(20000, 30000)
        with contextlib.ExitStack() as stack:
            try:
                for candidate in (first, first + 1):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        return first
    raise RuntimeError("no two consecutive free ports")


class Launcher:
    """``python -m service.commands.launcher`` with its own ports; every line it prints is kept."""

    def __init__(self, cwd: Path, *args: str, **extra_env: str) -> None:
        self.port = free_port()
        self.admin_port = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "PORT": str(self.port),
            "GRPC_PORT": str(free_port()),
            "ENVOY_ADMIN_PORT": str(self.admin_port),
            "TWIN_PORT": str(free_port()),
            "METRICS_PORT": str(free_port()),
            "WS_PORT": str(two_free_ports()),  # replica i listens on WS_PORT + i
            "LAUNCHER_METRICS_PORT": str(self.metrics_port),
            "SHUTDOWN_GRACE_SECONDS": "1",
            "CLIENT_RATE_LIMIT_PER_SECOND": "0",
            **extra_env,
        }
        for key in ("COINGLASS_API_KEY", "COINAPI_KEY", "LUNARCRUSH_API_KEY", "SIGNAL_API_KEYS", "REDIS_URL"):
            if key not in extra_env:
                env.pop(key, None)
        self.env = env
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.commands.launcher", *args],
            env=env,
            cwd=cwd,  # no .env there
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                self.lines.append(raw.decode(errors="replace"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # end of output
            self._changed.notify_all()

    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def mark(self) -> int:
        """Where the output is now: wait_for(..., after=mark) looks only at later lines."""
        with self._changed:
            return len(self.lines)

    def wait_for(self, pattern: str, timeout: float = 40.0, after: int = 0) -> re.Match[str]:
        """The first line (from index ``after``) matching ``pattern``; fails on timeout or exit."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = after
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if line == "":
                        pytest.fail(f"launcher exited before printing {pattern!r}:\n{''.join(self.lines)}")
                    match = compiled.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"launcher did not print {pattern!r} within {timeout:.0f} s:\n{''.join(self.lines)}")
                self._changed.wait(left)

    def pid_of(self, label: str, after: int = 0) -> int:
        """The pid of the latest start of ``label`` (e.g. "server on port 50052") from ``after`` on."""
        match = self.wait_for(rf"started {re.escape(label)} \(pid (\d+)\)", after=after)
        return int(match[1])

    def wait_exit(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
