import pytest

from service.rpc.symbols import InvalidSymbolError, normalize_symbol


@pytest.mark.parametrize(
    "raw",
    ["BTC", "btc", " BTC ", "BTCUSDT", "btcusdt", "BTC-USDT-SWAP", "BTC-USDT", "BTC/USDT", "BTC_PERP", "BTCUSD"],
)
def test_every_spelling_of_a_coin_maps_to_the_coin(raw: str) -> None:
    assert normalize_symbol(raw) == "BTC"


def test_coins_with_digits_are_kept() -> None:
    assert normalize_symbol("1000PEPE-USDT-SWAP") == "1000PEPE"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("", "required"),
        ("NOT_A_COIN!", "not valid"),
        ("BTC ETH", "not valid"),
        ("A" * 40, "at most 30"),
        ("../etc/passwd", "not valid"),
        ("BTC-ETH", "ambiguous"),
        ("<script>", "not valid"),
    ],
)
def test_bad_symbols_are_rejected_with_a_message_that_says_why(raw: str, needle: str) -> None:
    with pytest.raises(InvalidSymbolError, match=needle):
        normalize_symbol(raw)
