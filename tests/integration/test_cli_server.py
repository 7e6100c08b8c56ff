"""The read commands against a running server (`--server`), so that a memory://
store can be inspected: through the public API only, with the API key if needed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from footfall.console.v1 import console_pb2, console_pb2_grpc
from footfall.insights.v1 import insights_pb2, insights_pb2_grpc
from footfall.retail.v2 import (
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import json_format

from server.app import Running, start
from server.config import Settings
from server.store import EventQuery

from .cli import CANCELLED, CATALOG, event, footfall, record_history
from .http_client import call

KEY = "cli-test-admin-key-0123456789"
ADMIN = (("x-goog-api-key", KEY),)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A memory:// server that needs an admin key, holding a history to read."""
    folder = tmp_path_factory.mktemp("served")
    keys = folder / "keys.json"
    keys.write_text(json.dumps({"keys": {KEY: {"projects": ["p"], "role": "admin",
                                               "name": "cli"}}}))
    running = start(Settings(host="127.0.0.1", port=0, store="memory://", grace_seconds=5,
                             auth_file=str(keys)))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            record_history(channel, running.store, ADMIN)
        yield running
    finally:
        running.stop()


def address(running: Running) -> str:
    return f"127.0.0.1:{running.port}"


def operation_names(running: Running) -> list[str]:
    with grpc.insecure_channel(address(running)) as channel:
        reply = operations_pb2_grpc.OperationsStub(channel).ListOperations(
            operations_pb2.ListOperationsRequest(name=CATALOG), metadata=ADMIN)
    return [op.name for op in reply.operations]


