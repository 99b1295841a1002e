"""The providers' recorded twin (see server.py)."""

from providers.twin.faults import FaultKind
from providers.twin.server import PROVIDERS, RecordedRequest, RecordedTwin

__all__ = ["PROVIDERS", "FaultKind", "RecordedRequest", "RecordedTwin"]
