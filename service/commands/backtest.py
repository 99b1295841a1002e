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
from signals.errors import DomainError
from signals.history import INTERVAL_NAMES, INTERVALS, load_history
from signals.inputs import DAY_MS, from_ms
from signals.walkforward import Performance, walk_forward, write_config

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


def _perf(p: Performance) -> str:
    return (
        f"{p.positions:>5} positions, hit {_pct(p.hit_rate)} [{_pct(p.hit_rate_low)}, {_pct(p.hit_rate_high)}], "
        f"mean {p.mean_return_pct:+.3f}%"
    )


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
    result = await asyncio.to_thread(walk_forward, history, scoring, start, end, args.horizon, train_bars, test_bars)
    print(f"walk-forward: fit on {args.train_days} days, judge on the next {args.test_days}, rolling\n")
    for fold in result.folds:
        print(
            f"  train {from_ms(fold.train_start_ms):%Y-%m-%d}..{from_ms(fold.train_end_ms):%Y-%m-%d}  "
            f"test {from_ms(fold.test_start_ms):%Y-%m-%d}..{from_ms(fold.test_end_ms):%Y-%m-%d}"
        )
        print(f"    in-sample (fitted)      {_perf(fold.in_sample)}")
        print(f"    out-of-sample (fitted)  {_perf(fold.out_of_sample)}")
        print(f"    out-of-sample (shipped) {_perf(fold.shipped)}")
    print(f"\n  all test windows, fitted weights:  {_perf(result.out_of_sample)}")
    print(f"  all test windows, shipped weights: {_perf(result.shipped)}")
    weights = ", ".join(f"{k} {v:g}" for k, v in result.final_weights.items())
    print(f"  weights fitted on the most recent {args.train_days} days: {weights}")
    out = Path(args.config_out)
    write_config(
        result.final_weights,
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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
