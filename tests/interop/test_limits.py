"""Quotas, request size limits and deadlines through the official clients."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import retail_v2
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceRestTransport,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .support import (
    RPC_DEADLINE,
    ServerProcess,
    count_events,
    field_violations,
    retail_client,
    running_server,
    sqlite_url,
    wait_until,
)
from .trust import calls, retry_delay, scrape, with_key, write_keys

PER_MINUTE = 60
WRITE = "google.cloud.retail.v2.UserEventService/WriteUserEvent"
TEN_MIB = 10 * 1024 * 1024
RSS = "process_resident_memory_bytes{}"


def catalog(project: str) -> str:
    return f"projects/{project}/locations/global/catalogs/default_catalog"


def event(visitor: str, size: int = 0) -> dict[str, object]:
    found: dict[str, object] = {"event_type": "home-page-view", "visitor_id": visitor}
    if size:
        found["attributes"] = {"blob": {"text": ["x" * 200] * (size // 200)}}
    return found


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("limits")
    with running_server(workdir, sqlite_url(workdir / "events.db"),
                        "--quota-writes-per-minute", str(PER_MINUTE),
                        "--allow-fault-injection") as server:
        yield server


def test_quota_refuses_with_retry_info_and_spares_other_projects(
        limited: ServerProcess) -> None:
    assert f"write quota: {PER_MINUTE} writes per minute per project" in limited.log_text()
    with retail_client(limited.address) as client:
        def write(project: str, visitor: str) -> None:
            client.write_user_event(request={"parent": catalog(project),
                                             "user_event": event(visitor)},
                                    timeout=RPC_DEADLINE)

        # The flood: several threads spend the project's minute of burst and go on.
        outcomes: list[str] = []
        refusals: list[exceptions.TooManyRequests] = []

        def flood(thread: int) -> None:
            for i in range(40):
                try:
                    write("flood", f"f-{thread}-{i}")
                    outcomes.append("ok")
                except exceptions.TooManyRequests as exc:
                    assert 0 < retry_delay(exc) <= 60 / PER_MINUTE
                    outcomes.append("refused")
                    refusals.append(exc)

        threads = [threading.Thread(target=flood, args=(t,)) for t in range(4)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for i in range(30):  # meanwhile another project writes, untouched
            write("quiet", f"q-{i}")
        for thread in threads:
            thread.join()
        refilled = (time.monotonic() - started) * PER_MINUTE / 60 + 1
        assert PER_MINUTE <= outcomes.count("ok") <= PER_MINUTE + refilled
        assert outcomes.count("refused") == 160 - outcomes.count("ok")
        # (each refusal as it came: a write after the flood met a bucket refilled for as
        # long as the quiet project's writes went on, a second on a stalled machine)
        for refusal in refusals:
            assert "'flood' exhausted" in refusal.message, refusal
            assert refusal.grpc_status_code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert count_events(limited.store, catalog("quiet"), limited.workdir) == 30


def test_quota_over_rest_is_429_with_retry_info(limited: ServerProcess) -> None:
    client = retail_v2.UserEventServiceClient(transport=UserEventServiceRestTransport(
        host=limited.http_address, url_scheme="http", credentials=AnonymousCredentials()))
    with client:
        with pytest.raises(exceptions.TooManyRequests) as caught:
            for i in range(PER_MINUTE + 2):
                client.write_user_event(request={"parent": catalog("rest-flood"),
                                                 "user_event": event(f"r-{i}")},
                                        timeout=RPC_DEADLINE)
    retry = [d for d in caught.value.details
             if d.get("@type") == "type.googleapis.com/google.rpc.RetryInfo"]
    assert len(retry) == 1 and retry[0]["retryDelay"].endswith("s")


def test_a_request_over_the_size_limit_is_refused_and_the_server_stays_well(
        server: ServerProcess) -> None:
    parent = catalog("footfall-interop-size")
    with retail_client(server.address) as client:
        with pytest.raises(exceptions.ResourceExhausted):
            client.write_user_event(request={"parent": parent,
                                             "user_event": event("big", TEN_MIB + 4096)},
                                    timeout=RPC_DEADLINE)
        client.write_user_event(request={"parent": parent, "user_event": event("small")},
                                timeout=RPC_DEADLINE)
    reply = requests.post(f"http://{server.http_address}/v2/{parent}/userEvents:write",
                          data=b'{"eventType": "home-page-view", "visitorId": "' +
                          b"x" * (TEN_MIB + 10) + b'"}',
                          headers={"Content-Type": "application/json"}, timeout=RPC_DEADLINE)
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == 413
    assert reply.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                           timeout=RPC_DEADLINE)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert count_events(server.store, parent, server.workdir) == 1


def test_a_deadline_ends_the_call_promptly_and_its_write_is_dropped(
        limited: ServerProcess) -> None:
    parent = catalog("deadline")
    slow = [("x-footfall-fail", f"OK;delay=3;id={uuid.uuid4()}")]
    with retail_client(limited.address) as client:
        started = time.monotonic()
        with pytest.raises(exceptions.DeadlineExceeded):
            client.write_user_event(request={"parent": parent, "user_event": event("late")},
                                    metadata=slow, timeout=0.5)
        assert time.monotonic() - started < 1.5

    def dropped() -> float:
        samples = scrape(limited)
        return calls(samples, WRITE, "CANCELLED") + calls(samples, WRITE, "DEADLINE_EXCEEDED")

    wait_until(dropped, "the server to drop the late write", deadline=10)
    assert count_events(limited.store, parent, limited.workdir) == 0


def test_rest_deadline_from_x_server_timeout(limited: ServerProcess) -> None:
    parent = catalog("rest-deadline")
    started = time.monotonic()
    reply = requests.post(f"http://{limited.http_address}/v2/{parent}/userEvents:write",
                          json={"eventType": "home-page-view", "visitorId": "late"},
                          headers={"X-Server-Timeout": "0.3",
                                   "x-footfall-fail": f"OK;delay=2;id={uuid.uuid4()}"},
                          timeout=RPC_DEADLINE)
    assert time.monotonic() - started < 1.5
    assert reply.status_code == 504 and reply.json()["error"]["status"] == "DEADLINE_EXCEEDED"


# (seconds on a quiet machine, 34-41 s seen on a loaded one: 60 s was too near)
@pytest.mark.timeout(180)
def test_made_up_method_names_leave_no_memory_behind(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """Before, the server kept every name it was called with (20,000 names of 4-7
    KB: +114 MB, never freed). The calls carry a key: without one, past a burst
    they are paced (test_keyless_refusals)."""
    keys = write_keys(tmp_path / "keys.json", {"k" * 32: ("admin", ["*"])})
    server = server_factory("--auth-file", str(keys))

    def call_made_up(count: int, start: int) -> None:
        with grpc.insecure_channel(server.address) as channel:
            for i in range(start, start + count):
                made_up = channel.unary_unary(f"/made.up.Service{i}/" + "m" * 6_000)
                with pytest.raises(grpc.RpcError) as caught:
                    made_up(b"", timeout=RPC_DEADLINE, metadata=with_key("k" * 32))
                assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED

    call_made_up(500, 0)  # grpc's own buffers and pools settle first
    before = scrape(server)[RSS]
    call_made_up(6_000, 500)  # 36 MB of names: when they were kept, RSS grew 35 MiB
    grown = scrape(server)[RSS] - before
    assert grown < 12 * 1024 * 1024, f"RSS grew {grown / 2**20:.1f} MiB"


def test_event_size_limit_and_byte_quota_through_the_official_clients(
        server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory("--max-event-bytes", "4096", "--quota-bytes-per-minute", "20000")
    assert "byte quota: 20000 bytes of event writes per minute per project" in \
        server.log_text()
    big = event("big", 4400)
    big_size = retail_v2.UserEvent.pb(retail_v2.UserEvent(**big)).ByteSize()  # type: ignore[arg-type]
    rest = retail_v2.UserEventServiceClient(transport=UserEventServiceRestTransport(
        host=server.http_address, url_scheme="http", credentials=AnonymousCredentials()))
    with retail_client(server.address) as client, rest:
        for transport in (client, rest):
            with pytest.raises(exceptions.BadRequest) as caught:  # InvalidArgument over gRPC
                transport.write_user_event(request={"parent": catalog("sizes"), "user_event": big},
                                           timeout=RPC_DEADLINE)
            # (the REST client puts the URL before the server's message)
            assert caught.value.message.endswith(
                f"user_event: is {big_size} bytes ({big_size - 21} of them in attributes); "
                "at most 4096 (the server's --max-event-bytes)")
            if transport is client:
                assert field_violations(caught.value) == ["user_event"]
        # Byte quota: writes of 3 KB spend the project's 20,000 bytes in a few calls.
        with pytest.raises(exceptions.TooManyRequests, match="byte quota of project 'flood'") \
                as refused:
            for i in range(10):
                client.write_user_event(request={"parent": catalog("flood"),
                                                 "user_event": event(f"f{i}", 3000)},
                                        timeout=RPC_DEADLINE)
        assert 0 < retry_delay(refused.value) <= 60
        client.write_user_event(request={"parent": catalog("calm"),
                                         "user_event": event("c", 3000)}, timeout=RPC_DEADLINE)
    assert count_events(server.store, catalog("sizes"), server.workdir) == 0
    assert 5 <= count_events(server.store, catalog("flood"), server.workdir) <= 7
    assert count_events(server.store, catalog("calm"), server.workdir) == 1
