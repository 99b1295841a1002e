"""Generate the Python stubs, Envoy's descriptor set and the OpenAPI file from proto/.

Run as ``python -m service.build.codegen``; ``make gen`` does it when a .proto changes.
Everything written here lives under ``gen/`` and is a build product, never edited.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from importlib import resources
from pathlib import Path

from service.generated import ACTION_SCHEMA_FILE, DESCRIPTOR_SET, GEN_DIR, OPENAPI_FILE, PROTO_DIR


def _include_dirs() -> list[Path]:
    """Where google/api/*.proto (googleapis-common-protos) and google/protobuf/*.proto live."""
    import google.api  # googleapis-common-protos ships the .proto sources beside its modules
    import grpc_tools

    googleapis_root = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(str(resources.files(grpc_tools) / "_proto"))
    return [PROTO_DIR, googleapis_root, well_known]


def protos() -> list[str]:
    """Every .proto of the contract, relative to proto/."""
    return sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))


def stub_arguments(out_dir: Path) -> list[str]:
    """protoc's arguments for the Python messages, the gRPC stubs and their .pyi type hints in ``out_dir``."""
    bin_dir = Path(sys.executable).parent
    return [
        *(f"-I{d}" for d in _include_dirs()),
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
    ]


def mark_packages(out_dir: Path) -> None:
    """An ``__init__.py`` in every directory of generated modules up to ``out_dir``."""
    for package in {p.parent for p in out_dir.rglob("*_pb2.py")}:
        while package != out_dir:
            (package / "__init__.py").touch()
            package = package.parent


def generate() -> None:
    from grpc_tools import protoc

    if GEN_DIR.exists():
        shutil.rmtree(GEN_DIR)
    GEN_DIR.mkdir(parents=True)
    args = [
        "grpc_tools.protoc",
        *stub_arguments(GEN_DIR),
        f"--descriptor_set_out={DESCRIPTOR_SET}",
        "--include_imports",
        "--include_source_info",
        *protos(),
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    mark_packages(GEN_DIR)
    (GEN_DIR / "py.typed").touch()

    # The venv's .pth entry for gen/ is only honoured if gen/ existed when Python started.
    if str(GEN_DIR) not in sys.path:
        sys.path.insert(0, str(GEN_DIR))
    importlib.invalidate_caches()
    from service.edge.openapi import build_openapi, write_openapi

    write_openapi(build_openapi(DESCRIPTOR_SET.read_bytes()), OPENAPI_FILE)
    write_openapi(build_openapi(DESCRIPTOR_SET.read_bytes(), gpt_actions=True), ACTION_SCHEMA_FILE)
    print(f"generated {len(protos())} protos, {DESCRIPTOR_SET.name} and {OPENAPI_FILE.name} in {GEN_DIR}")


if __name__ == "__main__":
    generate()
