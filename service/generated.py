"""Where the build products live: ``make gen`` (service/build/codegen.py) writes them from proto/.

Runtime code reads these files and never imports the generator: code generation is a build step.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
GEN_DIR = ROOT / "gen"
DESCRIPTOR_SET = GEN_DIR / "cryptosignals.pb"  # what Envoy's transcoder and the OpenAPI generator read
OPENAPI_FILE = GEN_DIR / "openapi.json"  # every operation
ACTION_SCHEMA_FILE = GEN_DIR / "openapi-gpt-actions.json"  # what GPT Actions may call
