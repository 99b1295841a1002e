"""OKX v5 public endpoints: envelope {"code": "0", "msg": "", "data": [...]}, rows NEWEST FIRST."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from twin.reply import Reply, json_reply
from twin.store import COINS, HOUR, Reducer, Store, period_ms, resample_arrays


@dataclass(frozen=True)
class Series:
    file: str
    reducer: Reducer | None  # None: not a time series (no resampling)
    period_param: str | None
    default_limit: int
    max_limit: int


RUBIK = "/api/v5/rubik/stat/contracts/"
SERIES: dict[str, Series] = {
    "/api/v5/market/candles": Series("market_candles", "ohlc", "bar", 100, 300),
    "/api/v5/market/history-candles": Series("market_candles", "ohlc", "bar", 100, 100),
    "/api/v5/market/ticker": Series("market_ticker", None, None, 1, 1),
    "/api/v5/public/funding-rate": Series("public_funding-rate", None, None, 1, 1),
    "/api/v5/public/funding-rate-history": Series("public_funding-rate-history", None, None, 100, 400),
    RUBIK + "open-interest-history": Series("rubik_contracts_open-interest-history", "last", "period", 100, 100),
    RUBIK + "long-short-account-ratio-contract": Series(
        "rubik_contracts_long-short-account-ratio-contract", "last", "period", 100, 100
    ),
    RUBIK + "long-short-account-ratio-contract-top-trader": Series(
        "rubik_contracts_long-short-account-ratio-contract-top-trader", "last", "period", 100, 100
    ),
    RUBIK + "long-short-position-ratio-contract-top-trader": Series(
        "rubik_contracts_long-short-position-ratio-contract-top-trader", "last", "period", 100, 100
    ),
    "/api/v5/rubik/stat/taker-volume-contract": Series("rubik_taker-volume-contract", "sum", "period", 100, 100),
}
DEFAULT_PERIOD = {"bar": "1m", "period": "5m"}  # OKX's documented defaults


def param_empty(name: str) -> Reply:
    # Same shape and status as recorded/okx/errors/param-empty.http400.json, naming the parameter.
    return json_reply({"code": "50014", "data": [], "msg": f"{name} cannot be empty"}, 400)


def param_error(name: str) -> Reply:
    return json_reply({"code": "51000", "data": [], "msg": f"Parameter {name} error"}, 400)


def coin_of_swap(inst_id: str) -> str | None:
    """BTC-USDT-SWAP -> BTC. Only the USDT perpetuals of the recorded coins exist in the twin."""
    parts = inst_id.upper().split("-")
    if len(parts) == 3 and parts[1] == "USDT" and parts[2] == "SWAP" and parts[0] in COINS:
        return parts[0]
    return None


def coin_of_family(family: str) -> str | None:
    parts = family.upper().split("-")
    if len(parts) == 2 and parts[1] == "USDT" and parts[0] in COINS:
        return parts[0]
    return None


def _int(query: Mapping[str, str], name: str, default: int) -> int | None:
    raw = query.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        return None


def handle(store: Store, path: str, query: Mapping[str, str]) -> Reply:
    if path == "/api/v5/public/open-interest":
        return _open_interest(store, query)
    if path == "/api/v5/public/liquidation-orders":
        return _liquidations(store, query)
    series = SERIES.get(path)
    if series is None:
        return store.error("okx/errors/unknown-path.http404")
    inst_id = query.get("instId", "")
    if not inst_id:
        return param_empty("instId")
    coin = coin_of_swap(inst_id)
    if coin is None:
        return store.error("okx/errors/instrument-not-exist.http200")
    period_name = series.period_param
    spelling = query.get(period_name, "") or DEFAULT_PERIOD[period_name] if period_name else ""
    period = period_ms(spelling) if period_name else HOUR
    if period is None and period_name:
        return param_error(period_name)
    limit = _int(query, "limit", series.default_limit)
    after = _int(query, "after", 0)
    before = _int(query, "before", 0)
    if limit is None or after is None or before is None:
        return param_error("limit" if limit is None else "after" if after is None else "before")
    limit = max(1, min(limit, series.max_limit))
    key = ("okx", path, coin, spelling, limit, after, before)
    return store.cached(key, lambda: _series(store, series, coin, spelling, period or HOUR, limit, after, before))


def _series(
    store: Store, s: Series, coin: str, spelling: str, period: int, limit: int, after: int, before: int
) -> Reply:
    doc = store.doc(f"okx/{coin}/{s.file}")
    rows = doc["data"]
    if s.reducer is not None:
        # Bars of 6H and longer align to Hong Kong time (UTC+8) unless spelt "...utc", as on OKX.
        offset = 0 if spelling.endswith("utc") or period < 6 * HOUR else 8 * HOUR
        rows = resample_arrays(rows, period, offset, s.reducer)
    if after or before:
        time_key = "fundingTime" if s.reducer is None else None

        def ts(row: object) -> int:
            return int(row[time_key] if time_key and isinstance(row, dict) else row[0])  # type: ignore[index]

        rows = [r for r in rows if (not after or ts(r) < after) and (not before or ts(r) > before)]
    return json_reply({"code": "0", "msg": "", "data": rows[:limit]})


def _open_interest(store: Store, query: Mapping[str, str]) -> Reply:
    inst_type = query.get("instType", "")
    if not inst_type:
        return param_empty("instType")
    if inst_type.upper() != "SWAP":
        # The twin only recorded perpetual swaps; other types answer an empty list.
        return json_reply({"code": "0", "msg": "", "data": []})
    inst_id = query.get("instId", "")
    if inst_id:
        coin = coin_of_swap(inst_id)
        if coin is None:
            return store.error("okx/errors/instrument-not-exist.http200")
        return store.raw_reply(f"okx/{coin}/public_open-interest")

    def every_coin() -> Reply:
        rows = [store.doc(f"okx/{c}/public_open-interest")["data"][0] for c in COINS]
        return json_reply({"code": "0", "msg": "", "data": rows})

    return store.cached(("okx", "oi-all"), every_coin)


def _liquidations(store: Store, query: Mapping[str, str]) -> Reply:
    if not query.get("instType", ""):
        return param_empty("instType")
    family = query.get("uly", "") or query.get("instFamily", "")
    if not family:
        return param_empty("uly")
    coin = coin_of_family(family)
    if coin is None:
        return store.error("okx/errors/instrument-not-exist.http200")
    limit = _int(query, "limit", 100)
    if limit is None:
        return param_error("limit")
    limit = max(1, min(limit, 100))

    def build() -> Reply:
        doc = store.doc(f"okx/{coin}/public_liquidation-orders")
        entry = dict(doc["data"][0])
        entry["details"] = entry["details"][:limit]
        return json_reply({"code": "0", "msg": "", "data": [entry]})

    return store.cached(("okx", "liq", coin, limit), build)
