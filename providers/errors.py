"""One error type for every provider failure, classified by kind.

Callers branch on ``kind`` (never on message text): the service maps kinds to
gRPC statuses, the scorer reports them as the reason a factor is missing.
Messages are built by our code from the provider's status and code, so they
never contain the API key.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """Why a provider call failed."""

    AUTH = "auth"  # key missing, invalid or revoked
    PLAN = "plan"  # valid key, but the plan does not include the endpoint
    RATE_LIMITED = "rate_limited"  # 429 or the provider's rate-limit code
    NOT_FOUND = "not_found"  # unknown coin or instrument
    UPSTREAM = "upstream"  # 5xx, connection failure, unexpected error envelope
    TIMEOUT = "timeout"  # no answer within the deadline
    BAD_PAYLOAD = "bad_payload"  # HTML, malformed JSON, or JSON not in the documented shape
    NOT_CONFIGURED = "not_configured"  # the provider's key is not set


class ProviderError(Exception):
    """A provider call that did not produce usable data."""

    def __init__(
        self,
        provider: str,
        endpoint: str,
        kind: ErrorKind,
        message: str,
        *,
        http_status: int | None = None,
        provider_code: str | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(f"{provider} {endpoint}: {message}")
        self.provider = provider
        self.endpoint = endpoint
        self.kind = kind
        self.message = message
        self.http_status = http_status
        self.provider_code = provider_code
        self.retry_after = retry_after
        # Worth another attempt (connect error, 5xx, 429): the HTTP layer's retry policy reads it.
        self.retryable = retryable

    @property
    def reason(self) -> str:
        """Short, user-facing reason, e.g. ``okx: timeout (no answer within 3.0 s)``."""
        return f"{self.provider}: {self.kind.value} ({self.message})"
