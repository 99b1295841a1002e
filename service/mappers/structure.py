"""SMC structure and correlation (signals/market.py) -> proto messages. Pure functions, no I/O."""

from __future__ import annotations

from cryptosignals.v1 import signal_pb2

from service.mappers.signal import timestamp
from signals.market import CorrelationReport, StructureReport


def structure_message(report: StructureReport) -> signal_pb2.MarketStructure:
    history, s = report.history, report.structure
    message = signal_pb2.MarketStructure(
        symbol=history.symbol,
        interval=history.interval,
        source=history.source,
        fallback_reason=history.fallback_reason,
        bars=s.bars,
        swing_bars=s.swing_bars,
        equal_tolerance_pct=s.equal_tolerance_pct,
        trend=s.trend,
        swings=[
            signal_pb2.Swing(
                kind=w.kind, time=timestamp(w.time), price=w.price, confirmed_time=timestamp(w.confirmed_time)
            )
            for w in s.swings
        ],
        breaks=[
            signal_pb2.StructureBreak(
                kind=b.kind,
                direction=b.direction,
                level=b.level,
                swing_time=timestamp(b.swing_time),
                time=timestamp(b.time),
                close=b.close,
            )
            for b in s.breaks
        ],
    )
    if s.first_time is not None:
        message.start.CopyFrom(timestamp(s.first_time))
    if s.last_close_time is not None:
        message.end.CopyFrom(timestamp(s.last_close_time))
    for ob in s.order_blocks:
        block = message.order_blocks.add(
            direction=ob.direction,
            time=timestamp(ob.time),
            low=ob.low,
            high=ob.high,
            break_time=timestamp(ob.break_time),
            mitigated=ob.mitigated,
        )
        if ob.mitigated_time is not None:
            block.mitigated_time.CopyFrom(timestamp(ob.mitigated_time))
    for g in s.fair_value_gaps:
        gap = message.fair_value_gaps.add(
            direction=g.direction, time=timestamp(g.time), low=g.low, high=g.high, filled=g.filled
        )
        if g.filled_time is not None:
            gap.filled_time.CopyFrom(timestamp(g.filled_time))
    for p in s.liquidity:
        pool = message.liquidity.add(
            side=p.side, level=p.level, swing_times=[timestamp(t) for t in p.swing_times], swept=p.swept
        )
        if p.swept_time is not None:
            pool.swept_time.CopyFrom(timestamp(p.swept_time))
    loc = s.location
    if loc is not None:
        message.location.CopyFrom(
            signal_pb2.PriceLocation(
                range_high=loc.range_high,
                range_high_time=timestamp(loc.range_high_time),
                range_low=loc.range_low,
                range_low_time=timestamp(loc.range_low_time),
                equilibrium=loc.equilibrium,
                price=loc.price,
                position=round(loc.position, 6),
                zone=loc.zone,
            )
        )
    if report.reading is not None:
        message.structure_reading = report.reading
    return message


def correlation_message(report: CorrelationReport) -> signal_pb2.CorrelationReport:
    c = report.correlation
    return signal_pb2.CorrelationReport(
        symbols=list(c.symbols),
        interval=report.interval,
        window=c.returns,
        start=timestamp(c.start),
        end=timestamp(c.end),
        rows=[
            signal_pb2.CorrelationRow(
                symbol=symbol,
                correlations=[round(v, 6) if v is not None else 0.0 for v in c.matrix[i]],
                beta_to_btc=round(c.beta_to_btc[symbol] or 0.0, 6),
                volatility=round(c.volatility[symbol], 8),
                source=report.sources.get(symbol, ""),
            )
            for i, symbol in enumerate(c.symbols)
        ],
    )
