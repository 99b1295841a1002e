"""``make backtest``: the backtest report as a table and a chart, and walk-forward weight fitting.

Without ``COINGLASS_API_KEY`` (or with ``--offline``) it runs on the bundled real Coinglass history
(BTC, 4h, 2024-11-14..2025-05-13) served by the recorded twin on loopback, through the same
provider clients, loader, replay and scorer as ``GET /backtest``; with a key it runs on live history.

    python -m service.commands.backtest                       # report + chart, offline on the bundled data
    python -m service.commands.backtest --walk-forward        # also fit weights, rolling, out of sample
    python -m service.commands.backtest --symbol ETH --start 2025-06-01T00:00:00Z   # live, with a key
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from scoring import ScoringConfig
from scoring.config import load_profile
from service.app import Providers, build_backtester, build_providers
from service.mappers.backtest import parse_time
from service.reports.chart import write_chart
from service.reports.table import pct as _pct
from service.reports.table import print_report
from service.settings import Settings
from signals.backtester import DEFAULT_HORIZON_BARS, plan_period
from signals.costs import DEFAULT_FEE_BPS, Costs
from signals.errors import DomainError
from signals.history import INTERVAL_NAMES, INTERVALS, load_history
from signals.inputs import DAY_MS, from_ms
from signals.panel_statistics import MeanInterval
from signals.walkforward import MIN_P, Fit, Judgement, describe_weights, walk_forward, write_config

BUNDLED_START, BUNDLED_END = "2024-11-15T00:00:00Z", "2025-05-13T08:00:00Z"
BUNDLED_NOTE = "bundled real Coinglass history, BTC 4h (twin/recorded/coinglass/history/README.md)"


@contextlib.asynccontextmanager
async def _settings(offline: bool) -> AsyncIterator[Settings]:
    if not offline:
        yield Settings()
        return
    from twin import RecordedTwin  # offline only: the bundled history is served by the recorded twin

    twin = RecordedTwin()
    await twin.start()
    try:
        urls: dict[str, Any] = {name.lower(): url for name, url in twin.base_urls().items()}
        # Placeholder keys: the twin ignores their values; they make the keyed providers "configured".
        yield Settings(
            _env_file=None,  # type: ignore[call-arg]
            **urls,
            coinglass_api_key=SecretStr("offline"),
            coinapi_key=SecretStr("offline"),
            lunarcrush_api_key=SecretStr("offline"),
            rate_limits="coinglass=0",
        )
    finally:
        await twin.stop()


def _f(x: float, spec: str = "+.3f") -> str:
    return "n/a" if not math.isfinite(x) else format(x, spec)


def _interval(m: MeanInterval | None) -> str:
    if m is None:
        return ""
    return f"{_f(m.mean)}% [{_f(m.low)}, {_f(m.high)}]"


def _print_judgement(j: Judgement) -> None:
    print(
        f"    {'rule':<12}{'LONG':>6}{'SHORT':>7}{'NEUTRAL':>8}  {'score IC':>8} {'(SE, p)':<15}"
        f"{'net P&L/bar [95%]':<32}vs always long [95%]"
    )
    for r in j.rules:
        ic = f"{_f(r.score_ic):>8} ({_f(r.score_ic_se, '.3f')}, {_f(r.score_ic_p, '.2f')})"
        if not math.isfinite(r.score_ic):
            ic = f"{'n/a':>8} {'':<15}"
        print(
            f"    {r.name:<12}{_pct(r.long_share):>6}{_pct(r.short_share):>7}{_pct(r.neutral_share):>8}  "
            f"{ic:<24}{_interval(r.net):<32}{_interval(r.vs_always_long)}".rstrip()
        )


def _print_fit(fit: Fit) -> None:
    print(f"    {'factor':<18}{'IC':>7}  {'SE':>6}  {'p':>6}  {'p Holm':>6}  {'shrunk':>7}  evidence")
    for e in fit.evidence:
        verdict = "passes" if e.passes else "-"
        stats = f"{_f(e.ic):>7}  {_f(e.se, '.3f'):>6}  {_f(e.p_value, '.3f'):>6}  {_f(e.p_holm, '.3f'):>6}"
        print(f"    {e.factor:<18}{stats}  {_f(e.shrunk):>7}  {verdict}")
    print(f"    fitted weights: {describe_weights(fit.weights)}")


async def run(args: argparse.Namespace) -> int:
    offline = args.offline or not os.environ.get("COINGLASS_API_KEY")
    start_raw = args.start or (BUNDLED_START if offline else "")
    end_raw = args.end or (BUNDLED_END if offline else "")
    try:
        start, end = parse_time(start_raw, "start"), parse_time(end_raw, "end")
    except ValueError as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 2
    async with _settings(offline) as settings:
        # Only what a report uses: the providers and a Backtester (no database, recorder or alerts).
        providers = await build_providers(settings)
        scoring = load_profile(settings.scoring_profile, settings.scoring_config)  # SCORING_PROFILE=research
        backtester = build_backtester(providers, settings, scoring)
        try:
            period = plan_period(INTERVALS[args.interval], start, end, args.horizon)
            report = await backtester.run(args.symbol, period)
            if offline:
                print(f"offline: {BUNDLED_NOTE}")
            print_report(args.symbol, period.interval, report)
            chart = Path(args.chart or f"backtest-{args.symbol}-{period.interval}.png")
            write_chart(report, args.symbol, period.interval, chart)
            print(f"chart written to {chart}")
            if args.walk_forward:
                await _walk_forward(providers, scoring, args, period.interval_ms, period.start_ms, period.end_ms)
        except DomainError as exc:  # a refused period, history unavailable: one sentence, exit 2
            print(f"backtest: {exc}", file=sys.stderr)
            return 2
        finally:
            await backtester.aclose()
            await providers.aclose()
    return 0


async def _walk_forward(
    providers: Providers, scoring: ScoringConfig, args: argparse.Namespace, step: int, start: int, end: int
) -> None:
    history, _ = await load_history(providers.clients, args.symbol, step, start, end)
    train_bars, test_bars = args.train_days * DAY_MS // step, args.test_days * DAY_MS // step
    costs = Costs(args.fee_bps)
    result = await asyncio.to_thread(
        walk_forward, history, scoring, start, end, args.horizon, train_bars, test_bars, costs, args.symbol
    )
    h = args.horizon
    print(
        f"walk-forward: fit on {args.train_days} days, judge on the next {args.test_days}, rolling; "
        f"horizon {h} bars; fees {costs.fee_bps:g} bps per side + funding\n"
        f"  fit: each factor's rank IC with the {h}-bar forward return on the training bars (outcomes purged at the\n"
        f"    training end); SE = sd of the IC under every circular shift; shrunk IC = sign x max(0, |IC| - SE);\n"
        f"    weight only if p Holm-adjusted over the factors < {MIN_P:g} and shrunk IC > 0, proportional to the\n"
        f"    shrunk IC (social keeps its shipped weight);\n"
        f"    no factor passes: the fitted rule is flat\n"
        f"  judged: fitted and shipped weights and always long on the SAME test bars; net P&L per bar = the bar's\n"
        f"    position (+1 LONG, -1 SHORT, 0 NEUTRAL) held {h} bars, after fees and funding, flat = 0, percent;\n"
        f"    score IC: rank IC with the gross forward return (SE and p from circular shifts); intervals:\n"
        f"    circular block bootstrap (Politis-White, at least 3 horizons), paired against always long\n"
    )
    for k, fold in enumerate(result.folds, 1):
        print(
            f"  fold {k}: train {from_ms(fold.train_start_ms):%Y-%m-%d}..{from_ms(fold.train_end_ms):%Y-%m-%d}  "
            f"test {from_ms(fold.test_start_ms):%Y-%m-%d}..{from_ms(fold.test_end_ms):%Y-%m-%d}"
        )
        _print_fit(fold.fit)
        left_out = f"; {fold.unscored} left out (the fitted weights' factors missing)" if fold.unscored else ""
        print(f"    judged on {fold.judged.times.size} test bars (blocks of {fold.judged.block}){left_out}")
        _print_judgement(fold.judged)
    pooled = result.pooled
    print(f"\n  all test windows together: {pooled.times.size} bars (blocks of {pooled.block})")
    _print_judgement(pooled)
    print(
        f"  look-ahead check: {result.lookahead_mismatches} mismatches over {result.lookahead_compared} bars "
        "(every replay)"
    )
    print(f"\n  the fit on the most recent {args.train_days} days:")
    _print_fit(result.final)
    if result.final.weights is None:
        print("  no weights written: nothing passed the evidence rule\n")
        return
    out = Path(args.config_out)
    write_config(
        result.final.weights,
        out,
        f" Weights fitted by walk-forward on {args.symbol} {INTERVAL_NAMES[step]} up to "
        f"{from_ms(end):%Y-%m-%d}; NOT the shipped defaults. Load with SCORING_CONFIG={out}",
    )
    print(f"  written to {out} (SCORING_CONFIG={out} loads it; the shipped defaults are unchanged)\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make backtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbol", default="BTC")
    parser.add_argument("--interval", default="h4", choices=sorted(INTERVALS))
    parser.add_argument("--start", default="", help="RFC 3339; default: the bundled period offline, else 180 days")
    parser.add_argument("--end", default="", help="RFC 3339; default: the bundled period offline, else now")
    parser.add_argument("--horizon", type=int, default=DEFAULT_HORIZON_BARS, help="bars to the outcome (1-100)")
    parser.add_argument("--chart", default="", help="PNG path (default backtest-<symbol>-<interval>.png)")
    parser.add_argument("--offline", action="store_true", help="use the bundled history even with a key")
    parser.add_argument("--walk-forward", action="store_true", help="fit weights on rolling windows, out of sample")
    parser.add_argument("--train-days", type=int, default=90)
    parser.add_argument("--test-days", type=int, default=30)
    parser.add_argument("--config-out", default="scoring-walkforward.toml")
    parser.add_argument("--fee-bps", type=float, default=DEFAULT_FEE_BPS, help="walk-forward fee per side, bps")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
