"""A dataset source: a folder of daily Coinglass history CSVs read into the replay's ``History``.

One signal domain, two clocks, and now two sources of history: the folder gives the same
``History`` of ``Series`` the Coinglass loader (signals/history.py) builds, with the same row
shapes (``Ohlc``, ``LiquidationBucket``, ``RatioPoint``, ``FearGreedPoint``, readings with a
``close``), so the same factor builders and the same ``score_signal`` run on it.

The folder's format (``coinglass-1d-panel-2020-2023/README.md``): long CSVs, one row per coin and
day, oldest first, ``ts_utc`` the day's OPEN time (00:00 UTC). A row is complete only at the day's
close, 24 h later. The replay already treats every row that way: bar ``t`` is decided at
``t + 1 day`` and sees only rows stamped ``<= t``. The fear & greed index is stamped 00:00-00:20
UTC; its stamp is floored to the day, i.e. it is treated like every other daily row (usable from
that day's close on), never earlier. Nothing after ``end`` is loaded at all.

Which column feeds which factor (as the Coinglass loader maps the endpoints):
price <- ``futures_ohlcv_1d.csv`` (close); liquidations <- ``liquidation_agg_1d.csv``;
funding <- ``funding_oi_weight_1d.csv`` (percent per 8 h); long/short ratio <- ``lsr_global``
(global accounts); smart money <- ``lsr_top_positions`` (top-trader positions); open interest <-
``oi_total_close`` (all exchanges, USD); fear & greed <- ``fear_greed_1d.csv``. A ratio ``r`` of
longs to shorts is the long share ``100 r / (1 + r)`` percent.

A missing file, a coin absent from an optional file or a column left blank makes that factor
missing at every bar (``History.unavailable`` says why), as live. Missing price data, malformed
rows and dates outside the data raise :class:`DatasetError` with one sentence naming what is
missing.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from providers.coinglass_models import FearGreedPoint, LiquidationBucket, Ohlc, RatioPoint
from signals.inputs import DAY_MS, Series, from_ms, to_ms
from signals.replay import History

PRICE_FILE = "futures_ohlcv_1d.csv"
FUNDING_FILE = "funding_oi_weight_1d.csv"
OI_FILE = "futures_oi_agg_1d.csv"
RATIO_FILE = "long_short_all_1d.csv"
LIQUIDATION_FILE = "liquidation_agg_1d.csv"
FEAR_GREED_FILE = "fear_greed_1d.csv"
FILES = (PRICE_FILE, FUNDING_FILE, OI_FILE, RATIO_FILE, LIQUIDATION_FILE, FEAR_GREED_FILE)
SOURCE = "dataset"
INTERVAL_MS = DAY_MS
INTERVAL = "1d"  # the Coinglass history interval of the folder's bars (signals/history.py INTERVALS["1d"])


class DatasetError(ValueError):
    """The dataset cannot answer as asked; the message is one sentence naming what is missing."""


@dataclass(frozen=True, slots=True)
class Reading:
    """A value at a day's open time, shaped like a bar with a close (funding, open interest)."""

    time: datetime
    close: float