def test_operations_list_through_the_server(served: Running, tmp_path: Path) -> None:
    text = footfall("operations", "list", "--server", address(served), "--key", KEY,
                    "--parent", CATALOG, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["cancelled", "done", "done"]
    assert lines[0].split()[2] == CANCELLED and "error: CANCELLED: the purge" in lines[0]
    assert "success_count=2 failure_count=1" in lines[1]
    assert lines[2].endswith("purged_events_count=1")
    as_json = footfall("operations", "list", "--server", address(served), "--key", KEY,
                       "--parent", CATALOG, "--json", "--done", "true", cwd=tmp_path)
    ops = [json_format.Parse(line, operations_pb2.Operation())
           for line in as_json.stdout.splitlines()]
    assert [op.name for op in ops] == operation_names(served)


def test_events_count_through_the_server_leaves_nothing_behind(served: Running,
                                                               tmp_path: Path) -> None:
    before = operation_names(served)
    every = footfall("events", "count", "--server", address(served), "--parent", CATALOG,
                     cwd=tmp_path, env={"FOOTFALL_KEY": KEY})
    assert (every.returncode, every.stdout) == (0, "4\n"), every.stderr
    some = footfall("events", "count", "--server", address(served), "--key", KEY,
                    "--parent", CATALOG, "--filter", 'visitorId = "i2"', cwd=tmp_path)
    assert (some.returncode, some.stdout) == (0, "1\n")
    assert operation_names(served) == before  # the dry-run purges were deleted
    assert served.store.count_user_events(EventQuery(CATALOG)) == 4  # and deleted nothing


# What a read command asks of a server has no use for: the store (its rows alone
# make a filter's query, checked before connecting) and its backends,
# what only `footfall serve` runs (the call policy, its metrics, the operations'
# runner) and the servers' libraries. Imported, they took some 0.1 s of CPU of each
# call, which a test suite pays per test.
NOT_FOR_A_SERVER_CALL = {
    "server.store.base", "server.store.group_commit", "server.store.sqlite",
    "server.store.postgres", "server.store.backup", "server.store.copy",
    "server.store.restore", "sqlite3", "server.policy",
    "server.console.rejections", "server.operations.runner", "prometheus_client",
    "uvloop", "aiohttp", "psycopg", "uvicorn"}
# The command, run as `python -m server` runs it, then the modules it imported.
MODULES_AFTER = """
import json, sys
unwanted = set(json.loads(sys.argv[1]))
import server.__main__ as main
code = main.main(sys.argv[2:])
print(json.dumps([code, sorted(set(sys.modules) & unwanted)]))
"""


@pytest.mark.parametrize("command", [
    ["events", "count", "--parent", CATALOG, "--filter", 'eventType = "search"'],
    ["events", "list", "--parent", CATALOG, "--json"],
    ["talent-events", "list", "--parent", "projects/p/tenants/t", "--filter", "eventType = VIEW"],
    ["rejections", "list", "--parent", "projects/p"],
    ["catalogs", "--parent", "projects/p"],
    ["products", "list", "--parent", CATALOG, "--filter", 'type = "PRIMARY"'],
    ["operations", "list", "--parent", "projects/p"],
    ["insights", "totals", "--parent", CATALOG],
], ids=lambda command: " ".join(command[:2]))
def test_a_call_to_a_server_imports_neither_the_store_nor_what_serves(
        served: Running, command: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", MODULES_AFTER, json.dumps(sorted(NOT_FOR_A_SERVER_CALL)),
         *command, "--server", address(served), "--key", KEY],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    code, imported = json.loads(done.stdout.splitlines()[-1])
    assert (code, imported) == (0, [])


def test_events_list_reads_a_memory_store_through_the_server(served: Running,
                                                             tmp_path: Path) -> None:
    out = footfall("events", "list", "--server", address(served), "--key", KEY,
                   "--parent", CATALOG, "--filter", "transport = IMPORT", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [line.split()[2] for line in out.stdout.splitlines()] == ["visitor=i2", "visitor=i1"]


def test_without_the_key_the_server_refuses(served: Running, tmp_path: Path) -> None:
    out = footfall("operations", "list", "--server", address(served), "--parent", CATALOG,
                   cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("footfall: the server answered UNAUTHENTICATED: ")
    # (the role ListOperations needs: "the reader role (admin for operations)" was said)
    assert out.stderr.endswith("; give an API key with the admin role with --key or "
                               "FOOTFALL_KEY\n"), out.stderr
    wrong = footfall("events", "count", "--server", address(served), "--key", "nope",
                     "--parent", CATALOG, cwd=tmp_path)
    assert wrong.returncode == 2 and "UNAUTHENTICATED" in wrong.stderr


@pytest.mark.parametrize("source", ["store", "server"])
def test_no_operation_at_all_is_said_in_words(tmp_path: Path, source: str) -> None:
    """The default --parent, every operation, was said as `no operation under
    projects/`."""
    url = f"sqlite:///{tmp_path}/empty.db"
    running = start(Settings(host="127.0.0.1", port=0, http_port=0, store=url,
                             grace_seconds=5))
    try:
        where = ["--store", url] if source == "store" else ["--server", address(running)]
        out = footfall("operations", "list", *where, cwd=tmp_path)
        running_only = footfall("operations", "list", "--done", "false", *where, cwd=tmp_path)
    finally:
        running.stop()
    where_said = "in the store" if source == "store" else "on the server"
    assert (out.returncode, out.stdout, out.stderr) == (
        0, "", f"footfall: no operation {where_said}\n")
    assert running_only.stderr == f"footfall: no operation running {where_said}\n"


def test_every_operation_with_keys_on_says_to_name_a_parent(served: Running,
                                                            tmp_path: Path) -> None:
    # The default --parent (every operation) is refused for every key, admin too, and
    # nothing said that --parent was the way out.
    out = footfall("operations", "list", "--server", address(served), "--key", KEY,
                   cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("footfall: the server answered PERMISSION_DENIED: ")
    assert out.stderr.endswith(" (every operation is the default: --parent names a catalog, "
                               "location or project, e.g. projects/PROJECT)\n"), out.stderr


def test_a_server_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    # A port bound and not listened on: a connection to it is refused, and no other
    # process (another test worker's server) can take it meanwhile, as it could once
    # closed.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        out = footfall("operations", "list", "--server", f"127.0.0.1:{port}", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith(f"footfall: cannot reach a server at 127.0.0.1:{port}: "
                                 "nothing listens there: is the server running, and is that "
                                 "its gRPC port (50051 by default)? (UNAVAILABLE: "), out.stderr
    assert len(out.stderr.splitlines()) == 1


def test_store_and_server_are_one_or_the_other(tmp_path: Path) -> None:
    out = footfall("operations", "list", "--server", "127.0.0.1:1", "--store", "memory://",
                   cwd=tmp_path)
    assert out.returncode == 2 and "not allowed with argument" in out.stderr


def test_without_a_key_no_request_is_even_decoded(served: Running) -> None:
    """An unauthenticated caller cannot make the server parse its request: bytes that
    are no request at all get UNAUTHENTICATED, not the INVALID_ARGUMENT of a decode."""
    method = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
    with grpc.insecure_channel(address(served)) as channel:
        call = channel.unary_unary(method)  # raw bytes in and out
        with pytest.raises(grpc.RpcError) as anonymous:
            call(b"\xff" * 100_000, timeout=10)
        with pytest.raises(grpc.RpcError) as keyed:
            call(b"\xff" * 100_000, timeout=10, metadata=ADMIN)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert keyed.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # decoded: it has a key


# What a terminal takes for commands: move to the line's start, clear the screen, set
# the window title (OSC ... BEL), hide what follows.
CONTROLS = "\r\x1b[2J\x1b]0;owned\x07\x1b[8m"


def _shown(out: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a command printed (stdout, then stderr), each checked to be printable:
    what a server answers, or a client stored, never drives the terminal."""
    printed = out.stdout.splitlines() + out.stderr.splitlines()
    assert all(line.isprintable() for line in printed), printed
    return printed


def test_what_a_writer_stored_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    # A writer key sits in a shop's pages: anyone may store an event type or a product
    # id holding a terminal's control sequences, for `footfall insights` to print.
    running = start(Settings(host="127.0.0.1", port=0, store="memory://", grace_seconds=5))
    try:
        with grpc.insecure_channel(address(running)) as channel:
            retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
            for event_type, products in ((f"page-view{CONTROLS}", []),
                                         ("detail-page-view", [f"sku{CONTROLS}"])):
                retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
                    parent=CATALOG, user_event=json_format.ParseDict(
                        {"eventType": event_type, "visitorId": "v",
                         "productDetails": [{"product": {"id": p}} for p in products]},
                        user_event_pb2.UserEvent())))
        for command in ("totals", "products"):
            out = footfall("insights", command, "--server", address(running), "--parent",
                           CATALOG, cwd=tmp_path)
            assert out.returncode == 0, out.stderr
            assert any(r"\r\x1b[2J\x1b]0;owned\x07\x1b[8m" in line for line in _shown(out))
    finally:
        running.stop()


class Hostile(operations_pb2_grpc.OperationsServicer, console_pb2_grpc.ConsoleServiceServicer):
    """A server (or anything listening where one is expected) that answers with text
    meant for the terminal of whoever asks."""

    def ListOperations(self, request: Any, context: Any) -> Any:  # noqa: N802
        op = operations_pb2.Operation(name=f"{CATALOG}/operations/import-user-events-1{CONTROLS}",
                                      done=True)
        op.error.code, op.error.message = 3, f"refused{CONTROLS}"
        return operations_pb2.ListOperationsResponse(operations=[op])

    def ListUserEvents(self, request: Any, context: Any) -> Any:  # noqa: N802
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad{CONTROLS}")


@pytest.fixture
def hostile() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    operations_pb2_grpc.add_OperationsServicer_to_server(Hostile(), server)
    console_pb2_grpc.add_ConsoleServiceServicer_to_server(Hostile(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def test_a_hostile_server_cannot_drive_the_terminal(hostile: str, tmp_path: Path) -> None:
    listed = footfall("operations", "list", "--server", hostile, "--parent", CATALOG,
                      cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    [line] = _shown(listed)
    assert line.startswith("failed") and r"refused\r\x1b[2J" in line
    refused = footfall("events", "list", "--server", hostile, "--parent", CATALOG,
                       cwd=tmp_path)
    assert refused.returncode == 2
    assert _shown(refused) == [r"footfall: the server answered INVALID_ARGUMENT: bad\r\x1b[2J"
                               r"\x1b]0;owned\x07\x1b[8m"]


class Looping(operations_pb2_grpc.OperationsServicer, console_pb2_grpc.ConsoleServiceServicer,
              insights_pb2_grpc.InsightsServiceServicer):
    """A server whose pages never end: each answer holds one record and a page token
    it gave before (the same one, or one of two in turn)."""

    def ListOperations(self, request: Any, context: Any) -> Any:  # noqa: N802
        return operations_pb2.ListOperationsResponse(
            operations=[operations_pb2.Operation(name=f"{CATALOG}/operations/purge-1")],
            next_page_token="again")

    def ListUserEvents(self, request: Any, context: Any) -> Any:  # noqa: N802
        answer = console_pb2.ListUserEventsResponse(
            next_page_token="b" if request.page_token == "a" else "a")
        answer.user_events.add().user_event.event_type = "page-view"
        return answer

    def ListCatalogs(self, request: Any, context: Any) -> Any:  # noqa: N802
        answer = console_pb2.ListCatalogsResponse(next_page_token="again")
        answer.catalogs.add(name=CATALOG, event_count=1)
        return answer

    def ListProductStats(self, request: Any, context: Any) -> Any:  # noqa: N802
        return insights_pb2.ListProductStatsResponse(
            products=[insights_pb2.ProductStats(product_id="sku", views=1)],
            next_page_token="again")


def test_pages_that_never_end_are_not_followed_forever(tmp_path: Path) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    looping = Looping()
    operations_pb2_grpc.add_OperationsServicer_to_server(looping, server)
    console_pb2_grpc.add_ConsoleServiceServicer_to_server(looping, server)
    insights_pb2_grpc.add_InsightsServiceServicer_to_server(looping, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        for command, pages in ((["operations", "list"], 2), (["events", "list"], 3),
                               (["catalogs"], 2),
                               (["insights", "products"], 2)):
            # (a catalog's is no parent of ListCatalogs, refused before it is asked)
            parent = "projects/p" if command == ["catalogs"] else CATALOG
            out = footfall(*command, "--server", f"127.0.0.1:{port}", "--parent", parent,
                           cwd=tmp_path, timeout=60)
            assert out.returncode == 1, (command, out)
            assert _shown(out)[-1] == (
                f"footfall: the server answered a page token it had already given, after "
                f"{pages} pages: its pages would repeat without end, so the listing "
                "stopped there"), (command, out.stderr)
    finally:
        server.stop(None)


def test_events_count_at_least_waits_for_what_is_sent_later(tmp_path: Path) -> None:
    """A test of an app that sends its events in the background had to write its own
    loop of counts to wait for them: `--at-least N` waits, and says when it waited in
    vain (exit 3), with the count it last read."""
    running = start(Settings(host="127.0.0.1", port=0, http_port=-1, store="memory://",
                             grace_seconds=5))
    try:
        command = ["events", "count", "--server", address(running), "--parent", CATALOG,
                   "--filter", 'eventTime > "2024-06-01T00:00:00Z"']
        waiting = subprocess.Popen(
            [sys.executable, "-m", "server", *command, "--at-least", "2", "--timeout", "60"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # once it has counted (none yet), the events come: two of three selected
            while 'method="CountUserEvents"' not in call(running.http_port, "GET",
                                                          "/metrics").body.decode():
                assert waiting.poll() is None, waiting.communicate()
            with grpc.insecure_channel(address(running)) as channel:
                write = user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent
                for visitor in ("a", "b", "c"):
                    write(user_event_service_pb2.WriteUserEventRequest(
                        parent=CATALOG, user_event=event(visitor, time="2024-01-01T00:00:00Z"
                                                         if visitor == "b" else
                                                         "2024-07-01T00:00:00Z")))
                    if visitor == "b":
                        assert waiting.poll() is None  # one selected: still waiting
            out, err = waiting.communicate(timeout=60)
        finally:
            if waiting.poll() is None:
                waiting.kill()
        assert (waiting.returncode, out, err) == (0, "2\n", "")
        late = footfall(*command, "--at-least", "3", "--timeout", "0.2", cwd=tmp_path)
        assert (late.returncode, late.stdout) == (3, "2\n")
        assert late.stderr == "footfall: 2 events, not 3, after waiting 0.2 s (--timeout)\n"
    finally:
        running.stop()
