"""BacktestService's mapping: a request's fields -> a validated period; the domain report -> message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from cryptosignals.v1 import backtest_pb2, signal_pb2

from service.mappers.signal import timestamp
from service.rpc.status import coin_or_abort
from signals.backtest import BacktestReport, OutcomeStats
from signals.backtester import DEFAULT_HORIZON_BARS, BacktestPeriod, plan_period
from signals.coin_universe import CoinUniverse
from signals.costs import Costs
from signals.history import INTERVALS
from signals.inputs import from_ms

DIRECTION = {"LONG": signal_pb2.LONG, "SHORT": signal_pb2.SHORT, "NEUTRAL": signal_pb2.NEUTRAL}
MAX_FEE_BPS = 100.0  # 1% per side: beyond any exchange's taker fee
CONFIDENCE = {"high": signal_pb2.high, "medium": signal_pb2.medium, "low": signal_pb2.low}


def parse_time(raw: str, name: str) -> datetime | None:
    """An RFC 3339 time (a date alone means its midnight UTC; no offset means UTC); ValueError names it."""
    text = raw.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{name} must be an RFC 3339 time such as 2025-01-01T00:00:00Z, got {text[:32]!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def backtest_period(
    request: backtest_pb2.RunBacktestRequest, context: grpc.aio.ServicerContext, universe: CoinUniverse
) -> tuple[str, BacktestPeriod]:
    """The request's coin and period, validated (aborting with INVALID_ARGUMENT or NOT_FOUND).

    A period the domain refuses raises BacktestRefusedError, which the guard answers (rpc/status.py).
    """
    symbol = await coin_or_abort(request.symbol, context, universe)
    interval_ms = INTERVALS.get((request.interval or "h4").strip().lower())
    if interval_ms is None:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"interval must be h4, h1 or d1 (or 4h, 1h, 1d), got {request.interval[:32]!r}",
        )
        raise AssertionError("unreachable")
    try:
        start = parse_time(request.start, "start")
        end = parse_time(request.end, "end")
    except ValueError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        raise
    horizon = request.horizon_bars if request.HasField("horizon_bars") else DEFAULT_HORIZON_BARS
    return symbol, plan_period(interval_ms, start, end, horizon)


def _outcome_fields(o: OutcomeStats) -> dict[str, Any]:
    """The figures a class and a strategy share, rounded to what they can honestly claim."""
    return {
        "count": o.count,
        "hit_rate": round(o.hit_rate, 4),
        "hit_rate_ci95_low": round(o.hit_rate_ci95_low, 4),
        "hit_rate_ci95_high": round(o.hit_rate_ci95_high, 4),
        "mean_forward_return_pct": round(o.mean_forward_return_pct, 4),
        "median_forward_return_pct": round(o.median_forward_return_pct, 4),
        "effective_sample_size": round(o.effective_sample_size, 1),
    }


def _net_fields(o: OutcomeStats) -> dict[str, Any]:
    net: dict[str, Any] = {"net_count": o.net_count}
    if o.mean_net_return_pct is not None:
        net["mean_net_return_pct"] = round(o.mean_net_return_pct, 4)
    return net


def strategy_message(o: OutcomeStats) -> backtest_pb2.StrategyOutcome:
    return backtest_pb2.StrategyOutcome(name=o.name, **_outcome_fields(o), **_net_fields(o))


def class_message(c: OutcomeStats) -> backtest_pb2.ClassOutcome:
    message = backtest_pb2.ClassOutcome(signal=DIRECTION[c.name], **_outcome_fields(c), **_net_fields(c))
    if c.mean_position_return_pct is not None:
        message.mean_position_return_pct = round(c.mean_position_return_pct, 4)
    return message


def backtest_costs(request: backtest_pb2.RunBacktestRequest) -> Costs:
    """The request's fee (5 bps per side by default); ValueError naming it when out of range."""
    if not request.HasField("fee_bps"):
        return Costs()
    fee = request.fee_bps
    if not 0 <= fee <= MAX_FEE_BPS:  # NaN fails too
        raise ValueError(f"fee_bps must be between 0 and {MAX_FEE_BPS:g} (basis points per side), got {fee:g}")
    return Costs(fee)


def report_message(symbol: str, interval: str, r: BacktestReport, include_bars: bool) -> backtest_pb2.BacktestReport:
    """The domain report as a message; figures rounded to what they can honestly claim."""
    message = backtest_pb2.BacktestReport(
        symbol=symbol,
        interval=interval,
        start=timestamp(from_ms(r.start_ms)),
        end=timestamp(from_ms(r.end_ms)),
        horizon_bars=r.horizon_bars,
        bars_scored=r.bars_scored,
        warmup_bars=r.warmup_bars,
        bars_without_outcome=r.bars_without_outcome,
        verdict=r.verdict,
        classes=[class_message(c) for c in r.classes],
        signal_positions=strategy_message(r.positions),
        baselines=[strategy_message(b) for b in r.baselines],
        random_entries=backtest_pb2.RandomEntriesTest(
            draws=r.random_entries_draws, p_value=round(r.random_entries_p_value, 4)
        ),
        factors=[
            backtest_pb2.FactorReport(
                factor=f.factor,
                coverage=round(f.coverage, 4),
                information_coefficient=round(f.information_coefficient, 4),
                ic_p_value=round(f.ic_p_value, 4),
                source=f.source,
            )
            for f in r.factors
        ],
        confidence_calibration=[
            backtest_pb2.CalibrationRow(
                confidence=CONFIDENCE[row.confidence], count=row.count, hit_rate=round(row.hit_rate, 4)
            )
            for row in r.confidence_calibration
        ],
        lookahead=backtest_pb2.LookaheadCheck(
            cut_points=r.lookahead.cut_points,
            mismatches=r.lookahead.mismatches,
            bars_compared=r.lookahead.bars_compared,
        ),
        statistics=backtest_pb2.StatisticsMethod(
            method=r.method,
            block_bars=r.block_bars,
            effective_sample_size=round(r.effective_sample_size, 1),
            bootstrap_draws=r.bootstrap_draws,
            permutation_draws=r.permutation_draws,
        ),
        notes=list(r.notes),
        fee_bps=r.fee_bps,
    )
    if include_bars:
        for bar in r.bars:
            entry = backtest_pb2.BacktestBar(
                time=timestamp(from_ms(bar.time_ms)),
                price=bar.price,
                score=round(bar.score, 2),
                signal=DIRECTION[bar.signal],
                confidence=CONFIDENCE[bar.confidence],
            )
            if bar.forward_return_pct is not None:
                entry.forward_return_pct = round(bar.forward_return_pct, 4)
            if bar.funding_hold_pct is not None:
                entry.funding_hold_pct = round(bar.funding_hold_pct, 6)
            message.bars.append(entry)
    return message


def profile_result(profile: str, r: BacktestReport) -> backtest_pb2.ProfileResult:
    """One profile's headline figures on the report's bars (compare_profiles=true)."""
    always = next(b for b in r.baselines if b.name == "always_long")
    return backtest_pb2.ProfileResult(
        profile=profile,
        bars_scored=r.bars_scored,
        signal_positions=strategy_message(r.positions),
        always_long=strategy_message(always),
        random_entries=backtest_pb2.RandomEntriesTest(
            draws=r.random_entries_draws, p_value=round(r.random_entries_p_value, 4)
        ),
        verdict=r.verdict,
    )
