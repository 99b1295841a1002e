""".env.example lists every setting of the README's configuration table, with its default and a comment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ENV_EXAMPLE = ROOT / ".env.example"
PROVIDER_KEYS = {"COINGLASS_API_KEY", "COINAPI_KEY", "LUNARCRUSH_API_KEY"}


def readme_settings() -> list[str]:
    """The variables of the README's "## Configuration" table (first column, in backticks)."""
    text = README.read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.MULTILINE)


def example_lines() -> list[str]:
    return ENV_EXAMPLE.read_text().splitlines()


def example_settings() -> dict[str, str]:
    """NAME -> value of every assignment in .env.example."""
    settings: dict[str, str] = {}
    for line in example_lines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            assert match[1] not in settings, f"{match[1]} is set twice"
            settings[match[1]] = match[2]
    return settings


def test_the_readme_table_is_found() -> None:
    names = readme_settings()
    assert len(names) >= 30
    assert {"PORT", "COINGLASS_API_KEY", "LOG_LEVEL"} <= set(names)


def test_every_setting_of_the_readme_table_is_in_env_example() -> None:
    missing = [name for name in readme_settings() if name not in example_settings()]
    assert not missing, f".env.example lacks {', '.join(missing)} (README's configuration table lists them)"


def test_env_example_names_only_real_settings() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    unknown = sorted(set(example_settings()) - fields)
    assert not unknown, f".env.example sets {unknown}, which the service does not read"


def test_every_setting_has_a_one_line_comment_above_it() -> None:
    lines = example_lines()
    for k, line in enumerate(lines):
        if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", line):
            assert k > 0 and lines[k - 1].startswith("# ") and len(lines[k - 1]) > 3, f"{line}: no comment above"


def test_provider_keys_are_empty() -> None:
    settings = example_settings()
    assert {name: settings[name] for name in PROVIDER_KEYS} == dict.fromkeys(PROVIDER_KEYS, "")


def test_env_example_holds_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copied to .env unchanged, it loads, and every value is the service's own default."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    from_example = Settings(_env_file=ENV_EXAMPLE)  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert from_example.model_dump() == defaults.model_dump()
