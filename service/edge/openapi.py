"""OpenAPI 3.1 generation from the compiled descriptor set.

The .proto files are the only source: paths and verbs come from the
``google.api.http`` annotations, parameters and schemas from the request and
response messages, descriptions from the proto comments, enum values from proto
enums and from the ``allowed_values`` field option.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cryptosignals.v1 import options_pb2
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from service.rpc.auth import OPEN_METHODS
from service.rpc.symbols import SYMBOL_PATTERN

PACKAGE = "cryptosignals.v1"
TITLE = "cryptosignals"
VERSION = "1.0.0"
API_DESCRIPTION = (
    "Trading signals for crypto perpetual futures (LONG, SHORT or NEUTRAL with a 0-100 score, "
    "confidence and reasons) and Coinglass market data: funding, open interest, liquidations, "
    "long/short ratios."
)
# GPT Actions rejects operation descriptions over 300 characters (parameters: 700).
MAX_OPERATION_DESCRIPTION = 300
MAX_PARAMETER_DESCRIPTION = 700

FieldType = descriptor_pb2.FieldDescriptorProto
_SCALARS: dict[int, dict[str, Any]] = {
    FieldType.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldType.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldType.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldType.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldType.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldType.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldType.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # proto3 JSON writes 64-bit integers as strings.
    FieldType.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldType.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldType.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldType.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldType.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldType.TYPE_BOOL: {"type": "boolean"},
    FieldType.TYPE_STRING: {"type": "string"},
    FieldType.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
# Alert ids: 32 lowercase hex characters (a UUID4 without dashes).
ALERT_ID_PATTERN = r"^[0-9a-f]{32}$"
_ID_FIELDS = frozenset({f".{PACKAGE}.DeleteAlertRequest.id"})
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
}
_ERROR_SCHEMA = {
    "type": "object",
    "description": "An error: the gRPC status code, a message a person can act on, and details.",
    "properties": {
        "code": {
            "type": "integer",
            "description": "gRPC status code, an identifier, not a quantity (3 invalid argument, 5 not found ...).",
        },
        "message": {"type": "string", "description": "What went wrong, in plain words."},
        "details": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["code", "message"],
}
_ERROR_STATUSES = {
    "400": "Invalid argument: a bad symbol or parameter.",
    "401": "Missing or wrong API key.",
    "403": "The provider plan does not include this data.",
    "404": "Unknown coin or path.",
    "429": "Rate limited.",
    "503": "Upstream providers unavailable.",
    "504": "Deadline exceeded.",
}


def _clean_comment(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()).strip()


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def sse_event_schema(ref: str) -> dict[str, Any]:
    """One Server-Sent Event as tools read it (schemathesis, OpenAPI 3.2's ``itemSchema`` form): an
    object whose ``data`` is JSON text holding one ``ref`` message. Before OpenAPI 3.2, the media
    type's ``schema`` describes each event of a stream, not the stream."""
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "string",
                "description": f"One {ref} as JSON.",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": f"#/components/schemas/{ref}"},
            },
            "event": {"type": "string", "description": "The SSE event type: the default, message (none is sent)."},
            "id": {"type": "string", "description": "The SSE event id (none is sent)."},
            "retry": {
                "type": "integer",
                "minimum": 0,
                "description": "Reconnection delay for the client, in milliseconds (none is sent).",
            },
        },
    }


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return (match.group(1) if match else text).rstrip(".")


class _Comments:
    """Leading comments by descriptor path, from the descriptor set's source info."""

    def __init__(self, files: list[descriptor_pb2.FileDescriptorProto]) -> None:
        self._by_file: dict[str, dict[tuple[int, ...], str]] = {}
        for f in files:
            self._by_file[f.name] = {
                tuple(loc.path): _clean_comment(loc.leading_comments)
                for loc in f.source_code_info.location
                if loc.leading_comments
            }

    def get(self, file: str, path: tuple[int, ...]) -> str:
        return self._by_file.get(file, {}).get(path, "")


