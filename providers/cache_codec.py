"""JSON encoding of cached provider results for the shared (Redis) cache.

What ``load()`` returns in providers/*.py is either the provider's validated JSON (``data`` of an
envelope: dicts, lists, strings, numbers) or frozen dataclasses of plain fields and ``datetime``
(``ExchangeRate``, ``FearGreedReading``). JSON with three tags covers all of it, so pickle is not
needed: Redis is a trusted internal store, but a value read back must never be able to run code.
Decoding a dataclass tag only calls the constructor of a dataclass defined in ``providers.*``
with JSON fields; anything else is refused (treated as a cache miss by the caller).

Tags use one reserved key, ``"\\u0000t"``, that no upstream JSON uses; a dict from upstream that
happens to contain it is wrapped as a list of pairs, so decoding is never ambiguous.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from typing import Any

from providers.errors import ErrorKind, ProviderError

TAG = "\u0000t"


class CodecError(ValueError):
    """A value that cannot be stored or read back; the cache treats it as a miss."""


def encode(value: Any) -> bytes:
    return json.dumps(_pack(value), separators=(",", ":")).encode()


def decode(data: bytes) -> Any:
    try:
        return _unpack(json.loads(data))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CodecError(f"undecodable cache value ({type(exc).__name__})") from None


def _pack(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_pack(v) for v in value]
    if isinstance(value, tuple):
        return {TAG: "tuple", "v": [_pack(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and TAG not in value:
            return {k: _pack(v) for k, v in value.items()}
        return {TAG: "map", "v": [[_pack(k), _pack(v)] for k, v in value.items()]}
    if isinstance(value, datetime):
        return {TAG: "datetime", "v": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        fields = {f.name: _pack(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return {TAG: "dataclass", "cls": f"{cls.__module__}:{cls.__qualname__}", "v": fields}
    raise CodecError(f"cannot cache a {type(value).__name__} in the shared store")


def _unpack(value: Any) -> Any:
    if isinstance(value, list):
        return [_unpack(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(TAG)
    if tag is None:
        return {k: _unpack(v) for k, v in value.items()}
    if tag == "tuple":
        return tuple(_unpack(v) for v in value["v"])
    if tag == "map":
        return {_unpack(k): _unpack(v) for k, v in value["v"]}
    if tag == "datetime":
        return datetime.fromisoformat(value["v"])
    if tag == "dataclass":
        cls = _dataclass(value["cls"])
        return cls(**{k: _unpack(v) for k, v in value["v"].items()})
    raise CodecError(f"unknown tag {tag!r}")


def _dataclass(name: str) -> Any:
    module_name, _, qualname = name.partition(":")
    # Only our own provider models, from modules already loaded (no import side effects): a value
    # in Redis must not be able to pick an arbitrary callable.
    module = sys.modules.get(module_name)
    if not module_name.startswith("providers.") or "." in qualname or module is None:
        raise CodecError(f"refusing to decode {name!r}")
    cls = getattr(module, qualname)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise CodecError(f"{name!r} is not a dataclass")
    return cls


# What a failed load's waiters in other replicas are told (providers/cache.py): the failure itself.
_ERROR_FIELDS = ("http_status", "provider_code", "retry_after", "retryable")


def encode_error(error: BaseException) -> bytes | None:
    """A provider failure as JSON, or None for any other exception (not shared)."""
    if not isinstance(error, ProviderError):
        return None
    fields = {name: getattr(error, name) for name in _ERROR_FIELDS}
    record = {"provider": error.provider, "endpoint": error.endpoint, "kind": error.kind.value}
    record["message"] = error.message
    return json.dumps({**record, **fields}, separators=(",", ":")).encode()


def decode_error(data: bytes) -> ProviderError:
    try:
        record = json.loads(data)
        fields = {name: record.get(name) for name in _ERROR_FIELDS}
        return ProviderError(
            str(record["provider"]),
            str(record["endpoint"]),
            ErrorKind(record["kind"]),
            str(record["message"]),
            http_status=fields["http_status"],
            provider_code=fields["provider_code"],
            retry_after=fields["retry_after"],
            retryable=bool(fields["retryable"]),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CodecError(f"undecodable shared failure ({type(exc).__name__})") from None
