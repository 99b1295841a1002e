"""Symbol validation and normalisation: every spelling of a coin maps to one canonical coin."""

from __future__ import annotations

import re

# Quote currencies stripped from pair spellings (BTCUSDT, BTC-USDT-SWAP, BTC/USD, BTC_PERP ...).
_QUOTES = ("USDT", "USDC", "USD", "PERP", "SWAP")
# What a symbol may look like before normalisation; the OpenAPI generator documents the same pattern.
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9\-_/]{0,29}$"
_RAW = re.compile(SYMBOL_PATTERN)
_COIN = re.compile(r"^[A-Z0-9]{1,15}$")


class InvalidSymbolError(ValueError):
    """A symbol that is not a coin or a pair of one."""


def normalize_symbol(raw: str) -> str:
    """Map ``btc``, ``BTC``, ``BTCUSDT``, ``BTC-USDT-SWAP`` and ``BTC/USDT`` to ``BTC``.

    Raises InvalidSymbolError with a message a person understands.
    """
    text = raw.strip()
    if not text:
        raise InvalidSymbolError("symbol is required, e.g. BTC or ETH")
    if not _RAW.match(text):
        raise InvalidSymbolError(
            f"symbol {text[:32]!r} is not valid: use a coin like BTC or a pair like BTCUSDT or BTC-USDT-SWAP "
            "(letters and digits, at most 30 characters)"
        )
    parts = [p for p in re.split(r"[-_/]", text.upper()) if p]
    while len(parts) > 1 and parts[-1] in _QUOTES:
        parts.pop()
    if len(parts) != 1:
        raise InvalidSymbolError(f"symbol {text!r} is ambiguous: give one coin, e.g. BTC")
    coin = parts[0]
    for quote in ("USDT", "USDC", "USD"):
        if coin.endswith(quote) and len(coin) > len(quote):
            coin = coin[: -len(quote)]
            break
    if not _COIN.match(coin):
        raise InvalidSymbolError(f"symbol {text!r} is not valid: a coin is 1-15 letters or digits, e.g. BTC")
    return coin
