"""Schemathesis against gen/openapi.json through the real Envoy of the test stack.

Every operation gets a small, derandomized batch of valid (positive) and invalid (negative) inputs;
each response must be documented (status, content type, body schema), invalid input must be
rejected with a 4xx, and no answer may be a 5xx unless it is a mapped upstream failure (503/504
carrying our JSON error body). The in-process server runs on the test's event loop, so the
synchronous fuzzer runs in a worker thread while the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.stack import Stack

OPENAPI = Path(__file__).resolve().parent.parent / "gen" / "openapi.json"
EXAMPLES_PER_MODE = 25
MAPPED_5XX = {503, 504}  # UNAVAILABLE and DEADLINE_EXCEEDED: upstream trouble, reported as such


def mapped_server_errors_only(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """No 5xx, except 503/504 that carry our {"code", "message"} error body (never a bare 500)."""
    if response.status_code < 500:
        return None
    assert response.status_code in MAPPED_5XX, f"unmapped {response.status_code}: {response.text[:300]}"
    body = json.loads(response.text)
    assert isinstance(body.get("code"), int) and body.get("message"), f"not our error body: {response.text[:300]}"
    return None


CHECKS = [
    mapped_server_errors_only,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def fuzz(base_url: str) -> list[str]:
    """Failures, one report per (operation, mode) that failed; empty when everything conformed."""
    schema = schemathesis.openapi.from_path(OPENAPI)
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                failures.append(f"operation the fuzzer cannot read: {result.err()}")
                continue
            operation = result.ok()
            if "text/event-stream" in str(operation.definition.raw.get("responses", {}).get("200", {})):
                # A stream never ends by itself: a request-response fuzzer would wait forever.
                # Streams have their own tests (tests/test_live.py), bad input included.
                continue
            # An operation without parameters has no invalid input to generate.
            modes = [
                GenerationMode.POSITIVE,
                *([GenerationMode.NEGATIVE] if operation.path_parameters or operation.query else []),
            ]
            for mode in modes:

                @settings(
                    max_examples=EXAMPLES_PER_MODE,
                    derandomize=True,
                    database=None,
                    deadline=None,
                    phases=[Phase.explicit, Phase.generate],  # no shrinking: keep the run bounded
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def run(case: Case[Any]) -> None:
                    case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=15)

                try:
                    run()
                except Exception as exc:  # a FailureGroup, or a transport error: both are findings
                    failures.append(f"{operation.label} [{mode.value}]: {exc}")
    return failures


@pytest.mark.timeout(90)
async def test_every_operation_conforms_to_the_generated_openapi(stack: Stack) -> None:
    failures = await asyncio.to_thread(fuzz, stack.rest_url)
    assert not failures, "\n\n".join(failures)


STREAM = "/signals/{symbol}/stream"


def fuzz_stream(base_url: str) -> tuple[list[str], list[str]]:
    """The signal stream (SSE), which the batch above skips: (failures, the bodies of the known coins'
    streams). Schemathesis reads a stream until it goes quiet for the read timeout, then checks each
    event against the documented schema (an object whose ``data`` is a JSON SignalEvent)."""
    schema = schemathesis.openapi.from_path(OPENAPI)
    operation = schema[STREAM]["GET"]
    failures: list[str] = []
    bodies: list[str] = []
    with requests.Session() as session:
        for symbol in ("BTC", "eth"):
            case = operation.Case(path_parameters={"symbol": symbol})
            try:
                response = case.call(base_url=base_url, session=session, timeout=(10, 5))
                bodies.append(response.text)
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:
                failures.append(f"{STREAM} {symbol}: {exc}")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=10,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Case[Any]) -> None:
                case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=(10, 5))

            try:
                run()
            except Exception as exc:
                failures.append(f"{STREAM} [{mode.value}]: {exc}")
    return failures, bodies


@pytest.mark.timeout(180)
async def test_the_signal_stream_conforms_to_its_event_schema(stack: Stack) -> None:
    """Issue 24: the schema said an event was a string; schemathesis reads each event as an object
    (ST108). Now each event's ``data`` is documented as JSON holding a SignalEvent."""
    failures, bodies = await asyncio.to_thread(fuzz_stream, stack.rest_url)
    assert not failures, "\n\n".join(failures)
    for body in bodies:  # the streams of known coins did send events, so there was something to check
        events = [json.loads(line[5:]) for line in body.splitlines() if line.startswith("data:")]
        assert events and all(event["kind"] for event in events), body[:500]
