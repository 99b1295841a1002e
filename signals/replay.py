"""The replay clock: the live scorer run at every bar of history, seeing only what was known then.

For each bar ``t`` of the price series, every factor input is built by the same builder the live
sources use (signals/inputs.py) from the series cut at ``t``, and scored by the same
``score_signal`` with the same config. A bar's ``time`` is the open time of the last closed bar
the signal could see; its decision price is that bar's close, known when the bar closes.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from scoring import FACTOR_NAMES, Missing, NoDataError, ScoredSignal, ScoringConfig, SignalInputs, score_signal
from signals import inputs
from signals.errors import BacktestStoppedError
from signals.inputs import Series, SeriesGap, from_ms

SHIPPED_AGES_BAR_MS = 4 * inputs.HOUR_MS  # the coarsest bars the shipped max ages were written for
NO_SOCIAL_HISTORY = "no history: LunarCrush social data is live only, so the replay scores without it"


@dataclass(frozen=True)
class History:
    """Every series a replay reads, oldest first. ``price`` is required; a factor without a series
    (``None``) is missing at every bar, with ``unavailable[factor]`` saying why."""

    interval_ms: int
    price: Series[Any]
    liquidations: Series[Any] | None = None
    funding: Series[Any] | None = None
    long_short: Series[Any] | None = None
    smart_money: Series[Any] | None = None
    open_interest: Series[Any] | None = None
    fear_greed: Series[Any] | None = None
    unavailable: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def series(self) -> dict[str, Series[Any]]:
        named = {
            "price": self.price,
            "liquidations": self.liquidations,
            "funding": self.funding,
            "long_short": self.long_short,
            "smart_money": self.smart_money,
            "open_interest": self.open_interest,
            "fear_greed": self.fear_greed,
        }
        return {name: s for name, s in named.items() if s is not None}

    def with_series(self, replaced: Mapping[str, Series[Any]]) -> History:
        return dataclasses.replace(self, **replaced)  # type: ignore[arg-type]


def _open_interest(h: History, t: int, c: ScoringConfig) -> Any:
    assert h.open_interest is not None
    span = inputs.lookback_ms(c, "open_interest")
    return inputs.open_interest(h.open_interest, t, inputs.price_change(h.price, t, span), span)


# factor -> (the History series it needs, how its input is built at t under a profile's config: its
# momentum horizons and lookbacks); social has no history.
BUILDERS: dict[str, tuple[str, Callable[[History, int, ScoringConfig], Any]]] = {
    "liquidations": ("liquidations", lambda h, t, c: inputs.liquidations(h.liquidations, t)),  # type: ignore[arg-type]
    "funding_rate": ("funding", lambda h, t, c: inputs.funding(h.funding, t)),  # type: ignore[arg-type]
    "momentum": ("price", lambda h, t, c: inputs.momentum(h.price, t, inputs.momentum_spans(c))),
    "long_short_ratio": ("long_short", lambda h, t, c: inputs.long_short(h.long_short, t)),  # type: ignore[arg-type]
    "smart_money": ("smart_money", lambda h, t, c: inputs.smart_money(h.smart_money, t)),  # type: ignore[arg-type]
    "open_interest": ("open_interest", _open_interest),
    "fear_greed": ("fear_greed", lambda h, t, c: inputs.fear_greed(h.fear_greed, t)),  # type: ignore[arg-type]
}


@dataclass(frozen=True, slots=True)
class ReplayedBar:
    time_ms: int  # open time of the last closed bar the signal saw
    price: float  # that bar's close: the decision price
    scored: ScoredSignal | None  # None: warm-up (not enough history yet for every series)
    warmup_reason: str = ""


def inputs_at(history: History, t_ms: int, config: ScoringConfig) -> tuple[SignalInputs, str]:
    """The factor inputs visible at ``t`` (read as ``config``'s profile reads them: its momentum
    horizons and lookbacks) and, when some series lacks history before ``t``, why."""
    available = history.series()
    values: dict[str, Any] = {}
    warmup = ""
    for factor in FACTOR_NAMES:
        if factor == "social":
            values[factor] = Missing(NO_SOCIAL_HISTORY)
            continue
        needs, build = BUILDERS[factor]
        if needs not in available:
            values[factor] = Missing(history.unavailable.get(factor, "no history for this factor"))
            continue
        try:
            values[factor] = build(history, t_ms, config)
        except SeriesGap as gap:
            values[factor] = Missing(gap.reason)
            if gap.warmup and not warmup:
                warmup = f"{factor}: {gap.reason}"
    return SignalInputs(**values), warmup


def config_for_interval(config: ScoringConfig, interval_ms: int) -> ScoringConfig:
    """``config`` as a replay on bars of ``interval_ms`` must use it: for bars coarser than 4 h, every
    maximum data age is at least two bars plus 1 h.

    The shipped ``[max_age_hours]`` were written for bars of at most 4 h (2 x 4 h + 1 h = 9 h), so
    1h and 4h replays use them unchanged. Daily bars are decided at the close of a day whose
    open-time stamp is 24 h old: without the floor every factor would be stale at every daily bar.
    The floor is then 2 x 24 h + 1 h = 49 h: one late daily row is tolerated, a series that stopped
    is not (the series' own two-bar bound applies as well).
    """
    if interval_ms <= SHIPPED_AGES_BAR_MS:
        return config
    floor = (2 * interval_ms + inputs.HOUR_MS) / inputs.HOUR_MS
    ages = {name: max(hours, floor) for name, hours in config.max_age_hours.items()}
    return dataclasses.replace(config, max_age_hours=ages)


def replay(
    history: History,
    config: ScoringConfig,
    start_ms: int,
    end_ms: int,
    bars: AbstractSet[int] | None = None,
    *,
    stop: threading.Event | None = None,
) -> list[ReplayedBar]:
    """The signal at every bar of the price series with ``start <= time <= end`` (or at ``bars``).

    ``stop``: set from another thread, it ends the replay at the next bar (BacktestStoppedError).
    """
    price = history.price
    config = config_for_interval(config, history.interval_ms)
    out: list[ReplayedBar] = []
    for i, t in enumerate(price.times):
        if stop is not None and stop.is_set():
            raise BacktestStoppedError("the backtest was stopped: nobody waits for its report any more")
        if t < start_ms or t > end_ms:
            continue
        if bars is not None and t not in bars:
            continue
        signal_inputs, warmup = inputs_at(history, t, config)
        if warmup:
            out.append(ReplayedBar(t, price.rows[i].close, None, warmup))
            continue
        try:
            # Decided when bar t closes: the scorer judges each factor's data age at that moment,
            # the same rule (and the same max ages) as the live desk at now.
            scored = score_signal(signal_inputs, config, now=from_ms(t + history.interval_ms))
        except NoDataError as exc:
            out.append(ReplayedBar(t, price.rows[i].close, None, str(exc)))
            continue
        out.append(ReplayedBar(t, price.rows[i].close, scored))
    return out
