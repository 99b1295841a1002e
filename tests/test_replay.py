"""The replay clock of the signal domain: no look-ahead (proved by changing the future), honest
intervals, and live and replay building the same factor inputs from the same data.

History is loaded by the real loader through the real provider clients from the recorded twin,
which serves the bundled real Coinglass BTC 4h history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from scoring import DEFAULT_CONFIG
from service.app import App
from signals import replay as replay_module
from signals import walkforward
from signals.backtest import check_lookahead, run_backtest
from signals.errors import TooFewBarsError
from signals.history import load_history
from signals.inputs import HOUR_MS, Series, momentum, to_ms
from signals.replay import History, replay
from signals.walkforward import WalkForward, walk_forward, with_weights
from tests.stack import stack_settings
from twin import RecordedTwin

STEP = 4 * HOUR_MS
START = to_ms(datetime(2024, 11, 15, tzinfo=UTC))
END = to_ms(datetime(2025, 5, 13, 8, tzinfo=UTC))


@pytest.fixture(scope="module")
async def app(twin: RecordedTwin) -> AsyncIterator[App]:
    created = await App.create(stack_settings(twin))
    yield created
    await created.aclose()


@pytest.fixture(scope="module")
async def history(app: App) -> History:
    loaded, _ = await load_history(app.clients, "BTC", STEP, START, END)
    return loaded


def test_every_bar_before_a_changed_future_scores_identically(history: History) -> None:
    bars = replay(history, DEFAULT_CONFIG, START, END)
    # Full windows (every bar before each cut), at several cut points through the period.
    check = check_lookahead(history, DEFAULT_CONFIG, bars, START, END, window_bars=None, cuts=5)
    assert check.cut_points == 5
    assert check.bars_compared > 2500
    assert check.mismatches == 0


@pytest.fixture
def peeking_momentum() -> Iterator[None]:
    """A replay that reads one bar ahead for momentum: what the check exists to catch."""
    original = replay_module.BUILDERS["momentum"]
    replay_module.BUILDERS["momentum"] = ("price", lambda h, t, c: momentum(h.price, t + h.interval_ms))
    yield
    replay_module.BUILDERS["momentum"] = original


def test_the_lookahead_check_catches_a_replay_that_peeks_one_bar_ahead(
    history: History, peeking_momentum: None
) -> None:
    bars = replay(history, DEFAULT_CONFIG, START, END)
    check = check_lookahead(history, DEFAULT_CONFIG, bars, START, END, window_bars=30)
    # The bar at each cut reads the changed bar after it: it must be flagged, not silently skipped.
    assert check.mismatches >= check.cut_points


def test_intervals_widen_as_the_horizon_grows(history: History) -> None:
    widths = []
    for horizon in (1, 6, 24):
        report = run_backtest(history, DEFAULT_CONFIG, START, END, horizon, lookahead_window_bars=5)
        always_long = report.baselines[0]
        widths.append(always_long.hit_rate_ci95_high - always_long.hit_rate_ci95_low)
        assert report.block_bars >= horizon
        # Without overlap (horizon 1) every bar is a trial; with it, fewer.
        assert report.effective_sample_size <= report.bars_scored
        assert horizon == 1 or report.effective_sample_size < report.bars_scored / 2
    assert widths[0] < widths[1] < widths[2], widths


def test_factor_p_values_respect_overlap(history: History) -> None:
    """A naive p-value treats ~1,000 overlapping outcomes as independent; ours must be larger."""
    report = run_backtest(history, DEFAULT_CONFIG, START, END, 6, lookahead_window_bars=5)
    n = report.bars_scored
    for factor in report.factors:
        if factor.coverage < 0.9 or factor.information_coefficient == 0:
            continue
        rho = factor.information_coefficient
        naive_t = abs(rho) * ((n - 2) / (1 - rho * rho)) ** 0.5
        naive_p = 2 * (1 - _normal_cdf(naive_t))
        assert factor.ic_p_value >= naive_p, factor


def _normal_cdf(x: float) -> float:
    import math

    return 0.5 * (1 + math.erf(x / 2**0.5))


def test_the_same_request_gives_the_same_answer(history: History) -> None:
    a = run_backtest(history, DEFAULT_CONFIG, START, END, 6, lookahead_window_bars=5)
    b = run_backtest(history, DEFAULT_CONFIG, START, END, 6, lookahead_window_bars=5)
    assert a.random_entries_p_value == b.random_entries_p_value
    assert a.classes == b.classes


async def test_live_snapshot_momentum_and_replay_momentum_agree_on_the_same_data(app: App) -> None:
    """Live reads price changes from Coinglass's coins-markets snapshot; the replay derives them from
    a price series ending at t. The twin's snapshot and its OKX hourly candles come from one market
    model: the builder must give the snapshot's numbers (same bars, same alignment, same units)."""
    market = await app.clients.coinglass.coin_market("BTC")
    candles = await app.clients.okx.candles("BTC", bar="1H", limit=25)
    series = Series(candles, "okx:/api/v5/market/candles", HOUR_MS)
    derived = momentum(series, series.times[-1])
    for horizon in ("1h", "4h", "24h"):
        assert derived.change_pct[horizon] == pytest.approx(market.price_change_pct[horizon], abs=0.011), horizon


