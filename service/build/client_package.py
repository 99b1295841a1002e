"""Build the ``cryptosignals-client`` wheel from proto/ and client/: ``make client``.

The wheel holds the generated ``cryptosignals.v1`` messages and stubs with their ``.pyi`` type
hints, the ``.proto`` files (for callers in other languages) and the ``cryptosignals_client``
helper from ``client/src``; nothing of the server. Everything is written into a staging directory
(``build/client/`` by default, ignored by git) and built there with the venv's setuptools, offline
(``pip wheel --no-build-isolation --no-index``); the wheel lands in ``dist/``.

Run as ``python -m service.build.client_package [--staging DIR] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from service.build.codegen import mark_packages, protos, stub_arguments
from service.generated import PROTO_DIR, ROOT

CLIENT_DIR = ROOT / "client"
STAGING_DIR = ROOT / "build" / "client"
DIST_DIR = ROOT / "dist"
HELPER = "cryptosignals_client"

_PROTOBUF_GENCODE = re.compile(
    r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),"
)
_GRPC_GENCODE = re.compile(r"GRPC_GENERATED_VERSION = '([\d.]+)'")
_LOWER_BOUND = re.compile(r"^([A-Za-z0-9_.-]+)\s*>=\s*([\d.]+)")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def check_runtime_bounds(src: Path, pyproject: Path) -> None:
    """Fail unless the wheel's dependencies ask for at least the runtimes its generated code checks for."""
    needed: dict[str, tuple[int, ...]] = {}
    for module in src.rglob("*_pb2.py"):
        if found := _PROTOBUF_GENCODE.search(module.read_text()):
            needed["protobuf"] = max(needed.get("protobuf", ()), tuple(int(g) for g in found.groups()))
    for module in src.rglob("*_pb2_grpc.py"):
        if found := _GRPC_GENCODE.search(module.read_text()):
            needed["grpcio"] = max(needed.get("grpcio", ()), _version(found.group(1)))
    declared = {}
    for requirement in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        if found := _LOWER_BOUND.match(requirement):
            declared[found.group(1).lower()] = _version(found.group(2))
    for name, version in needed.items():
        if declared.get(name, ()) < version:
            wanted = ".".join(map(str, version))
            sys.exit(f"{pyproject}: the generated code needs {name}>={wanted}; raise the dependency's lower bound")


def stage(staging: Path) -> Path:
    """The package's source tree in ``staging``: pyproject, README, helper, generated code, protos."""
    from grpc_tools import protoc

    if staging.exists():
        shutil.rmtree(staging)
    src = staging / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(CLIENT_DIR / name, staging / name)
    shutil.copytree(CLIENT_DIR / "src" / HELPER, src / HELPER, ignore=shutil.ignore_patterns("__pycache__"))
    if protoc.main(["grpc_tools.protoc", *stub_arguments(src), *protos()]) != 0:
        sys.exit("protoc failed")
    mark_packages(src)
    (src / "cryptosignals" / "py.typed").touch()
    for name in protos():
        shutil.copy2(PROTO_DIR / name, src / name)
    check_runtime_bounds(src, staging / "pyproject.toml")
    return staging


def build_wheel(staging: Path = STAGING_DIR, out: Path = DIST_DIR) -> Path:
    """Stage the package and build its wheel into ``out``; returns the wheel's path."""
    stage(staging)
    project = tomllib.loads((staging / "pyproject.toml").read_text())["project"]
    wheel = out / f"{project['name'].replace('-', '_')}-{project['version']}-py3-none-any.whl"
    wheel.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    # The venv's own pip and setuptools, on the directory just staged: no index, no download.
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip_wheel, "--wheel-dir", str(out), str(staging)], check=True)  # noqa: S603
    if not wheel.is_file():
        sys.exit(f"pip wheel did not write {wheel}")
    return wheel


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--staging", type=Path, default=STAGING_DIR, help="where the package is assembled")
    parser.add_argument("--out", type=Path, default=DIST_DIR, help="where the wheel is written")
    args = parser.parse_args(argv)
    wheel = build_wheel(args.staging.resolve(), args.out.resolve())
    print(f"built {wheel} ({wheel.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