class _Generator:
    def __init__(self, descriptor_set: bytes, base_url: str, require_auth: bool, gpt_actions: bool = False) -> None:
        self.require_auth = require_auth
        self.gpt_actions = gpt_actions
        fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
        self.files = list(fds.file)
        self.base_url = base_url
        self.comments = _Comments(self.files)
        # full name (".pkg.Msg") -> (file, descriptor, source path)
        self.messages: dict[str, tuple[str, descriptor_pb2.DescriptorProto, tuple[int, ...]]] = {}
        self.enums: dict[str, tuple[str, descriptor_pb2.EnumDescriptorProto, tuple[int, ...]]] = {}
        for f in self.files:
            prefix = f".{f.package}" if f.package else ""
            for i, m in enumerate(f.message_type):
                self._index_message(f.name, prefix, m, (4, i))
            for i, e in enumerate(f.enum_type):
                self.enums[f"{prefix}.{e.name}"] = (f.name, e, (5, i))
        self.schemas: dict[str, Any] = {}

    def _index_message(
        self, file: str, prefix: str, msg: descriptor_pb2.DescriptorProto, path: tuple[int, ...]
    ) -> None:
        name = f"{prefix}.{msg.name}"
        self.messages[name] = (file, msg, path)
        for i, nested in enumerate(msg.nested_type):
            self._index_message(file, name, nested, (*path, 3, i))
        for i, e in enumerate(msg.enum_type):
            self.enums[f"{name}.{e.name}"] = (file, e, (*path, 4, i))

    @staticmethod
    def _schema_name(full_name: str) -> str:
        return full_name.removeprefix(f".{PACKAGE}.").replace(".", "_")

    def _enum_schema(self, full_name: str) -> dict[str, Any]:
        _, enum, _ = self.enums[full_name]
        values = [v.name for v in enum.value if v.number != 0]
        return {"type": "string", "enum": values}

    def _field_schema(self, field: descriptor_pb2.FieldDescriptorProto) -> dict[str, Any]:
        if field.type == FieldType.TYPE_MESSAGE:
            if field.type_name in _WELL_KNOWN:
                schema = dict(_WELL_KNOWN[field.type_name])
            else:
                _, msg, _ = self.messages[field.type_name]
                if msg.options.map_entry:
                    value_field = next(f for f in msg.field if f.name == "value")
                    return {"type": "object", "additionalProperties": self._field_schema(value_field)}
                schema = {"$ref": f"#/components/schemas/{self._message_schema(field.type_name)}"}
        elif field.type == FieldType.TYPE_ENUM:
            schema = self._enum_schema(field.type_name)
        else:
            schema = dict(_SCALARS[field.type])
            allowed = list(field.options.Extensions[options_pb2.allowed_values])
            if allowed:
                schema["enum"] = allowed
        if field.label == FieldType.LABEL_REPEATED:
            return {"type": "array", "items": schema}
        return schema

    def _message_schema(self, full_name: str) -> str:
        name = self._schema_name(full_name)
        if name in self.schemas:
            return name
        file, msg, path = self.messages[full_name]
        self.schemas[name] = {}  # reserve first: messages may refer to themselves
        properties: dict[str, Any] = {}
        for i, field in enumerate(msg.field):
            schema = self._field_schema(field)
            comment = self.comments.get(file, (*path, 2, i))
            if comment:
                if "$ref" in schema:
                    # 3.1 allows siblings of $ref; keep the description beside it.
                    schema = {**schema, "description": comment}
                else:
                    schema["description"] = comment
            properties[field.json_name] = schema
        body: dict[str, Any] = {"type": "object", "properties": properties}
        comment = self.comments.get(file, path)
        if comment:
            body["description"] = comment
        self.schemas[name] = body
        return name

    def _request_body(self, request_type: str, path_template: str, body: str) -> dict[str, Any]:
        """The JSON body of a ``body: "*"`` binding (the request message less its path fields) or of
        ``body: "field"`` (that field's schema)."""
        file, msg, path = self.messages[request_type]
        if body != "*":
            field = next(f for f in msg.field if f.name == body)
            schema = self._field_schema(field)
        else:
            path_params = set(re.findall(r"{([^}=]+)", path_template))
            if not path_params:
                schema = {"$ref": f"#/components/schemas/{self._message_schema(request_type)}"}
            else:
                name = self._message_schema(request_type)
                full = self.schemas[name]
                properties = {
                    f.json_name: full["properties"][f.json_name] for f in msg.field if f.name not in path_params
                }
                schema = {**full, "properties": properties}
        return {
            "required": True,
            "description": _shorten(
                self.comments.get(file, path) or "The request, as JSON.", MAX_PARAMETER_DESCRIPTION
            ),
            "content": {"application/json": {"schema": schema}},
        }

    def _parameters(self, request_type: str, path_template: str, body: str = "") -> list[dict[str, Any]]:
        file, msg, path = self.messages[request_type]
        path_params = set(re.findall(r"{([^}=]+)", path_template))
        params = []
        for i, field in enumerate(msg.field):
            if field.type == FieldType.TYPE_MESSAGE:
                continue
            in_path = field.name in path_params
            if (body == "*" and not in_path) or body == field.name:
                continue  # in the request body, not the query
            param: dict[str, Any] = {
                "name": field.name,
                "in": "path" if in_path else "query",
                "required": in_path,
                "schema": self._field_schema(field),
            }
            if f"{request_type}.{field.name}" in _ID_FIELDS:
                # An alert id as POST /alerts returns it (service/servicers/alerts.py checks the same).
                param["schema"] = {**param["schema"], "pattern": ALERT_ID_PATTERN, "maxLength": 32}
            if field.name == "symbol" and field.type == FieldType.TYPE_STRING:
                # The server's own rule (service/rpc/symbols.py), so clients and fuzzers know it too.
                param["schema"] = {**param["schema"], "pattern": SYMBOL_PATTERN, "maxLength": 30}
            comment = self.comments.get(file, (*path, 2, i))
            if comment:
                param["description"] = _shorten(comment, MAX_PARAMETER_DESCRIPTION)
            params.append(param)
        return params

    def _response(self, method: descriptor_pb2.MethodDescriptorProto) -> dict[str, Any]:
        if method.output_type == ".google.api.HttpBody":
            content_type = method.options.Extensions[options_pb2.response_content_type] or "application/json"
            schema: dict[str, Any] = {"type": "object"} if content_type == "application/json" else {"type": "string"}
            return {"description": "OK", "content": {content_type: {"schema": schema}}}
        ref = self._message_schema(method.output_type)
        if method.server_streaming:
            return {
                "description": f"Server-Sent Events: each event's `data` is one JSON {ref} (schema {ref}).",
                "content": {"text/event-stream": {"schema": sse_event_schema(ref)}},
            }
        return {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }

    def build(self) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        tags = []
        for f in self.files:
            if f.package != PACKAGE:
                continue
            for s_index, service in enumerate(f.service):
                methods = [
                    (m_index, method)
                    for m_index, method in enumerate(service.method)
                    if not (self.gpt_actions and method.options.Extensions[options_pb2.not_for_gpt_actions])
                ]
                if not methods:
                    continue
                tags.append(
                    {
                        "name": service.name,
                        "description": _shorten(self.comments.get(f.name, (6, s_index)), MAX_OPERATION_DESCRIPTION),
                    }
                )
                for m_index, method in methods:
                    rule = method.options.Extensions[annotations_pb2.http]
                    bindings: list[http_pb2.HttpRule] = [rule, *rule.additional_bindings]
                    comment = self.comments.get(f.name, (6, s_index, 2, m_index))
                    for n, binding in enumerate(bindings):
                        verb = binding.WhichOneof("pattern")
                        if verb is None or verb == "custom":
                            continue
                        template: str = getattr(binding, verb)
                        operation: dict[str, Any] = {
                            "operationId": method.name if n == 0 else f"{method.name}{n + 1}",
                            "tags": [service.name],
                            "summary": _first_sentence(comment) if comment else method.name,
                            "description": _shorten(comment, MAX_OPERATION_DESCRIPTION),
                            "parameters": self._parameters(method.input_type, template, binding.body),
                            "responses": {
                                "200": self._response(method),
                                # Shared definitions: written out in every operation they cost
                                # about a third of GPT Actions' 100,000-character budget.
                                **{code: {"$ref": f"#/components/responses/Error{code}"} for code in _ERROR_STATUSES},
                            },
                        }
                        if not operation["parameters"]:
                            del operation["parameters"]
                        if binding.body:
                            operation["requestBody"] = self._request_body(method.input_type, template, binding.body)
                        if self.require_auth and f"/{PACKAGE}.{service.name}/{method.name}" in OPEN_METHODS:
                            operation["security"] = []  # open even when client keys are required
                            del operation["responses"]["401"]
                        paths.setdefault(template, {})[verb] = operation
        self.schemas["Error"] = _ERROR_SCHEMA
        components: dict[str, Any] = {
            "schemas": dict(sorted(self.schemas.items())),
            "responses": {
                f"Error{code}": {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
                for code, text in _ERROR_STATUSES.items()
            },
        }
        security: dict[str, Any] = {}
        if self.require_auth:
            components["securitySchemes"] = {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of the keys in the server's SIGNAL_API_KEYS.",
                }
            }
            security = {"security": [{"bearerAuth": []}]}
        return {
            "openapi": "3.1.0",
            "info": {"title": TITLE, "version": VERSION, "description": API_DESCRIPTION},
            "servers": [{"url": self.base_url}],
            "tags": tags,
            "paths": dict(sorted(paths.items())),
            "components": components,
            **security,
        }


def build_openapi(
    descriptor_set: bytes,
    base_url: str = "http://localhost:8000",
    *,
    require_auth: bool = False,
    gpt_actions: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every HTTP-annotated RPC in the descriptor set.

    With ``require_auth`` the document declares the bearer scheme (GPT Actions' "API key, Bearer"),
    and the operations that stay open (health, info, schema, docs) opt out of it. With
    ``gpt_actions`` the operations marked ``not_for_gpt_actions`` in the protos (pages, assets,
    streams, operator endpoints) are left out, with the schemas only they use: the document GPT
    Actions reads (/gpt/action-schema) stays within its size budget as the API grows.
    """
    return _Generator(descriptor_set, base_url, require_auth, gpt_actions).build()


def write_openapi(document: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
