"""Fault injection against the official clients' own retry logic, the
Prometheus page, and the one log line per call."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests
from google.api_core import exceptions
from google.api_core import retry as retries
from google.auth.credentials import AnonymousCredentials
from google.cloud import retail_v2
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceRestTransport,
)

from .support import (
    RPC_DEADLINE,
    ServerProcess,
    count_events,
    finish,
    retail_client,
    running_server,
    sqlite_url,
    wait_until,
)
from .trust import calls, scrape

WRITE = "google.cloud.retail.v2.UserEventService/WriteUserEvent"
PURGE = "google.cloud.retail.v2.UserEventService/PurgeUserEvents"
CATALOG = "projects/faults/locations/global/catalogs/default_catalog"
EVENT = {"event_type": "home-page-view", "visitor_id": "f-1"}


def fail(spec: str) -> list[tuple[str, str]]:
    """Metadata asking for `spec`, with an id of its own (a fresh count)."""
    return [("x-footfall-fail", f"{spec};id={uuid.uuid4()}")]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("faults")
    with running_server(workdir, sqlite_url(workdir / "events.db"), "--allow-fault-injection",
                        "--log-level", "DEBUG") as server:
        yield server


@pytest.fixture(scope="module")
def retail(faulty: ServerProcess) -> Iterator[retail_v2.UserEventServiceClient]:
    with retail_client(faulty.address) as client:
        yield client


def test_the_clients_default_retry_rides_out_one_unavailable(
        faulty: ServerProcess, retail: retail_v2.UserEventServiceClient) -> None:
    # PurgeUserEvents is one of the RPCs whose generated client retries UNAVAILABLE
    # by default (WriteUserEvent's does not retry at all).
    before = scrape(faulty)
    operation = retail.purge_user_events(
        request={"parent": CATALOG, "filter": 'eventType = "search"'},
        metadata=fail("UNAVAILABLE;times=1"), timeout=RPC_DEADLINE)
    assert finish(operation).purged_events_count == 0
    after = scrape(faulty)
    assert calls(after, PURGE, "UNAVAILABLE") - calls(before, PURGE, "UNAVAILABLE") == 1
    assert calls(after, PURGE, "OK") - calls(before, PURGE, "OK") == 1


def test_write_fails_without_a_retry_and_succeeds_with_one(
        faulty: ServerProcess, retail: retail_v2.UserEventServiceClient) -> None:
    request = {"parent": CATALOG, "user_event": EVENT}
    with pytest.raises(exceptions.ServiceUnavailable, match="injected failure"):
        retail.write_user_event(request=request, metadata=fail("UNAVAILABLE"),
                                timeout=RPC_DEADLINE)
    retry = retries.Retry(predicate=retries.if_exception_type(exceptions.ServiceUnavailable),
                          initial=0.01, maximum=0.05, timeout=RPC_DEADLINE)
    written = retail.write_user_event(request=request, metadata=fail("UNAVAILABLE;times=2"),
                                      retry=retry, timeout=RPC_DEADLINE)
    assert written.visitor_id == "f-1"
    assert count_events(faulty.store, CATALOG, faulty.workdir) == 1


@pytest.mark.parametrize(("code", "error"), [
    ("ABORTED", exceptions.Aborted), ("INTERNAL", exceptions.InternalServerError),
    ("resource_exhausted", exceptions.ResourceExhausted),
    ("PERMISSION_DENIED", exceptions.PermissionDenied),
])
def test_any_code_by_name(retail: retail_v2.UserEventServiceClient, code: str,
                          error: type[Exception]) -> None:
    with pytest.raises(error):
        retail.write_user_event(request={"parent": CATALOG, "user_event": EVENT},
                                metadata=fail(code), timeout=RPC_DEADLINE)


def test_after_lets_the_first_calls_through(retail: retail_v2.UserEventServiceClient) -> None:
    metadata = fail("UNAVAILABLE;after=2;times=1")
    outcomes = []
    for i in range(4):
        try:
            retail.write_user_event(request={"parent": CATALOG,
                                             "user_event": {**EVENT, "visitor_id": f"a-{i}"}},
                                    metadata=metadata, timeout=RPC_DEADLINE)
            outcomes.append("ok")
        except exceptions.ServiceUnavailable:
            outcomes.append("unavailable")
    assert outcomes == ["ok", "ok", "unavailable", "ok"]


def test_a_bad_header_is_invalid_argument(retail: retail_v2.UserEventServiceClient) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="x-footfall-fail"):
        retail.write_user_event(request={"parent": CATALOG, "user_event": EVENT},
                                metadata=[("x-footfall-fail", "SOMETIMES")],
                                timeout=RPC_DEADLINE)


def test_faults_over_rest(faulty: ServerProcess) -> None:
    client = retail_v2.UserEventServiceClient(transport=UserEventServiceRestTransport(
        host=faulty.http_address, url_scheme="http", credentials=AnonymousCredentials()))
    with client, pytest.raises(exceptions.ServiceUnavailable):
        client.write_user_event(request={"parent": CATALOG, "user_event": EVENT},
                                metadata=fail("UNAVAILABLE"), timeout=RPC_DEADLINE)


def test_without_the_flag_the_header_is_ignored(server: ServerProcess,
                                                retail: retail_v2.UserEventServiceClient
                                                ) -> None:
    with retail_client(server.address) as plain:
        plain.write_user_event(request={"parent": CATALOG, "user_event": EVENT},
                               metadata=fail("UNAVAILABLE"), timeout=RPC_DEADLINE)


def test_metrics_count_calls_latency_events_batches_and_operations(
        faulty: ServerProcess, retail: retail_v2.UserEventServiceClient) -> None:
    parent = "projects/faults/locations/global/catalogs/metrics"
    for i in range(5):
        retail.write_user_event(request={"parent": parent,
                                         "user_event": {**EVENT, "visitor_id": f"m-{i}"}},
                                timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.InvalidArgument):
        retail.write_user_event(request={"parent": parent, "user_event": {}},
                                timeout=RPC_DEADLINE)
    requests.post(f"http://{faulty.http_address}/v2/{parent}/userEvents:write",
                  json={"eventType": "home-page-view", "visitorId": "m-http"},
                  timeout=RPC_DEADLINE).raise_for_status()
    finish(retail.purge_user_events(request={"parent": parent, "filter": 'visitorId = "m-0"',
                                             "force": True}, timeout=RPC_DEADLINE))

    def settled() -> dict[str, float] | None:
        found = scrape(faulty)
        done = found.get('footfall_operations_total{kind="purge-user-events",'
                         'state="succeeded"}', 0)
        return found if done >= 1 else None

    samples = wait_until(settled, "the purge to be counted")
    assert calls(samples, WRITE, "OK") >= 5
    assert calls(samples, WRITE, "INVALID_ARGUMENT") >= 1
    assert calls(samples, WRITE, "OK", transport="http") >= 1
    latency = ('footfall_request_duration_seconds_count{method="WriteUserEvent",'
               'service="google.cloud.retail.v2.UserEventService",transport="grpc"}')
    assert samples[latency] >= 6
    assert samples['footfall_events_stored_total{kind="user_event"}'] >= 6
    assert samples["footfall_group_commit_batch_size_count{}"] >= 1
    assert samples["footfall_group_commit_batch_size_sum{}"] >= 6
    assert samples['footfall_operations_running{kind="purge-user-events"}'] == 0
    assert samples["process_resident_memory_bytes{}"] > 0


def test_the_batch_size_counts_event_writes_not_an_idle_servers_look_for_jobs(
        server_factory: Callable[..., ServerProcess]) -> None:
    """The writer looks for jobs to run every second, in a transaction: counted as
    batches of one, they made an idle server's histogram grow by one a second, and a
    quiet shop's writes look as if they were never committed together."""
    server = server_factory()
    with retail_client(server.address) as client:
        for i in range(3):
            client.write_user_event(request={"parent": CATALOG,
                                             "user_event": {**EVENT, "visitor_id": f"b-{i}"}},
                                    timeout=RPC_DEADLINE)
    # (what is asserted is that nothing comes: time must pass, the server's looks
    # for jobs come every second)
    # (the writer answers a batch's callers before it counts the batch: the last write
    # may be answered before it is counted)
    wait_until(lambda: scrape(server)["footfall_group_commit_batch_size_count{}"] >= 3,
               "the third write counted")
    until = time.monotonic() + 3.0
    while time.monotonic() < until:
        samples = scrape(server)
        assert samples["footfall_group_commit_batch_size_count{}"] == 3, samples
        assert samples["footfall_group_commit_batch_size_sum{}"] == 3
        time.sleep(0.5)


def test_one_log_line_per_call_at_debug_and_errors_always(
        faulty: ServerProcess, server: ServerProcess,
        retail: retail_v2.UserEventServiceClient) -> None:
    retail.write_user_event(request={"parent": CATALOG, "user_event": {**EVENT,
                                                                       "visitor_id": "log-1"}},
                            timeout=RPC_DEADLINE)
    wait_until(lambda: any("DEBUG footfall.requests: call method=" + WRITE in line
                           and "transport=grpc code=OK duration_ms=" in line
                           for line in faulty.log), "the call's log line")
    with retail_client(server.address) as plain, pytest.raises(exceptions.InvalidArgument):
        plain.write_user_event(request={"parent": "nonsense", "user_event": EVENT},
                               timeout=RPC_DEADLINE)
    wait_until(lambda: any("INFO footfall.requests: call" in line
                           and "code=INVALID_ARGUMENT" in line and "parent: must be" in line
                           for line in server.log), "the refused call's log line")
    assert not any("code=OK" in line for line in server.log), "OK calls log at DEBUG only"
