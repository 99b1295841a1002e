"""A backtest report as the text table the command prints (the chart is in chart.py)."""

from __future__ import annotations

from signals.backtest import BacktestReport, OutcomeStats
from signals.inputs import from_ms


def pct(x: float) -> str:
    return f"{x * 100:5.1f}%"


def _row(o: OutcomeStats) -> str:
    net = "-" if o.mean_net_return_pct is None else f"{o.mean_net_return_pct:+.3f}%"
    return (
        f"  {o.name:<15}{o.count:>6}  {pct(o.hit_rate)} [{pct(o.hit_rate_ci95_low)}, {pct(o.hit_rate_ci95_high)}]"
        f"  {o.mean_forward_return_pct:+8.3f}%  {o.median_forward_return_pct:+8.3f}%  {o.effective_sample_size:7.1f}"
        f"  {net:>9}"
    )


def print_report(symbol: str, interval: str, r: BacktestReport) -> None:
    print(
        f"\n{symbol} {interval}, {from_ms(r.start_ms):%Y-%m-%d %H:%M} .. {from_ms(r.end_ms):%Y-%m-%d %H:%M} UTC, "
        f"horizon {r.horizon_bars} bars: {r.bars_scored} bars scored, {r.warmup_bars} warm-up, "
        f"{r.bars_without_outcome} without outcome"
    )
    print(f"\n  {'':<15}{'count':>6}  hit rate [95% interval]   mean ret.  median ret.  eff. n   net pos.")
    for row in (*r.classes, r.positions, *r.baselines):
        print(_row(row))
    print(
        f"  (mean ret. of a class is the price move; net pos.: the position's mean return after {r.fee_bps:g} bps "
        "a side and the funding held)"
    )
    draws, p = r.random_entries_draws, r.random_entries_p_value
    print(f"\n  signal vs random entries ({draws} block permutations): p = {p:.3f}")
    print(f"\n  {'factor':<18}{'coverage':>9}  {'IC':>7}  {'p':>6}  source")
    for f in r.factors:
        print(
            f"  {f.factor:<18}{pct(f.coverage):>9}  {f.information_coefficient:+7.3f}  {f.ic_p_value:6.3f}  "
            f"{f.source or '-'}"
        )
    print(
        "\n  confidence calibration (positions): "
        + ", ".join(f"{c.confidence} {c.count} at {pct(c.hit_rate).strip()}" for c in r.confidence_calibration)
    )
    print(
        f"  look-ahead check: {r.lookahead.mismatches} mismatches over {r.lookahead.bars_compared} bars "
        f"at {r.lookahead.cut_points} cut points"
    )
    print(f"  statistics: blocks of {r.block_bars} bars, effective sample size {r.effective_sample_size:.0f}")
    for note in r.notes:
        print(f"  note: {note}")
    print(f"\n  {r.verdict}\n")
