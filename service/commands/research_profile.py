"""``make research ARGS="--fit-profile ..."``: the research profile's pre-registered walk-forward fit
(docs/research-procedure.md) on a dataset folder, both profiles side by side on the same
out-of-sample bars, Hansen's SPA over every variant tried, and the chosen profile written as TOML.

    python -m service.commands.research --fit-profile --data DIR --symbols BTC,ETH,XRP,BNB \\
        --start 2020-01-01 --end 2023-12-31 --profile-out scoring/research.toml
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scoring import FACTOR_NAMES, ScoringConfig
from signals import panel_statistics as ps
from signals import profile_fit as pf
from signals.costs import Costs
from signals.dataset import Dataset, check_period, parse_day
from signals.inputs import from_ms
from signals.research import SIGNIFICANCE, UnitReport, _momentum_sign

PRIMARY_HORIZON = 1
SECONDARY_HORIZONS = (3,)
SPA_REPS = 1000
# The variants of the earlier panel study (signal, inverted, momentum only at 1, 3, 7) are counted too.
EARLIER_HORIZONS = (1, 3, 7)


def _f(x: float, spec: str = "+.3f") -> str:
    return "n/a" if not math.isfinite(x) else format(x, spec)


def _print_candidates(choice: pf.Choice) -> None:
    print(f"    {'candidate':<22}{'IC':>7}  {'SE':>6}  {'p':>6}  {'agree':>5}  {'shrunk':>7}  evidence")
    for c in choice.candidates:
        print(
            f"    {c.factor + ' ' + str(c.lookback_hours) + 'h':<22}{_f(c.ic):>7}  {_f(c.se, '.3f'):>6}  "
            f"{_f(c.p_value, '.3f'):>6}  {c.agree}/{c.coins:<3}  {_f(c.shrunk):>7}  {'passes' if c.passes else '-'}"
        )


def _describe_choice(choice: pf.Choice) -> str:
    if choice.weights is None:
        return "no factor passes the evidence rule: FLAT (no positions)"
    parts = [
        f"{f}{' (reversal)' if choice.reversal.get(f) else ''}"
        f"{' ' + str(choice.lookback[f]) + 'h' if f in choice.lookback else ''} {choice.weights[f]:g}"
        for f in FACTOR_NAMES
        if choice.weights[f] > 0
    ]
    sharpes = ", ".join(f"d={d:g}: {s:+.2f}" for d, s in choice.training_sharpe.items())
    return f"weights {'; '.join(parts)}; thresholds 50 +- {choice.threshold_step:g} (training net Sharpe {sharpes})"


def _print_unit(label: str, u: UnitReport, horizon: int) -> None:
    from service.commands.research import print_unit

    print_unit(dataclasses.replace(u, name=label), horizon)


def run_fit(args: argparse.Namespace, seed_config: ScoringConfig) -> int:
    coins = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    costs = Costs(args.fee_bps)
    dataset = Dataset(args.data)
    start_ms, end_ms = parse_day(args.start, "--start"), parse_day(args.end, "--end")
    period = check_period(dataset, coins, start_ms, end_ms, max(EARLIER_HORIZONS))
    histories = [(coin, dataset.history(coin, end_ms)) for coin in coins]
    replayer = pf.replayer_for(histories, period.notes)
    folds = tuple(getattr(args, "folds", None) or pf.PANEL_FOLDS)
    print(
        f"research profile fit: {','.join(coins)} 1d, {from_ms(start_ms):%Y-%m-%d} .. {from_ms(end_ms):%Y-%m-%d}, "
        f"fees {costs.fee_bps:g} bps per side + funding; procedure: docs/research-procedure.md"
    )
    probes = {h: replayer(pf.probe_config(seed_config, h), start_ms, end_ms) for h in pf.LOOKBACK_HOURS}
    first = int(probes[pf.LOOKBACK_HOURS[0]].times[0])
    print(f"  scored from {from_ms(first):%Y-%m-%d}; {len(folds)} expanding folds, training outcomes purged")
    runs: dict[int, pf.WalkForwardResult] = {}
    for horizon in (PRIMARY_HORIZON, *SECONDARY_HORIZONS):
        role = "primary" if horizon == PRIMARY_HORIZON else "secondary variant"
        print(f"\n== walk-forward, horizon {horizon} day(s) ({role}) ==")
        wf = pf.walk_forward(replayer, probes, seed_config, horizon, costs, first, folds)
        runs[horizon] = wf
        for k, r in enumerate(wf.folds, 1):
            print(f"  fold {k}: {pf.describe_fold(r)}")
            _print_candidates(r.choice)
            print(f"    chosen: {_describe_choice(r.choice)}")
            print(
                f"    out of sample: {r.oos_positions} positions, net {_f(r.oos_net_per_position)}% per position; "
                f"rule net Sharpe research {_f(r.oos_sharpe, '+.2f')}, seed {_f(r.seed_sharpe, '+.2f')}, "
                f"always long {_f(r.always_long_sharpe, '+.2f')}"
            )
    # ---- side by side on the same out-of-sample bars -------------------------------------------
    primary = runs[PRIMARY_HORIZON]
    frame = primary.frame
    print(
        f"\n== side by side, out of sample {from_ms(int(frame.times[0])):%Y-%m-%d} .. "
        f"{from_ms(int(frame.times[-1])):%Y-%m-%d} (every fold's test window), pooled over {len(coins)} coins, net =="
    )
    seed_value = pf.day("2020-01-01") % (2**31)
    verdict_parts: dict[int, tuple[UnitReport, UnitReport]] = {}
    for horizon, wf in runs.items():
        research_unit = pf.evaluate(wf.frame, wf.research_sign, horizon, costs, seed_value + horizon)
        seed_unit = pf.evaluate(wf.frame, wf.frame.sign, horizon, costs, seed_value + horizon)
        verdict_parts[horizon] = (research_unit, seed_unit)
        _print_unit("research profile (walk-forward, out of sample)", research_unit, horizon)
        _print_unit("seed profile (shipped), the same bars", seed_unit, horizon)
        ic = pf.score_ic(wf.frame, wf.research_score, horizon, costs)
        seed_ic = pf.score_ic(wf.frame, wf.frame.score, horizon, costs)
        print(
            f"  score rank IC with the {horizon}-day return: research {_f(ic.pooled)} "
            f"(shift p = {_f(ic.pooled_p, '.3f')}), seed {_f(seed_ic.pooled)} (p = {_f(seed_ic.pooled_p, '.3f')})"
        )
    # ---- data snooping over every variant tried --------------------------------------------------
    names, columns = [], []
    for horizon, wf in runs.items():
        names.append(f"research@{horizon}")
        columns.append(pf.daily_pnl(frame, wf.research_sign, horizon, costs))
    momentum = _momentum_sign(frame, seed_config)
    for horizon in EARLIER_HORIZONS:
        for variant, sign in (
            ("seed", frame.sign),
            ("inverted_seed", (-frame.sign).astype(np.int8)),
            ("momentum_only", momentum),
        ):
            names.append(f"{variant}@{horizon}")
            columns.append(pf.daily_pnl(frame, sign, horizon, costs))
    models = np.column_stack(columns)
    always = pf.daily_pnl(frame, np.where(frame.scored, 1, 0).astype(np.int8), 1, costs)
    block = ps.politis_white_block(always, max(EARLIER_HORIZONS))
    spa = [
        ps.spa("always_long@1", always, names, models, block, SPA_REPS, seed_value),
        ps.spa("flat", np.zeros_like(always), names, models, block, SPA_REPS, seed_value + 1),
    ]
    print(f"\n== data snooping: Hansen's SPA over the {len(names)} variants tried, out-of-sample daily net P&L ==")
    print("  variants: " + ", ".join(names))
    means = models.mean(axis=0)
    print(
        "  mean daily net P&L (% of capital): " + ", ".join(f"{n} {m:+.4f}" for n, m in zip(names, means, strict=True))
    )
    print(f"  always long {always.mean():+.4f}")
    for s in spa:
        print(
            f"  vs {s.benchmark:<14} best {s.best:<18} p = {s.p_consistent:.3f} "
            f"(lower {s.p_lower:.3f}, upper {s.p_upper:.3f}); block {s.block}, {s.reps} bootstraps"
        )
    # ---- confidence by score band (primary horizon) -----------------------------------------------
    final = pf.fit(replayer, probes, seed_config, PRIMARY_HORIZON, costs, first, end_ms)
    last_step = final.threshold_step
    print(f"\n== research profile: out-of-sample net hit rate by score band (horizon {PRIMARY_HORIZON}) ==")
    steps = {r.choice.threshold_step for r in primary.folds if r.choice.weights is not None}
    print(
        f"  (folds' thresholds 50 +- {sorted(steps) or [last_step]}; "
        f"bands of |score - 50| from the shipped profile's d = {last_step:g})"
    )
    bands = pf.confidence_bands(frame, primary.research_sign, primary.research_score, last_step, PRIMARY_HORIZON, costs)
    for b in bands:
        print(
            f"  |score-50| in [{b.low:g}, {b.high:g}): {b.positions} positions, net > 0 {_f(b.hit_rate * 100, '.1f')}% "
            f"[{b.interval[0] * 100:.1f}, {b.interval[1] * 100:.1f}]"
        )
    # ---- the verdict, by the pre-registered criteria ---------------------------------------------
    research_unit, _ = verdict_parts[PRIMARY_HORIZON]
    rules = {r.name: r for r in research_unit.rules}
    rb = research_unit.random
    c1 = rules["signal"].sharpe > rules["always_long"].sharpe
    c2 = rb is not None and rb.p_value < SIGNIFICANCE
    c3 = all(s.p_consistent < SIGNIFICANCE for s in spa)
    print("\n== verdict (pre-registered criteria, primary horizon 1, out of sample, net) ==")
    print(
        f"  1. rule net Sharpe above always long: {'yes' if c1 else 'NO'} "
        f"({rules['signal'].sharpe:+.2f} vs {rules['always_long'].sharpe:+.2f})"
    )
    print(
        f"  2. beats random entries (p < 0.05): {'yes' if c2 else 'NO'} (p = {rb.p_value if rb else float('nan'):.3f})"
    )
    print(
        f"  3. SPA over {len(names)} variants p < 0.05 vs always long and flat: {'yes' if c3 else 'NO'} "
        f"({', '.join(f'{s.benchmark} {s.p_consistent:.3f}' for s in spa)})"
    )
    verdict = "EDGE demonstrated out of sample" if c1 and c2 and c3 else "no demonstrated edge"
    print(f"  => {verdict}; the default profile stays seed")
    # ---- the shipped research profile: the procedure on the whole window --------------------------
    window = f"{from_ms(first):%Y-%m-%d} .. {from_ms(end_ms):%Y-%m-%d}"
    print(f"\n== research profile: the procedure on the whole window {window} ==")
    _print_candidates(final)
    print(f"    chosen: {_describe_choice(final)}")
    if final.weights is None:
        print("  nothing passes on the whole window: no profile written")
        return 0
    out = Path(args.profile_out)
    provenance = [
        "Research profile (issue 25): written by the pre-registered walk-forward fit, docs/research-procedure.md",
        f"python -m service.commands.research --fit-profile --data {args.data} --symbols {','.join(coins)} "
        f"--start {args.start} --end {args.end} --fee-bps {costs.fee_bps:g}",
        f"fitted on {from_ms(first):%Y-%m-%d}..{from_ms(end_ms):%Y-%m-%d} at horizon {PRIMARY_HORIZON} day;",
        f"out-of-sample verdict: {verdict}. Not the default: SCORING_PROFILE=seed.",
    ]
    out.write_text(pf.profile_toml(final, provenance, bands), encoding="utf-8")
    print(f"  written to {out}")
    return 0


def fold_arg(raw: str) -> Sequence[pf.Fold]:
    """``TRAIN_END:TEST_START:TEST_END,...`` (days), for other folders than the 2020-2023 panel."""
    out = []
    for part in raw.split(","):
        a, b, c = part.split(":")
        out.append(pf.Fold(parse_day(a, "--folds"), parse_day(b, "--folds"), parse_day(c, "--folds")))
    return out
