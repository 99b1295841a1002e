"""``make backtest --walk-forward``, offline: a table, a PNG chart and the walk-forward report (fitted weights
are written to a TOML that SCORING_CONFIG loads when a fit has evidence: tests/test_walkforward.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    for words in ("always_long", "random_entries", "look-ahead check: 0 mismatches", "net pos."):
        assert words in out
    assert "No edge" in out or "Edge at the 5% level" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The walk-forward: each fold names its weights (or says it is flat) and judges the fitted and
    # shipped weights and always long on the same test bars.
    walk = out[out.index("walk-forward: fit on 90 days") :]
    folds = walk.split("\n  fold ")[1:]
    assert len(folds) == 3
    for fold in folds:
        assert "    fitted weights: " in fold
        assert "judged on " in fold
        for rule in ("fitted", "shipped", "always_long"):
            assert f"\n    {rule} " in fold
    assert "all test windows together" in walk
    assert walk.count("    fitted weights: ") == 4  # three folds and the most recent window
    # On the bundled half-year no factor has evidence in the most recent window: nothing is written.
    assert "no weights written: nothing passed the evidence rule" in walk
    assert not config.exists()
