"""What goes into the scorer and what comes out. Plain frozen dataclasses: no I/O, no proto."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

FACTOR_NAMES = (
    "liquidations",
    "funding_rate",
    "momentum",
    "long_short_ratio",
    "smart_money",
    "open_interest",
    "social",
    "fear_greed",
)


# Filled by scoring.factors, which owns each factor's wording; the model stays import-free.
EXPLAINERS: dict[str, Callable[[Mapping[str, float], float], str]] = {}
# The same for a factor read as a reversal (``[reversal] <factor> = true``): its words say so.
REVERSAL_EXPLAINERS: dict[str, Callable[[Mapping[str, float], float], str]] = {}


@dataclass(frozen=True)
class Provenance:
    source: str  # e.g. "okx:/api/v5/market/candles"
    as_of: datetime | None  # newest data point used (tz-aware UTC)


@dataclass(frozen=True)
class LiquidationInput:
    long_usd: float  # longs liquidated over the last 24 hours
    short_usd: float  # shorts liquidated over the last 24 hours
    provenance: Provenance


@dataclass(frozen=True)
class FundingInput:
    rate_pct: float  # per 8h funding period, in percent (0.01 = 0.01%)
    provenance: Provenance


@dataclass(frozen=True)
class MomentumInput:
    change_pct: Mapping[str, float]  # horizon ("1h", "4h", "24h") -> percent price change
    provenance: Provenance


@dataclass(frozen=True)
class LongShortInput:
    long_account_pct: float  # share of accounts long, 0-100
    provenance: Provenance


@dataclass(frozen=True)
class SmartMoneyInput:
    top_trader_long_pct: float  # top traders' long share by position, 0-100
    provenance: Provenance


@dataclass(frozen=True)
class OpenInterestInput:
    oi_change_pct: float  # over ``span_hours`` (24 unless the profile sets [lookback])
    price_change_pct: float  # over the same span
    provenance: Provenance
    span_hours: int = 24


@dataclass(frozen=True)
class SocialInput:
    galaxy_score: float | None  # 0-100
    sentiment_pct: float | None  # share of positive posts, 0-100
    provenance: Provenance


@dataclass(frozen=True)
class FearGreedInput:
    value: float  # 0 extreme fear .. 100 extreme greed
    provenance: Provenance


@dataclass(frozen=True)
class Missing:
    reason: str


FactorInput = (
    LiquidationInput
    | FundingInput
    | MomentumInput
    | LongShortInput
    | SmartMoneyInput
    | OpenInterestInput
    | SocialInput
    | FearGreedInput
)


@dataclass(frozen=True)
class SignalInputs:
    liquidations: LiquidationInput | Missing
    funding_rate: FundingInput | Missing
    momentum: MomentumInput | Missing
    long_short_ratio: LongShortInput | Missing
    smart_money: SmartMoneyInput | Missing
    open_interest: OpenInterestInput | Missing
    social: SocialInput | Missing
    fear_greed: FearGreedInput | Missing


@dataclass(frozen=True, slots=True)
class CalibrationBand:
    """Out-of-sample hit rate (net > 0) of the positions whose |score - 50| fell in [low, high)."""

    low: float
    high: float  # math.inf: open
    hit_rate: float  # 0-1
    ci_low: float  # Wilson 95 %
    ci_high: float
    positions: int


@dataclass(slots=True)  # not frozen: frozen dataclasses cost a setattr per field on the hot path
class FactorResult:
    name: str
    weight: float
    sub_score: float  # 0-100, 50 neutral
    contribution: float  # points added to 50; the contributions sum to score - 50
    metrics: Mapping[str, float]
    source: str
    as_of: datetime | None
    reversal: bool = False  # read as a reversal in this profile (sub-score mirrored around 50)

    @property
    def explanation(self) -> str:
        """One sentence with the numbers that drove the reading (derived from ``metrics``)."""
        if self.reversal:
            return REVERSAL_EXPLAINERS[self.name](self.metrics, self.sub_score)
        return EXPLAINERS[self.name](self.metrics, self.sub_score)


@dataclass(slots=True)
class ScoredSignal:
    score: float
    direction: str  # "LONG" | "SHORT" | "NEUTRAL"
    confidence: str  # "high" | "medium" | "low"
    coverage: float  # share of the configured weight that had data, 0-1
    factors: tuple[FactorResult, ...]
    top_factors: tuple[FactorResult, ...]
    missing: tuple[tuple[str, str], ...]
    # Factors dropped because their data was older than their max age (also in ``missing``): their
    # reading as it would have been, with contribution 0, for debug output.
    stale: tuple[FactorResult, ...] = ()
    # A calibrated profile's measured band for this score (its hit rate decided ``confidence``).
    band: CalibrationBand | None = None

    @property
    def reason(self) -> str:
        """The top factors' sentences joined (seed-compatible ``reason``), rendered on demand."""
        return " | ".join(f.explanation for f in self.top_factors)


class NoDataError(Exception):
    """No factor had data (or every factor with data has weight 0)."""

    def __init__(self, missing: tuple[tuple[str, str], ...]) -> None:
        super().__init__("no factor has data: " + "; ".join(f"{n}: {r}" for n, r in missing))
        self.missing = missing
