"""A real redis-server for the scale-out tests: its own port and temp dir, no persistence."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.stack import free_port

INSTALL_HINT = "redis-server is not on PATH: install it (Debian/Ubuntu: apt-get install redis-server) to run this"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    password: str = ""

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@contextlib.contextmanager
def redis_server(password: str = "") -> Iterator[RedisServer]:
    binary = redis_server_binary()
    if binary is None:  # a developer's `make test` still works; CI installs it (.ci/run)
        pytest.skip(INSTALL_HINT)
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    if password:
        argv += ["--requirepass", password]
    with tempfile.TemporaryDirectory(prefix="redis-test-") as workdir:
        process = subprocess.Popen(
            [*argv, "--dir", workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = RedisServer(process, port, password)
        try:
            deadline = time.monotonic() + 10
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with code {process.returncode}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith((b"+PONG", b"-NOAUTH")):  # answering, with or without a password
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer PING")
                time.sleep(0.05)
            yield server
        finally:
            server.stop()
