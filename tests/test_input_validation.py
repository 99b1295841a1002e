"""Input validation audit: every REST parameter, odd bytes and sizes; always a JSON 4xx naming the problem."""

from __future__ import annotations

import httpx
import pytest

BOOL_HINT = "true or false"
HISTORY = "h1, h4, h8, h12, d1"

# (path, the parameter the message must name, a phrase listing what is allowed)
REJECTED = [
    ("/signals/BTC?debug=maybe", "debug", BOOL_HINT),
    ("/signals/BTC?debug=", "debug", BOOL_HINT),
    ("/signals/BTC?debug=%00", "debug", BOOL_HINT),
    ("/coinglass/liquidations/BTC?include_orders=2", "include_orders", BOOL_HINT),
    ("/coinglass/liquidations/BTC?include_map=maybe", "include_map", BOOL_HINT),
    ("/coinglass/long-short-ratio/BTC?interval=7m", "interval", HISTORY),
    ("/coinglass/open-interest/BTC?interval=%00", "interval", HISTORY),
    ("/coinglass/open-interest/BTC?interval=h1%00", "interval", HISTORY),
    ("/coinglass/funding-rate/BTC?interval=h1", "interval", "h4, h8"),
    ("/signals/" + "A" * 200, "symbol", "at most 30 characters"),
    ("/coinglass/markets/" + "A" * 20_000, "symbol", "at most 30 characters"),
    ("/signals/%E2%82%BF", "symbol", "letters and digits"),  # ₿
    ("/signals/%00", "symbol", "letters and digits"),
    ("/signals/BTC%00", "symbol", "letters and digits"),
    ("/signals/..%2F..%2Fetc%2Fpasswd", "symbol", "letters and digits"),
    ("/market/%2e%2e", "symbol", "letters and digits"),
    ("/coinglass/dashboard/BTC%20ETH", "symbol", "letters and digits"),
    ("/signals/BTC-ETH", "symbol", "one coin"),
    ("/signals/" + "B" * 16, "symbol", "1-15 letters or digits"),
    # The transcoder would let the query override the path's symbol (BTC answered as ETH).
    ("/signals/BTC?symbol=ETH", "symbol", "in the path"),
    ("/coinglass/funding-rate/BTC?interval=h8&symbol=ETH", "symbol", "in the path"),
    ("/signals/BTC?%73ymbol=ETH", "symbol", "in the path"),  # the transcoder decodes parameter names
    ("/market/BTC?sym%62ol=ETH", "symbol", "in the path"),
    ("/signals/BTC?debug=true&symbol", "symbol", "in the path"),
    # Not UTF-8: the proto string cannot hold it; was a 500 quoting a DecodeError.
    ("/market/%FF", "UTF-8", "UTF-8"),
    ("/coinglass/funding-rate/BTC?interval=%C3%28", "UTF-8", "UTF-8"),
]


@pytest.mark.parametrize(("path", "names", "allowed"), REJECTED)
async def test_bad_input_is_400_json_naming_the_parameter_and_what_is_allowed(
    rest: httpx.AsyncClient, path: str, names: str, allowed: str
) -> None:
    reply = await rest.get(path)
    assert reply.status_code == 400, (path[:80], reply.status_code, reply.text[:300])
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["code"] == 3
    assert names in body["message"] and allowed in body["message"], body["message"]
    assert len(body["message"]) < 400  # never echoes the whole of a huge input
    assert "Error" not in body["message"] and "class" not in body["message"]  # no exception text


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/signals/btc", "symbol", "BTC"),
        ("/signals/BTC-USDT-SWAP", "symbol", "BTC"),
        ("/signals/BTC%2FUSDT", "symbol", "BTC"),  # an encoded slash stays inside the segment
        ("/coinglass/long-short-ratio/BTC?interval=H4", "interval", "4h"),  # case does not matter
        ("/coinglass/long-short-ratio/BTC?interval=4h", "interval", "4h"),
        ("/coinglass/long-short-ratio/BTC?interval=", "interval", "1h"),  # empty is the default
        ("/coinglass/funding-rate/BTC?interval=4h", "interval", "4h"),
        ("/coinglass/open-interest/BTC?interval=d1", "interval", "1d"),
    ],
)
async def test_documented_spellings_are_accepted(rest: httpx.AsyncClient, path: str, field: str, value: str) -> None:
    reply = await rest.get(path)
    assert reply.status_code == 200, reply.text
    assert reply.json()[field] == value


@pytest.mark.parametrize("flag", ["true", "false", "1", "0", "TRUE"])
async def test_boolean_spellings_the_transcoder_accepts(rest: httpx.AsyncClient, flag: str) -> None:
    reply = await rest.get("/coinglass/liquidations/BTC", params={"include_orders": flag})
    assert reply.status_code == 200, reply.text
    assert bool(reply.json()["orders"]) == (flag.lower() in {"true", "1"})


async def test_unknown_query_parameters_are_ignored(rest: httpx.AsyncClient) -> None:
    # GPT Actions and proxies add their own parameters: they must not break a call.
    reply = await rest.get("/signals/BTC", params={"utm_source": "gpt", "interval": "x" * 20_000})
    assert reply.status_code == 200


async def test_oversized_headers_are_a_json_431_not_a_429(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/signals/BTC", headers={"x-padding": "p" * 40_000})
    assert reply.status_code == 431
    assert reply.json() == {"code": 3, "message": "request headers (the URL included) are larger than 32 KB"}
    # Under Envoy's cap, the server accepts the metadata (it used to answer RESOURCE_EXHAUSTED, a 429).
    assert (await rest.get("/signals/BTC", headers={"x-padding": "p" * 20_000})).status_code == 200


async def test_a_path_that_leaves_the_api_is_a_json_404(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/signals/BTC/../../../etc/passwd")  # normalised by the client: /etc/passwd
    assert reply.status_code == 404
    assert reply.json()["code"] == 5
