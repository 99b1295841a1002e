"""A real PostgreSQL server for the history tests: its own data directory, port and socket dir.

Debian's `postgresql` package puts the binaries in /usr/lib/postgresql/<version>/bin. PostgreSQL
refuses to run as root, so under root (CI containers) the server runs as the `postgres` user the
package creates. Without the package the tests skip saying how to install it; `.ci/run` installs it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.stack import free_port

INSTALL_HINT = "PostgreSQL is not installed: install it (Debian/Ubuntu: apt-get install postgresql) to run this"


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


@dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://cryptosignals:secret-pg-pw@127.0.0.1:{self.port}/cryptosignals"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self) -> None:
        # -w: pg_ctl waits until the server accepts connections (an event, not a sleep).
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off"
        self._ctl("-w", "-t", "60", "-o", options, "-l", str(self.data_dir / "log"), "start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._ctl("-w", "-t", "60", "-m", "fast", "stop")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(INSTALL_HINT)
    run_as: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="pg-test-"))
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(workdir, "postgres", "postgres")
    data = workdir / "data"
    try:
        password_file = workdir / "pw"
        password_file.write_text("secret-pg-pw\n")
        if run_as:
            shutil.chown(password_file, "postgres", "postgres")
        subprocess.run(
            [
                *run_as,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "cryptosignals",
                "--pwfile",
                str(password_file),
                "-A",
                "scram-sha-256",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )
        server = PostgresServer(bin_dir, data, free_port(), run_as)
        server.start()
        try:
            subprocess.run(
                [*run_as, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "cryptosignals",
                 "cryptosignals"],
                check=True,
                env={**os.environ, "PGPASSWORD": "secret-pg-pw"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=60,
            )  # fmt: skip
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
