"""Scoring configuration: weights, thresholds, factor scales and confidence rules, from TOML.

Validated when loaded; every error names the key, e.g. ``weights.funding_rate must be >= 0``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from scoring.model import FACTOR_NAMES, CalibrationBand

DEFAULT_FILE = Path(__file__).with_name("default.toml")
# Scoring profiles: one engine, one set of factor builders, several configs. ``seed`` is the shipped
# default (the documented seed behaviour); ``research`` is the walk-forward-fitted candidate
# (docs/research-procedure.md), a file of overrides of the seed's keys.
PROFILES: dict[str, Path] = {
    "seed": DEFAULT_FILE,
    "research": Path(__file__).with_name("research.toml"),
}
# Factors that read a price/OI change over a lookback window ([lookback], hours as "24h").
LOOKBACK_FACTORS = ("open_interest",)
_HORIZON = re.compile(r"^([1-9][0-9]{0,3})h$")
_SCALE_KEYS = (
    "liquidation_imbalance",
    "funding_neutral_pct",
    "funding_pct",
    "long_short_pct",
    "smart_money_pct",
    "oi_change_pct",
    "oi_price_pct",
    "social_points",
    "fear_greed_points",
)
_CONFIDENCE_KEYS = (
    "coverage_floor",
    "high_distance",
    "high_agreement",
    "medium_distance",
    "medium_agreement",
    "medium_coverage",
)


class ScoringConfigError(ValueError):
    """A scoring configuration that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ScoringConfig:
    weights: Mapping[str, float]
    long_threshold: float
    short_threshold: float
    scales: Mapping[str, float]
    momentum_horizons: Mapping[str, tuple[float, float]]  # horizon -> (weight, scale_pct)
    confidence: Mapping[str, float]
    # factor -> hours after which its data is stale (dropped); empty: no factor is ever stale
    max_age_hours: Mapping[str, float] = field(default_factory=dict)
    # factor -> True: its sub-score is read as a reversal (mirrored around 50: 100 - s)
    reversal: Mapping[str, bool] = field(default_factory=dict)
    # factor -> lookback in hours (LOOKBACK_FACTORS only; absent: 24)
    lookback_hours: Mapping[str, int] = field(default_factory=dict)
    profile: str = "seed"  # the profile's name, shown with every signal
    # Measured confidence by band of |score - 50| (empty: the [confidence] rules decide)
    calibration: tuple[CalibrationBand, ...] = ()
    total_weight: float = field(init=False)
    max_age: Mapping[str, timedelta] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total_weight", sum(self.weights.values()))
        object.__setattr__(self, "max_age", {k: timedelta(hours=h) for k, h in self.max_age_hours.items()})

    def as_dict(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "thresholds": {"long": self.long_threshold, "short": self.short_threshold},
            "scales": dict(self.scales),
            "momentum": {h: list(v) for h, v in self.momentum_horizons.items()},
            "confidence": dict(self.confidence),
            "max_age_hours": dict(self.max_age_hours),
            # Only when they differ from the seed's reading, so the seed's config hash is unchanged.
            **({"reversal": dict(self.reversal)} if any(self.reversal.values()) else {}),
            **(
                {"lookback_hours": dict(self.lookback_hours)}
                if any(h != 24 for h in self.lookback_hours.values())
                else {}
            ),
            **(
                {"calibration": [[b.low, str(b.high), b.hit_rate, b.ci_low, b.ci_high] for b in self.calibration]}
                if self.calibration
                else {}
            ),
        }

    def band(self, score: float) -> CalibrationBand | None:
        """The calibration band of a score (None: no calibration, or a score outside every band)."""
        distance = abs(score - 50.0)
        for band in self.calibration:
            if band.low <= distance < band.high:
                return band
        return None

    def is_reversal(self, factor: str) -> bool:
        return self.reversal.get(factor, False)

    def lookback(self, factor: str) -> int:
        """The factor's lookback in hours (24 unless configured)."""
        return self.lookback_hours.get(factor, 24)


def horizon_hours(key: str) -> int:
    """``"24h"`` -> 24; ScoringConfigError for anything else."""
    match = _HORIZON.match(key)
    if match is None:
        raise ScoringConfigError(f'scoring config: {key!r} is not a horizon in hours such as "24h"')
    return int(match.group(1))


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScoringConfigError(f"scoring config: {key} must be a finite number, got {value!r}")
    return float(value)


