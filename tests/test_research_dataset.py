"""The dataset source (signals/dataset.py) on daily bars: the same History the replay consumes, no
look-ahead, a missing series reported missing, and bad input named in one sentence."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scoring import DEFAULT_CONFIG
from signals import replay as replay_module
from signals.backtest import check_lookahead
from signals.dataset import FILES, Dataset, DatasetError, check_period, parse_day
from signals.history import INTERVAL_NAMES, INTERVALS
from signals.inputs import DAY_MS, momentum, to_ms
from signals.replay import ReplayedBar, replay

PANEL = Path(__file__).parent / "fixtures" / "panel"
START, END = parse_day("2022-09-01", "start"), parse_day("2023-01-31", "end")


def _day(text: str) -> int:
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(PANEL)


def test_interval_1d_is_a_history_interval() -> None:
    from signals.dataset import INTERVAL, INTERVAL_MS

    assert INTERVALS["1d"] == DAY_MS
    assert INTERVAL_NAMES[DAY_MS] == "1d"
    assert INTERVALS[INTERVAL] == INTERVAL_MS  # the folder's bars are the history's 1d bars


def test_the_folder_gives_every_series_the_replay_reads(dataset: Dataset) -> None:
    assert dataset.coins == ("BTC", "ETH", "XRP")
    h = dataset.history("BTC", END)
    assert h.interval_ms == DAY_MS
    assert set(h.series()) == {
        "price",
        "liquidations",
        "funding",
        "long_short",
        "smart_money",
        "open_interest",
        "fear_greed",
    }
    assert h.unavailable == {}
    assert h.price.times[0] == _day("2022-09-01") and h.price.times[-1] == END
    # long_short_all_1d.csv: BTC,2022-09-01,lsr_global 1.7...: a ratio r is a long share 100 r / (1 + r).
    first = h.long_short.rows[0]  # type: ignore[union-attr]
    assert first.long_pct == pytest.approx(100 * first.ratio / (1 + first.ratio))
    # Fear & greed stamps (00:00-00:20) are floored to the day: usable from that day's close on.
    assert all(t % DAY_MS == 0 for t in h.fear_greed.times)  # type: ignore[union-attr]


def test_the_replay_scores_daily_bars_with_every_factor_but_social(dataset: Dataset) -> None:
    bars = replay(dataset.history("ETH", END), DEFAULT_CONFIG, START, END)
    scored = [b for b in bars if b.scored is not None]
    assert len(scored) >= 140
    missing = {name for b in scored for name, _ in b.scored.missing}  # type: ignore[union-attr]
    # No factor is stale at the close of a daily bar (the replay's max ages are at least 2 bars + 1 h);
    # fear & greed has a few gaps upstream.
    assert missing <= {"social", "fear_greed"}


def _scores(bars: list[ReplayedBar]) -> dict[int, tuple[float, str, list[float]]]:
    return {
        b.time_ms: (b.scored.score, b.scored.direction, [f.sub_score for f in b.scored.factors])
        for b in bars
        if b.scored is not None
    }


def _truncated_copy(source: Path, target: Path, cut_ms: int) -> None:
    """The folder with every row stamped after ``cut_ms`` removed (fear & greed: after its day)."""
    target.mkdir()
    for name in FILES:
        lines = (source / name).read_text(encoding="utf-8").splitlines()
        kept = [lines[0]]
        for line in lines[1:]:
            fields = line.split(",")
            stamp = fields[0] if name == "fear_greed_1d.csv" else fields[1]
            ms = to_ms(datetime.fromisoformat(stamp))
            if ms - ms % DAY_MS <= cut_ms:
                kept.append(line)
        (target / name).write_text("\n".join(kept) + "\n", encoding="utf-8")


@pytest.mark.parametrize("cut", ["2022-10-15", "2022-11-09", "2022-12-20", "2023-01-20"])
def test_no_lookahead_scores_up_to_t_are_unchanged_when_the_files_end_at_t(
    dataset: Dataset, tmp_path: Path, cut: str
) -> None:
    """The dataset source AND the replay: read a folder whose files stop at ``cut``; every bar up to
    the cut scores exactly as with the full files, and the bar at the cut is still scored."""
    cut_ms = _day(cut)
    _truncated_copy(PANEL, tmp_path / "cut", cut_ms)
    short = Dataset(tmp_path / "cut")
    for coin in dataset.coins:
        full = _scores(replay(dataset.history(coin, END), DEFAULT_CONFIG, START, END))
        part = _scores(replay(short.history(coin, cut_ms), DEFAULT_CONFIG, START, cut_ms))
        assert cut_ms in part, f"{coin}: the bar at the cut was not scored"
        assert part == {t: v for t, v in full.items() if t <= cut_ms}, coin


def test_no_lookahead_history_to_end_keeps_nothing_later(dataset: Dataset) -> None:
    cut = _day("2022-11-09")
    h = dataset.history("BTC", cut)
    assert all(max(s.times) <= cut for s in h.series().values())


def test_no_lookahead_changed_future_on_daily_bars(dataset: Dataset) -> None:
    history = dataset.history("XRP", END)
    bars = replay(history, DEFAULT_CONFIG, START, END)
    check = check_lookahead(history, DEFAULT_CONFIG, bars, START, END, window_bars=None, cuts=5)
    assert check.cut_points == 5
    assert check.bars_compared > 300
    assert check.mismatches == 0


@pytest.fixture
def peeking_momentum() -> Iterator[None]:
    original = replay_module.BUILDERS["momentum"]
    replay_module.BUILDERS["momentum"] = ("price", lambda h, t, c: momentum(h.price, t + h.interval_ms))
    yield
    replay_module.BUILDERS["momentum"] = original


def test_the_check_catches_a_daily_replay_that_peeks_one_day_ahead(dataset: Dataset, peeking_momentum: None) -> None:
    history = dataset.history("BTC", END)
    bars = replay(history, DEFAULT_CONFIG, START, END)
    check = check_lookahead(history, DEFAULT_CONFIG, bars, START, END, window_bars=30)
    assert check.mismatches >= check.cut_points


def test_a_missing_file_makes_its_factor_missing_as_live(tmp_path: Path) -> None:
    folder = tmp_path / "no-liquidations"
    shutil.copytree(PANEL, folder)
    (folder / "liquidation_agg_1d.csv").unlink()
    h = Dataset(folder).history("BTC", END)
    assert h.liquidations is None
    assert "no liquidation_agg_1d.csv" in h.unavailable["liquidations"]
    bars = replay(h, DEFAULT_CONFIG, START, END)
    scored = [b for b in bars if b.scored is not None]
    assert scored
    reasons = dict(scored[-1].scored.missing)  # type: ignore[union-attr]
    assert "no liquidation_agg_1d.csv" in reasons["liquidations"]


def test_a_coin_absent_from_an_optional_file_is_missing_that_factor(tmp_path: Path) -> None:
    folder = tmp_path / "no-eth-funding"
    shutil.copytree(PANEL, folder)
    path = folder / "funding_oi_weight_1d.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(line for line in lines if not line.startswith("ETH,")) + "\n", encoding="utf-8")
    h = Dataset(folder).history("ETH", END)
    assert h.funding is None
    assert "ETH is not in" in h.unavailable["funding_rate"]


def _one_sentence(message: str) -> None:
    assert message and "\n" not in message
    assert message.count(". ") == 0


def test_bad_input_is_one_sentence_naming_what_is_missing(dataset: Dataset, tmp_path: Path) -> None:
    cases: list[tuple[object, str]] = []
    with pytest.raises(DatasetError) as info:
        Dataset(tmp_path / "nowhere")
    cases.append((info.value, "does not exist"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as info:
        Dataset(tmp_path / "empty")
    cases.append((info.value, "holds none of the dataset files"))
    with pytest.raises(DatasetError) as info:
        dataset.history("DOGE", END)
    cases.append((info.value, "DOGE is not in"))
    with pytest.raises(DatasetError) as info:
        check_period(dataset, ["BTC"], START, _day("2023-06-30"), 1)
    cases.append((info.value, "has price data up to 2023-01-31 only"))
    with pytest.raises(DatasetError) as info:
        check_period(dataset, ["BTC"], _day("2021-01-01"), _day("2021-06-30"), 1)
    cases.append((info.value, "no price data before 2022-09-01"))
    with pytest.raises(DatasetError) as info:
        check_period(dataset, ["BTC"], _day("2023-01-01"), _day("2023-01-10"), 10)
    cases.append((info.value, "not shorter than the period"))
    with pytest.raises(DatasetError) as info:
        parse_day("last year", "--start")
    cases.append((info.value, "is not a date"))
    for error, words in cases:
        assert words in str(error)
        _one_sentence(str(error))


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("BTCUSDT,2023-02-01 00:00:00+00:00,1,2,0.5,abc,1", "close 'abc' is not a number"),
        ("BTCUSDT,2023-02-01 06:00:00+00:00,1,2,0.5,1.5,1", "is not a day's 00:00 UTC open time"),
        ("BTCUSDT,2023-01-31 00:00:00+00:00,1,2,0.5,1.5,1", "a second row for 2023-01-31"),
        ("BTCUSDT,yesterday,1,2,0.5,1.5,1", "is not a timestamp"),
        ("BTCUSDT,2023-02-01 00:00:00+00:00,1,2", "fields"),
        ("BTCUSDT,2023-02-01 00:00:00+00:00,1,2,0.5,-3,1", "must be positive"),
    ],
)
def test_malformed_price_rows_name_the_file_and_line(tmp_path: Path, row: str, words: str) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(PANEL, folder)
    path = folder / "futures_ohlcv_1d.csv"
    path.write_text(path.read_text(encoding="utf-8") + row + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        Dataset(folder).history("BTC", END)
    message = str(info.value)
    assert words in message
    assert "futures_ohlcv_1d.csv line" in message
    _one_sentence(message)


def test_daily_replays_floor_the_max_data_ages_at_two_bars_and_1h_and_leave_4h_unchanged() -> None:
    from signals.inputs import HOUR_MS
    from signals.replay import config_for_interval

    assert config_for_interval(DEFAULT_CONFIG, 4 * HOUR_MS) is DEFAULT_CONFIG
    assert config_for_interval(DEFAULT_CONFIG, HOUR_MS) is DEFAULT_CONFIG
    daily = config_for_interval(DEFAULT_CONFIG, DAY_MS)
    assert set(daily.max_age_hours.values()) == {49.0}
    assert daily.weights == DEFAULT_CONFIG.weights
