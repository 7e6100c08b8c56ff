"""A tenant's client events, written by the official google-cloud-talent client to a
`footfall serve` subprocess, read back through the console's filter (by event type,
job, request id, event id and create time): listed, counted and watched over gRPC
(a client made from reflection) and REST, on SQLite, memory and PostgreSQL; a bad
filter refused naming `filter`; `footfall talent-events count --at-least` waiting
for events sent in the background, as a job site's CI does. Imports nothing of ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest
import requests
from google.cloud import talent_v4
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from .console import Console, rest
from .support import CLI_DEADLINE, RPC_DEADLINE, ServerProcess, talent_client

TENANT = "projects/footfall-interop/tenants/filters"
JOB_A, JOB_B, JOB_A2 = (f"{TENANT}/jobs/{j}" for j in ("job-a", "job-b", "job-a2"))
BASE = 1_767_225_600  # 2026-01-01T00:00:00Z
Type = talent_v4.JobEvent.JobEventType
# (event id, type, jobs, request id, create time: seconds after BASE, nanos)
SENT = [("e1", Type.VIEW, [JOB_A], "r1", 100, 0),
        ("e2", Type.APPLICATION_START, [JOB_A, JOB_B], "r2", 200, 0),
        ("e3", Type.VIEW, [JOB_B], "r1", 300, 0),
        # a job whose name holds JOB_A's, and a request id that is another's event id
        ("e4", Type.VIEW, [JOB_A2], "e1", 300, 500),
        ("e5", Type.BOOKMARK, [JOB_B], "", 400, 0)]


def send(client: talent_v4.EventServiceClient, event_id: str, kind: Any, jobs: list[str],
         request_id: str, seconds: int, nanos: int) -> None:
    client.create_client_event(parent=TENANT, client_event=talent_v4.ClientEvent(
        event_id=event_id, request_id=request_id,
        create_time=timestamp_pb2.Timestamp(seconds=BASE + seconds, nanos=nanos),
        job_event=talent_v4.JobEvent(type_=kind, jobs=jobs)), timeout=RPC_DEADLINE)


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def served(request: pytest.FixtureRequest,
           server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    if request.param == "memory":
        server = server_factory(store="memory://")
    elif request.param == "postgres":
        server = server_factory(store=request.getfixturevalue("postgres_databases")
                                .create("talent_filters"))
    else:
        server = server_factory()
    client = talent_client(server.address)
    for event in SENT:
        send(client, *event)
    return server


# filter -> the event ids it selects, latest create time first
SELECTED = [
    ("", ["e5", "e4", "e3", "e2", "e1"]),
    ("eventType = VIEW", ["e4", "e3", "e1"]),
    ('eventType = "view"', ["e4", "e3", "e1"]),
    (f'job = "{JOB_A}"', ["e2", "e1"]),
    (f'job = "{JOB_A}" AND job = "{JOB_B}"', ["e2"]),
    (f'job = "{JOB_B}" eventType = VIEW', ["e3"]),
    ('requestId = "r1"', ["e3", "e1"]),
    ('requestId = "e1"', ["e4"]),
    ('eventId = "e1"', ["e1"]),
    ('eventId = "e1" eventType = APPLICATION_START', []),
    ('eventType = VIEW eventType = BOOKMARK', []),
    ('createTime > "2026-01-01T00:05:00Z"', ["e5", "e4"]),
    ('createTime >= "2026-01-01T00:05:00Z"', ["e5", "e4", "e3"]),
    ('createTime < "2026-01-01T00:05:00.0000005Z"', ["e3", "e2", "e1"]),
    ('createTime <= "2026-01-01T00:05:00.0000005Z"', ["e4", "e3", "e2", "e1"]),
    ('createTime: ["2026-01-01T00:03:20Z", "2026-01-01T00:05:00Z"]', ["e3", "e2"]),
    ('createTime > "2026-01-01T00:01:40Z" createTime < "2026-01-01T00:06:40Z" '
     'eventType = VIEW', ["e4", "e3"]),
]


def test_lists_counts_and_watches_select_by_the_filter(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    console = Console(channels(served))
    for text, expected in SELECTED:
        listed = console.call("ListClientEvents", parent=TENANT, filter=text)
        assert [e["clientEvent"]["eventId"] for e in listed.get("clientEvents", [])] == \
            expected, text
        over_rest = rest(served.http_address, f"{TENANT}/clientEvents", filter=text)
        assert over_rest.status_code == 200, over_rest.text
        assert [e["clientEvent"]["eventId"] for e in over_rest.json().get("clientEvents", [])] \
            == expected, text
        counted = console.call("CountClientEvents", parent=TENANT, filter=text)
        assert int(counted.get("count", "0")) == len(expected), text
        over_rest = rest(served.http_address, f"{TENANT}/clientEvents:count", filter=text)
        assert over_rest.status_code == 200, over_rest.text
        assert int(over_rest.json().get("count", "0")) == len(expected), text
    # pages of one go on through the filter, each event once
    seen, token = [], ""
    while True:
        page = console.call("ListClientEvents", parent=TENANT, filter="eventType = VIEW",
                            pageSize=1, pageToken=token)
        seen += [e["clientEvent"]["eventId"] for e in page.get("clientEvents", [])]
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert seen == ["e4", "e3", "e1"]

    watched = console.watch("WatchClientEvents", parent=TENANT, afterId=0,
                            filter=f'job = "{JOB_B}"')
    over_http = requests.get(f"http://{served.http_address}/console/v1/{TENANT}/clientEvents:watch",
                             params={"afterId": 0, "filter": "eventType = VIEW"}, stream=True,
                             timeout=RPC_DEADLINE)
    try:
        assert [next(watched)["clientEvent"]["eventId"] for _ in range(3)] == ["e2", "e3", "e5"]
        sent = (json.loads(line[6:])["clientEvent"]["eventId"]
                for line in over_http.iter_lines() if line.startswith(b"data: "))
        assert [next(sent) for _ in range(3)] == ["e1", "e3", "e4"]
        send(talent_client(served.address), "e6", Type.VIEW, [JOB_B], "", 500, 0)
        assert next(watched)["clientEvent"]["eventId"] == "e6"
        assert next(sent) == "e6"
    finally:
        watched.cancel()
        over_http.close()


BAD = [
    ("eventType = FOO", "FOO is not a JobEventType"),
    ("eventType = ", "expected a JobEventType"),
    ("job = job-a", 'write job = "job-a"'),
    ('visitorId = "v"', "visitorId is a user event's field"),
    ('colour = "red"', "unknown field 'colour'"),
    ('createTime > "yesterday"', "is not an RFC 3339 time"),
    ('eventType = VIEW createTime', "expected one of > >= < <= or ':' after createTime"),
    ('requestId = "r1" OR requestId = "r2"', "OR is not in the grammar"),
]


@pytest.mark.parametrize(("text", "why"), BAD)
def test_a_bad_filter_is_refused_naming_it(server: ServerProcess, text: str, why: str) -> None:
    channel = grpc.insecure_channel(server.address)
    try:
        console = Console(channel)
        for rpc in ("ListClientEvents", "CountClientEvents"):
            with pytest.raises(grpc.RpcError) as caught:
                console.call(rpc, parent=TENANT, filter=text)
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert why in caught.value.details() and "filter: " in caught.value.details()
            [detail] = [v for k, v in caught.value.trailing_metadata()
                        if k == "grpc-status-details-bin"]
            bad = error_details_pb2.BadRequest()
            assert status_pb2.Status.FromString(detail).details[0].Unpack(bad)
            assert [v.field for v in bad.field_violations] == ["filter"]
            assert why in bad.field_violations[0].description
        with pytest.raises(grpc.RpcError) as caught:
            next(console.watch("WatchClientEvents", parent=TENANT, filter=text))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    finally:
        channel.close()
    for path in ("clientEvents", "clientEvents:count", "clientEvents:watch"):
        answer = rest(server.http_address, f"{TENANT}/{path}", filter=text)
        assert answer.status_code == 400, answer.text
        [bad_request] = [d for d in answer.json()["error"]["details"]
                         if d["@type"].endswith("google.rpc.BadRequest")]
        assert [v["field"] for v in bad_request["fieldViolations"]] == ["filter"]


def talent_events(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    return subprocess.run([sys.executable, "-m", "server", "talent-events", *args,
                           "--server", server.address], cwd=server.workdir, env=env,
                          capture_output=True, text=True, timeout=CLI_DEADLINE)


def test_the_cli_waits_for_events_sent_in_the_background(server_factory: Callable[
        ..., ServerProcess]) -> None:
    served = server_factory()
    client = talent_client(served.address)
    send(client, "before", Type.VIEW, [JOB_A], "", 10, 0)
    later = threading.Timer(0.5, lambda: [send(client, f"late-{n}", Type.APPLICATION_START,
                                               [JOB_B], "ci", 20 + n, 0) for n in range(3)])
    later.start()
    try:
        waited = talent_events(served, "count", "--parent", TENANT, "--filter",
                               'eventType = APPLICATION_START requestId = "ci"',
                               "--at-least", "3", "--timeout", "20")
    finally:
        later.join()
    assert (waited.returncode, waited.stdout) == (0, "3\n"), waited.stderr
    short = talent_events(served, "count", "--parent", TENANT, "--filter",
                          f'job = "{JOB_A}"', "--at-least", "2", "--timeout", "0.3")
    assert (short.returncode, short.stdout) == (3, "1\n")
    assert "1 client event, not 2, after waiting 0.3 s" in short.stderr
    listed = talent_events(served, "list", "--parent", TENANT, "--filter", 'requestId = "ci"',
                           "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["clientEvent"]["eventId"] for line in listed.stdout.splitlines()] \
        == ["late-2", "late-1", "late-0"]
    refused = talent_events(served, "count", "--parent", TENANT, "--filter", "eventType = NOPE")
    assert refused.returncode == 2 and "--filter: " in refused.stderr, refused.stderr
    # from the store file too (no server)
    stored = subprocess.run([sys.executable, "-m", "server", "talent-events", "count",
                             "--parent", TENANT, "--store", served.store, "--filter",
                             "eventType = VIEW"], cwd=served.workdir, capture_output=True,
                            text=True, timeout=CLI_DEADLINE,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("FOOTFALL_")})
    assert (stored.returncode, stored.stdout) == (0, "1\n"), stored.stderr
