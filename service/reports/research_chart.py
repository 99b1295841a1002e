"""The research report as a picture (PNG): pooled net equity vs always long and random entries' band,
drawdown, per-class net position returns with intervals, and the factor x horizon IC heat map."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np

from signals.research import FACTOR_HORIZONS, ResearchReport


def write_chart(report: ResearchReport, path: Path | BinaryIO) -> None:
    panel, main = report.panel, report.main
    pooled = next(u for u in main.units if u.name == "pooled")
    times = panel.times.astype("datetime64[ms]")
    figure = plt.figure(figsize=(13, 13), constrained_layout=True)
    grid = figure.add_gridspec(3, 2, height_ratios=[3, 1.5, 2.5])
    top = figure.add_subplot(grid[0, :])
    middle = figure.add_subplot(grid[1, :], sharex=top)
    left = figure.add_subplot(grid[2, 0])
    right = figure.add_subplot(grid[2, 1])

    h = report.horizon
    coins = ", ".join(panel.coins)
    if pooled.random is not None:
        top.fill_between(
            times,
            pooled.random.equity_low,
            pooled.random.equity_high,
            color="#dddddd",
            label=f"random entries, 95% of {pooled.random.draws} shifts (the band chance gives)",
        )
    top.plot(times, pooled.equity["signal"], color="#2166ac", label="the signal's rule, net")
    top.plot(times, pooled.equity["always_long"], color="#999999", label="always long, net")
    top.axhline(0, color="black", linewidth=0.5)
    top.set_ylabel("cumulative net P&L, % of capital")
    top.set_title(
        f"{coins} daily, horizon {h}: 1/{h} of capital entered each bar, held {h} bars, "
        f"fees {report.costs.fee_bps:g} bps per side and funding paid"
    )
    top.legend(loc="upper left")
    top.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))  # type: ignore[no-untyped-call]

    for name, colour in (("signal", "#2166ac"), ("always_long", "#999999")):
        equity = pooled.equity[name]
        peak = np.maximum.accumulate(np.concatenate(([0.0], equity)))[1:]
        middle.fill_between(times, equity - peak, 0, color=colour, alpha=0.4, label=f"{name} drawdown")
    middle.set_ylabel("drawdown, % of capital")
    middle.legend(loc="lower left")

    rows = [c for c in pooled.classes if c.name != "NEUTRAL"]
    names = [c.name for c in rows]
    means = [c.net.mean for c in rows]
    errors = [
        [max(0.0, c.net.mean - c.net.low) for c in rows],
        [max(0.0, c.net.high - c.net.mean) for c in rows],
    ]
    if pooled.random is not None:
        names.append("random entries")
        means.append(pooled.random.mean_net_per_position)
        errors[0].append(max(0.0, pooled.random.mean_net_per_position - pooled.random.net_low))
        errors[1].append(max(0.0, pooled.random.net_high - pooled.random.mean_net_per_position))
    colours = ["#92c5de"] * len(rows) + ["#dddddd"] * (len(names) - len(rows))
    left.bar(names, means, yerr=errors, capsize=4, color=colours, edgecolor="#2166ac")
    left.tick_params(axis="x", labelrotation=20)
    left.axhline(0, color="black", linewidth=0.5)
    left.set_ylabel(f"mean net return of the position, % ({h}-bar hold)")
    left.set_title(
        "pooled, per class: 95% block-bootstrap intervals (random entries: the band chance gives)", fontsize=9
    )

    factors = list(report.panel.studied)
    ic = np.full((len(factors), len(FACTOR_HORIZONS)), np.nan)
    labels = [["" for _ in FACTOR_HORIZONS] for _ in factors]
    for cell in report.factors:
        if cell.unit != "pooled":
            continue
        i, j = factors.index(cell.factor), FACTOR_HORIZONS.index(cell.horizon)
        ic[i, j] = cell.ic
        mark = "**" if cell.p_holm < 0.05 else "*" if cell.p_bh < 0.05 else ""
        labels[i][j] = f"{cell.ic:+.3f}{mark}"
    limit = max(0.05, float(np.nanmax(np.abs(ic)))) if np.isfinite(ic).any() else 0.05
    image = right.imshow(ic, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for i in range(len(factors)):
        for j in range(len(FACTOR_HORIZONS)):
            right.text(j, i, labels[i][j], ha="center", va="center", fontsize=8)
    right.set_xticks(range(len(FACTOR_HORIZONS)), [f"{x} bars" for x in FACTOR_HORIZONS])
    right.set_yticks(range(len(factors)), factors)
    right.set_title("pooled rank IC; * BH-adjusted p < 0.05, ** Holm-adjusted p < 0.05", fontsize=9)
    figure.colorbar(image, ax=right, shrink=0.8)
    figure.savefig(path, dpi=100, format="png")
    plt.close(figure)
