"""``python -m bench.load``'s verdict checks every target it prints (RSS included)."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.load import LoadReport, judge


def good_report() -> LoadReport:
    report = LoadReport(total=10)
    report.statuses = Counter({200: 9, 503: 1})
    report.by_path = Counter({("/signals/BTC", 200): 9, ("/coinglass/liquidations/ETH/heatmap", 503): 1})
    return report


def test_a_run_meeting_every_target_passes() -> None:
    checks = judge(good_report(), 80.0, 90.0)
    assert len(checks) == 6 and all(met for _, met in checks), checks


@pytest.mark.parametrize(
    ("spoil", "before", "after", "failed"),
    [
        (lambda r: r.statuses.update({200: -1}), 80.0, 90.0, "answered"),
        (lambda r: r.bad_answers.append("GET /x: unmapped 500"), 80.0, 90.0, "bad bodies"),
        (lambda r: r.transport_errors.update({"ServerDisconnectedError": 1}), 80.0, 90.0, "transport"),
        (lambda r: r.by_path.update({("/market/SOL", 503): 1}), 80.0, 90.0, "down for good"),
        (lambda r: None, 140.0, 151.0, "RSS after < 150 MB"),
        (lambda r: None, 60.0, 90.0, "RSS growth < 20 MB"),
    ],
)
def test_each_printed_target_can_fail_the_verdict(spoil, before: float, after: float, failed: str) -> None:  # type: ignore[no-untyped-def]
    report = good_report()
    spoil(report)
    missed = [target for target, met in judge(report, before, after) if not met]
    assert len(missed) == 1 and failed in missed[0], missed
