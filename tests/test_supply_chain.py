"""What gets installed is what was reviewed: every dependency from a lock with hashes, the image's
base by digest, and every runtime package in the image."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _locked(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) for every requirement of a uv/pip-compile lock."""
    entries: dict[str, tuple[str, int]] = {}
    name = ""
    for line in path.read_text().splitlines():
        pinned = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", line)
        if pinned:
            name = re.sub(r"\[.*\]", "", pinned.group(1)).lower().replace("_", "-")
            entries[name] = (pinned.group(2), 0)
        elif "--hash=sha256:" in line and name:
            version, hashes = entries[name]
            entries[name] = (version, hashes + 1)
    return entries


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        name, version = requirement.split("==")
        pins[re.sub(r"\[.*\]", "", name).lower().replace("_", "-")] = version
    return pins


def test_every_locked_dependency_carries_hashes_and_the_locks_agree_with_pyproject() -> None:
    runtime = _pins(PYPROJECT["project"]["dependencies"])
    extras = PYPROJECT["project"]["optional-dependencies"]
    dev = _pins(extras["dev"]) | _pins(extras["research"])
    for lock, wanted in ((ROOT / "requirements.lock", runtime), (ROOT / "requirements-dev.lock", runtime | dev)):
        locked = _locked(lock)
        unhashed = [name for name, (_, hashes) in locked.items() if hashes == 0]
        assert not unhashed, f"{lock.name}: no hash for {unhashed}"
        stale = {name: (version, locked.get(name, ("missing", 0))[0]) for name, version in wanted.items()}
        stale = {name: pair for name, pair in stale.items() if pair[0] != pair[1]}
        assert not stale, f"{lock.name} disagrees with pyproject.toml (pin, locked): {stale}: run `make lock`"
        assert len(locked) > len(wanted), f"{lock.name} holds the transitive dependencies too"
    assert not {"pytest", "mypy", "playwright"} & set(_locked(ROOT / "requirements.lock")), (
        "the image's lock is runtime only"
    )


def test_the_venv_and_the_image_install_from_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--no-deps -e ." in makefile
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "--no-deps ." in dockerfile


def test_the_image_base_is_pinned_by_digest() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.M)
    assert bases, "no FROM line"
    for base in bases:
        assert re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", base), f"{base} is not pinned by digest"


def test_the_image_copies_every_runtime_package() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY\s+(\w+)\s+\./\1\s*$", dockerfile, flags=re.M))
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    missing = packages - copied
    assert not missing, f"deploy/Dockerfile does not copy {sorted(missing)}: the image could not start"
    assert "twin" not in packages and "twin" not in copied, "the recorded twin is for tests and the demo only"
    assert "proto" in copied, "the image generates its stubs from proto/"
