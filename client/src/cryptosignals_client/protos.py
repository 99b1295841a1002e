"""Write the API's .proto files, and the google/api ones they import, into a directory.

``python -m cryptosignals_client.protos DIR`` gives a Go, TypeScript or any other caller the
contract this wheel was built from, as a directory ``buf generate`` (or ``protoc -I DIR``) reads
offline: ``cryptosignals/v1/*.proto`` from this package and ``google/api/*.proto`` from
googleapis-common-protos. google/protobuf/*.proto are left out: every protoc and buf has them.
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

_IMPORT = re.compile(r'^import\s+(?:public\s+|weak\s+)?"([^"]+)";', re.MULTILINE)


def _source(name: str) -> str:
    """The text of an imported file, e.g. ``google/api/http.proto``, from the package that ships it."""
    package, _, filename = name.rpartition("/")
    return (resources.files(package.replace("/", ".")) / filename).read_text(encoding="utf-8")


def export(directory: Path) -> list[Path]:
    """Write every .proto of cryptosignals.v1 and what they import (but google/protobuf) under ``directory``."""
    pending = sorted(
        f"cryptosignals/v1/{entry.name}"
        for entry in resources.files("cryptosignals.v1").iterdir()
        if entry.name.endswith(".proto")
    )
    if not pending:
        raise FileNotFoundError("no .proto files beside cryptosignals.v1: is it the cryptosignals-client wheel's?")
    written: list[Path] = []
    seen = set(pending)
    while pending:
        name = pending.pop(0)
        text = _source(name)
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
        for imported in _IMPORT.findall(text):
            if imported not in seen and not imported.startswith("google/protobuf/"):
                seen.add(imported)
                pending.append(imported)
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m cryptosignals_client.protos DIRECTORY")
    for path in export(Path(args[0])):
        print(path)


if __name__ == "__main__":
    main()
