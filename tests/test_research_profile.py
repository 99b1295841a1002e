"""Scoring profiles (issue 25): loading, the seed unchanged, reversal readings and their words, and the
research profile's walk-forward fit, deterministic on the small panel fixture."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from records.archive import config_hash
from scoring import (
    DEFAULT_CONFIG,
    Missing,
    MomentumInput,
    OpenInterestInput,
    Provenance,
    ScoringConfigError,
    SignalInputs,
    load_config,
    score_signal,
)
from scoring.config import PROFILES, load_profile
from service.commands import research as command
from signals import profile_fit as pf
from signals.costs import Costs
from signals.dataset import Dataset, parse_day

FIXTURE = Path(__file__).parent / "fixtures" / "panel"
PROVENANCE = Provenance("test", datetime(2024, 1, 1, tzinfo=UTC))
FOLDS = (
    pf.Fold(parse_day("2022-11-30", "t"), parse_day("2022-12-01", "t"), parse_day("2022-12-31", "t")),
    pf.Fold(parse_day("2022-12-31", "t"), parse_day("2023-01-01", "t"), parse_day("2023-01-31", "t")),
)


def _only(**factors: object) -> SignalInputs:
    values = {name: Missing("absent") for name in ("liquidations", "funding_rate", "momentum", "long_short_ratio")}
    values |= {name: Missing("absent") for name in ("smart_money", "open_interest", "social", "fear_greed")}
    values.update(factors)  # type: ignore[arg-type]
    return SignalInputs(**values)  # type: ignore[arg-type]


def test_seed_profile_is_the_shipped_default_and_its_hash_is_unchanged() -> None:
    seed = load_profile("seed")
    assert seed == DEFAULT_CONFIG
    assert seed.profile == "seed"
    assert not any(seed.reversal.values())
    assert seed.lookback("open_interest") == 24
    # The hash history rows carry: the same as before profiles existed (commit 2584e6f).
    assert config_hash(seed) == "d18ec8c2a8916e3d"


def test_research_profile_loads_through_the_same_loader() -> None:
    research = load_profile("research")
    assert research.profile == "research"
    assert research == load_config(PROFILES["research"])
    assert research.weights["social"] == 0  # no history to fit it on
    assert research.scales == DEFAULT_CONFIG.scales
    assert config_hash(research) != config_hash(DEFAULT_CONFIG)


def test_unknown_profile_and_bad_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScoringConfigError, match="unknown"):
        load_profile("aggressive")
    bad = tmp_path / "bad.toml"
    bad.write_text("[reversal]\nmomentum = 1\n")
    with pytest.raises(ScoringConfigError, match=r"reversal\.momentum"):
        load_config(bad)
    bad.write_text('[lookback]\nopen_interest = "3d"\n')
    with pytest.raises(ScoringConfigError, match="hours"):
        load_config(bad)


def test_reversal_mirrors_the_reading_and_says_so() -> None:
    trend = dataclasses.replace(DEFAULT_CONFIG, momentum_horizons={"24h": (1.0, 5.0)})
    reversal = dataclasses.replace(trend, reversal={**trend.reversal, "momentum": True})
    falling = _only(momentum=MomentumInput({"24h": -6.1}, PROVENANCE))
    seed_read = score_signal(falling, trend)
    rev_read = score_signal(falling, reversal)
    assert seed_read.factors[0].sub_score < 50 < rev_read.factors[0].sub_score
    assert rev_read.factors[0].sub_score == pytest.approx(100 - seed_read.factors[0].sub_score)
    assert rev_read.score == pytest.approx(100 - seed_read.score)
    assert rev_read.reason == "Price down 6.10% in 24h - short-term reversal, bullish"
    assert "downtrend" in seed_read.reason


def test_open_interest_lookback_and_reversal_words() -> None:
    config = dataclasses.replace(
        DEFAULT_CONFIG,
        reversal={**DEFAULT_CONFIG.reversal, "open_interest": True},
        lookback_hours={"open_interest": 72},
    )
    rising = _only(open_interest=OpenInterestInput(8.0, 5.0, PROVENANCE, 72))
    scored = score_signal(rising, config)
    factor = scored.factors[0]
    assert set(factor.metrics) == {"oi_change_72h_pct", "price_change_72h_pct"}
    assert factor.sub_score < 50
    assert scored.reason == (
        "Open interest +8.00% with price +5.00% in 72h - new longs, expected to unwind: short-term reversal, bearish"
    )


def test_seed_open_interest_metrics_keep_their_names() -> None:
    scored = score_signal(_only(open_interest=OpenInterestInput(8.0, 5.0, PROVENANCE)), DEFAULT_CONFIG)
    assert set(scored.factors[0].metrics) == {"oi_change_24h_pct", "price_change_24h_pct"}
    assert scored.reason.startswith("Open interest +8.00% with price +5.00% in 24h - new longs, bullish")


def _walk_forward() -> pf.WalkForwardResult:
    dataset = Dataset(FIXTURE)
    end = parse_day("2023-01-31", "t")
    histories = [(coin, dataset.history(coin, end)) for coin in ("BTC", "ETH", "XRP")]
    replayer = pf.replayer_for(histories)
    start = parse_day("2022-09-01", "t")
    probes = {h: replayer(pf.probe_config(DEFAULT_CONFIG, h), start, end) for h in pf.LOOKBACK_HOURS}
    first = int(probes[24].times[0])
    return pf.walk_forward(replayer, probes, DEFAULT_CONFIG, 1, Costs(), first, FOLDS)


def test_fit_is_deterministic_on_the_fixture() -> None:
    a, b = _walk_forward(), _walk_forward()
    assert [r.choice for r in a.folds] == [r.choice for r in b.folds]
    assert np.array_equal(a.research_sign, b.research_sign)
    assert np.array_equal(a.research_score, b.research_score, equal_nan=True)
    assert len(a.folds) == 2
    for r in a.folds:
        # Every candidate is (factor, lookback) from the declared sets; purged training ICs.
        assert {c.lookback_hours for c in r.choice.candidates} <= set(pf.LOOKBACK_HOURS)
        if r.choice.weights is not None:
            assert sum(r.choice.weights.values()) == pytest.approx(100, abs=0.05)
            assert r.choice.threshold_step in pf.THRESHOLD_STEPS
        else:
            rows = (a.frame.times >= r.fold.test_start_ms) & (a.frame.times <= r.fold.test_end_ms)
            assert not a.research_sign[rows].any()  # flat


def test_fit_command_prints_the_same_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--fit-profile",
        "--data",
        str(FIXTURE),
        "--symbols",
        "BTC,ETH,XRP",
        "--start",
        "2022-09-01",
        "--end",
        "2023-01-31",
        "--folds",
        "2022-11-30:2022-12-01:2022-12-31,2022-12-31:2023-01-01:2023-01-31",
        "--profile-out",
        str(tmp_path / "research.toml"),
    ]
    outputs = []
    for _ in range(2):
        assert command.run(command.parse_args(argv)) == 0
        outputs.append("\n".join(line for line in capsys.readouterr().out.splitlines() if not line.startswith("done")))
    assert outputs[0] == outputs[1]
    assert "no demonstrated edge" in outputs[0] or "EDGE" in outputs[0]
    assert "Hansen's SPA over the" in outputs[0]
    if (tmp_path / "research.toml").exists():
        assert load_config(tmp_path / "research.toml").profile == "research"


def test_research_confidence_is_the_measured_band() -> None:
    research = load_profile("research")
    assert research.calibration  # written by the fit
    momentum_only = dataclasses.replace(
        research,
        weights={name: (1.0 if name == "momentum" else 0.0) for name in research.weights},
    )
    for change, distance_at_least in ((-30.0, 15.0), (-2.0, 0.0)):
        scored = score_signal(_only(momentum=MomentumInput({"24h": change}, PROVENANCE)), momentum_only)
        band = momentum_only.band(scored.score)
        if scored.direction == "NEUTRAL":
            assert scored.band is None and scored.confidence == "low"
            continue
        assert scored.band == band and band is not None and abs(scored.score - 50) >= distance_at_least
        expected = "high" if band.ci_low > 0.5 else "medium" if band.hit_rate > 0.5 else "low"
        assert scored.confidence == expected
    # The seed's confidence still follows its rules, with no band.
    seed = score_signal(_only(momentum=MomentumInput({"24h": -30.0}, PROVENANCE)), DEFAULT_CONFIG)
    assert seed.band is None


def test_a_malformed_calibration_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("calibration = [{from = 5, to = 1, hit_rate = 0.5, ci_low = 0.4, ci_high = 0.6, positions = 3}]\n")
    with pytest.raises(ScoringConfigError, match=r"calibration\[0\]"):
        load_config(bad)


def test_the_desk_refuses_a_profile_the_live_sources_cannot_read() -> None:
    from signals.desk import SignalDesk

    slow = dataclasses.replace(DEFAULT_CONFIG, momentum_horizons={"72h": (1.0, 8.66)}, profile="research")
    with pytest.raises(ScoringConfigError, match="72h cannot be read live"):
        SignalDesk(None, DEFAULT_CONFIG, profiles={"research": slow})  # type: ignore[arg-type]
    wide = dataclasses.replace(DEFAULT_CONFIG, lookback_hours={"open_interest": 72}, profile="research")
    with pytest.raises(ScoringConfigError, match="72h cannot be read live"):
        SignalDesk(None, DEFAULT_CONFIG, profiles={"research": wide})  # type: ignore[arg-type]
    SignalDesk(None, DEFAULT_CONFIG, profiles={"research": load_profile("research")})  # type: ignore[arg-type]
