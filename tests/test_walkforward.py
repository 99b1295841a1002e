"""The walk-forward's fit and judgement on hand-made bars (signals/walkforward.py): the per-bar net
P&L arithmetic (fees per side, funding at the 8 h settlements, flat = 0), the minimum-evidence rule
(a factor without evidence gets weight 0; noise cannot put all weight on fear & greed), every rule
judged on the same bars, and the printed report naming each fold's weights."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from scoring import DEFAULT_CONFIG, FACTOR_NAMES, load_config
from service.commands import backtest as backtest_cli
from signals.costs import Costs, funding_per_bar
from signals.dataset import Reading
from signals.inputs import HOUR_MS, Series, to_ms
from signals.research import STUDIED, Panel, outcomes
from signals.walkforward import Evidence, Fit, bar_pnl, fit_weights, judge, write_config

STEP = 4 * HOUR_MS
T0 = to_ms(datetime(2025, 1, 1, tzinfo=UTC))
H = 6


def _panel(close: np.ndarray, funding_bar: np.ndarray, subs: dict[str, np.ndarray] | None = None) -> Panel:
    n = close.size
    times = T0 + STEP * np.arange(n, dtype=np.int64)
    subs = subs or {}
    sub_scores = {f: subs.get(f, np.full(n, 50.0))[:, None] for f in STUDIED if f != "score"}
    scored = np.ones((n, 1), dtype=bool)
    return Panel(
        ("BTC",),
        times,
        close[:, None].astype(np.float64),
        scored,
        np.full((n, 1), 50.0),
        np.zeros((n, 1), dtype=np.int8),
        sub_scores,
        funding_bar[:, None],
        (),
        int(times[0]),
        int(times[-1]),
        STEP,
        (),
    )


# ---- net P&L arithmetic ---------------------------------------------------------------------------

# Six 4h bars from 2025-01-01 00:00 UTC; funding readings (percent per 8 h) stamped at each bar's open.
CLOSES = np.array([100.0, 102.0, 101.0, 99.0, 100.0, 103.0])
RATES = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]


def _hand_panel() -> Panel:
    rows = [Reading(datetime(2025, 1, 1, 4 * k, tzinfo=UTC), r) for k, r in enumerate(RATES)]
    series = Series(rows, "test", STEP, max_age_ms=2 * STEP)
    times = [T0 + k * STEP for k in range(CLOSES.size)]
    per_bar = funding_per_bar(series, times, STEP)
    # Settlements at 08:00, 16:00 and 24:00 only: bar 04:00 holds 08:00 (priced at the 04:00 reading),
    # bar 12:00 holds 16:00 (0.04), bar 20:00 holds 24:00 (0.06); the other bars hold none.
    assert per_bar.tolist() == pytest.approx([0.0, 0.02, 0.0, 0.04, 0.0, 0.06])
    return _panel(CLOSES, per_bar)


def test_per_bar_net_pnl_is_the_positions_return_after_fees_and_funding_and_zero_when_flat() -> None:
    panel = _hand_panel()
    o = outcomes(panel, 2, Costs(5.0))  # h = 2 bars; a round trip costs 2 x 5 bps = 0.10 %
    sign = np.array([[1], [-1], [0], [1], [1], [0]], dtype=np.int8)
    pnl = bar_pnl(o, sign)[:, 0]
    # bar 0 LONG:  gross (101/100 - 1) = +1.000 %, funding over bars 1..2 = 0.02 + 0 -> 1.000 - 0.10 - 0.02
    # bar 1 SHORT: gross (99/102 - 1) = -2.941176 %, funding over bars 2..3 = 0 + 0.04, received by a short
    #              -> +2.941176 - 0.10 + 0.04
    # bar 2 NEUTRAL: flat, 0 (not NaN: a flat bar is judged, it earns nothing and pays nothing)
    # bar 3 LONG:  gross (103/99 - 1) = +4.040404 %, funding over bars 4..5 = 0 + 0.06 -> 4.040404 - 0.10 - 0.06
    # bars 4, 5: the horizon runs past the data: no outcome
    expected = [0.88, 2.941176 - 0.10 + 0.04, 0.0, 4.040404 - 0.10 - 0.06]
    assert pnl[:4].tolist() == pytest.approx(expected, abs=1e-6)
    assert np.isnan(pnl[4:]).all()
    always_long = bar_pnl(o, np.ones(sign.shape, dtype=np.int8))[:, 0]
    # bar 1 long: -2.941176 - 0.10 - 0.04; bar 2 long: (100/101 - 1) = -0.990099 - 0.10 - 0.04
    assert always_long[:4].tolist() == pytest.approx(
        [0.88, -2.941176 - 0.14, -0.990099 - 0.14, 4.040404 - 0.16], abs=1e-6
    )


def test_an_unscored_bar_has_no_pnl() -> None:
    panel = _hand_panel()
    panel.scored[1, 0] = False
    pnl = bar_pnl(outcomes(panel, 2, Costs(5.0)), np.ones((CLOSES.size, 1), dtype=np.int8))[:, 0]
    assert np.isnan(pnl[1]) and np.isfinite(pnl[0])


def test_every_rule_is_judged_on_the_same_bars_and_paired_against_always_long() -> None:
    panel = _hand_panel()
    o = outcomes(panel, 2, Costs(5.0))
    fitted = np.array([1, -1, 0, 1], dtype=np.int8)
    shipped = np.array([0, 0, 0, 0], dtype=np.int8)
    long_ = np.ones(4, dtype=np.int8)
    rules = (("fitted", fitted), ("shipped", shipped), ("always_long", long_))
    pad = np.zeros(2, dtype=np.int8)  # bars 4, 5: no outcome, not judged
    pnl = {k: bar_pnl(o, np.concatenate((s, pad))[:, None])[:4, 0] for k, s in rules}
    judged = judge(
        panel.times[:4],
        o.gross[:4, 0],
        {"fitted": fitted, "shipped": shipped, "always_long": long_},
        {"fitted": None, "shipped": None},
        pnl,
        2,
        seed=1,
    )
    for rule in judged.rules:
        assert rule.net.count == 4
    assert judged.rule("fitted").net.mean == pytest.approx((0.88 + 2.881176 + 0.0 + 3.880404) / 4, abs=1e-6)
    assert judged.rule("shipped").net.mean == 0.0  # flat every bar: nothing earned, nothing paid
    # Paired bar by bar: fitted minus always long = 0 (bar 0) + 5.962353 (bar 1) + 1.130099 (bar 2) + 0 (bar 3).
    paired = judged.rule("fitted").vs_always_long
    assert paired is not None
    assert paired.mean == pytest.approx((5.962353 + 1.130099) / 4, abs=1e-6)
    assert (judged.rule("fitted").long_share, judged.rule("fitted").short_share) == (0.5, 0.25)
    assert judged.rule("fitted").neutral_share == 0.25


# ---- the fit: minimum evidence ------------------------------------------------------------------


def _synthetic(seed: int, informative: bool) -> Panel:
    """540 4h bars (90 days) of a random-walk price; every factor noise, fear & greed a slow random walk
    (a daily reading, as the real index); ``informative``: momentum tracks the forward return."""
    rng = np.random.default_rng(seed)
    n = 540
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    subs = {f: 50 + 10 * rng.standard_normal(n) for f in STUDIED if f != "score"}
    subs["fear_greed"] = np.repeat(50 + np.cumsum(rng.normal(0, 3, n // 6 + 1)), 6)[:n]
    if informative:
        forward = np.zeros(n)
        forward[:-H] = (close[H:] / close[:-H] - 1) * 100
        subs["momentum"] = 50 + 5 * forward + 5 * rng.standard_normal(n)
    return _panel(close, np.zeros(n), subs)


def _fit(panel: Panel) -> Fit:
    return fit_weights(panel, DEFAULT_CONFIG, H, Costs(), int(panel.times[0]), int(panel.times[-1]))


def _evidence(fit: Fit, factor: str) -> Evidence:
    return next(e for e in fit.evidence if e.factor == factor)


def test_noise_cannot_put_all_weight_on_fear_and_greed() -> None:
    # Seed 6: fear & greed's noise has the largest IC of the factors (+0.14, raw shift p 0.08): the old
    # rule (weights proportional to positive ICs) put most weight on it. Shrunk and Holm-adjusted, it
    # has no evidence, nor has any other factor: the fitted rule is flat.
    fit = _fit(_synthetic(6, informative=False))
    fear_greed = _evidence(fit, "fear_greed")
    assert fear_greed.ic > 0.1 and fear_greed.ic == max(e.ic for e in fit.evidence)
    assert fear_greed.p_value < 0.10 < fear_greed.p_holm
    assert not any(e.passes for e in fit.evidence)
    assert fit.weights is None


def test_a_factor_without_evidence_gets_weight_zero_beside_one_with_evidence() -> None:
    fit = _fit(_synthetic(1, informative=True))
    assert fit.weights is not None
    momentum = _evidence(fit, "momentum")
    assert momentum.passes and momentum.shrunk == pytest.approx(momentum.ic - momentum.se)
    funding = _evidence(fit, "funding_rate")
    assert funding.ic > 0 and funding.shrunk > 0 and not funding.passes  # positive, but not evidence
    assert {f: w for f, w in fit.weights.items() if w > 0} == {"momentum": 90.0, "social": 10.0}
    for e in fit.evidence:
        assert (fit.weights[e.factor] > 0) == e.passes
        assert abs(e.shrunk) == pytest.approx(max(0.0, abs(e.ic) - e.se))


def test_noise_fits_are_flat_across_seeds() -> None:
    flat = sum(_fit(_synthetic(seed, informative=False)).weights is None for seed in range(20))
    assert flat >= 18  # Holm at 10 %: at most ~2 of 20 noise windows may fit anything


# ---- the report ------------------------------------------------------------------------------------


def test_the_printed_fit_names_every_factor_weight(capsys: pytest.CaptureFixture[str]) -> None:
    fit = _fit(_synthetic(1, informative=True))
    assert fit.weights is not None
    backtest_cli._print_fit(fit)
    out = capsys.readouterr().out
    names = ", ".join(f"{f} {fit.weights[f]:g}" for f in FACTOR_NAMES)
    assert f"fitted weights: {names}" in out
    for factor in FACTOR_NAMES:
        if factor != "social":
            assert f"    {factor} " in out  # its evidence row
    flat = _fit(_synthetic(6, informative=False))
    backtest_cli._print_fit(flat)
    assert (
        "fitted weights: none: no factor passes the evidence rule, the fitted rule is FLAT" in capsys.readouterr().out
    )


def test_fitted_weights_are_written_as_a_loadable_config(tmp_path: Path) -> None:
    fit = _fit(_synthetic(1, informative=True))
    assert fit.weights is not None
    path = tmp_path / "fitted.toml"
    write_config(fit.weights, path, " fitted in a test; NOT the shipped defaults")
    loaded = load_config(path)
    assert dict(loaded.weights) == pytest.approx(dict(fit.weights))
    assert loaded.scales == DEFAULT_CONFIG.scales


def test_a_fold_without_common_bars_is_reported_empty_not_judged() -> None:
    none = np.zeros(0, dtype=np.int8)
    judged = judge(
        np.zeros(0, dtype=np.int64),
        np.zeros(0),
        {"fitted": none, "shipped": none, "always_long": none},
        {"fitted": None, "shipped": None},
        {k: np.zeros(0) for k in ("fitted", "shipped", "always_long")},
        6,
        seed=1,
    )
    assert all(r.net.count == 0 and np.isnan(r.net.mean) for r in judged.rules)
