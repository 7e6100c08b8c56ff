"""GetCaller (GET /console/v1/caller): what the caller's key grants, over a real
socket with our stubs, on gRPC and REST alike. The console asked "Which project?"
of a key granted one project: no call said what a key grants."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings

from .http_client import call

ONE = "caller-test-reader-of-one-shop-0123"
TWO = "caller-test-reader-of-two-shops-012"
EVERY = "caller-test-admin-of-every-shop-01"
WRITER = "caller-test-writer-of-one-shop-012"
WRONG = "caller-test-no-such-key-0123456789"
KEYS = {
    ONE: {"projects": ["shop-a"], "role": "reader", "name": "one shop"},
    TWO: {"projects": ["shop-b", "shop-a"], "role": "reader"},  # (key #2: no name)
    EVERY: {"projects": ["*"], "role": "admin", "name": "ops"},
    WRITER: {"projects": ["shop-a"], "role": "writer", "name": "page"},
}
# What each key is told, as REST's JSON says it (gRPC's, as json_format prints it).
GRANTS: dict[str, dict[str, Any]] = {
    ONE: {"keysChecked": True, "projects": ["shop-a"], "role": "READER",
          "keyName": "one shop"},
    TWO: {"keysChecked": True, "projects": ["shop-a", "shop-b"], "role": "READER",
          "keyName": "key #2"},
    EVERY: {"keysChecked": True, "projects": ["*"], "role": "ADMIN", "keyName": "ops"},
    WRITER: {"keysChecked": True, "projects": ["shop-a"], "role": "WRITER", "keyName": "page"},
}
OPEN = {"keysChecked": False, "projects": ["*"], "role": "ROLE_UNSPECIFIED", "keyName": ""}
PATH = "/console/v1/caller"


def _sent(answer: dict[str, Any]) -> dict[str, Any]:
    """`answer` as REST's JSON has it: a field at its default is left out."""
    return {name: value for name, value in answer.items()
            if value not in (False, "", "ROLE_UNSPECIFIED")}


def _serve(settings: Settings, clock: FixedClock, **changes: Any) -> Iterator[Running]:
    running = start(dataclasses.replace(settings, http_port=-1, **changes), clock)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def keyed(settings: Settings, clock: FixedClock, tmp_path: Path) -> Iterator[Running]:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": KEYS}))
    yield from _serve(settings, clock, auth_file=str(keys))


@pytest.fixture
def keyless(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    yield from _serve(settings, clock)


def _grpc_caller(running: Running, key: str | None) -> console_pb2.Caller:
    metadata = (("x-goog-api-key", key),) if key else ()
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = console_pb2_grpc.ConsoleServiceStub(channel)
        answer: console_pb2.Caller = stub.GetCaller(console_pb2.GetCallerRequest(),
                                                    metadata=metadata, timeout=10)
        return answer


def _as_json(caller: console_pb2.Caller) -> dict[str, Any]:
    return json_format.MessageToDict(caller, always_print_fields_with_no_presence=True)


def _rest_caller(running: Running, key: str | None) -> tuple[int, dict[str, Any]]:
    reply = call(running.http_port, "GET", PATH, headers={"x-goog-api-key": key} if key else {})
    return reply.status, reply.json()


def _grpc_refusal(running: Running, key: str | None) -> tuple[grpc.StatusCode, str, str]:
    """The code, message and ErrorInfo reason of a refused gRPC GetCaller."""
    with pytest.raises(grpc.RpcError) as refused:
        _grpc_caller(running, key)
    error: Any = refused.value
    reason = ""
    for name, value in error.trailing_metadata() or ():
        if name == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    reason = info.reason
    return error.code(), error.details(), reason


@pytest.mark.parametrize("key", [ONE, TWO, EVERY, WRITER])
def test_a_key_is_told_its_projects_and_role_over_grpc_and_rest(keyed: Running,
                                                                  key: str) -> None:
    assert _as_json(_grpc_caller(keyed, key)) == GRANTS[key]
    status, answer = _rest_caller(keyed, key)
    assert status == 200, answer
    assert answer == _sent(GRANTS[key])


def test_the_key_itself_is_never_in_the_answer(keyed: Running) -> None:
    for key in (ONE, TWO, EVERY, WRITER):
        assert key.encode() not in _grpc_caller(keyed, key).SerializeToString()
        reply = call(keyed.http_port, "GET", PATH, headers={"x-goog-api-key": key})
        assert key.encode() not in reply.body, reply.body


def test_a_server_without_keys_answers_that_every_project_is_open(keyless: Running) -> None:
    assert _as_json(_grpc_caller(keyless, None)) == OPEN
    assert _rest_caller(keyless, None) == (200, {"projects": ["*"]})
    # (a key sent to a server that checks none changes nothing)
    assert _as_json(_grpc_caller(keyless, WRONG)) == OPEN


def test_a_wrong_key_is_unauthenticated_and_told_so(keyed: Running) -> None:
    code, message, reason = _grpc_refusal(keyed, WRONG)
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")
    assert message == "API key not valid; pass a valid API key"
    status, answer = _rest_caller(keyed, WRONG)
    assert status == 401 and answer["error"]["status"] == "UNAUTHENTICATED", answer
    assert answer["error"]["message"] == "API key not valid; pass a valid API key"


def test_no_key_is_unauthenticated_and_told_to_send_one(keyed: Running) -> None:
    code, message, reason = _grpc_refusal(keyed, None)
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_MISSING")
    assert "requires an API key" in message and "x-goog-api-key" in message, message
    status, answer = _rest_caller(keyed, None)
    assert status == 401 and "x-goog-api-key" in answer["error"]["message"], answer


def test_a_writer_key_is_told_it_writes_and_still_reads_nothing(keyed: Running) -> None:
    # It was refused GetCaller as any read (PERMISSION_DENIED), and the console could
    # tell it only that: now it is told its role, and so that it writes only; what it
    # learns (its own projects) it may already write to. Its reads are refused as before.
    assert _as_json(_grpc_caller(keyed, WRITER))["role"] == "WRITER"
    reply = call(keyed.http_port, "GET", "/console/v1/projects/shop-a/catalogs",
                 headers={"x-goog-api-key": WRITER})
    assert reply.status == 403, reply.body
    assert reply.json()["error"]["message"] == (
        "the API key's role (writer) may not call ListCatalogs; it needs a reader or admin "
        "key"), reply.body
