import pytest

from service.settings import SettingsError, load_settings


def test_defaults_match_the_documented_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "GRPC_PORT", "BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None)
    assert (settings.port, settings.grpc_port, settings.base_url) == (8000, 50051, "http://localhost:8000")


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("PORT", "0", "PORT"),
        ("GRPC_PORT", "70000", "GRPC_PORT"),
        ("BASE_URL", "localhost:8000", "BASE_URL: Value error, must start with http"),
        ("UPSTREAM_TIMEOUT_SECONDS", "-1", "UPSTREAM_TIMEOUT_SECONDS"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
        ("SCORING_CONFIG", "/nonexistent.toml", "SCORING_CONFIG"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert needle in message
    assert "\n" not in message


def test_blank_provider_keys_count_as_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINGLASS_API_KEY", "  ")
    assert load_settings(_env_file=None).coinglass_api_key is None


def test_keys_are_hidden_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINGLASS_API_KEY", "cg-SECRET-KEY-7f3a9")
    settings = load_settings(_env_file=None)
    assert "cg-SECRET-KEY-7f3a9" not in repr(settings)
    assert "cg-SECRET-KEY-7f3a9" not in str(settings.model_dump())
