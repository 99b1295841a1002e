"""The backtest as a picture (PNG): price with the signal's marks, following it vs holding, hit rates."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import BinaryIO

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from signals.backtest import BacktestReport
from signals.inputs import from_ms


def write_chart(report: BacktestReport, symbol: str, interval: str, path: Path | BinaryIO) -> None:
    bars = report.bars
    times = [from_ms(b.time_ms) for b in bars]
    prices = [b.price for b in bars]
    figure, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(12, 11), gridspec_kw={"height_ratios": [3, 2, 2]}, constrained_layout=True
    )
    top.plot(times, prices, color="#444444", linewidth=0.9, label=f"{symbol} close (USD)")
    for signal, marker, colour in (("LONG", "^", "#1a9850"), ("SHORT", "v", "#d73027")):
        marked = [(t, b.price) for t, b in zip(times, bars, strict=True) if b.signal == signal]
        if marked:
            top.scatter(*zip(*marked, strict=True), marker=marker, s=14, color=colour, label=signal, zorder=3)
    top.set_title(f"{symbol} {interval}: the served signal replayed bar by bar")
    top.legend(loc="upper left")
    top.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]

    # Following the signal: hold its position (long, short or flat) for the next bar, re-decided every
    # bar; holding: always long. Bar-to-bar returns, so the curves compound without overlap.
    follow, hold = [1.0], [1.0]
    for previous, current in itertools.pairwise(bars):
        step = current.price / previous.price - 1
        position = 1 if previous.signal == "LONG" else -1 if previous.signal == "SHORT" else 0
        follow.append(follow[-1] * (1 + position * step))
        hold.append(hold[-1] * (1 + step))
    middle.plot(times, [(v - 1) * 100 for v in follow], color="#2166ac", label="following the signal (1 bar at a time)")
    middle.plot(times, [(v - 1) * 100 for v in hold], color="#999999", label="always long")
    middle.axhline(0, color="black", linewidth=0.5)
    middle.set_ylabel("cumulative return, %")
    middle.legend(loc="upper left")
    middle.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]

    rows = [*report.classes, report.positions, *report.baselines]
    names = [row.name for row in rows]
    rates = [row.hit_rate * 100 for row in rows]
    errors = [
        [max(0.0, (row.hit_rate - row.hit_rate_ci95_low) * 100) for row in rows],
        [max(0.0, (row.hit_rate_ci95_high - row.hit_rate) * 100) for row in rows],
    ]
    bottom.bar(names, rates, yerr=errors, capsize=4, color="#92c5de", edgecolor="#2166ac")
    bottom.axhline(50, color="black", linewidth=0.5)
    bottom.set_ylabel(f"hit rate, % (95% interval), {report.horizon_bars}-bar horizon")
    bottom.set_title(report.verdict, fontsize=8, wrap=True)
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)
