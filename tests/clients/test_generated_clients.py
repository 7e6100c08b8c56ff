"""Clients generated from protos/ in C++, Go and Ruby, each against a `footfall serve`
subprocess. `client` (client.cc, client.go, client.rb) writes an event, reads the
google.rpc.BadRequest detail of a refused one, polls an inline import to its end and
creates a talent client event. `console` (console.cc, .go, .rb), against a server with
keys, is what a team's integration tests do with Footfall's own contracts: it writes
events with a writer key and, with a reader key, watches one arrive (cancelling the
watch), lists one, reads the refusal of another with its field, is refused with no key,
a writer key, a bad filter or page token, reads the insights, and resets the catalog
with an admin key; and in Go, `beside_google` reads the console beside Google's own retail
messages. A program prints what it was answered as key=value lines; the judging is
here, and what was stored is read back with the events CLI. (One module: the builds,
once a pytest process, are shared.)
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from interop.support import (
    RPC_DEADLINE,
    ServerProcess,
    list_events,
    retail_client,
    running_server,
    sqlite_url,
)
from interop.trust import with_key, write_keys

from . import builds

# A cold C++ build is part of the first C++ test (about a minute on two busy cores).
pytestmark = pytest.mark.timeout(600)
CLIENT_DEADLINE = 120.0  # seconds for one client run (its calls carry 10 s deadlines)
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS.value[0]


@dataclass(frozen=True)
class Answers:
    """What one client printed, by key, in order; where it wrote."""

    language: str
    catalog: str
    tenant: str
    output: str

    def all(self, key: str) -> list[str]:
        prefix = f"{key}="
        return [line[len(prefix):] for line in self.output.splitlines()
                if line.startswith(prefix)]

    def one(self, key: str) -> str:
        values = self.all(key)
        assert len(values) == 1, f"{self.language} printed {key} {len(values)} times:\n" \
                                 f"{self.output}"
        return values[0]


@pytest.fixture(scope="module", params=["cpp", "go", "ruby"])
def answers(request: pytest.FixtureRequest, server: ServerProcess) -> Answers:
    """Builds (once a session) and runs the client of one language against `server`."""
    language: str = request.param
    client: list[str] = request.getfixturevalue(language)["client"]
    catalog = f"projects/footfall-clients/locations/global/catalogs/{language}"
    tenant = f"projects/footfall-clients/tenants/{language}"
    run = subprocess.run([*client, server.address, catalog, tenant], capture_output=True,
                         text=True, timeout=CLIENT_DEADLINE)
    assert run.returncode == 0, (f"the {language} client failed ({run.returncode}):\n"
                                 f"{run.stdout}{run.stderr}\nserver log:\n"
                                 f"{server.log_text()[-3000:]}")
    return Answers(language, catalog, tenant, run.stdout)


def stored_visitors(server: ServerProcess, answers: Answers) -> dict[str, dict[str, object]]:
    """The events stored in the client's catalog, by visitor id, as proto3 JSON."""
    return {event["visitorId"]: event
            for event in list_events(server.store, answers.catalog, server.workdir)}


def test_a_written_event_is_echoed_and_stored(answers: Answers, server: ServerProcess) -> None:
    visitor = f"{answers.language}-visitor"
    assert answers.one("write.visitor_id") == visitor
    assert answers.one("write.attribute") == answers.language
    seconds, _, nanos = answers.one("write.event_time").partition(".")
    assert abs(int(seconds) - time.time()) < 600, "the server stamps a missing event time"
    stored = stored_visitors(server, answers)[visitor]
    assert stored["attributes"] == {"client": {"text": [answers.language]}}
    assert stored["eventTime"] == Timestamp(seconds=int(seconds), nanos=int(nanos)).ToJsonString()


def test_a_refused_event_carries_a_bad_request_detail(answers: Answers,
                                                      server: ServerProcess) -> None:
    assert answers.one("refused.code") == str(INVALID_ARGUMENT)
    [violation] = answers.all("refused.violation")
    field, _, description = violation.partition(": ")
    assert field == "user_event.visitor_id"
    assert "128" in description, violation
    assert f"{field}: {description}" in answers.one("refused.message")
    assert not any(len(v) > 128 for v in stored_visitors(server, answers)), "nothing stored"


def test_an_inline_import_is_polled_to_its_end(answers: Answers, server: ServerProcess) -> None:
    assert answers.one("import.operation").startswith(
        f"{answers.catalog}/operations/import-user-events-")
    assert int(answers.one("import.polls")) >= 1
    assert (answers.one("import.success_count"), answers.one("import.failure_count")) == \
        ("3", "1")
    [sample] = answers.all("import.error_sample")
    code, _, message = sample.partition(" ")
    assert code == str(INVALID_ARGUMENT)
    assert "user_events[3].event_time: " in message and \
        "user_events[3].product_details: " in message, message
    joined = int(answers.one("import.joined_events_count"))
    assert joined + int(answers.one("import.unjoined_events_count")) == 3
    imported = {v for v in stored_visitors(server, answers) if "-import-" in v}
    assert imported == {f"{answers.language}-import-{i}" for i in range(3)}


def test_a_talent_client_event_is_created_once(answers: Answers) -> None:
    tenant = answers.tenant
    assert answers.one("talent.event_id") == f"{answers.language}-event"
    assert answers.one("talent.type") == "VIEW"
    assert answers.one("talent.jobs") == f"{tenant}/jobs/data-engineer,{tenant}/jobs/sre"
    assert answers.one("talent.create_time") == "1716213787.250000000"
    # The identical retry answers the stored event; a different event with its id is refused.
    assert answers.one("talent.retry_equal") == "true"
    assert answers.one("talent.reused_id.code") == str(ALREADY_EXISTS)


