"""The signal domain (signals/) is the same code for live and replay, and knows nothing of proto or gRPC."""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parent.parent / "signals"
FORBIDDEN = ("cryptosignals", "grpc", "google.protobuf", "google.api", "service")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_signal_domain_imports_no_generated_code_and_nothing_of_the_service():
    offenders = {
        f"{path.name}: {name}"
        for path in DOMAIN.rglob("*.py")
        for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert not offenders, offenders
    assert len(list(DOMAIN.rglob("*.py"))) >= 5  # the desk, sources, inputs, ... really live here
