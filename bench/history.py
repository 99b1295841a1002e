"""History at scale: ``python -m bench.history``.

One million rows in the embedded SQLite database (20 coins, one row per 5 minutes each, about 174
days, every row with its factors and forward returns), then, through the same Database and
track-record code the service uses:
- a page of 1000 entries of one coin (newest first, keyset): target < 50 ms;
- the track record over 30 days (8,640 outcomes, bootstrap intervals included): target < 200 ms.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from records.db import Database
from records.models import HORIZONS
from signals.track_record import track_record

ROWS = 1_000_000
COINS = [f"C{i:02d}" for i in range(19)] + ["BTC"]
INTERVAL_MS = 300_000


def seed(path: Path) -> int:
    now = int(time.time() * 1000)
    per_coin = ROWS // len(COINS)
    rng = random.Random(7)
    factors = json.dumps(
        [
            {"factor": f, "sub_score": 55.0, "weight": 10.0, "contribution": 0.6, "source": "okx:/x",
             "data_time_ms": now, "metrics": {"value_pct": 1.0}}
            for f in ("liquidations", "funding_rate", "momentum", "long_short_ratio", "smart_money", "open_interest")
        ]
    )  # fmt: skip
    with sqlite3.connect(path) as db:
        rows = (
            (
                coin,
                (now - i * INTERVAL_MS) // INTERVAL_MS,
                now - i * INTERVAL_MS,
                50 + rng.uniform(-30, 30),
                rng.choice(("LONG", "SHORT", "NEUTRAL")),
                "medium",
                0.9,
                100.0,
                factors,
                "0123456789abcdef",
                rng.gauss(0, 1),
                rng.gauss(0, 2),
                rng.gauss(0, 4),
            )
            for coin in COINS
            for i in range(per_coin)
        )
        db.executemany(
            "INSERT INTO signal_history (symbol, bucket, computed_ms, score, signal, confidence, coverage, price, "
            "factors, config_hash, return_1h_pct, return_4h_pct, return_24h_pct) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    return per_coin * len(COINS)


async def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-history-") as workdir:
        path = Path(workdir) / "history.db"
        database = Database(f"sqlite+aiosqlite:///{path}")
        await database.migrate()
        started = time.perf_counter()
        count = await asyncio.to_thread(seed, path)
        seeded = time.perf_counter() - started
        now = int(time.time() * 1000)
        pages, records = [], []
        cursor = None
        for _ in range(20):
            t0 = time.perf_counter()
            page = await database.page("BTC", 0, now, 1000, cursor)
            pages.append(time.perf_counter() - t0)
            cursor = (page[-1].computed_ms, page[-1].id)
        for _ in range(10):
            t0 = time.perf_counter()
            outcomes = await database.outcomes("BTC", "24h", now - 30 * 86_400_000)
            record = track_record(
                [(o.computed_ms, o.signal, o.return_pct) for o in outcomes], HORIZONS["24h"], INTERVAL_MS // 1000
            )
            records.append(time.perf_counter() - t0)
        await database.aclose()
    print(f"history: {count:,} rows in SQLite (seeded in {seeded:.1f} s), 20 coins")
    print(
        f"  page of 1000 (keyset, newest first), 20 consecutive pages: "
        f"median {statistics.median(pages) * 1000:.1f} ms, "
        f"max {max(pages) * 1000:.1f} ms   target < 50 ms"
    )
    print(
        f"  track record, 30 days ({record.signals_with_outcome:,} outcomes, intervals included): "
        f"median {statistics.median(records) * 1000:.0f} ms, max {max(records) * 1000:.0f} ms   target < 200 ms"
    )


if __name__ == "__main__":
    asyncio.run(run())
