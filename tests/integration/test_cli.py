"""The command line against a store: every read command in every format, one-line
errors and exit codes (0 done, 1 cannot use the store or port, 2 bad input)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from footfall.console.v1 import console_pb2
from footfall.retail.v2 import (
    import_config_pb2,
    product_pb2,
    product_service_pb2,
    product_service_pb2_grpc,
    user_event_pb2,
)
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import json_format

from server.app import start
from server.config import Settings
from server.operations import records
from server.store import EventRow
from server.store.rows import OperationRecord
from server.store.sqlite import SqliteStore

from .cli import CANCELLED, CATALOG, footfall, record_history, wait
from .tmpfs import mounted

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite store (its URL) holding events and operations of every state."""
    folder = tmp_path_factory.mktemp("history")
    url = f"sqlite:///{folder}/events.db"
    running = start(Settings(host="127.0.0.1", port=0, store=url, grace_seconds=5))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            record_history(channel, running.store)
    finally:
        running.stop()
    yield url


# -- operations list ---------------------------------------------------------------


def test_operations_list_says_state_kind_counts_and_error(history: str, tmp_path: Path) -> None:
    out = footfall("operations", "list", "--store", history, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    cancelled, imported, purged = lines
    assert cancelled.split()[:3] == ["cancelled", "purge-user-events", CANCELLED]
    assert cancelled.endswith("error: CANCELLED: the purge was cancelled; the batches "
                              "committed before the cancel are kept")
    assert imported.split()[:2] == ["done", "import-user-events"]
    assert "success_count=2 failure_count=1 error_samples=1 joined_events_count=2 " \
           "unjoined_events_count=0" in imported
    assert purged.split()[:2] == ["done", "purge-user-events"]
    assert purged.endswith(" purged_events_count=1")


def test_operations_list_json_is_each_operation(history: str, tmp_path: Path) -> None:
    out = footfall("operations", "list", "--store", history, "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    ops = [json_format.Parse(line, operations_pb2.Operation()) for line in
           out.stdout.splitlines()]
    assert [op.name.rsplit("/", 1)[1].rsplit("-", 1)[0] for op in ops] == [
        "purge-user-events", "import-user-events", "purge-user-events"]
    assert json.loads(out.stdout.splitlines()[2])["response"] == {
        "@type": "type.googleapis.com/google.cloud.retail.v2.PurgeUserEventsResponse",
        "purgedEventsCount": "1"}
    assert ops[0].error.code == grpc.StatusCode.CANCELLED.value[0]


def test_operations_list_json_unpacks_inventory_operations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    branch = f"{CATALOG}/branches/0"
    running = start(Settings(host="127.0.0.1", port=0, store=url, grace_seconds=5))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            products = product_service_pb2_grpc.ProductServiceStub(channel)
            products.CreateProduct(product_service_pb2.CreateProductRequest(
                parent=branch, product_id="p1",
                product=product_pb2.Product(title="Tent", categories=["Camping"])))
            started = products.AddFulfillmentPlaces(
                product_service_pb2.AddFulfillmentPlacesRequest(
                    product=f"{branch}/products/p1", type="pickup-in-store", place_ids=["s1"]))
            wait(operations_pb2_grpc.OperationsStub(channel), started.name)
    finally:
        running.stop()
    out = footfall("operations", "list", "--store", url, "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["response"] == {
        "@type": "type.googleapis.com/google.cloud.retail.v2.AddFulfillmentPlacesResponse"}
    listed = footfall("operations", "list", "--store", url, cwd=tmp_path)
    assert listed.stdout.split()[:2] == ["done", "add-fulfillment-places"]


def test_operations_list_filters_done_and_parent(history: str, tmp_path: Path) -> None:
    done = footfall("operations", "list", "--store", history, "--done", "true", cwd=tmp_path)
    running = footfall("operations", "list", "--store", history, "--done", "false",
                       cwd=tmp_path)
    other = footfall("operations", "list", "--store", history, "--parent", "projects/q/",
                     cwd=tmp_path)
    assert (len(done.stdout.splitlines()), running.stdout, other.stdout) == (3, "", "")


def test_operations_list_of_a_store_takes_a_parents_segments_whole(tmp_path: Path) -> None:
    """As ListOperations reads them: `projects/p` listed the operations of
    projects/pq too, and a branch named `default_branch` none (the store keeps it as
    `0`)."""
    path = tmp_path / "ops.db"
    store = SqliteStore(str(path))
    for project in ("p", "pq"):
        name = (f"projects/{project}/locations/global/catalogs/default_catalog/branches/0/"
                f"operations/import-products-1")
        store.create_operation(OperationRecord(
            name=name, kind="import-products", done=False, create_time_us=1, request=b"",
            operation=records.operation(name, import_config_pb2.ImportMetadata())
            .SerializeToString()))
    store.close()
    for parent in ("projects/p", "projects/p/",
                   "projects/p/locations/global/catalogs/default_catalog/branches/"
                   "default_branch"):
        listed = footfall("operations", "list", "--store", str(path), "--parent", parent,
                          cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert [line.split()[2] for line in listed.stdout.splitlines()] == [
            "projects/p/locations/global/catalogs/default_catalog/branches/0/operations/"
            "import-products-1"], (parent, listed.stdout)
    partial = footfall("operations", "list", "--store", str(path), "--parent",
                       "projects/p/locations/global/catalogs/default_cat", cwd=tmp_path)
    assert (partial.returncode, partial.stdout) == (0, ""), partial.stderr


@pytest.mark.parametrize("source", ["store", "server"])
@pytest.mark.parametrize(("command", "said"), [
    # (from a store, a mistyped parent listed no operation, exit 0, as an empty one)
    (["operations", "list"], "--parent: must name the parent of the operations, e.g. "
                             "projects/p/locations/global/catalogs/default_catalog, got 'my-shop'"),
    # (the server's answer named `parent`, a field the command line does not have)
    (["catalogs"], "--parent: must be projects/PROJECT (projects/- for every project), "
                   "got 'my-shop'"),
    # (every project, as `catalogs` and `rejections list` take it: listed none, exit 0,
    # from a store and from a server alike)
    (["operations", "list", "--parent", "projects/-"],
     "--parent: the project must be named ('-' stands for every project only where a read "
     "allows it), e.g. projects/p/locations/global/catalogs/default_catalog, got 'projects/-'"),
])
def test_a_parent_of_no_form_is_refused_naming_the_flag(history: str, tmp_path: Path,
                                                        source: str, command: list[str],
                                                        said: str) -> None:
    where = ["--store", history] if source == "store" else ["--server", "127.0.0.1:9"]
    if "--parent" not in command:
        command = [*command, "--parent", "my-shop"]
    out = footfall(*command, *where, cwd=tmp_path)
    assert (out.returncode, out.stdout, out.stderr) == (2, "", f"footfall: {said}\n")


# -- events count and list ---------------------------------------------------------


def test_events_count_and_list_in_both_formats(history: str, tmp_path: Path) -> None:
    count = footfall("events", "count", "--parent", CATALOG, "--store", history, cwd=tmp_path)
    assert (count.returncode, count.stdout) == (0, "4\n")  # a, b, i1, i2; the search purged
    some = footfall("events", "count", "--parent", CATALOG, "--store", history,
                    "--filter", 'visitorId = "a"', cwd=tmp_path)
    assert some.stdout == "1\n"
    text = footfall("events", "list", "--parent", CATALOG, "--store", history, "--limit", "3",
                    cwd=tmp_path)
    assert text.returncode == 0
    # latest event time first (all four share it), then the latest stored
    assert text.stdout.splitlines() == [
        "2024-01-01T00:00:00Z  home-page-view       visitor=i2  [import]",
        "2024-01-01T00:00:00Z  home-page-view       visitor=i1  [import]",
        "2024-01-01T00:00:00Z  home-page-view       visitor=b  [grpc]"]
    # One more is stored: said, or `list | wc -l` passes for a count.
    assert text.stderr == \
        "footfall: only 3 shown; more are stored (raise --limit; 0 shows all)\n"
    as_json = footfall("events", "list", "--parent", CATALOG, "--store", history, "--json",
                       cwd=tmp_path)
    events = [json_format.Parse(line, console_pb2.StoredUserEvent())
              for line in as_json.stdout.splitlines()]
    assert [e.user_event.visitor_id for e in events] == ["i2", "i1", "b", "a"]
    assert as_json.stderr == ""  # all shown
    every = footfall("events", "list", "--parent", CATALOG, "--store", history, "--limit", "0",
                     cwd=tmp_path)  # 0: no limit, as for the insights tables
    assert (len(every.stdout.splitlines()), every.stderr) == (4, "")
    negative = footfall("events", "list", "--parent", CATALOG, "--store", history, "--limit",
                        "-1", cwd=tmp_path)
    assert negative.returncode == 2 and "--limit: must be 0 (all) or more, got -1" \
        in negative.stderr
    assert [e.catalog for e in events] == [CATALOG] * 4 and all(e.joined for e in events)


def test_events_cli_refuses_bad_filters_and_parents(history: str, tmp_path: Path) -> None:
    bad = footfall("events", "list", "--parent", CATALOG, "--store", history, "--filter",
                   'visitorId > "x"', cwd=tmp_path)
    assert bad.returncode == 2
    assert "--filter: at character 11: expected '=' after visitorId" in bad.stderr
    wrong = footfall("events", "count", "--parent", "catalogs/x", "--store", history,
                     cwd=tmp_path)
    assert wrong.returncode == 2 and "--parent: must be of the form" in wrong.stderr
    # a name of the other API is told the command that reads it (a job site's tenant
    # given to `events` was told only the form of a catalog's name)
    for command, parent, said in (
            ("events", "projects/p/tenants/t", "is a talent tenant: its client events are "
                                               "`footfall talent-events list`"),
            ("talent-events", CATALOG, "is a retail catalog: its user events are "
                                       "`footfall events list`")):
        other = footfall(command, "list", "--parent", parent, "--store", history,
                         cwd=tmp_path)
        assert (other.returncode, other.stderr) == (2, f"footfall: --parent: {parent!r} {said}\n")
    for limit in ("-5", "x"):  # (0 is no limit: see above)
        none = footfall("events", "list", "--parent", CATALOG, "--store", history,
                        "--limit", limit, cwd=tmp_path)
        assert none.returncode == 2 and "argument --limit:" in none.stderr, none.stderr


@pytest.mark.parametrize(("flags", "said"), [
    (["--start", "yesterday"], "argument --start: not an RFC 3339 time with its offset: "
                               "'yesterday' (e.g. 2024-05-01T00:00:00Z or "
                               "2024-05-01T02:00:00+02:00)"),
    (["--end", "2024-05-01T00:00:00"], "argument --end: not an RFC 3339 time with its offset: "
                                       "'2024-05-01T00:00:00' (e.g. 2024-05-01T00:00:00Z"),
    (["--end", "2024-13-01T00:00:00Z"], "argument --end: not an RFC 3339 time"),
    # (1h, 90m, 3600 are taken: see test_a_funnel_window_takes_s_m_h_and_d)
    (["--window", "1w"], "argument --window: not a duration: '1w' (a number with s, m, h or d, "
                         "e.g. 90m, 2h, 1d or 3600s; seconds if none)"),
    (["--window", "1h30m"], "argument --window: not a duration: '1h30m' (a number with s, m, "
                            "h or d"),
    (["--window", "99999999999999999999999999999d"],
     "argument --window: '99999999999999999999999999999d' is out of range (at most "
     "315576000000s, 10,000 years)"),
])
def test_insights_time_flags_are_refused_naming_the_flag_with_an_example(
        flags: list[str], said: str, tmp_path: Path) -> None:
    """They said json_format's words ("Failed to parse startTime field: ... at
    RunFunnelRequest.startTime"), which name no flag; refused before any call."""
    out = footfall("insights", "funnel", "--parent", CATALOG, "--server", "127.0.0.1:1",
                   *flags, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines()[-1].startswith(f"footfall insights funnel: error: {said}"), \
        out.stderr


# -- read-only ---------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["events", "count", "--parent", CATALOG],
    ["events", "list", "--parent", CATALOG],
    ["operations", "list"],
])
def test_read_commands_refuse_a_store_that_does_not_exist(command: list[str],
                                                           tmp_path: Path) -> None:
    typo = footfall(*command, "--store", f"sqlite:///{tmp_path}/typo/events.db", cwd=tmp_path)
    assert typo.returncode == 1
    assert typo.stderr == f"footfall: cannot open the store: no store at " \
                          f"{tmp_path}/typo/events.db; name the store with --store, or ask " \
                          f"a running server with --server HOST:PORT\n"
    assert typo.stdout == ""
    # the default store is ./data/footfall.db of the folder the command runs in
    default = footfall(*command, cwd=tmp_path)
    assert default.returncode == 1
    assert f"no store at {tmp_path}/data/footfall.db" in default.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_a_store_found_but_unusable_is_not_told_to_name_the_store(tmp_path: Path) -> None:
    # (a text file, named with --store, was told "name the store with --store")
    (tmp_path / "notes.db").write_text("not a database\n")
    (tmp_path / "folder.db").mkdir()
    for store, said in (("notes.db", "notes.db is not a SQLite database (it does not start "
                                     "with the SQLite header)"),
                        ("folder.db", f"{tmp_path}/folder.db is a directory, not a database "
                                      "file")):
        out = footfall("events", "count", "--parent", CATALOG, "--store", store, cwd=tmp_path)
        assert (out.returncode, out.stderr) == (1, f"footfall: cannot open the store: {said}\n")


def test_reading_changes_nothing_in_the_store(history: str, tmp_path: Path) -> None:
    path = Path(history[len("sqlite:///"):])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for command in (["events", "count", "--parent", CATALOG], ["operations", "list"]):
        assert footfall(*command, "--store", history, cwd=tmp_path).returncode == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_memory_and_unknown_stores_are_one_line(tmp_path: Path) -> None:
    memory = footfall("events", "count", "--parent", CATALOG, "--store", "memory://",
                      cwd=tmp_path)
    # (a mistake in the command line, exit 2: test_cli_store_urls; said once: "...: ask
    # that server (--server HOST:PORT); name the store with --store, or ask a running
    # server with --server HOST:PORT" told it twice)
    assert (memory.returncode, memory.stderr) == (2, (
        "footfall events count: error: argument --store: a memory:// store lives inside the "
        "server that holds it: ask that server (--server HOST:PORT)\n"))
    unknown = footfall("events", "count", "--parent", CATALOG, "--store", "mysql://x",
                       cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("footfall events count: error: argument --store: "
                                     "unknown store URL")
    assert "Traceback" not in memory.stderr + unknown.stderr


def test_a_servers_address_as_store_is_told_to_ask_that_server(tmp_path: Path) -> None:
    # The console's URL at hand, a reader gave it as --store and was told to use
    # memory:// among the stores, which a read refuses in turn
    address = footfall("events", "count", "--parent", CATALOG, "--store",
                       "http://localhost:8080", cwd=tmp_path)
    assert (address.returncode, address.stderr) == (2, (
        "footfall events count: error: argument --store: unknown store URL "
        "'http://localhost:8080': that is a server's address; ask the server with --server "
        "HOST:PORT (its gRPC port, not a URL)\n"))
    unknown = footfall("catalogs", "--store", "mysql://x", cwd=tmp_path)
    assert (unknown.returncode, unknown.stderr) == (2, (
        "footfall catalogs: error: argument --store: unknown store URL 'mysql://x': use "
        "sqlite:///PATH or postgresql://USER@HOST/DB\n"))


@pytest.mark.parametrize("command", [
    ["insights", "funnel", "--parent", CATALOG], ["events", "tail", "--parent", CATALOG],
    ["reset", "--parent", CATALOG]])
def test_a_store_given_to_a_command_of_servers_only_is_told_to_ask_one(
        tmp_path: Path, command: list[str]) -> None:
    # `events list --store x.db` reads a store; `insights funnel --store x.db` was told
    # only "the following arguments are required: --server"
    said = footfall(*command, "--store", "./data/footfall.db", cwd=tmp_path)
    prog = " ".join(command[:2 if command[0] != "reset" else 1])
    assert (said.returncode, said.stderr) == (2, (
        f"footfall {prog}: error: argument --store: footfall {prog} takes no store: it asks "
        "a running server; give --server HOST:PORT, the gRPC port of a server on that "
        "store\n"))


# -- serve: configuration mistakes -------------------------------------------------


def test_unknown_store_url_stops_the_start_like_a_bad_flag(tmp_path: Path) -> None:
    out = footfall("serve", "--port", "0", "--http-port", "0", "--store", "bogus://x",
                   cwd=tmp_path)
    assert (out.returncode, out.stderr) == (2, (
        "footfall serve: error: argument --store: unknown store URL 'bogus://x': use "
        "sqlite:///PATH, memory:// or postgresql://USER@HOST/DB\n"))


@pytest.mark.parametrize(("url", "said"), [
    # no database: libpq took the user's name, and the tables went into `postgres`
    # (port 1, where nothing listens: were the URL taken, nothing would be written)
    ("postgresql://postgres:secret@127.0.0.1:1",
     "a PostgreSQL store URL names its database: postgresql://USER@HOST:PORT/DB"),
    ("postgresql://postgres:secret@127.0.0.1:1/db?sslmode=verify-full&bad%zzz",
     "PostgreSQL store URL: "),
    ("postgresql://postgres:hun%zzter2@127.0.0.1:1/db", "PostgreSQL store URL: "),
    # a traceback (psycopg.ProgrammingError), exit 1
    ("postgresql://postgres:secret@127.0.0.1:1/db?sslmod=require",
     'PostgreSQL store URL: invalid URI query parameter: "sslmod"'),
    # each waited for 14 s as an outage
    ("postgresql://postgres:secret@127.0.0.1:1/db?sslmode=bogus",
     "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full"),
    ("postgresql://postgres:secret@127.0.0.1:notaport/db",
     "the port must be a number from 1 to 65535, got 'notaport'"),
    # libpq read host `postgres`, port `sec`: "the port must be ..., got 'sec'"
    ("postgresql://postgres:sec/ret@127.0.0.1:1/db", "a / in its password is written %2F"),
    # libpq's words quoted an sslpassword= as it was
    ("postgresql://postgres@127.0.0.1:1/db?sslpassword=sec%zzret",
     'PostgreSQL store URL: invalid percent-encoded token: "***"'),
])
def test_a_postgresql_url_that_cannot_be_right_stops_the_start_in_one_line(
        url: str, said: str, tmp_path: Path) -> None:
    out = footfall("serve", "--port", "0", "--http-port", "0", "--store", url, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert said in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert not any(secret in out.stderr for secret in ("secret", "hun", "'sec'", "sec/",
                                                        "sec%")), out.stderr


@pytest.mark.parametrize(("flag", "said"), [
    # grpc said only "Failed to bind ...; set GRPC_VERBOSITY=debug ..."
    ("--port", "cannot start: cannot listen for gRPC on 127.0.0.1:{port}: Address already in use "
               "(--port or FOOTFALL_PORT picks another port; 0 a free one)"),
    # (as the gRPC port's: it said "[Errno 98] Address already in use")
    ("--http-port", "cannot start: cannot listen for HTTP on 127.0.0.1:{port}: Address "
                    "already in use (--http-port or FOOTFALL_HTTP_PORT picks another port; "
                    "-1 a free one, 0 none)"),
])
@pytest.mark.parametrize("processes", ["1", "2"])
def test_port_in_use(tmp_path: Path, flag: str, said: str, processes: str) -> None:
    """Said alike in one process and under --processes (whose HTTP line lacked the
    advice)."""
    store = tmp_path / "events.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--port": "0", "--http-port": "0", flag: str(port)}
        out = footfall("serve", *[part for pair in ports.items() for part in pair],
                       "--store", f"sqlite:///{store}", "--processes", processes,
                       cwd=tmp_path)
    assert out.returncode == 1
    # One line, ours: grpc's own "Failed to add port" came first, and the store was
    # created and migrated for a server that never served.
    [line] = out.stderr.splitlines()
    assert line.endswith(f" ERROR footfall: {said.format(port=port)}"), line
    assert not store.exists()


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_port_held_by_a_connection_is_refused_saying_so(tmp_path: Path,
                                                          processes: str) -> None:
    """A port nothing listens on can still be in use: a connection of another process
    has it as its own end (ports given to connections lie in one range). A new user,
    twice, found such a port refused that `ss -ltn` showed free: the line says why
    (under --processes it said "Address already in use" alone)."""
    store = tmp_path / "events.db"
    with socket.socket() as listener, socket.socket() as connection:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        connection.bind(("127.0.0.1", 0))
        connection.connect(listener.getsockname())
        port = connection.getsockname()[1]
        out = footfall("serve", "--port", str(port), "--http-port", "0",
                       "--store", f"sqlite:///{store}", "--processes", processes,
                       cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    [line] = out.stderr.splitlines()
    assert f"cannot listen for gRPC on 127.0.0.1:{port}: Address already in use (nothing " \
           f"listens on it: a connection of another process has {port} as its own port" in line
    assert "(--port or FOOTFALL_PORT picks another port; 0 a free one)" in line
    assert not store.exists()


def test_a_port_in_use_at_one_address_of_localhost_is_refused(tmp_path: Path) -> None:
    """grpc binds `localhost` as 127.0.0.1 and ::1: with [::1]:port another process's it
    served on 127.0.0.1 alone (a line of grpc's own said so), and the calls of a client
    of localhost:port went to that other process. Refused like any port in use."""
    store = tmp_path / "events.db"
    with socket.socket(socket.AF_INET6) as taken:
        try:
            taken.bind(("::1", 0))
        except OSError:
            pytest.skip("this machine has no IPv6 loopback")
        taken.listen()
        port = taken.getsockname()[1]
        out = footfall("serve", "--host", "localhost", "--port", str(port), "--http-port", "0",
                       "--store", f"sqlite:///{store}", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    [line] = out.stderr.splitlines()
    assert line.endswith(f" ERROR footfall: cannot start: cannot listen for gRPC on "
                         f"localhost:{port}: Address already in use (at [::1]:{port}) (--port "
                         "or FOOTFALL_PORT picks another port; 0 a free one)"), line
    assert not store.exists()


@pytest.mark.parametrize(("variables", "said"), [
    ({"FOOTFALL_PORT": "abc"}, "footfall serve: error: FOOTFALL_PORT: not an integer: 'abc'"),
    ({"FOOTFALL_GRACE_SECONDS": "soon"},
     "footfall serve: error: FOOTFALL_GRACE_SECONDS: not a number: 'soon'"),
    ({"FOOTFALL_STRICT_EVENT_TYPES": "maybe"},
     "footfall serve: error: FOOTFALL_STRICT_EVENT_TYPES: not a boolean: 'maybe'"),
    ({"FOOTFALL_PORT": "70000"}, "footfall serve: error: --port must be 0..65535, got 70000"),
])
def test_a_bad_variable_stops_serve_in_one_line(variables: dict[str, str], said: str,
                                                 tmp_path: Path) -> None:
    out = footfall("serve", "--http-port", "0", "--store", "memory://", cwd=tmp_path,
                   env=variables)
    assert out.returncode == 2
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert out.stderr.startswith(said), out.stderr


def test_a_watch_send_budget_past_the_whole_loop_stops_serve(tmp_path: Path) -> None:
    """--watch-send-ms 1500 was taken, and bounded nothing: a second of the loop has
    1,000 ms."""
    out = footfall("serve", "--port", "0", "--http-port", "0", "--store", "memory://",
                   "--watch-send-ms", "1500", cwd=tmp_path, timeout=20)
    assert (out.returncode, out.stderr) == (2, (
        "footfall serve: error: --watch-send-ms must be 0..1000 (milliseconds of each second "
        "of the event loop, which has 1,000), got 1500\n")), out.stderr


def test_an_unknown_variable_is_said_with_the_setting_it_looks_like(tmp_path: Path) -> None:
    """FOOTFALL_STORRE was ignored in silence (the server used ./data), while a
    misspelled flag is refused."""
    out = footfall("serve", "--http-port", "0", "--store", "memory://", cwd=tmp_path,
                   env={"FOOTFALL_STORRE": "memory://", "FOOTFALL_KEY": "k",
                        "FOOTFALL_PORT": "abc"})  # (a bad one, so that it stops)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "footfall: FOOTFALL_STORRE is no setting of footfall serve (did you mean "
        "FOOTFALL_STORE?): it is not used",
        "footfall serve: error: FOOTFALL_PORT: not an integer: 'abc'"], out.stderr


def test_under_json_lines_a_bad_variable_that_stops_serve_is_an_error(tmp_path: Path) -> None:
    """Relayed under --log-format json, the line of a variable that stops the start came
    as a WARNING, as the line of an unknown variable (which stops nothing) does: a
    collector alerting on ERROR was never told why the server did not start."""
    out = footfall("serve", "--http-port", "0", "--store", "memory://", "--log-format", "json",
                   cwd=tmp_path, env={"FOOTFALL_STORRE": "memory://", "FOOTFALL_PORT": "abc"})
    assert out.returncode == 2
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [
        ("WARNING", "footfall: FOOTFALL_STORRE is no setting of footfall serve (did you mean "
                    "FOOTFALL_STORE?): it is not used"),
        ("ERROR", "footfall serve: error: FOOTFALL_PORT: not an integer: 'abc'")], out.stderr


@pytest.mark.parametrize(("flags", "said"), [
    (["--quota-bytes-per-minute", "4096", "--max-event-bytes", "4096"],
     "footfall serve: error: --quota-bytes-per-minute (4096) must be more than "
     "--max-event-bytes (4096): it counts the whole request, so an event of the largest size "
     "could never be written\n"),
    (["--rejections-keep", "500", "--rejections-keep-per-project", "600"],
     "footfall serve: error: --rejections-keep-per-project (600) is more than "
     "--rejections-keep (500): only the latest 500 of every project are kept, so it could "
     "never bind; give at most 500, or leave it out\n"),
])
def test_flags_that_contradict_each_other_stop_serve_in_one_line(
        flags: list[str], said: str, tmp_path: Path) -> None:
    out = footfall("serve", "--port", "0", "--http-port", "0", "--store", "memory://", *flags,
                   cwd=tmp_path, timeout=30)  # a start that is not refused serves on
    assert (out.returncode, out.stderr) == (2, said)


def test_a_bad_serve_variable_does_not_stop_other_commands(history: str,
                                                            tmp_path: Path) -> None:
    out = footfall("events", "count", "--parent", CATALOG, "--store", history, cwd=tmp_path,
                   env={"FOOTFALL_PORT": "abc"})
    assert (out.returncode, out.stdout) == (0, "4\n")


def test_a_database_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    dsn = os.environ.get("FOOTFALL_TEST_POSTGRES_DSN", "").strip()
    if not dsn:
        pytest.skip("PostgreSQL tests SKIPPED: FOOTFALL_TEST_POSTGRES_DSN is not set")
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    url = (f"postgresql://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
           f"{params.get('port', 5432)}/footfall_no_such_database")
    out = footfall("serve", "--port", "0", "--http-port", "0", "--store", url, cwd=tmp_path)
    assert out.returncode == 2
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert 'cannot start: cannot open PostgreSQL at' in out.stderr
    assert 'database "footfall_no_such_database" does not exist' in out.stderr


def test_a_read_of_a_database_that_is_away_says_so_once_and_gives_up_soon(
        tmp_path: Path) -> None:
    # `talent-events list --store postgresql://...` of a database that was away waited
    # 13.5 s, saying 'waiting for PostgreSQL' 10 times, as `serve` waits for it to start.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]  # closed at once: nothing listens there
    began = time.monotonic()
    out = footfall("talent-events", "list", "--parent", "projects/p/tenants/t", "--store",
                   f"postgresql://postgres@127.0.0.1:{port}/h_away", cwd=tmp_path)
    took = time.monotonic() - began
    assert out.returncode == 1 and out.stdout == "", out
    waits = [line for line in out.stderr.splitlines() if "waiting for PostgreSQL" in line]
    assert len(waits) == 1 and waits[0].endswith("(up to 4 s)"), out.stderr
    assert out.stderr.splitlines()[-1].startswith(
        f"footfall: cannot open the store: cannot open PostgreSQL at 127.0.0.1:{port}/h_away")
    assert took < 12, took  # (about 3 s of waiting and the interpreter's start; 13.5 before)


# -- version -----------------------------------------------------------------------


def test_version_is_the_package_version(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = footfall("--version", cwd=tmp_path)
    assert (out.returncode, out.stdout) == (0, f"footfall {version}\n")


def test_unusable_store_is_one_line(tmp_path: Path) -> None:
    out = footfall("events", "count", "--parent", CATALOG, "--store", f"{tmp_path}/x.db",
                   cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith("footfall: cannot open the store: no store at ")
    assert "Traceback" not in out.stderr


def test_a_bad_variable_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    out = footfall("serve", "--store", "memory://", cwd=tmp_path, env={"FOOTFALL_PORT": "abc"})
    assert (out.returncode, out.stderr) == (
        2, "footfall serve: error: FOOTFALL_PORT: not an integer: 'abc'\n")
    # test_a_bad_serve_variable_does_not_stop_other_commands: only `serve` reads it


# -- a store that cannot be served: one line naming the file and the problem, exit 1 ---


def assert_refused(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    [line] = out.stderr.splitlines()
    assert "ERROR footfall: cannot start: " in line
    for word in words:
        assert word in line, line


def serve(store: Path | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    url = store if isinstance(store, str) else f"sqlite:///{store}"
    return footfall("serve", "--port", "0", "--http-port", "0", "--store", url, cwd=cwd)


def stored(path: Path, events: int = 2000) -> Path:
    """A closed store at `path` holding `events` events."""
    store = SqliteStore(str(path))
    store.write_user_events([EventRow.from_event(CATALOG, json_format.ParseDict(
        {"eventType": "home-page-view", "visitorId": f"v{i}", "eventTime": "2024-01-01T00:00:00Z"},
        user_event_pb2.UserEvent()), joined=True) for i in range(events)])
    store.close()
    return path


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "events.db").mkdir()
    assert_refused(serve(tmp_path / "events.db", tmp_path),
                   f"{tmp_path}/events.db is a directory, not a database file")


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "events.db").write_text("id,visitor\n" + "1,v1\n" * 100)
    assert_refused(serve(tmp_path / "events.db", tmp_path),
                   f"{tmp_path}/events.db is not a SQLite database")


def test_a_copy_cut_short_is_refused(tmp_path: Path) -> None:
    path = stored(tmp_path / "events.db")
    size = path.stat().st_size
    os.truncate(path, size // 2)
    assert_refused(serve(path, tmp_path), f"{path} is damaged: it is cut short")


def test_a_damaged_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = stored(tmp_path / "events.db")
    with open(path, "r+b") as file:  # a page in the middle, as a bad sector would
        file.seek((path.stat().st_size // 4096 // 2) * 4096)
        file.write(b"\xa5" * 4096)
    damaged = path.read_bytes()
    assert_refused(serve(path, tmp_path), f"{path} is damaged: ")
    assert path.read_bytes() == damaged  # nothing written into it


def test_reading_a_damaged_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """README: `footfall events` refuses a store it cannot read with one line and exit
    1. Its start reads only the schema, so damage in the middle of a table showed as
    sqlite3's traceback once the command read that page."""
    path = stored(tmp_path / "events.db")
    # A page the command reads, as a bad sector would: the events table's root (a page
    # in the middle of the file, another table's once migration 16 added one, was not
    # read by it).
    with contextlib.closing(sqlite3.connect(path)) as db:
        [(root,)] = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'user_events'")
        [(page_size,)] = db.execute("PRAGMA page_size")
    with open(path, "r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(b"\xa5" * page_size)
    out = footfall("events", "list", "--parent", CATALOG, "--store", f"sqlite:///{path}",
                   cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines() == [
        f"footfall: cannot read the store: {path} is damaged: database disk image is "
        f"malformed (salvage it with sqlite3 {path} .recover)"], out.stderr


def test_a_store_a_newer_footfall_migrated_is_refused(tmp_path: Path) -> None:
    """Its rows may be in a form this version misreads: neither served nor read."""
    path = stored(tmp_path / "events.db", 10)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future')")
    conn.close()  # the last connection's close moves the WAL into the file
    before = path.read_bytes()
    assert_refused(serve(path, tmp_path), f"{path} was migrated by a newer Footfall (it has "
                   "migration 99, which this version does not know")
    assert path.read_bytes() == before  # nothing written into it
    out = footfall("events", "list", "--parent", CATALOG, "--store", f"sqlite:///{path}",
                   cwd=tmp_path)
    assert out.returncode != 0 and "migrated by a newer Footfall" in out.stderr, out


def test_a_read_only_file_system_is_refused(tmp_path: Path) -> None:
    with mounted(tmp_path / "disk", 4 * 2**20) as disk:
        path = stored(disk.path / "events.db", 10)
        disk.remount("ro")
        assert_refused(serve(path, tmp_path), f"{path}: the file system is read-only")


def test_a_full_disk_at_start_is_one_line(tmp_path: Path) -> None:
    with mounted(tmp_path / "disk", 2**20) as disk:
        disk.fill()
        path = disk.path / "events.db"
        assert_refused(serve(path, tmp_path), f"{path}: the disk is full")


@pytest.mark.parametrize(("args", "said"), [
    # checked here: the server refused -1 as "page_size: must not be negative", exit 2
    # after a round trip, where `events list --limit -1` was refused at once
    (["insights", "products", "--parent", CATALOG, "--limit", "-1"],
     "argument --limit: must be 0 (all) or more, got -1"),
    # a duration, too long: "not a duration in seconds" said it was none
    (["insights", "funnel", "--parent", "projects/p/tenants/t", "--window", "999999999999s"],
     "argument --window: '999999999999s' is out of range (at most 315576000000s, 10,000 "
     "years)"),
    # what a tenant (a catalog) cannot answer, in this CLI's words: the server's refusal
    # named RPCs ("RunFunnel's with breakdown BY_DAY") and proto values ("REQUEST or JOB")
    (["insights", "totals", "--parent", "projects/p/tenants/t"],
     "totals are a catalog's: a tenant's events by day are `footfall insights funnel "
     "--breakdown day`, each job's counts `footfall insights jobs` (--start and --end for a "
     "range)"),
    (["insights", "products", "--parent", "projects/p/tenants/t"],
     "a tenant's per-job counts are `footfall insights jobs`"),
    (["insights", "jobs", "--parent", CATALOG],
     f"{CATALOG!r} is a retail catalog; per-job counts are a tenant's: a catalog's "
     "per-product counts are `footfall insights products`"),
    (["insights", "funnel", "--parent", "projects/p/tenants/t", "--count-by", "visitor"],
     "--count-by: a tenant's funnel counts by request or job, got 'visitor'"),
    (["insights", "funnel", "--parent", CATALOG, "--count-by", "job"],
     "--count-by: a catalog's funnel counts by visitor, user or session, got 'job'"),
    # the server refused -1 naming `top_queries`, a field of no flag, and took 0 as 10
    (["insights", "totals", "--parent", CATALOG, "--top-queries", "-1"],
     "argument --top-queries: must be 1 to 1,000, got -1"),
    (["insights", "totals", "--parent", CATALOG, "--top-queries", "0"],
     "argument --top-queries: must be 1 to 1,000, got 0"),
    (["insights", "totals", "--parent", CATALOG, "--top-queries", "ten"],
     "argument --top-queries: not a whole number: 'ten'"),
    # a parent of no form, named as the flag: the server's answer said `parent: ...`
    (["insights", "funnel", "--parent", "my-shop"],
     "--parent: must be a catalog (projects/*/locations/*/catalogs/*) or a tenant "
     "(projects/*/tenants/*; a project alone, projects/*, its default tenant), got 'my-shop'"),
    (["insights", "products", "--parent", "my-shop"],
     "--parent: must be of the form 'projects/*/locations/*/catalogs/*', got 'my-shop'"),
    (["insights", "jobs", "--parent", "projects/p/catalogs/x"],
     "--parent: must be of the form 'projects/*/tenants/*', got 'projects/p/catalogs/x' "
     "(or, of the project's default tenant, 'projects/*')"),
])
def test_insights_flags_are_checked_before_anything_is_asked(tmp_path: Path, args: list[str],
                                                             said: str) -> None:
    out = footfall(*args, "--server", "127.0.0.1:9", cwd=tmp_path)  # (nobody there)
    assert out.returncode == 2 and out.stderr.strip().endswith(said), out.stderr


@pytest.mark.parametrize("command", ["funnel", "products", "jobs", "totals"])
def test_every_insights_flag_says_what_it_does(command: str, tmp_path: Path) -> None:
    """--count-by, --breakdown, --granularity and --top-queries were listed with no
    word of what they do or their default."""
    out = footfall("insights", command, "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    listed = out.stdout.split("options:", 1)[1]
    # each option's entry: its line, and the lines indented under it
    entries = re.split(r"\n  (?=-)", listed)
    silent = [entry.split()[0] for entry in entries if 0 < len(entry.split()) < 3]
    assert silent == [], out.stdout


@pytest.mark.parametrize(("command", "name"), [
    (["events", "list", "--parent", CATALOG, "--fliter", "x"], "footfall events list"),
    (["operations", "list", "--fliter"], "footfall operations list"),
    (["insights", "funnel", "--parent", CATALOG, "--server", "127.0.0.1:1", "--windw", "3"],
     "footfall insights funnel"),
    (["serve", "--prot", "3"], "footfall serve"),
])
def test_a_mistyped_flag_is_refused_with_its_commands_usage(command: list[str], name: str,
                                                             tmp_path: Path) -> None:
    """It was `footfall: error: unrecognized arguments`, under the usage of `footfall`
    itself, which lists the commands, not the flags."""
    out = footfall(*command, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"usage: {name} "), out.stderr
    assert out.stderr.splitlines()[-1].startswith(f"{name}: error: unrecognized arguments: "), \
        out.stderr


@pytest.mark.parametrize(("command", "said"), [
    ([], "footfall: error: the following arguments are required: {serve,events,rejections,"
         "talent-events,catalogs,products,operations,reset,insights,backup,restore,copy}"),
    (["events"], "footfall events: error: the following arguments are required: "
                 "{count,list,tail}"),
    (["talent-events"], "footfall talent-events: error: the following arguments are "
                        "required: {count,list,tail}"),
    (["insights"], "footfall insights: error: the following arguments are required: "
                   "{funnel,products,jobs,totals}"),
])
def test_a_command_without_its_verb_names_the_verbs(command: list[str], said: str,
                                                    tmp_path: Path) -> None:
    """As its usage line names them: it said the attribute argparse keeps the verb in
    (`required: events_command`, `talent_events_command`), a name no user types."""
    out = footfall(*command, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines()[-1] == said, out.stderr


@pytest.mark.parametrize(("command", "said"), [
    (["serve", "--port", "abc"], "footfall serve: error: argument --port: not an integer: 'abc'"),
    (["serve", "--log-level", "LOUD"], "footfall serve: error: argument --log-level: not one of "
                                       "DEBUG, INFO, WARNING, ERROR: 'LOUD'"),
    (["events", "list", "--parent", CATALOG, "--limit", "x"],
     "footfall events list: error: argument --limit: not a whole number: 'x'"),
])
def test_a_known_flags_bad_value_is_said_in_one_line(command: list[str], said: str,
                                                     tmp_path: Path) -> None:
    """As the README says of serve; it came under the command's usage (33 lines)."""
    out = footfall(*command, cwd=tmp_path)
    assert (out.returncode, out.stderr) == (2, said + "\n")


@pytest.mark.parametrize("command", [["events", "count", "--parent", CATALOG],
                                     ["talent-events", "count", "--parent", "projects/p"]])
def test_a_count_timeout_without_at_least_is_refused_naming_both(
        command: list[str], tmp_path: Path, history: str) -> None:
    """`count --timeout 3` was taken and the timeout never waited for: the count was
    read at once, as if it had waited. With --at-least it waits as before."""
    out = footfall(*command, "--store", history, "--timeout", "3", cwd=tmp_path)
    name = " ".join(command[:2])
    assert (out.returncode, out.stdout, out.stderr) == (
        2, "", f"footfall {name}: error: argument --timeout: is how long --at-least waits: "
               f"give --at-least N too (without it the count is read once, not waited "
               f"for)\n")
    waited = footfall(*command, "--store", history, "--timeout", "0", "--at-least", "0",
                      cwd=tmp_path)
    assert waited.returncode == 0, waited.stderr
    alone = footfall(*command, "--store", history, cwd=tmp_path)
    assert alone.returncode == 0 and alone.stdout == waited.stdout, alone.stderr


def test_the_ready_lines_are_said_at_any_log_level(tmp_path: Path) -> None:
    """With --log-level WARNING nothing was said: the port --port 0 had picked could
    not be found."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "-1",
         "--store", "memory://", "--log-level", "WARNING"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=clean)
    watchdog = threading.Timer(30, server.kill)  # (its output then ends)
    watchdog.start()
    lines = []
    try:
        assert server.stderr is not None
        for line in iter(server.stderr.readline, ""):
            if "Footfall serving" in line:
                lines.append(line)
            if "Footfall serving gRPC" in line:  # the last ready line
                break
    finally:
        watchdog.cancel()
        server.terminate()
        server.wait(30)
    assert "Footfall serving HTTP on 127.0.0.1:" in lines[0], lines
    port = lines[0].split("Footfall serving HTTP on 127.0.0.1:")[1].split()[0]
    assert f"the console at http://127.0.0.1:{port}/console/," in lines[0], lines
    assert "Footfall serving gRPC on 127.0.0.1:" in lines[1], lines
    assert "WARNING" in lines[1], lines


@pytest.mark.parametrize(("command", "said"), [
    (["serve", "--procesess", "2"], "--procesess 2 (did you mean --processes?)"),
    (["serve", "--log-formt=json"], "--log-formt=json (did you mean --log-format?)"),
    (["serve", "--xyzzy"], "--xyzzy"),
])
def test_a_mistyped_flag_is_refused_naming_the_flag_it_looks_like(
        command: list[str], said: str, tmp_path: Path) -> None:
    """`serve`'s usage lists some 50 flags, above a last line that said only
    `unrecognized arguments: --procesess 2`: which flag was meant was left to find."""
    out = footfall(*command, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines()[-1] == f"footfall serve: error: unrecognized arguments: {said}"


@pytest.mark.parametrize("command", [("serve",), ("backup", "x.db"), ("copy", "x.db"),
                                     ("restore", "x.db"), ("events", "list")])
def test_help_shows_a_store_default_without_its_password(command: tuple[str, ...],
                                                         tmp_path: Path) -> None:
    """A --store default taken from FOOTFALL_STORE is shown by --help with its passwords
    hidden: it was shown as given (a service's environment printed in a terminal)."""
    helped = footfall(*command[:2 if command[0] == "events" else 1], "--help", cwd=tmp_path,
                      env={"FOOTFALL_STORE": "postgresql://me:s3cr%2Ft@db:5432/shop"})
    assert helped.returncode == 0, helped.stderr
    shown = " ".join(helped.stdout.split())
    assert "s3cr" not in shown
    assert "default postgresql://me:***@db:5432/shop" in shown
