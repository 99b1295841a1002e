"""``make research``: the signal replayed on a panel of coins and years, net of costs, with
statistics that respect overlap, the panel and the search. A table, a JSON file and a chart.

    python -m service.commands.research --data DIR --symbols BTC,ETH,XRP,BNB --interval 1d \\
        --start 2020-01-01 --end 2023-12-31 --horizon 1 --fee-bps 5 --json report.json --chart chart.png

``DIR`` is a folder in the format of ``coinglass-1d-panel-2020-2023`` (signals/dataset.py). The
signal is the served one: the same factor builders and ``score_signal`` on the folder's daily bars,
with the scoring config of ``SCORING_CONFIG`` (default: the shipped weights). Bad input (a folder
without the files, a coin absent, malformed rows, dates outside the data, a horizon longer than the
period) exits with status 2 and one sentence naming what is missing.

JSON fields (all returns in percent):

- ``parameters``: data, symbols, interval, start, end, horizonBars, feeBpsPerSide, scoringConfig.
- ``methods``: how intervals, p-values and the SPA test were computed; ``notes``: warm-up, missing
  factors, coins that start late.
- ``coins.<COIN>.bars``: every scored bar: ``time`` (RFC 3339, the open time of the last closed bar
  the signal saw), ``close`` (its close, the decision price), ``score`` (0-100), ``signal`` (LONG,
  SHORT, NEUTRAL), ``forwardReturnPct`` (gross, ``(close[t+h]/close[t]-1)*100``; null when the
  horizon runs past the end) and ``netReturnPct`` (the position's own return after a round trip of
  fees and the funding of the hold, signals/costs.py; null for NEUTRAL or without outcome).
- ``coins.<COIN>`` and ``pooled``: ``classes`` (LONG, SHORT, NEUTRAL, signal, always_long: count,
  mean gross and net return of the position with 95 % intervals, hit rate of net > 0), ``rules``
  (the tradable rule and the baselines: totalReturnPct, annualReturnPct, annualVolatilityPct,
  sharpe, maxDrawdownPct, turnoverPerYear, exposure, fundingPaidPct, feesPaidPct) and
  ``randomEntries`` (draws, Sharpe band, p-value of the signal's Sharpe, net per position band).
- ``lookahead``: per coin, bars re-scored on data whose future was changed, and mismatches.
- ``factors``: the grid: factor, horizon, unit (coin or pooled), ic, p, pHolm, pBH, count, icByYear,
  stableSign (one sign in every year, and for pooled cells in every coin).
- ``verdict``: one sentence on the pooled net result (an edge must beat random entries and survive SPA).
- ``spa``: Hansen's SPA against always long and against flat: models, best, pLower, pConsistent, pUpper.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scoring import ScoringConfigError
from scoring.config import load_profile
from signals.costs import DEFAULT_FEE_BPS, Costs
from signals.dataset import INTERVAL, Dataset, DatasetError, check_period, parse_day
from signals.inputs import DAY_MS, from_ms
from signals.replay import History
from signals.research import (
    ClassStats,
    ResearchReport,
    RuleStats,
    UnitReport,
    bar_rows,
    replay_panel,
    run_research,
    verdict,
    with_smc_candidate,
)


class InputError(ValueError):
    """Bad command-line input: one sentence."""


def _f(x: float, spec: str = "+.3f") -> str:
    return "n/a" if not math.isfinite(x) else format(x, spec)


def _class_row(c: ClassStats) -> str:
    g, n = c.gross, c.net
    return (
        f"  {c.name:<14}{c.count:>6}  {_f(g.mean):>7}% [{_f(g.low):>7}, {_f(g.high):>7}]"
        f"  {_f(n.mean):>7}% [{_f(n.low):>7}, {_f(n.high):>7}]  {_f(c.hit_rate * 100, '5.1f'):>5}%"
    )


def _rule_row(r: RuleStats) -> str:
    return (
        f"  {r.name:<16}{_f(r.total_return_pct, '+9.1f')}%  {_f(r.annual_return_pct, '+8.1f')}%  "
        f"{_f(r.sharpe, '+6.2f')}  {_f(r.max_drawdown_pct, '7.1f')}%  {_f(r.turnover_per_year, '7.1f')}x"
        f"  {_f(r.exposure * 100, '5.1f')}%  {_f(r.funding_paid_pct, '+7.2f')}%  {_f(r.fees_paid_pct, '6.2f')}%"
    )


def print_unit(u: UnitReport, horizon: int) -> None:
    print(f"\n{u.name}, horizon {horizon} bars")
    print(
        f"  {'':<14}{'count':>6}  {'gross (position) [95% interval]':<30}  {'net (position) [95% interval]':<30}  net>0"
    )
    for c in u.classes:
        print(_class_row(c))
    if u.random is not None:
        rb = u.random
        print(
            f"  random entries (net per position, {rb.draws} shifts): {_f(rb.mean_net_per_position)}% "
            f"[{_f(rb.net_low)}, {_f(rb.net_high)}]"
        )
    print(
        f"\n  {'rule (net)':<16}{'total':>10}  {'per year':>9}  {'Sharpe':>6}  {'max DD':>8}  {'turnover':>8}"
        f"  {'expos.':>6}  {'funding':>8}  {'fees':>7}"
    )
    for r in u.rules:
        print(_rule_row(r))
    if u.random is not None:
        rb = u.random
        print(
            f"  signal's Sharpe vs random entries: random band [{_f(rb.sharpe_low, '+.2f')}, "
            f"{_f(rb.sharpe_high, '+.2f')}], p = {rb.p_value:.3f}"
        )


def print_report(report: ResearchReport) -> None:
    panel, main = report.panel, report.main
    print(
        f"research: {','.join(panel.coins)} {INTERVAL}, "
        f"{from_ms(panel.start_ms):%Y-%m-%d} .. {from_ms(panel.end_ms):%Y-%m-%d}, horizon {report.horizon} bars, "
        f"fees {report.costs.fee_bps:g} bps per side; scored from {from_ms(int(panel.times[0])):%Y-%m-%d}"
    )
    for note in report.notes:
        print(f"  note: {note}")
    for method in report.methods:
        print(f"  method: {method}")
    print(f"  block length at this horizon: {main.block_bars} bars")
    for unit in main.units:
        print_unit(unit, report.horizon)
    checks = ", ".join(f"{r.coin} {r.lookahead.mismatches}/{r.lookahead.bars_compared}" for r in panel.replays)
    print(f"\n  look-ahead check (mismatches / bars re-scored on a changed future): {checks}")
    print("\nfactor grid: rank IC of each sub-score with the gross forward return (pooled = mean of the coins)")
    print(
        f"  {'factor':<18}{'h':>2}  {'unit':<7}{'IC':>7}  {'p':>6}  {'p Holm':>6}  {'p BH':>6}  sign by year"
        "  (pooled: 'stable' = one sign in every year and every coin; * BH p < 0.05)"
    )
    for cell in report.factors:
        years = " ".join(f"{y}:{'+' if v > 0 else '-'}" for y, v in cell.sign_by_year)
        mark = (" stable" if cell.unit == "pooled" and cell.stable else "") + (" *" if cell.p_bh < 0.05 else "")
        print(
            f"  {cell.factor:<18}{cell.horizon:>2}  {cell.unit:<7}{_f(cell.ic):>7}  {_f(cell.p_value, '.3f'):>6}  "
            f"{_f(cell.p_holm, '.3f'):>6}  {_f(cell.p_bh, '.3f'):>6}  {years}{mark}"
        )
    significant = [c for c in report.factors if c.p_holm < 0.05]
    print(f"  {len(report.factors)} tests; significant after Holm at 5%: {len(significant)}")
    for c in significant:
        print(f"    {c.factor} h={c.horizon} {c.unit}: IC {c.ic:+.3f}, p Holm {c.p_holm:.3f}")
    print("\ndata snooping: Hansen's SPA over the variants (signal, inverted signal, momentum only; h = 1, 3, 7)")
    for s in report.spa:
        print(
            f"  vs {s.benchmark:<14} best {s.best:<20} p = {s.p_consistent:.3f} "
            f"(lower {s.p_lower:.3f}, upper {s.p_upper:.3f}); block {s.block}, {s.reps} bootstraps"
        )
    print(f"\nverdict (pooled, net): {verdict(report)}")


def _num(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def _interval(m: Any) -> dict[str, Any]:
    return {"mean": _num(m.mean), "low": _num(m.low), "high": _num(m.high)}


def _unit_json(u: UnitReport) -> dict[str, Any]:
    out: dict[str, Any] = {
        "classes": [
            {
                "name": c.name,
                "count": c.count,
                "grossReturnPct": _interval(c.gross),
                "netReturnPct": _interval(c.net),
                "netHitRate": _num(c.hit_rate),
            }
            for c in u.classes
        ],
        "rules": [
            {
                "name": r.name,
                "totalReturnPct": _num(r.total_return_pct),
                "annualReturnPct": _num(r.annual_return_pct),
                "annualVolatilityPct": _num(r.annual_volatility_pct),
                "sharpe": _num(r.sharpe),
                "maxDrawdownPct": _num(r.max_drawdown_pct),
                "turnoverPerYear": _num(r.turnover_per_year),
                "exposure": _num(r.exposure),
                "fundingPaidPct": _num(r.funding_paid_pct),
                "feesPaidPct": _num(r.fees_paid_pct),
            }
            for r in u.rules
        ],
    }
    if u.random is not None:
        rb = u.random
        out["randomEntries"] = {
            "draws": rb.draws,
            "sharpeLow": _num(rb.sharpe_low),
            "sharpeHigh": _num(rb.sharpe_high),
            "pValue": _num(rb.p_value),
            "netPerPositionPct": _num(rb.mean_net_per_position),
            "netPerPositionLow": _num(rb.net_low),
            "netPerPositionHigh": _num(rb.net_high),
        }
    return out


def report_json(report: ResearchReport, parameters: dict[str, Any]) -> dict[str, Any]:
    panel = report.panel
    units = {u.name: u for u in report.main.units}
    return {
        "parameters": parameters,
        "verdict": verdict(report),
        "methods": list(report.methods),
        "notes": list(report.notes),
        "blockBars": report.main.block_bars,
        "coins": {coin: {**_unit_json(units[coin]), "bars": bar_rows(report, j)} for j, coin in enumerate(panel.coins)},
        "pooled": _unit_json(units["pooled"]),
        "lookahead": {
            r.coin: {
                "cutPoints": r.lookahead.cut_points,
                "barsCompared": r.lookahead.bars_compared,
                "mismatches": r.lookahead.mismatches,
            }
            for r in panel.replays
        },
        "factors": [
            {
                "factor": c.factor,
                "horizon": c.horizon,
                "unit": c.unit,
                "ic": _num(c.ic),
                "p": _num(c.p_value),
                "pHolm": _num(c.p_holm),
                "pBH": _num(c.p_bh),
                "count": c.count,
                "icByYear": {str(y): _num(v) for y, v in c.sign_by_year},
                "stableSign": c.stable,
            }
            for c in report.factors
        ],
        "spa": [
            {
                "benchmark": s.benchmark,
                "models": list(s.models),
                "best": s.best,
                "pLower": s.p_lower,
                "pConsistent": s.p_consistent,
                "pUpper": s.p_upper,
                "blockBars": s.block,
                "reps": s.reps,
            }
            for s in report.spa
        ],
    }


def live_histories(
    coins: Sequence[str], start_ms: int, end_ms: int, horizon: int
) -> tuple[list[tuple[str, History]], list[str]]:
    """Each coin's daily history from Coinglass (COINGLASS_API_KEY): the same paged, cached and
    budgeted calls as a backtest's, through the same provider clients (service/app.py builds them)."""
    if end_ms < start_ms or horizon >= (end_ms - start_ms) // DAY_MS + 1:
        raise InputError("the period must hold more days than the horizon")
    # Imported here: the dataset path never needs the provider clients.
    from service.app import build_providers
    from service.settings import load_settings
    from signals.errors import BacktestRefusedError, HistoryUnavailableError
    from signals.history import load_history

    async def load() -> tuple[list[tuple[str, History]], list[str]]:
        providers = await build_providers(load_settings())
        try:
            histories, notes = [], ["history: live Coinglass (COINGLASS_API_KEY), daily bars"]
            for coin in coins:
                history, coin_notes = await load_history(providers.clients, coin, DAY_MS, start_ms, end_ms)
                histories.append((coin, history))
                notes.extend(f"{coin}: {note}" for note in coin_notes)
            return histories, notes
        finally:
            await providers.aclose()

    try:
        return asyncio.run(load())
    except (BacktestRefusedError, HistoryUnavailableError) as exc:
        raise InputError(str(exc)) from None