def _table(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ScoringConfigError(f"scoring config: [{name}] must be a table")
    return value


def _merge(defaults: Mapping[str, Any], override: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in override.items():
        where = f"{prefix}{key}"
        if key not in defaults:
            allowed = ", ".join(sorted(defaults))
            raise ScoringConfigError(f"scoring config: unknown key {where!r} (allowed: {allowed})")
        if isinstance(defaults[key], dict) and prefix == "":
            if not isinstance(value, dict):
                raise ScoringConfigError(f"scoring config: [{where}] must be a table")
            if key == "momentum":
                merged[key] = dict(value)  # the horizons themselves are configurable
            else:
                merged[key] = _merge(defaults[key], value, f"{where}.")
        else:
            merged[key] = value
    return merged


def _build(raw: Mapping[str, Any]) -> ScoringConfig:
    weights = {}
    for name in FACTOR_NAMES:
        weight = _number(_table(raw, "weights").get(name), f"weights.{name}")
        if weight < 0:
            raise ScoringConfigError(f"scoring config: weights.{name} must be >= 0, got {weight:g}")
        weights[name] = weight
    if sum(weights.values()) <= 0:
        raise ScoringConfigError("scoring config: at least one weight must be > 0")
    thresholds = _table(raw, "thresholds")
    long_t = _number(thresholds.get("long"), "thresholds.long")
    short_t = _number(thresholds.get("short"), "thresholds.short")
    if not 0 < short_t < long_t < 100:
        raise ScoringConfigError(
            f"scoring config: thresholds must satisfy 0 < short < long < 100, got short={short_t:g} long={long_t:g}"
        )
    scales = {}
    for key in _SCALE_KEYS:
        value = _number(_table(raw, "scales").get(key), f"scales.{key}")
        if key != "funding_neutral_pct" and value <= 0:
            raise ScoringConfigError(f"scoring config: scales.{key} must be > 0, got {value:g}")
        scales[key] = value
    horizons: dict[str, tuple[float, float]] = {}
    for horizon, pair in _table(raw, "momentum").items():
        horizon_hours(horizon)
        if not isinstance(pair, list) or len(pair) != 2:
            raise ScoringConfigError(f"scoring config: momentum.{horizon} must be [weight, scale_pct]")
        weight, scale = _number(pair[0], f"momentum.{horizon} weight"), _number(pair[1], f"momentum.{horizon} scale")
        if weight < 0 or scale <= 0:
            raise ScoringConfigError(f"scoring config: momentum.{horizon} needs weight >= 0 and scale > 0")
        horizons[horizon] = (weight, scale)
    if not horizons or sum(w for w, _ in horizons.values()) <= 0:
        raise ScoringConfigError("scoring config: [momentum] needs at least one horizon with weight > 0")
    confidence = {}
    for key in _CONFIDENCE_KEYS:
        value = _number(_table(raw, "confidence").get(key), f"confidence.{key}")
        if value < 0 or (key.endswith(("coverage", "agreement", "floor")) and value > 1):
            raise ScoringConfigError(f"scoring config: confidence.{key} out of range, got {value:g}")
        confidence[key] = value
    max_age_hours = {}
    for name in FACTOR_NAMES:
        hours = _number(_table(raw, "max_age_hours").get(name), f"max_age_hours.{name}")
        if hours <= 0:
            raise ScoringConfigError(f"scoring config: max_age_hours.{name} must be > 0 hours, got {hours:g}")
        max_age_hours[name] = hours
    reversal = {}
    for name in FACTOR_NAMES:
        flag = _table(raw, "reversal").get(name, False)
        if not isinstance(flag, bool):
            raise ScoringConfigError(f"scoring config: reversal.{name} must be true or false, got {flag!r}")
        reversal[name] = flag
    lookback = {}
    for name in LOOKBACK_FACTORS:
        value = _table(raw, "lookback").get(name, "24h")
        if not isinstance(value, str):
            raise ScoringConfigError(f'scoring config: lookback.{name} must be a string such as "24h"')
        lookback[name] = horizon_hours(value)
    profile = raw.get("profile", "seed")
    if not isinstance(profile, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", profile):
        raise ScoringConfigError(f"scoring config: profile must be a short lower-case name, got {profile!r}")
    return ScoringConfig(
        weights,
        long_t,
        short_t,
        scales,
        horizons,
        confidence,
        max_age_hours,
        reversal,
        lookback,
        profile,
        _calibration(raw.get("calibration", [])),
    )


_BAND_KEYS = ("from", "to", "hit_rate", "ci_low", "ci_high", "positions")


def _calibration(raw: Any) -> tuple[CalibrationBand, ...]:
    if not isinstance(raw, list):
        raise ScoringConfigError("scoring config: calibration must be a list of bands")
    bands = []
    for k, entry in enumerate(raw):
        where = f"calibration[{k}]"
        if not isinstance(entry, dict) or set(entry) != set(_BAND_KEYS):
            raise ScoringConfigError(f"scoring config: {where} needs exactly {', '.join(_BAND_KEYS)}")
        low, high = _number(entry["from"], f"{where}.from"), entry["to"]
        if not (isinstance(high, float) and math.isinf(high)):
            high = _number(high, f"{where}.to")
        rates = [_number(entry[key], f"{where}.{key}") for key in ("hit_rate", "ci_low", "ci_high")]
        if not 0 <= low < high or not all(0 <= r <= 1 for r in rates) or not rates[1] <= rates[0] <= rates[2]:
            raise ScoringConfigError(
                f"scoring config: {where} is not a band (0 <= from < to, ci_low <= hit_rate <= ci_high)"
            )
        positions = int(_number(entry["positions"], f"{where}.positions"))
        bands.append(CalibrationBand(low, float(high), rates[0], rates[1], rates[2], positions))
    return tuple(sorted(bands, key=lambda b: b.low))


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ScoringConfigError(f"scoring config: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScoringConfigError(f"scoring config: {path} is not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None) -> ScoringConfig:
    """The shipped defaults, overridden by the keys present in ``path``."""
    defaults = _read(DEFAULT_FILE)
    if path is None:
        return _build(defaults)
    return _build(_merge(defaults, _read(Path(path))))


def load_profile(name: str, path: str | Path | None = None) -> ScoringConfig:
    """A named profile (``seed`` or ``research``); ``path`` (SCORING_CONFIG) overrides the seed's keys
    for the seed profile only, as it always has."""
    if name not in PROFILES:
        raise ScoringConfigError(f"scoring profile {name!r} is unknown (known: {', '.join(PROFILES)})")
    if name == "seed":
        return load_config(path)
    config = load_config(PROFILES[name])
    if config.profile != name:
        raise ScoringConfigError(f"scoring config: {PROFILES[name]} names profile {config.profile!r}, not {name!r}")
    return config


DEFAULT_CONFIG = load_config()
