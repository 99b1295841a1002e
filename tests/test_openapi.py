"""The generated OpenAPI file: valid 3.1, complete, within GPT Actions' limits."""

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from service.edge.openapi import build_openapi
from service.generated import DESCRIPTOR_SET

DOCUMENTED_PATHS = {
    "/",
    "/health",
    "/signals/{symbol}",
    "/market/{symbol}",
    "/debug/premium/{symbol}",
    "/gpt/action-schema",
    "/coinglass/markets",
    "/coinglass/markets/{symbol}",
    "/coinglass/perpetual-market/{symbol}",
    "/coinglass/liquidations/{symbol}",
    "/coinglass/liquidations/{symbol}/heatmap",
    "/coinglass/long-short-ratio/{symbol}",
    "/coinglass/funding-rate/{symbol}",
    "/coinglass/open-interest/{symbol}",
    "/coinglass/supported-coins",
    "/coinglass/exchanges",
    "/coinglass/dashboard/{symbol}",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi(DESCRIPTOR_SET.read_bytes(), base_url="https://signals.example.com")


def test_schema_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_documented_path_is_listed_with_an_operation_id(document: dict[str, Any]) -> None:
    assert set(document["paths"]) >= DOCUMENTED_PATHS
    operation_ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert all(operation_ids)
    assert len(operation_ids) == len(set(operation_ids))


def test_no_description_exceeds_gpt_actions_limit(document: dict[str, Any]) -> None:
    for path, ops in document["paths"].items():
        for op in ops.values():
            assert len(op.get("description", "")) <= 300, path
            for param in op.get("parameters", []):
                assert len(param.get("description", "")) <= 700, (path, param["name"])


def test_servers_entry_is_the_configured_base_url(document: dict[str, Any]) -> None:
    assert document["servers"] == [{"url": "https://signals.example.com"}]


def test_interval_parameters_list_their_allowed_values(document: dict[str, Any]) -> None:
    params = document["paths"]["/coinglass/long-short-ratio/{symbol}"]["get"]["parameters"]
    interval = next(p for p in params if p["name"] == "interval")
    assert interval["in"] == "query"
    assert {"h1", "h4", "h8", "h12", "d1"} <= set(interval["schema"]["enum"])


def test_signal_schema_uses_json_names_and_documents_units(document: dict[str, Any]) -> None:
    signal = document["components"]["schemas"]["Signal"]["properties"]
    assert {"fundingRate", "openInterest", "socialScore", "topFactors", "signal", "confidence"} <= set(signal)
    assert "fraction per 8 hours" in signal["fundingRate"]["description"]
    assert "USD" in signal["openInterest"]["description"]
    assert signal["signal"]["enum"] == ["LONG", "SHORT", "NEUTRAL"]
    assert signal["timestamp"] == {**signal["timestamp"], "type": "string", "format": "date-time"}


def test_path_parameters_are_required_and_typed(document: dict[str, Any]) -> None:
    params = document["paths"]["/signals/{symbol}"]["get"]["parameters"]
    by_name = {p["name"]: p for p in params}
    assert by_name["symbol"]["in"] == "path" and by_name["symbol"]["required"] is True
    assert by_name["debug"]["schema"]["type"] == "boolean"


def test_the_gpt_actions_schema_is_small_enough_and_leaves_out_what_an_assistant_cannot_call() -> None:
    action = build_openapi(DESCRIPTOR_SET.read_bytes(), gpt_actions=True)
    validate(action)
    assert len(json.dumps(action)) < 100_000  # GPT Actions' budget for a schema
    full = build_openapi(DESCRIPTOR_SET.read_bytes())
    left_out = set(full["paths"]) - set(action["paths"])
    assert left_out == {
        "/dashboard",
        "/assets/js/{name}",
        "/assets/css/{name}",
        "/backtest/{symbol}/chart",
        "/signals/{symbol}/stream",
        "/debug/premium/{symbol}",
        "/gpt/action-schema",
        "/openapi.json",
        "/docs",
        "/redoc",
    }
    for path in ("/signals/{symbol}", "/backtest/{symbol}", "/market/correlation", "/alerts"):
        assert path in action["paths"], path
    assert {t["name"] for t in action["tags"]} == {
        t for op in action["paths"].values() for o in op.values() for t in o["tags"]
    }


def test_with_client_keys_the_schema_declares_bearer_auth_except_on_open_endpoints() -> None:
    document = build_openapi(DESCRIPTOR_SET.read_bytes(), require_auth=True)
    validate(document)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/health"]["get"]["security"] == []
    assert document["paths"]["/gpt/action-schema"]["get"]["security"] == []
    assert "security" not in document["paths"]["/signals/{symbol}"]["get"]


def test_every_operation_documents_its_errors_with_the_error_schema(document: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/Error"}
    for path, ops in document["paths"].items():
        for op in ops.values():
            for status in ("400", "403", "404", "429", "503", "504"):
                response = op["responses"][status]
                if "$ref" in response:  # one shared definition per status
                    response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                assert response["content"]["application/json"]["schema"] == error, (path, status)
    assert document["components"]["schemas"]["Error"]["required"] == ["code", "message"]


def test_symbol_parameters_document_the_servers_rule(document: dict[str, Any]) -> None:
    from service.rpc.symbols import SYMBOL_PATTERN

    symbols = [
        p for ops in document["paths"].values() for op in ops.values() for p in op.get("parameters", [])
        if p["name"] == "symbol"
    ]  # fmt: skip
    assert len(symbols) >= 11
    assert all(p["schema"]["pattern"] == SYMBOL_PATTERN and p["schema"]["maxLength"] == 30 for p in symbols)