def compute(args: argparse.Namespace) -> tuple[ResearchReport, dict[str, Any]]:
    """The report for parsed arguments; DatasetError / InputError on bad input."""
    # signals.history is not imported here: it pulls in the provider clients, which this command never uses.
    if args.interval.strip().lower() != INTERVAL:
        raise InputError(f"--interval {args.interval!r}: the dataset holds daily bars, use --interval 1d")
    if not args.data and not os.environ.get("COINGLASS_API_KEY"):
        raise InputError(
            "give --data DIR (a folder in the panel's format), or set COINGLASS_API_KEY for the live history"
        )
    coins = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    if len(set(coins)) != len(coins):
        raise InputError(f"--symbols {args.symbols!r} names a coin twice")
    if not 1 <= args.horizon <= 100:
        raise InputError(f"--horizon must be between 1 and 100 bars, got {args.horizon}")
    try:
        costs = Costs(args.fee_bps)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    try:
        config = load_profile(args.profile, os.environ.get("SCORING_CONFIG") or None)
    except ScoringConfigError as exc:
        raise InputError(str(exc)) from None
    start_ms, end_ms = parse_day(args.start, "--start"), parse_day(args.end, "--end")
    if args.data:
        dataset = Dataset(args.data)
        period = check_period(dataset, coins, start_ms, end_ms, args.horizon)
        histories = [(coin, dataset.history(coin, end_ms)) for coin in coins]
        notes = list(period.notes)
    else:
        histories, notes = live_histories(coins, start_ms, end_ms, args.horizon)
    panel = replay_panel(histories, config, start_ms, end_ms, notes=notes)
    if args.smc:
        panel = with_smc_candidate(panel)
    if panel.times.size <= args.horizon:
        raise InputError(f"only {panel.times.size} days could be scored, not more than the horizon of {args.horizon}")
    report = run_research(panel, config, args.horizon, costs)
    parameters = {
        "data": str(args.data) if args.data else "live Coinglass history",
        "symbols": coins,
        "interval": INTERVAL,
        "start": f"{from_ms(start_ms):%Y-%m-%d}",
        "end": f"{from_ms(end_ms):%Y-%m-%d}",
        "horizonBars": args.horizon,
        "feeBpsPerSide": costs.fee_bps,
        "scoringConfig": os.environ.get("SCORING_CONFIG") or "shipped defaults (scoring/default.toml)",
        "profile": config.profile,
    }
    return report, parameters


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.fit_profile:
        from service.commands.research_profile import run_fit

        try:
            if not args.data:
                raise InputError("--fit-profile needs --data DIR (the in-sample panel)")
            code = run_fit(args, load_profile("seed", os.environ.get("SCORING_CONFIG") or None))
        except (DatasetError, InputError, ScoringConfigError, ValueError) as exc:
            print(f"research: {exc}", file=sys.stderr)
            return 2
        print(f"done in {time.perf_counter() - started:.1f} s")
        return code
    try:
        report, parameters = compute(args)
    except (DatasetError, InputError) as exc:
        print(f"research: {exc}", file=sys.stderr)
        return 2
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report_json(report, parameters), indent=1) + "\n", encoding="utf-8")
        print(f"\nJSON written to {args.json}")
    if args.chart:
        from service.reports.research_chart import write_chart

        write_chart(report, Path(args.chart))
        print(f"chart written to {args.chart}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make research", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", default="", help="a folder in the coinglass-1d-panel format")
    parser.add_argument("--symbols", default="BTC,ETH,XRP,BNB")
    parser.add_argument("--interval", default="1d")
    parser.add_argument("--start", default="2020-01-01", help="YYYY-MM-DD (UTC day)")
    parser.add_argument("--end", default="2023-12-31", help="YYYY-MM-DD (UTC day, the last bar's open)")
    parser.add_argument("--horizon", type=int, default=1, help="bars to the outcome")
    parser.add_argument("--fee-bps", type=float, default=DEFAULT_FEE_BPS, help="fee per side, bps (taker: 5)")
    parser.add_argument("--json", default="", help="write the report as JSON here")
    parser.add_argument("--chart", default="", help="write the chart (PNG) here")
    parser.add_argument("--profile", default="seed", help="scoring profile to replay: seed (default) or research")
    parser.add_argument(
        "--smc",
        action="store_true",
        help="also study the SMC structure reading (signals/smc.py) as a weight-0 factor candidate (~1.5 s a coin)",
    )
    parser.add_argument(
        "--fit-profile",
        action="store_true",
        help="run the research profile's pre-registered walk-forward fit (docs/research-procedure.md)",
    )
    parser.add_argument("--profile-out", default="scoring/research.toml", help="where --fit-profile writes the profile")
    parser.add_argument(
        "--folds",
        type=_folds,
        default=None,
        help="TRAIN_END:TEST_START:TEST_END,... (days) instead of the 2020-2023 panel's pre-registered folds",
    )
    return parser.parse_args(argv)


def _folds(raw: str) -> Any:
    from service.commands.research_profile import fold_arg

    try:
        return fold_arg(raw)
    except (ValueError, DatasetError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(parse_args(argv)))


if __name__ == "__main__":
    main()