def test_walk_forward_judges_weights_only_on_bars_after_their_training_window(history: History) -> None:
    result = walk_forward(history, DEFAULT_CONFIG, START, END, 6, train_bars=540, test_bars=180)
    assert len(result.folds) == 3
    for fold in result.folds:
        assert fold.test_start_ms > fold.train_end_ms
        times = fold.judged.times
        assert times.size > 0 and fold.test_start_ms <= times[0] and times[-1] <= fold.test_end_ms
        # Minimum evidence: weight only for a factor whose training IC passes; otherwise flat.
        if fold.weights is not None:
            assert abs(sum(fold.weights.values()) - DEFAULT_CONFIG.total_weight) < 0.1
            assert fold.weights["social"] == DEFAULT_CONFIG.weights["social"]
        for e in fold.fit.evidence:
            assert (fold.weights is not None and fold.weights[e.factor] > 0) == e.passes
            assert e.passes == (e.p_holm < walkforward.MIN_P and e.shrunk > 0)
    assert result.lookahead_mismatches == 0


def _walk_forward_with_weights(history: History, monkeypatch: pytest.MonkeyPatch) -> WalkForward:
    """The evidence bar removed (any positive shrunk IC passes) so folds fit weights: the fitted side is replayed."""
    monkeypatch.setattr(walkforward, "MIN_P", 1.01)
    return walk_forward(history, DEFAULT_CONFIG, START, END, 6, train_bars=540, test_bars=180)


def test_fitted_shipped_and_always_long_are_judged_on_the_same_bars(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _walk_forward_with_weights(history, monkeypatch)
    assert any(fold.weights is not None for fold in result.folds)
    pooled_times = []
    for fold in result.folds:
        judged = fold.judged
        assert [r.name for r in judged.rules] == ["fitted", "shipped", "always_long"]
        for rule in judged.rules:
            pnl = judged.pnl[rule.name]
            assert pnl.shape == judged.times.shape and np.isfinite(pnl).all()
            assert rule.net.count == judged.times.size
            assert rule.net.mean == pytest.approx(float(pnl.mean()))
            if rule.vs_always_long is not None:  # paired, bar by bar
                assert rule.vs_always_long.mean == pytest.approx(float((pnl - judged.pnl["always_long"]).mean()))
        assert judged.rule("always_long").long_share == 1.0
        pooled_times.extend(judged.times.tolist())
    assert result.pooled.times.tolist() == pooled_times


def test_both_weight_sets_are_the_engines_signals(history: History, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fitted and the shipped sides are the replay's own LONG/SHORT/NEUTRAL (no second scorer):
    a bar's per-bar P&L is that direction's position."""
    result = _walk_forward_with_weights(history, monkeypatch)
    fold = next(f for f in reversed(result.folds) if f.weights is not None)
    assert fold.weights is not None
    times = set(fold.judged.times.tolist())
    for name, config in (("fitted", with_weights(DEFAULT_CONFIG, fold.weights)), ("shipped", DEFAULT_CONFIG)):
        bars = {b.time_ms: b for b in replay(history, config, fold.test_start_ms, fold.test_end_ms, bars=times)}
        pnl, long_pnl = fold.judged.pnl[name], fold.judged.pnl["always_long"]
        for k, t in enumerate(fold.judged.times.tolist()):
            scored = bars[t].scored
            assert scored is not None
            if scored.direction == "NEUTRAL":
                assert pnl[k] == 0.0
            elif scored.direction == "LONG":
                assert pnl[k] == long_pnl[k]
            else:  # a short: -gross - fees + funding, the long's gross - fees - funding mirrored
                assert pnl[k] + long_pnl[k] == pytest.approx(-2 * result.costs.round_trip_pct)


def test_a_walk_forward_without_a_test_bar_is_refused_in_one_sentence(history: History) -> None:
    with pytest.raises(TooFewBarsError, match="the walk-forward needs at least 630 bars"):
        walk_forward(history, DEFAULT_CONFIG, START, START + 100 * STEP, 6, train_bars=540, test_bars=180)
