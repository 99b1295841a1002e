"""The SMC structure reading as a factor candidate on the panel: on the replay's clock (only bars
closed by each bar's close), in the factor grid beside the served factors, weight 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scoring import DEFAULT_CONFIG
from signals.costs import Costs
from signals.dataset import Dataset, parse_day
from signals.research import SMC_CANDIDATE, factor_study, replay_panel, with_smc_candidate

PANEL = Path(__file__).resolve().parent / "fixtures" / "panel"
START, END = parse_day("2022-09-01", "start"), parse_day("2023-01-31", "end")


def _panel(end_ms: int):  # type: ignore[no-untyped-def]
    dataset = Dataset(PANEL)
    histories = [(coin, dataset.history(coin, end_ms)) for coin in ("BTC", "ETH")]
    return with_smc_candidate(replay_panel(histories, DEFAULT_CONFIG, START, end_ms, lookahead_window_bars=5))


def test_the_smc_reading_is_a_candidate_read_only_from_closed_bars() -> None:
    full = _panel(END)
    values = full.candidates[SMC_CANDIDATE]
    finite = values[np.isfinite(values)]
    assert finite.size > 100 and set(np.unique(finite)) <= {-1.0, -0.5, 0.0, 0.5, 1.0}
    # The look-ahead proof: the data cut after a day gives the same readings up to that day.
    cut = parse_day("2022-12-15", "cut")
    early = _panel(cut)
    rows = int(np.searchsorted(full.times, early.times[-1])) + 1
    assert early.times[0] == full.times[0]
    np.testing.assert_array_equal(early.candidates[SMC_CANDIDATE], values[:rows])


def test_the_factor_grid_judges_the_candidate_beside_the_served_factors() -> None:
    cells = factor_study(_panel(END), Costs(fee_bps=5))
    smc_cells = [c for c in cells if c.factor == SMC_CANDIDATE]
    assert {c.horizon for c in smc_cells} == {1, 3, 7}
    assert {c.unit for c in smc_cells} == {"BTC", "ETH", "pooled"}
    assert all(0 <= c.p_holm <= 1 for c in smc_cells)
    assert DEFAULT_CONFIG.weights.get(SMC_CANDIDATE, 0) == 0  # studied, never scored