# -- Footfall's own contracts ----------------------------------------------------

WRITER, READER, ADMIN = ("writer-key-5d0c7e1b2a94", "reader-key-8f3a61c0d2e7",
                         "admin-key-4b27e9d1c058")
OK, CANCELLED, PERMISSION_DENIED, UNAUTHENTICATED = (
    code.value[0] for code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED,
                               grpc.StatusCode.PERMISSION_DENIED,
                               grpc.StatusCode.UNAUTHENTICATED))


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("console-clients-server")
    keys = write_keys(workdir / "keys.json", {WRITER: ("writer", ["clients"]),
                                             READER: ("reader", ["clients"]),
                                             ADMIN: ("admin", ["clients"])})
    with running_server(workdir, sqlite_url(workdir / "events.db"),
                        "--auth-file", str(keys)) as running:
        yield running


@pytest.fixture(scope="module", params=["cpp", "go", "ruby"])
def console(request: pytest.FixtureRequest, keyed_server: ServerProcess) -> Answers:
    """Runs the console program of one language against `keyed_server`."""
    language: str = request.param
    program: list[str] = request.getfixturevalue(language)["console"]
    catalog = f"projects/clients/locations/global/catalogs/{language}"
    env = {**os.environ, "FOOTFALL_WRITER_KEY": WRITER, "FOOTFALL_READER_KEY": READER,
           "FOOTFALL_ADMIN_KEY": ADMIN}
    run = subprocess.run([*program, keyed_server.address, catalog], capture_output=True,
                         text=True, timeout=CLIENT_DEADLINE, env=env)
    assert run.returncode == 0, (f"the {language} console client failed ({run.returncode}):\n"
                                 f"{run.stdout}{run.stderr}\nserver log:\n"
                                 f"{keyed_server.log_text()[-3000:]}")
    return Answers(language, catalog, "", run.stdout)


def code(answers: Answers, key: str) -> int:
    return int(answers.one(f"{key}.code"))


def test_a_written_event_comes_to_a_watch_that_the_client_cancels(console: Answers) -> None:
    # Go and C++ open theirs with no after_id and wait for its headers before writing
    # (Ruby cannot see headers before a message: it watches from after_id 0).
    language = console.language
    assert console.one(f"write.{language}-watched") == str(OK)
    assert console.one("watch.visitor_id") == f"{language}-watched"
    assert console.one("watch.transport") in ("GRPC", "1")
    assert console.one("watch.after_cancel") == str(CANCELLED)


def test_an_event_is_listed_and_a_refused_one_read_with_its_field(console: Answers) -> None:
    language = console.language
    assert console.all("list.visitor_id") == [f"{language}-listed"]
    assert console.one(f"write.{language}-refused") == str(INVALID_ARGUMENT)
    assert console.one("rejection.method") == \
        "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
    assert console.one("rejection.code") == str(INVALID_ARGUMENT)
    assert console.one("rejection.key_name") == "writer-0"
    [violation] = console.all("rejection.violation")
    assert violation.startswith("user_event.product_details: "), violation


def test_a_missing_key_and_a_writer_key_are_refused_saying_what_is_needed(
        console: Answers) -> None:
    assert code(console, "refused.no_key") == UNAUTHENTICATED
    assert console.one("refused.no_key.reason") == "API_KEY_MISSING"
    assert "x-goog-api-key" in console.one("refused.no_key.message")
    assert code(console, "refused.writer") == PERMISSION_DENIED
    assert console.one("refused.writer.reason") == "ROLE_NOT_ALLOWED"
    assert "reader or admin" in console.one("refused.writer.message")
    assert code(console, "refused.reset") == PERMISSION_DENIED
    assert "admin" in console.one("refused.reset.message")


@pytest.mark.parametrize(("refusal", "field"), [("refused.filter", "filter"),
                                                ("refused.page_token", "page_token"),
                                                ("refused.watch_filter", "filter")])
def test_a_bad_request_names_its_field(console: Answers, refusal: str, field: str) -> None:
    assert code(console, refusal) == INVALID_ARGUMENT
    assert console.all(f"{refusal}.field") == [field]
    assert console.one(f"{refusal}.message").startswith(f"{field}: ")


def test_insights_and_a_reset_with_an_admin_key(console: Answers) -> None:
    assert console.one("totals.distinct_visitors") == "2"  # the watched and the listed
    assert console.one("reset.events") == "2"
    assert console.one("reset.rejections") == "1"
    assert console.one("reset.count_after") == "0"


def test_go_console_stubs_live_beside_googles_retail_messages(
        go: builds.Programs, keyed_server: ServerProcess) -> None:
    """As the README says for a Go program that also imports Google's Go client: our
    retail files mapped to Google's package, the console's events are Google's type
    (with our own retail stubs beside Google's, the program panicked at start)."""
    catalog = "projects/clients/locations/global/catalogs/beside-google"
    with retail_client(keyed_server.address) as client:
        client.write_user_event(request={"parent": catalog, "user_event": {
            "event_type": "home-page-view", "visitor_id": "beside"}},
            metadata=with_key(WRITER), timeout=RPC_DEADLINE)
    run = subprocess.run([*go["beside_google"], keyed_server.address, catalog],
                         capture_output=True, text=True, timeout=CLIENT_DEADLINE,
                         env={**os.environ, "FOOTFALL_READER_KEY": READER})
    assert run.returncode == 0, f"{run.stdout}{run.stderr}"
    listed = Answers("go", catalog, "", run.stdout)
    assert listed.one("beside.visitor_id") == "beside"
    assert listed.one("beside.type") == "*retailpb.UserEvent"
