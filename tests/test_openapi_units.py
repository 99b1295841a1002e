"""Every numeric field of every answer names its unit in the generated OpenAPI file (gen/openapi.json).

The walk covers every schema in the document, so a message or proto added later is checked too.
A map of numbers is checked on the map's own description (its values have none of their own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from service.generated import OPENAPI_FILE

# What a description may name as the unit of a number. Matched case-insensitively, as words.
UNITS = {
    "USD": r"\bUSD\b",
    "fraction": r"\bfraction\b",
    "percent": r"\bpercent\b",
    "ratio": r"\bratio\b",
    "0-100 score": r"\b0-100\b",
    "points (of the 0-100 score, or of weight)": r"\bpoints\b",
    "count": r"\bcount\b",
    "seconds": r"\bseconds\b",
    "milliseconds": r"\bmilliseconds\b",
    "hours": r"\bin hours\b",
    "coins (quantity of the base asset)": r"\bin (the base )?coins?\b",
    "rank": r"\brank\b",
    "status code (an identifier, not a quantity)": r"\bstatus code\b",
    "probability 0-1 (p-values)": r"\bprobability\b",
}
_UNIT = re.compile("|".join(f"(?:{pattern})" for pattern in UNITS.values()), re.IGNORECASE)
_INT64 = {"int64", "uint64"}


def _is_numeric(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    # proto3 JSON writes 64-bit integers as strings: still numbers.
    return bool(kinds & {"number", "integer"}) or ("string" in kinds and schema.get("format") in _INT64)


def numeric_fields(node: Any, where: str, description: str = "") -> Iterator[tuple[str, str]]:
    """(location, description) of every numeric value under ``node``.

    The description is the value's own, else the enclosing property's (array items, map values).
    """
    if not isinstance(node, dict):
        return
    description = node.get("description") or description
    if _is_numeric(node):
        yield where, description
    for name, child in (node.get("properties") or {}).items():
        yield from numeric_fields(child, f"{where}.{name}")
    if isinstance(node.get("items"), dict):
        yield from numeric_fields(node["items"], f"{where}[]", description)
    if isinstance(node.get("additionalProperties"), dict):
        yield from numeric_fields(node["additionalProperties"], f"{where}{{}}", description)
    for combinator in ("allOf", "anyOf", "oneOf"):
        for k, child in enumerate(node.get(combinator) or []):
            yield from numeric_fields(child, f"{where}.{combinator}[{k}]", description)


def document_numeric_fields(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every numeric value of every schema: the components, and any answer schema written inline."""
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        yield from numeric_fields(schema, name)
    for path, operations in document.get("paths", {}).items():
        for verb, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                for content_type, content in (response.get("content") or {}).items():
                    yield from numeric_fields(content.get("schema"), f"{verb.upper()} {path} {status} {content_type}")


def fields_without_unit(document: dict[str, Any]) -> list[str]:
    return [
        f"{where}: {description or '(no description)'}"
        for where, description in document_numeric_fields(document)
        if not _UNIT.search(description)
    ]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(OPENAPI_FILE.read_text())
    return loaded


def test_every_numeric_field_names_its_unit(document: dict[str, Any]) -> None:
    missing = fields_without_unit(document)
    assert not missing, (
        "numeric fields whose description names no unit (" + ", ".join(UNITS) + "):\n" + "\n".join(missing)
    )


def test_the_walk_reaches_every_kind_of_numeric_field(document: dict[str, Any]) -> None:
    found = dict(document_numeric_fields(document))
    assert len(found) > 100
    assert "Signal.fundingRate" in found  # a plain property
    assert "FactorDetail.metrics{}" in found  # map values
    assert "Error.code" in found  # integers, and schemas written by hand in the generator


def test_a_field_without_unit_is_reported_wherever_it_hides() -> None:
    document = {
        "components": {
            "schemas": {
                "Added": {
                    "type": "object",
                    "properties": {
                        "fine": {"type": "number", "description": "Price in USD."},
                        "bare": {"type": "number", "description": "Price."},
                        "big": {"type": "string", "format": "int64", "description": "Volume."},
                        "undocumented": {"type": "integer"},
                        "series": {"type": "array", "items": {"type": "number"}, "description": "Values."},
                        "byName": {"type": "object", "additionalProperties": {"type": "number"}},
                        "text": {"type": "string", "description": "Not a number."},
                    },
                }
            }
        },
        "paths": {
            "/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"type": "integer"}}}}}}}
        },
    }
    reported = {line.split(":")[0] for line in fields_without_unit(document)}
    assert reported == {
        "Added.bare",
        "Added.big",
        "Added.undocumented",
        "Added.series[]",
        "Added.byName{}",
        "GET /x 200 application/json",
    }
