"""Research speed: ``python -m bench.research [--data DIR] [--runs N]``.

The 4-coin, 4-year daily panel (BTC, ETH, XRP, BNB, 2020-01-01..2023-12-31, horizon 1) with every
statistic (per-class intervals, the rule vs always long and 400 random-entry shifts, the factor grid
at horizons 1, 3 and 7 with every circular shift, Hansen's SPA twice), target < 10 s on this 2-core
machine:

- cold: the command as a user runs it (``python -m service.commands.research``, a new process:
  interpreter start, imports of numpy, arch, statsmodels, scipy and pandas, the dataset read, the
  replay, the statistics; no JSON or chart), wall-clock, median of ``--runs``;
- phases, in this process, once the libraries are imported: reading the folder, the replay (with
  its look-ahead check), the statistics.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

DEFAULT_DATA = os.environ.get("RESEARCH_DATA", "/work/shared/data/coinglass-1d-panel-2020-2023")
TARGET_S = 10.0
ARGS = ["--symbols", "BTC,ETH,XRP,BNB", "--interval", "1d", "--start", "2020-01-01", "--end", "2023-12-31"]


def cold(data: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "service.commands.research", "--data", data, *ARGS, "--horizon", "1"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - started)
    return times


def phases(data: str) -> dict[str, float]:
    from scoring import DEFAULT_CONFIG
    from signals import panel_statistics
    from signals.costs import Costs
    from signals.dataset import Dataset, parse_day
    from signals.research import replay_panel, run_research

    started = time.perf_counter()
    import arch.bootstrap  # noqa: F401
    import statsmodels.stats.multitest  # type: ignore[import-untyped]  # noqa: F401

    imported = time.perf_counter()
    dataset = Dataset(data)
    start, end = parse_day("2020-01-01", "start"), parse_day("2023-12-31", "end")
    histories = [(c, dataset.history(c, end)) for c in ("BTC", "ETH", "XRP", "BNB")]
    read = time.perf_counter()
    panel = replay_panel(histories, DEFAULT_CONFIG, start, end)
    replayed = time.perf_counter()
    run_research(panel, DEFAULT_CONFIG, 1, Costs())
    done = time.perf_counter()
    del panel_statistics
    return {
        "imports (arch, statsmodels)": imported - started,
        "read the folder": read - imported,
        "replay + look-ahead check": replayed - read,
        "statistics": done - replayed,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.research")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(
        f"research bench: 4 coins x 4 years of daily bars, horizon 1, all statistics "
        f"({os.cpu_count()} CPUs, load average {load:.2f} before the runs: other work slows it)"
    )
    times = cold(args.data, args.runs)
    median = statistics.median(times)
    verdict = "OK" if median < TARGET_S else "OVER TARGET"
    runs = ", ".join(f"{t:.2f}" for t in times)
    print(
        f"  cold command, wall-clock: median {median:.2f} s over {args.runs} runs ({runs}); "
        f"target < {TARGET_S:g} s: {verdict}"
    )
    for name, seconds in phases(args.data).items():
        print(f"  {name:<28}{seconds:6.2f} s")


if __name__ == "__main__":
    main()
