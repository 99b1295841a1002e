"""The research command (service/commands/research.py) on the fixture panel: JSON fields, the
printed figures, the chart, exit codes on bad input, and no statistics library in the serving path."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from service.commands import research

PANEL = Path(__file__).parent / "fixtures" / "panel"
ARGS = ["--data", str(PANEL), "--symbols", "BTC,ETH,XRP", "--interval", "1d", "--start", "2022-09-01"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    folder = tmp_path_factory.mktemp("research")
    out, chart = folder / "report.json", folder / "chart.png"
    argv = [*ARGS, "--end", "2023-01-31", "--horizon", "3", "--fee-bps", "5", "--json", str(out), "--chart", str(chart)]
    proc = subprocess.run(
        [sys.executable, "-m", "service.commands.research", *argv], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text(encoding="utf-8")), proc.stdout, chart


def test_every_scored_bar_has_the_documented_fields(report: tuple[dict[str, Any], str, Path]) -> None:
    data, _, _ = report
    assert set(data["coins"]) == {"BTC", "ETH", "XRP"}
    assert data["parameters"]["horizonBars"] == 3
    assert data["parameters"]["feeBpsPerSide"] == 5.0
    for coin, unit in data["coins"].items():
        bars = unit["bars"]
        assert len(bars) > 100, coin
        for bar in bars:
            assert set(bar) == {"time", "close", "score", "signal", "forwardReturnPct", "netReturnPct"}
            moment = datetime.fromisoformat(bar["time"].replace("Z", "+00:00"))
            assert (moment.hour, moment.minute) == (0, 0)  # a daily bar's open time
            assert bar["signal"] in {"LONG", "SHORT", "NEUTRAL"}
            assert 0 <= bar["score"] <= 100
            if bar["signal"] == "NEUTRAL" or bar["forwardReturnPct"] is None:
                assert bar["netReturnPct"] is None
        # forwardReturnPct is gross: (close[t+3] / close[t] - 1) * 100, from the bars' own closes.
        for now, later in zip(bars, bars[3:], strict=False):
            assert now["forwardReturnPct"] == pytest.approx((later["close"] / now["close"] - 1) * 100, abs=1e-5)
        assert all(bar["forwardReturnPct"] is None for bar in bars[-3:])  # the horizon runs past the end
        # A position's net return differs from its gross by fees (0.10 %) and funding, with its sign.
        for bar in bars:
            if bar["netReturnPct"] is None:
                continue
            side = 1 if bar["signal"] == "LONG" else -1
            funding = side * (side * bar["forwardReturnPct"] - 0.10 - bar["netReturnPct"])
            assert abs(funding) < 3.0  # three days of funding, percent: small beside the price move


def test_pooled_and_per_coin_figures_and_the_grid(report: tuple[dict[str, Any], str, Path]) -> None:
    data, _, _ = report
    for unit in [*data["coins"].values(), data["pooled"]]:
        names = [c["name"] for c in unit["classes"]]
        assert names == ["LONG", "SHORT", "NEUTRAL", "signal", "always_long"]
        for c in unit["classes"]:
            net = c["netReturnPct"]
            if c["count"] and net["low"] is not None:
                assert net["low"] <= net["mean"] <= net["high"]
        assert [r["name"] for r in unit["rules"]] == ["signal", "always_long", "random_entries"]
        assert 0 < unit["randomEntries"]["pValue"] <= 1
    grid = data["factors"]
    assert len(grid) == 8 * 3 * 4  # 7 factors + the score, horizons 1/3/7, 3 coins + pooled
    for cell in grid:
        if cell["p"] is not None:
            assert cell["p"] <= cell["pBH"] + 1e-12 <= cell["pHolm"] + 2e-12 <= 1 + 2e-12
    assert [s["benchmark"] for s in data["spa"]] == ["always_long@1", "flat"]
    for s in data["spa"]:
        assert 0 <= s["pLower"] <= s["pConsistent"] <= s["pUpper"] <= 1
    assert all(v["mismatches"] == 0 for v in data["lookahead"].values())
    assert any("Politis-White" in m for m in data["methods"])


def test_the_table_and_the_chart(report: tuple[dict[str, Any], str, Path]) -> None:
    _, printed, chart = report
    for words in ("pooled, horizon 3 bars", "factor grid", "p Holm", "Hansen's SPA", "verdict (pooled, net)"):
        assert words in printed
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--data", "/nonexistent/panel", "--end", "2023-01-31"], "does not exist"),
        ([*ARGS, "--symbols", "BTC,DOGE", "--end", "2023-01-31"], "DOGE is not in"),
        ([*ARGS, "--end", "2024-06-30"], "has price data up to 2023-01-31 only"),
        ([*ARGS, "--end", "2023-01-31", "--interval", "4h"], "use --interval 1d"),
        ([*ARGS, "--start", "2023-01-20", "--end", "2023-01-31", "--horizon", "30"], "not shorter than the period"),
        ([*ARGS, "--end", "2023-01-31", "--fee-bps", "-1"], "fee"),
    ],
)
def test_bad_input_exits_non_zero_with_one_sentence(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert research.run(research.parse_args(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert words in err
    assert err.startswith("research: ") and "\n" not in err


def test_the_serving_path_never_imports_the_statistics_libraries() -> None:
    code = (
        "import sys; import signals.research, signals.panel_statistics, signals.dataset, signals.costs, "
        "service.commands.research; "
        "bad = [m for m in ('arch', 'statsmodels', 'scipy', 'pandas') if m in sys.modules]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"imported at module level: {proc.stdout.strip()} {proc.stderr[-300:]}"


def test_the_json_has_no_nan(report: tuple[dict[str, Any], str, Path]) -> None:
    data, _, _ = report

    def walk(value: Any) -> None:
        if isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