def _parse_time(raw: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise DatasetError(f"{where}: ts_utc {raw[:40]!r} is not a timestamp") from None
    if moment.tzinfo is None:
        raise DatasetError(f"{where}: ts_utc {raw[:40]!r} has no UTC offset")
    return moment.astimezone(UTC)


def _number(raw: str | None, where: str, column: str) -> float | None:
    """The value, or None when the cell is blank (a series that does not exist yet)."""
    if raw is None:
        raise DatasetError(f"{where}: the row has no {column} column")
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{where}: {column} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise DatasetError(f"{where}: {column} {text[:40]!r} is not a finite number")
    return value


@dataclass(frozen=True)
class _Table:
    path: Path
    columns: tuple[str, ...]
    # coin (or "" for a file without a coin column) -> [(line number, time, row)]
    rows: dict[str, list[tuple[int, datetime, dict[str, str]]]]


def _read(path: Path, needed: Sequence[str], coin_column: bool) -> _Table:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = tuple(reader.fieldnames or ())
        required = (("symbol",) if coin_column else ()) + ("ts_utc", *needed)
        absent = [c for c in required if c not in columns]
        if absent:
            raise DatasetError(f"{path} has no column {', '.join(absent)} (its header: {','.join(columns)[:120]})")
        rows: dict[str, list[tuple[int, datetime, dict[str, str]]]] = {}
        for line, row in enumerate(reader, start=2):
            where = f"{path.name} line {line}"
            if None in row or any(row.get(c) is None for c in required):
                raise DatasetError(f"{where}: the row has {len(row) - (None in row)} fields, the header {len(columns)}")
            coin = row["symbol"].strip().upper() if coin_column else ""
            rows.setdefault(coin, []).append((line, _parse_time(row["ts_utc"], where), row))
    return _Table(path, columns, rows)


def _daily(entries: Iterable[tuple[int, datetime, Any]], path: Path, floor: bool = False) -> list[Any]:
    """Rows in time order, stamped at 00:00 UTC, one per day (else a malformed-row error)."""
    out: list[Any] = []
    seen: dict[int, int] = {}
    for line, moment, row in entries:
        ms = to_ms(moment)
        if floor:
            ms -= ms % DAY_MS
        elif ms % DAY_MS:
            raise DatasetError(f"{path.name} line {line}: {moment:%Y-%m-%d %H:%M} is not a day's 00:00 UTC open time")
        if ms in seen:
            raise DatasetError(
                f"{path.name} line {line}: a second row for {from_ms(ms):%Y-%m-%d} (first on line {seen[ms]})"
            )
        seen[ms] = line
        out.append((ms, row))
    out.sort(key=lambda item: item[0])
    return [row for _, row in out]


def _ratio_point(moment: datetime, ratio: float) -> RatioPoint:
    long_pct = 100.0 * ratio / (1.0 + ratio)
    return RatioPoint(moment, long_pct, 100.0 - long_pct, ratio)


class Dataset:
    """A folder in the panel's format, read once; :meth:`history` gives one coin's replay ``History``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise DatasetError(f"the dataset directory {self.directory} does not exist")
        present = [name for name in FILES if (self.directory / name).is_file()]
        if not present:
            raise DatasetError(f"{self.directory} holds none of the dataset files ({', '.join(FILES)})")
        if PRICE_FILE not in present:
            raise DatasetError(f"{self.directory} has no {PRICE_FILE}: price is required for every coin")
        self.missing_files = tuple(name for name in FILES if name not in present)
        d = self.directory
        self._price = _read(d / PRICE_FILE, ("open", "high", "low", "close"), True)
        self._funding = self._optional(FUNDING_FILE, ("funding_close",), True)
        self._oi = self._optional(OI_FILE, ("oi_total_close",), True)
        self._ratios = self._optional(RATIO_FILE, ("lsr_global", "lsr_top_positions"), True)
        self._liquidations = self._optional(LIQUIDATION_FILE, ("liq_long_usd", "liq_short_usd"), True)
        self._fear_greed = self._optional(FEAR_GREED_FILE, ("value",), False)
        self._fear_greed_rows: list[FearGreedPoint] | None = None

    def _optional(self, name: str, needed: Sequence[str], coin_column: bool) -> _Table | None:
        path = self.directory / name
        return _read(path, needed, coin_column) if path.is_file() else None

    @property
    def coins(self) -> tuple[str, ...]:
        return tuple(sorted(c.removesuffix("USDT") for c in self._price.rows))

    def span_ms(self, coin: str) -> tuple[int, int]:
        """Open times of the coin's first and last price rows."""
        rows = self._price_rows(coin)
        return to_ms(rows[0].time), to_ms(rows[-1].time)

    def _price_rows(self, coin: str) -> list[Ohlc]:
        entries = self._price.rows.get(f"{coin}USDT") or self._price.rows.get(coin)
        if not entries:
            held = ", ".join(self.coins) or "no coin"
            raise DatasetError(f"{coin} is not in {self._price.path} (it holds {held})")

        def ohlc(line: int, moment: datetime, row: dict[str, str]) -> tuple[int, datetime, Ohlc]:
            where = f"{PRICE_FILE} line {line}"
            values = [_number(row[c], where, c) for c in ("open", "high", "low", "close")]
            if any(v is None or v <= 0 for v in values):
                raise DatasetError(f"{where}: open, high, low and close must be positive numbers")
            o, h, lo, c = (float(v) for v in values if v is not None)
            volume = _number(row.get("volume_usd", ""), where, "volume_usd") if "volume_usd" in row else None
            return line, moment, Ohlc(moment, o, h, lo, c, volume)

        return _daily((ohlc(*e) for e in entries), self._price.path)

    def _column(
        self,
        table: _Table | None,
        file: str,
        coin: str,
        factor: str,
        make: Callable[[datetime, dict[str, float | None]], Any | None],
        columns: Sequence[str],
        unavailable: dict[str, str],
    ) -> Series[Any] | None:
        if table is None:
            unavailable[factor] = f"no {file} in {self.directory}"
            return None
        entries = table.rows.get(coin)
        if not entries:
            unavailable[factor] = f"{coin} is not in {table.path}"
            return None
        built = []
        for line, moment, row in entries:
            where = f"{file} line {line}"
            values = {c: _number(row.get(c), where, c) for c in columns}
            item = make(moment, values)
            if item is not None:
                built.append((line, moment, item))
        rows = _daily(built, table.path)
        if not rows:
            unavailable[factor] = f"{table.path} has no {'/'.join(columns)} values for {coin}"
            return None
        return Series(rows, f"{SOURCE}:{file}", DAY_MS, max_age_ms=2 * DAY_MS)

    def _fear_greed_series(self, unavailable: dict[str, str]) -> Series[Any] | None:
        table = self._fear_greed
        if table is None:
            unavailable["fear_greed"] = f"no {FEAR_GREED_FILE} in {self.directory}"
            return None
        if self._fear_greed_rows is None:
            built = []
            for line, moment, row in table.rows.get("", []):
                value = _number(row.get("value"), f"{FEAR_GREED_FILE} line {line}", "value")
                if value is None:
                    continue
                if not 0 <= value <= 100:
                    raise DatasetError(f"{FEAR_GREED_FILE} line {line}: value {value:g} is outside 0-100")
                day = from_ms(to_ms(moment) // DAY_MS * DAY_MS)
                built.append((line, moment, FearGreedPoint(day, value)))
            self._fear_greed_rows = _daily(built, table.path, floor=True)
        if not self._fear_greed_rows:
            unavailable["fear_greed"] = f"{table.path} has no values"
            return None
        # A daily index: usable at the close of the day it is stamped (floored above), two days at most.
        return Series(self._fear_greed_rows, f"{SOURCE}:{FEAR_GREED_FILE}", DAY_MS, max_age_ms=2 * DAY_MS)

    def history(self, coin: str, end_ms: int) -> History:
        """Every series of ``coin`` with rows up to ``end_ms`` (open time); nothing later is kept."""
        coin = coin.strip().upper()
        unavailable: dict[str, str] = {}

        def upto(series: Series[Any] | None) -> Series[Any] | None:
            if series is None:
                return None
            kept = [row for t, row in zip(series.times, series.rows, strict=True) if t <= end_ms]
            return Series(kept, series.source, series.step_ms, series.max_age_ms) if kept else None

        price = [row for row in self._price_rows(coin) if to_ms(row.time) <= end_ms]
        if not price:
            raise DatasetError(
                f"{coin} has no price rows on or before {from_ms(end_ms):%Y-%m-%d} in {self._price.path}"
            )

        def liquidation(moment: datetime, v: dict[str, float | None]) -> LiquidationBucket | None:
            long_usd, short_usd = v["liq_long_usd"], v["liq_short_usd"]
            if long_usd is None or short_usd is None:
                return None
            return LiquidationBucket(moment, long_usd, short_usd)

        def reading(column: str) -> Callable[[datetime, dict[str, float | None]], Reading | None]:
            def make(moment: datetime, v: dict[str, float | None]) -> Reading | None:
                value = v[column]
                return None if value is None else Reading(moment, value)

            return make

        def ratio(column: str) -> Callable[[datetime, dict[str, float | None]], RatioPoint | None]:
            def make(moment: datetime, v: dict[str, float | None]) -> RatioPoint | None:
                value = v[column]
                return None if value is None or value <= 0 else _ratio_point(moment, value)

            return make

        liq_columns = ("liq_long_usd", "liq_short_usd")
        history = History(
            INTERVAL_MS,
            Series(price, f"{SOURCE}:{PRICE_FILE}", DAY_MS, max_age_ms=2 * DAY_MS),
            liquidations=upto(
                self._column(
                    self._liquidations, LIQUIDATION_FILE, coin, "liquidations", liquidation, liq_columns, unavailable
                )
            ),
            funding=upto(
                self._column(
                    self._funding,
                    FUNDING_FILE,
                    coin,
                    "funding_rate",
                    reading("funding_close"),
                    ("funding_close",),
                    unavailable,
                )
            ),
            long_short=upto(
                self._column(
                    self._ratios,
                    RATIO_FILE,
                    coin,
                    "long_short_ratio",
                    ratio("lsr_global"),
                    ("lsr_global",),
                    unavailable,
                )
            ),
            smart_money=upto(
                self._column(
                    self._ratios,
                    RATIO_FILE,
                    coin,
                    "smart_money",
                    ratio("lsr_top_positions"),
                    ("lsr_top_positions",),
                    unavailable,
                )
            ),
            open_interest=upto(
                self._column(
                    self._oi,
                    OI_FILE,
                    coin,
                    "open_interest",
                    reading("oi_total_close"),
                    ("oi_total_close",),
                    unavailable,
                )
            ),
            fear_greed=upto(self._fear_greed_series(unavailable)),
            unavailable=unavailable,
        )
        return history


def parse_day(raw: str, what: str) -> int:
    """``YYYY-MM-DD`` (or an RFC 3339 time) as the open time in ms of that UTC day."""
    text = raw.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DatasetError(f"{what} {raw[:40]!r} is not a date (YYYY-MM-DD)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ms = to_ms(moment)
    return ms - ms % DAY_MS


@dataclass(frozen=True)
class PanelPeriod:
    start_ms: int
    end_ms: int
    horizon_bars: int
    notes: tuple[str, ...]


def check_period(dataset: Dataset, coins: Sequence[str], start_ms: int, end_ms: int, horizon_bars: int) -> PanelPeriod:
    """The period as asked, or a DatasetError naming what is missing. A coin whose data starts
    after ``start`` is kept from its first day, and a note says so."""
    if not coins:
        raise DatasetError("no coin was given: name at least one, e.g. BTC")
    if end_ms < start_ms:
        raise DatasetError(f"the end {from_ms(end_ms):%Y-%m-%d} is before the start {from_ms(start_ms):%Y-%m-%d}")
    if horizon_bars < 1:
        raise DatasetError(f"the horizon must be at least 1 bar, got {horizon_bars}")
    bars = (end_ms - start_ms) // DAY_MS + 1
    if horizon_bars >= bars:
        raise DatasetError(
            f"the horizon of {horizon_bars} days is not shorter than the period of {bars} days: no bar has an outcome"
        )
    notes = []
    for coin in coins:
        first, last = dataset.span_ms(coin)
        if end_ms > last:
            raise DatasetError(
                f"{coin} has price data up to {from_ms(last):%Y-%m-%d} only, before the end {from_ms(end_ms):%Y-%m-%d}"
            )
        if end_ms - horizon_bars * DAY_MS < first:
            raise DatasetError(
                f"{coin} has no price data before {from_ms(first):%Y-%m-%d}: no bar of the period has an outcome"
            )
        if start_ms < first:
            notes.append(f"{coin}: price data starts {from_ms(first):%Y-%m-%d}, after the start; its bars start there")
    return PanelPeriod(start_ms, end_ms, horizon_bars, tuple(notes))
