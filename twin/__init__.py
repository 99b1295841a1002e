"""The providers' recorded twin: a loopback HTTP server answering like Coinglass, OKX, CoinAPI,
LunarCrush and alternative.me from recorded responses, with switchable faults.

    twin = RecordedTwin()
    await twin.start()                      # 127.0.0.1, free port
    settings_env = twin.base_urls()         # {"OKX_BASE_URL": "http://127.0.0.1:PORT/okx", ...}
    twin.set_fault("okx", "/api/v5/market/candles", "rate_limit", retry_after=2, times=1)
"""

from twin.faults import FAULT_KINDS, PROVIDERS, Fault, FaultKind
from twin.server import ENV_NAMES, RecordedRequest, RecordedTwin

__all__ = ["ENV_NAMES", "FAULT_KINDS", "PROVIDERS", "Fault", "FaultKind", "RecordedRequest", "RecordedTwin"]
