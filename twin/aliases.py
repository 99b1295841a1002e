"""Coin aliases: the twin answers for more coins than it recorded (burst tests need many coins).

An alias (``XRP`` -> ``BTC``) is served the recorded coin's data: its name is rewritten to the
recorded coin's in the request's path and query before the request is answered, and Coinglass's
supported-coins list names it. The request is recorded as it was sent (``symbol=XRP``), so every
alias is its own set of upstream calls, as a real coin is. Off unless a test sets aliases.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from twin.reply import Reply, json_reply

SUPPORTED_COINS = "/api/futures/supported-coins"


class CoinAliases:
    def __init__(self) -> None:
        self._aliases: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None

    def set(self, aliases: Mapping[str, str]) -> None:
        """``{"XRP": "BTC", ...}``; an empty mapping turns aliasing off."""
        self._aliases = {alias.upper(): coin.upper() for alias, coin in aliases.items()}
        if not self._aliases:
            self._pattern = None
            return
        names = "|".join(sorted(map(re.escape, self._aliases), key=len, reverse=True))
        # A coin name as providers spell it: BTC, btc, BTCUSDT, BTC-USDT-SWAP, /BTC/USD; not inside a word.
        self._pattern = re.compile(rf"(?<![A-Za-z])({names}|{names.lower()})(?![a-z])")

    def __bool__(self) -> bool:
        return bool(self._aliases)

    def rewrite(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        name = match[1]
        coin = self._aliases[name.upper()]
        return coin if name.isupper() else coin.lower()

    def rewrite_query(self, query: Mapping[str, str]) -> dict[str, str]:
        return {name: self.rewrite(value) for name, value in query.items()}

    def listed(self, path: str, reply: Reply) -> Reply:
        """Coinglass's supported-coins answer naming the aliases too."""
        if not self._aliases or path.rstrip("/") != SUPPORTED_COINS or reply.status != 200:
            return reply
        try:
            payload = json.loads(reply.body)
        except ValueError:
            return reply
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            return reply
        payload["data"] = [*payload["data"], *(a for a in self._aliases if a not in payload["data"])]
        return json_reply(payload, reply.status, dict(reply.headers))
