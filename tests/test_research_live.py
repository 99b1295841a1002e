"""The research command on the live Coinglass history (no --data, COINGLASS_API_KEY set): the same
provider clients and paged history as a backtest, here over loopback to the recorded twin."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from twin import RecordedTwin


async def _research(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(  # the twin answers on this loop meanwhile
        sys.executable,
        "-m",
        "service.commands.research",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


def _env(twin: RecordedTwin, key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_KEY", "_BASE_URL"))}
    env.update(twin.base_urls())
    env["RATE_LIMITS"] = "coinglass=0"
    if key is not None:
        env["COINGLASS_API_KEY"] = key
    return env


async def test_without_data_the_command_reads_the_live_coinglass_history(twin: RecordedTwin, tmp_path: Path) -> None:
    out = tmp_path / "live.json"
    code, stdout, stderr = await _research(
        _env(twin, "test-key"),
        "--symbols", "BTC", "--start", "2024-11-20", "--end", "2025-05-10", "--horizon", "1", "--json", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    report = json.loads(out.read_text())
    assert report["parameters"]["data"] == "live Coinglass history"
    assert len(report["coins"]["BTC"]["bars"]) > 100
    assert "history: live Coinglass" in stdout
    assert twin.request_count("coinglass", "/api/futures/price/history") >= 1


async def test_without_data_or_a_key_the_command_says_what_to_give(twin: RecordedTwin) -> None:
    code, _, stderr = await _research(_env(twin, None), "--symbols", "BTC")
    assert code != 0
    assert "--data DIR" in stderr and "COINGLASS_API_KEY" in stderr
