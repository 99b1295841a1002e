"""Every provider's client in one bundle: what the signal domain and the records are given."""

from __future__ import annotations

from dataclasses import dataclass

from providers.coinapi import CoinApiClient
from providers.coinglass import CoinglassClient
from providers.feargreed import FearGreedClient
from providers.lunarcrush import LunarCrushClient
from providers.okx import OkxClient


@dataclass(frozen=True)
class Clients:
    okx: OkxClient
    coinglass: CoinglassClient
    coinapi: CoinApiClient
    lunarcrush: LunarCrushClient
    feargreed: FearGreedClient
    reference_exchange: str  # the exchange whose per-exchange series the factors read (COINGLASS_EXCHANGE)
    exchanges: tuple[str, ...]
