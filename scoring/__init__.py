"""Pure signal scoring: factor metrics -> sub-scores -> weighted score -> signal, confidence, reasons."""

from scoring.config import DEFAULT_CONFIG, ScoringConfig, ScoringConfigError, load_config
from scoring.engine import score_signal
from scoring.model import (
    FACTOR_NAMES,
    FactorResult,
    FearGreedInput,
    FundingInput,
    LiquidationInput,
    LongShortInput,
    Missing,
    MomentumInput,
    NoDataError,
    OpenInterestInput,
    Provenance,
    ScoredSignal,
    SignalInputs,
    SmartMoneyInput,
    SocialInput,
)

__all__ = [
    "DEFAULT_CONFIG",
    "FACTOR_NAMES",
    "FactorResult",
    "FearGreedInput",
    "FundingInput",
    "LiquidationInput",
    "LongShortInput",
    "Missing",
    "MomentumInput",
    "NoDataError",
    "OpenInterestInput",
    "Provenance",
    "ScoredSignal",
    "ScoringConfig",
    "ScoringConfigError",
    "SignalInputs",
    "SmartMoneyInput",
    "SocialInput",
    "load_config",
    "score_signal",
]
