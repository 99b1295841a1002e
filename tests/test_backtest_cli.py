"""``make backtest --walk-forward``, offline: a table, a PNG chart and a TOML that SCORING_CONFIG loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring import DEFAULT_CONFIG, load_config
from service.commands import backtest as backtest_cli


async def test_offline_backtest_prints_the_report_writes_a_chart_and_a_loadable_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COINGLASS_API_KEY", raising=False)
    chart, config = tmp_path / "chart.png", tmp_path / "fitted.toml"
    args = backtest_cli.parse_args(["--walk-forward", "--chart", str(chart), "--config-out", str(config)])
    assert await backtest_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "offline: bundled real Coinglass history" in out
    for words in (
        "always_long",
        "random_entries",
        "look-ahead check: 0 mismatches",
        "out-of-sample (shipped)",
        "net pos.",
    ):
        assert words in out
    assert "No edge" in out or "Edge at the 5% level" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fitted = load_config(config)
    assert set(fitted.weights) == set(DEFAULT_CONFIG.weights)
    assert fitted.scales == DEFAULT_CONFIG.scales  # only the weights are fitted
    assert "NOT the shipped defaults" in config.read_text()
