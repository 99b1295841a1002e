"""The OpenAPI generator with request bodies and non-GET verbs (GPT Actions imports these):
``body: "*"`` becomes a required JSON requestBody from the request message (less its path fields),
``body: "field"`` that field's schema, and body fields are never repeated as query parameters."""

from __future__ import annotations

import json
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from service.edge.openapi import ALERT_ID_PATTERN, build_openapi
from service.generated import OPENAPI_FILE

FieldType = descriptor_pb2.FieldDescriptorProto


def _document() -> dict[str, Any]:
    return dict(json.loads(OPENAPI_FILE.read_text()))


def test_create_alert_takes_a_json_body() -> None:
    document = _document()
    operation = document["paths"]["/alerts"]["post"]
    assert operation["operationId"] == "CreateAlert"
    assert "parameters" not in operation  # nothing in the query: it is all in the body
    body = operation["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CreateAlertRequest"}
    schema = document["components"]["schemas"]["CreateAlertRequest"]["properties"]
    assert set(schema) == {"symbol", "symbols", "condition", "threshold", "webhookUrl"}
    assert schema["condition"]["enum"] == ["becomes_long", "becomes_short", "score_above", "score_below"]
    assert "0-100 score" in schema["threshold"]["description"]
    assert len(operation["description"]) <= 300


def test_list_and_delete_have_no_body_and_the_id_is_a_path_parameter() -> None:
    paths = _document()["paths"]
    assert "requestBody" not in paths["/alerts"]["get"]
    delete = paths["/alerts/{id}"]["delete"]
    assert "requestBody" not in delete
    assert delete["parameters"] == [
        {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": ALERT_ID_PATTERN, "maxLength": 32},
            "description": "The alert's id.",
        }
    ]
    secret = _document()["components"]["schemas"]["CreatedAlert"]["properties"]["secret"]
    assert "only here" in secret["description"]


def _descriptor(rule: http_pb2.HttpRule) -> bytes:
    """A one-RPC file: Thing(name, color, size) -> Thing, bound by ``rule``."""
    f = descriptor_pb2.FileDescriptorProto(name="cryptosignals/v1/things.proto", package="cryptosignals.v1")
    message = f.message_type.add(name="Thing")
    for number, (name, kind) in enumerate(
        [("name", FieldType.TYPE_STRING), ("color", FieldType.TYPE_STRING), ("size", FieldType.TYPE_INT32)], 1
    ):
        message.field.add(name=name, json_name=name, number=number, type=kind, label=FieldType.LABEL_OPTIONAL)
    method = f.service.add(name="ThingService").method.add(
        name="PutThing", input_type=".cryptosignals.v1.Thing", output_type=".cryptosignals.v1.Thing"
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    return descriptor_pb2.FileDescriptorSet(file=[f]).SerializeToString()


def test_a_body_star_with_a_path_parameter_leaves_the_path_field_out_of_the_body() -> None:
    document = build_openapi(_descriptor(http_pb2.HttpRule(patch="/things/{name}", body="*")))
    operation = document["paths"]["/things/{name}"]["patch"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [("name", "path")]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"color", "size"}


def test_a_body_field_is_the_body_and_the_rest_stay_in_the_query() -> None:
    document = build_openapi(_descriptor(http_pb2.HttpRule(put="/things/{name}", body="color")))
    operation = document["paths"]["/things/{name}"]["put"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [("name", "path"), ("size", "query")]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {"type": "string"}
