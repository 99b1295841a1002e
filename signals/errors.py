"""The signal domain's errors: one tree, each error says what kind of failure it is.

The service maps each kind to one gRPC status in one table (service/rpc/status.py); nothing in the
domain knows about gRPC. A domain error's message is written for the person who sent the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from providers.errors import ErrorKind, ProviderError


class Failure(StrEnum):
    """What went wrong, in the caller's terms (the service picks the status from this alone)."""

    REFUSED = "refused"  # the request cannot be answered as asked: the caller must change it
    NOT_FOUND = "not_found"  # what was asked for does not exist
    UNAVAILABLE = "unavailable"  # the data behind the answer cannot be had now: retry later
    EXHAUSTED = "exhausted"  # a limit on concurrent work or streams is reached: retry later


class DomainError(Exception):
    """Root of the domain's errors; ``failure`` says which kind, ``retry_after`` (seconds) when
    to ask again if waiting helps."""

    failure: Failure = Failure.REFUSED
    retry_after: float | None = None


def unknown_coin_message(symbol: str) -> str:
    return f"unknown coin {symbol}: no provider has data for it"


class SignalUnavailableError(DomainError):
    """No factor had data: every source of every factor failed (or no provider knows the coin)."""

    def __init__(self, symbol: str, reasons: Mapping[str, str], not_found: bool) -> None:
        self.not_found = not_found
        self.failure = Failure.NOT_FOUND if not_found else Failure.UNAVAILABLE
        if not_found:
            message = unknown_coin_message(symbol)
        else:
            message = "no market data available: " + "; ".join(f"{k}: {v}" for k, v in reasons.items())
        super().__init__(message)


class BacktestRefusedError(DomainError, ValueError):
    """The backtest cannot be answered as asked (a bad period, a plan without this history, no data)."""

    failure = Failure.REFUSED


class BacktestBusyError(DomainError):
    """Too many backtests are being computed (on this server, or for this client): retry later."""

    failure = Failure.EXHAUSTED


class BacktestStoppedError(DomainError):
    """A backtest's worker was stopped because nobody waits for its report any more."""

    failure = Failure.UNAVAILABLE


class TooFewBarsError(BacktestRefusedError):
    """The period has too few scored bars with an outcome to say anything."""


class HistoryUnavailableError(DomainError):
    """A provider failed while the history was being fetched: no report is computed on partial data."""

    failure = Failure.UNAVAILABLE

    def __init__(self, error: ProviderError) -> None:
        super().__init__(
            f"history unavailable: {error.provider} {error.endpoint} failed ({error.kind.value}: {error.message}); "
            "no report is computed on partial data"
        )
        self.error = error
        if error.kind is ErrorKind.RATE_LIMITED:
            # A budget spent (the provider's, ours or this client's share): a 429 saying when to
            # come back, as every other rate-limited answer of the API; 503 is for a provider down.
            self.failure = Failure.EXHAUSTED
            self.retry_after = error.retry_after


class WatchLimitError(DomainError):
    """Too many watchers: per replica or per client."""

    failure = Failure.EXHAUSTED


class MarketQueryError(DomainError, ValueError):
    """A structure or correlation question asked out of range (interval, bars, window, symbols)."""

    failure = Failure.REFUSED


class CandlesUnavailableError(DomainError):
    """No source gave a coin's candles: every one failed (or none knows the coin)."""

    def __init__(self, symbol: str, reasons: list[str], not_found: bool) -> None:
        self.not_found = not_found
        self.failure = Failure.NOT_FOUND if not_found else Failure.UNAVAILABLE
        message = unknown_coin_message(symbol) if not_found else f"no candles for {symbol}: " + "; ".join(reasons)
        super().__init__(message)


class UnknownProfileError(DomainError, ValueError):
    """A scoring profile this server does not serve (the caller must name one it does)."""

    failure = Failure.REFUSED

    def __init__(self, profile: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown scoring profile {profile!r}: use one of {', '.join(known)}")
