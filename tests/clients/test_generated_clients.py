"""Clients generated from protos/ in C++, Go and Ruby, each against a `footfall serve`
subprocess: it writes an event, reads the google.rpc.BadRequest detail of a refused one,
polls an inline import to its end and creates a talent client event. A client prints
what it was answered as key=value lines (client.cc, client.go, client.rb); the judging is
here, and what was stored is read back with the events CLI.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from interop.support import ServerProcess, list_events

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
    client: list[str] = request.getfixturevalue(language)
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
