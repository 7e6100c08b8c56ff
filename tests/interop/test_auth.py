"""API keys and roles through the official clients: gRPC (the key in `metadata=`,
or on the channel for long-running operations), REST (`client_options={"api_key":
...}`), the pixel (`?key=`); health and reflection stay open; SIGHUP re-reads the
keys."""

from __future__ import annotations

import concurrent.futures
import functools
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2, talent_v4
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceGrpcAsyncIOTransport,
    UserEventServiceGrpcTransport,
    UserEventServiceRestTransport,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .console import Console
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    count_events,
    finish,
    finish_async,
    product_client,
    retail_client,
    running_server,
    sqlite_url,
    talent_client,
    wait_until,
)
from .trust import AsyncKeyInterceptor, KeyInterceptor, with_key, write_keys

WRITER, ADMIN, OTHER = "writer-key-7c1d0e55aa31", "admin-key-3b9f42c7d6e8", "other-key-a61e"
SHOP = "projects/shop/locations/global/catalogs/default_catalog"
ELSEWHERE = "projects/elsewhere/locations/global/catalogs/default_catalog"
EVENT = {"event_type": "home-page-view", "visitor_id": "v-1"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("auth")
    keys = write_keys(workdir / "keys.json", {
        WRITER: ("writer", ["shop", "jobs"]), ADMIN: ("admin", ["shop"]),
        OTHER: ("admin", ["elsewhere"])})
    with running_server(workdir, sqlite_url(workdir / "events.db"),
                        "--auth-file", str(keys)) as server:
        yield server


@pytest.fixture(scope="module")
def retail(secured: ServerProcess) -> Iterator[retail_v2.UserEventServiceClient]:
    with retail_client(secured.address) as client:
        yield client


def write(client: retail_v2.UserEventServiceClient, key: str | None, parent: str = SHOP,
          visitor: str = "v-1") -> retail_v2.UserEvent:
    return client.write_user_event(
        request={"parent": parent, "user_event": {**EVENT, "visitor_id": visitor}},
        metadata=with_key(key) if key else (), timeout=RPC_DEADLINE)


def test_the_log_says_auth_is_on(secured: ServerProcess, server: ServerProcess) -> None:
    assert "auth is on: 3 API keys" in secured.log_text()
    assert "auth is off" in server.log_text()
    for key in (WRITER, ADMIN, OTHER):
        assert key not in secured.log_text()


def test_no_key_or_an_unknown_key_is_unauthenticated(
        retail: retail_v2.UserEventServiceClient) -> None:
    with pytest.raises(exceptions.Unauthenticated, match="requires an API key"):
        write(retail, None)
    with pytest.raises(exceptions.Unauthenticated, match="API key not valid"):
        write(retail, WRITER + "x")
    with pytest.raises(exceptions.Unauthenticated):
        retail.write_user_event(request={"parent": SHOP, "user_event": EVENT},
                                metadata=[("authorization", "Basic " + WRITER)],
                                timeout=RPC_DEADLINE)


# Two different credentials in one call, and how each transport carries them.
TWO_KEYS = [
    ([("x-goog-api-key", WRITER), ("x-goog-api-key", ADMIN)], "two x-goog-api-key headers"),
    ([("x-goog-api-key", WRITER), ("authorization", f"Bearer {ADMIN}")],
     "x-goog-api-key and authorization: Bearer"),
    ([("x-goog-api-key", WRITER), ("authorization", ADMIN)], "x-goog-api-key and authorization"),
]


@pytest.mark.parametrize(("metadata", "named"), TWO_KEYS)
def test_a_call_with_two_different_keys_is_refused_not_served_for_the_first(
        secured: ServerProcess, retail: retail_v2.UserEventServiceClient, grpcurl: str,
        metadata: list[tuple[str, str]], named: str) -> None:
    """The first key was taken without a word: a proxy or a log that read the other
    named another caller than the one admitted. Refused over gRPC (the official
    client, grpcurl) and HTTP alike, naming the headers and neither key; the same
    key given twice is one key."""
    visitor = f"two-keys-{len(named)}"
    with pytest.raises(exceptions.Unauthenticated) as refused:
        retail.write_user_event(request={"parent": SHOP, "user_event": {
            **EVENT, "visitor_id": visitor}}, metadata=metadata, timeout=RPC_DEADLINE)
    assert named in refused.value.message and refused.value.reason == "API_KEY_AMBIGUOUS"
    flags = [flag for name, value in metadata for flag in ("-H", f"{name}: {value}")]
    body = json.dumps({"parent": SHOP, "user_event": {**EVENT, "visitor_id": visitor}})
    cli = subprocess.run([grpcurl, "-plaintext", "-max-time", "10", *flags, "-d", body,
                          secured.address, "google.cloud.retail.v2.UserEventService/"
                          "WriteUserEvent"], capture_output=True, text=True, timeout=30)
    assert "Code: Unauthenticated" in cli.stderr and named in cli.stderr, cli.stderr
    # HTTP: http.client sends a header given twice twice (requests would join them)
    connection = http.client.HTTPConnection(*secured.http_address.split(":"),
                                            timeout=RPC_DEADLINE)
    try:
        connection.putrequest("POST", f"/v2/{SHOP}/userEvents:write")
        for name, value in [*metadata, ("content-type", "application/json")]:
            connection.putheader(name, value)
        payload = json.dumps({**EVENT, "visitor_id": visitor}).encode()
        connection.putheader("content-length", str(len(payload)))
        connection.endheaders(payload)
        answer = connection.getresponse()
        error = json.loads(answer.read())["error"]
    finally:
        connection.close()
    assert (answer.status, error["status"]) == (401, "UNAUTHENTICATED"), error
    assert named in error["message"] and error["details"][0]["reason"] == "API_KEY_AMBIGUOUS"
    said = " ".join([str(refused.value), cli.stdout, cli.stderr, json.dumps(error),
                     secured.log_text()])
    assert WRITER not in said and ADMIN not in said
    assert count_events(secured.store, SHOP, secured.workdir, f'visitorId = "{visitor}"') == 0
    twice = [(name, value.replace(ADMIN, WRITER)) for name, value in metadata]
    if named != "x-goog-api-key and authorization":  # (a key with no scheme is no key alone)
        retail.write_user_event(
            request={"parent": SHOP, "user_event": {**EVENT, "visitor_id": visitor}},
            metadata=twice, timeout=RPC_DEADLINE)
        assert count_events(secured.store, SHOP, secured.workdir,
                            f'visitorId = "{visitor}"') == 1


def test_a_pixel_whose_key_parameter_is_not_its_header_key_is_refused(
        secured: ServerProcess) -> None:
    url = f"http://{secured.http_address}/v2/{SHOP}/userEvents:collect"
    event = json.dumps({"eventType": "home-page-view", "visitorId": "pixel-two-keys"})
    refused = requests.get(url, params={"user_event": event, "key": WRITER},
                           headers={"x-goog-api-key": ADMIN}, timeout=RPC_DEADLINE)
    assert refused.status_code == 200 and refused.content.startswith(b"GIF89a")
    assert refused.headers["X-Footfall-Error"].startswith("UNAUTHENTICATED"), refused.headers
    assert "the key parameter" in refused.headers["X-Footfall-Error"]
    taken = requests.get(url, params={"user_event": event, "key": WRITER},
                         headers={"x-goog-api-key": WRITER}, timeout=RPC_DEADLINE)
    assert "X-Footfall-Error" not in taken.headers, taken.headers
    assert count_events(secured.store, SHOP, secured.workdir,
                        'visitorId = "pixel-two-keys"') == 1


@pytest.mark.parametrize(("case", "keys"), list(enumerate([
    [("key", WRITER), ("key", ADMIN)], [("key", ADMIN), ("key", WRITER)],
    [("key", WRITER), ("$key", ADMIN)], [("$key", WRITER), ("key", ""), ("key", OTHER)]])))
def test_a_pixel_with_two_different_key_parameters_is_refused_not_served_for_the_first(
        secured: ServerProcess, case: int, keys: list[tuple[str, str]]) -> None:
    """The first was taken: a proxy or a log that read the other named another caller
    than the one admitted, as with two x-goog-api-key headers. Refused on both ways a
    pixel is served (a browser's GIF, a JSON caller's error); the same key twice is
    one key."""
    url = f"http://{secured.http_address}/v2/{SHOP}/userEvents:collect"
    visitor = f"pixel-two-key-parameters-{case}"
    event = json.dumps({"eventType": "home-page-view", "visitorId": visitor})
    refused = requests.get(url, params=[("user_event", event), *keys], timeout=RPC_DEADLINE)
    assert refused.status_code == 200 and refused.content.startswith(b"GIF89a")
    said = refused.headers.get("X-Footfall-Error", "")
    assert said.startswith("UNAUTHENTICATED") and "two key parameters" in said, said
    answered = requests.get(url, params=[("user_event", event), ("$alt", "json"), *keys],
                            timeout=RPC_DEADLINE)
    error = answered.json()["error"]
    assert (answered.status_code, error["details"][0]["reason"]) == (401, "API_KEY_AMBIGUOUS")
    assert "two key parameters" in error["message"], error
    told = " ".join([said, answered.text, secured.log_text()])
    assert WRITER not in told and ADMIN not in told and OTHER not in told
    assert count_events(secured.store, SHOP, secured.workdir, f'visitorId = "{visitor}"') == 0
    taken = requests.get(url, params=[("user_event", event), ("key", WRITER), ("$key", WRITER),
                                      ("key", WRITER)], timeout=RPC_DEADLINE)
    assert "X-Footfall-Error" not in taken.headers, taken.headers
    assert count_events(secured.store, SHOP, secured.workdir, f'visitorId = "{visitor}"') == 1


def test_a_call_without_a_known_key_is_refused_before_its_request_is_read(
        secured: ServerProcess) -> None:
    """A unary call whose request never comes (a half-open stream from the client)
    is refused as its headers arrive: it once waited for its request for good, and
    enough of them took every one of --max-concurrent-rpcs, health checks' too."""
    method = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
    never = threading.Event()

    def nothing() -> Iterator[bytes]:
        never.wait()  # the request never comes, nor the end of the requests
        yield b""

    with grpc.insecure_channel(secured.address) as channel:
        half_open = channel.stream_unary(method)
        try:
            for metadata in ((), with_key(WRITER + "x")):
                with pytest.raises(grpc.RpcError) as refused:
                    half_open(nothing(), timeout=RPC_DEADLINE, metadata=metadata)
                assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
            # a known key's call is read and answered as before (an empty request)
            with pytest.raises(grpc.RpcError) as caught:
                channel.unary_unary(method)(b"", timeout=RPC_DEADLINE,
                                            metadata=with_key(WRITER))
            assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
            assert "names no project" in str(caught.value.details())
        finally:
            never.set()


def test_a_writer_writes_in_its_projects(secured: ServerProcess,
                                         retail: retail_v2.UserEventServiceClient) -> None:
    assert write(retail, WRITER, visitor="writer-1").visitor_id == "writer-1"
    retail.write_user_event(request={"parent": SHOP, "user_event": {**EVENT,
                                                                    "visitor_id": "bearer-1"}},
                            metadata=[("authorization", f"Bearer {WRITER}")],
                            timeout=RPC_DEADLINE)
    assert count_events(secured.store, SHOP, secured.workdir,
                        'visitorId = "writer-1"') == 1
    with pytest.raises(exceptions.PermissionDenied, match="project 'elsewhere'"):
        write(retail, WRITER, parent=ELSEWHERE)
    with talent_client(secured.address) as talent:
        created = talent.create_client_event(
            request={"parent": "projects/jobs/tenants/t", "client_event": {
                "event_id": "e-1", "create_time": {"seconds": 1714564800},
                "job_event": {"type_": "VIEW", "jobs": ["projects/jobs/tenants/t/jobs/j"]}}},
            metadata=with_key(WRITER), timeout=RPC_DEADLINE)
        assert created.event_id == "e-1"


def test_a_writer_may_not_administer(retail: retail_v2.UserEventServiceClient,
                                     secured: ServerProcess) -> None:
    with pytest.raises(exceptions.PermissionDenied, match="needs an admin key"):
        retail.purge_user_events(request={"parent": SHOP, "filter": 'eventType = "search"'},
                                 metadata=with_key(WRITER), timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.PermissionDenied):
        retail.list_operations({"name": SHOP}, metadata=with_key(WRITER), timeout=RPC_DEADLINE)
    with product_client(secured.address) as products, \
            pytest.raises(exceptions.PermissionDenied):
        products.list_products(request={"parent": f"{SHOP}/branches/0"},
                               metadata=with_key(WRITER), timeout=RPC_DEADLINE)


@pytest.mark.parametrize(("key", "call", "reason"), [
    (WRITER, "purge", "ROLE_NOT_ALLOWED"),
    (WRITER, "write elsewhere", "PROJECT_NOT_GRANTED"),
    (ADMIN, "list every operation", "PROJECT_REQUIRED"),
])
def test_each_refusal_of_a_key_says_why_in_its_reason(
        retail: retail_v2.UserEventServiceClient, key: str, call: str, reason: str) -> None:
    """A client (the console) tells a key it must change from a name it must change by
    the refusal's ErrorInfo, not by its words: each used to say ACCESS_DENIED. (A
    bucket not granted: tests/unit/test_auth.py.)"""
    calls: dict[str, Callable[[], Any]] = {
        "purge": lambda: retail.purge_user_events(
            request={"parent": SHOP, "filter": 'eventType = "search"'},
            metadata=with_key(key), timeout=RPC_DEADLINE),
        "write elsewhere": lambda: write(retail, key, parent=ELSEWHERE),
        "list every operation": lambda: retail.list_operations(
            {"name": ""}, metadata=with_key(key), timeout=RPC_DEADLINE),
    }
    with pytest.raises(exceptions.PermissionDenied) as refused:
        calls[call]()
    assert (refused.value.reason, refused.value.domain) == (reason, "footfall")


def test_an_admin_does_everything_in_its_project_only(
        retail: retail_v2.UserEventServiceClient, secured: ServerProcess) -> None:
    write(retail, ADMIN, visitor="admin-1")
    purged = retail.purge_user_events(
        request={"parent": SHOP, "filter": 'visitorId = "admin-1"', "force": True},
        metadata=with_key(ADMIN), timeout=RPC_DEADLINE)
    assert purged.operation.name.startswith(SHOP)
    found = retail.get_operation({"name": purged.operation.name}, metadata=with_key(ADMIN),
                                 timeout=RPC_DEADLINE)
    assert found.name == purged.operation.name
    with pytest.raises(exceptions.PermissionDenied):
        retail.get_operation({"name": purged.operation.name}, metadata=with_key(OTHER),
                             timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.PermissionDenied, match="names no project"):
        retail.list_operations({"name": "projects/"}, metadata=with_key(ADMIN),
                               timeout=RPC_DEADLINE)
    with product_client(secured.address) as products:
        products.list_products(request={"parent": f"{SHOP}/branches/0"},
                               metadata=with_key(ADMIN), timeout=RPC_DEADLINE)


def write_then_purge(client: retail_v2.UserEventServiceClient, visitor: str,
                     **key: object) -> retail_v2.PurgeUserEventsResponse:
    """Writes two events of `visitor` and purges them; returns the purge's response
    (`key`: how each call carries the key, e.g. metadata=...)."""
    for session in ("s-1", "s-2"):  # two events, not one written twice
        client.write_user_event(request={"parent": SHOP, "user_event": {
            **EVENT, "visitor_id": visitor, "session_id": session}}, timeout=RPC_DEADLINE,
            **key)
    operation = client.purge_user_events(
        request={"parent": SHOP, "filter": f'visitorId = "{visitor}"', "force": True},
        timeout=RPC_DEADLINE, **key)
    response: retail_v2.PurgeUserEventsResponse = finish(operation)
    return response


def test_metadata_does_not_reach_the_operation_polls(
        retail: retail_v2.UserEventServiceClient, secured: ServerProcess) -> None:
    """Why the README puts the key on the channel: `op.result()` polls GetOperation
    without the metadata given to the call that started the operation."""
    with pytest.raises(exceptions.Unauthenticated, match="requires an API key") as refused:
        write_then_purge(retail, "poll-metadata", metadata=with_key(ADMIN))
    # (it said only "send it as the x-goog-api-key header", to a caller who had)
    assert "this GetOperation call carried none: a key given with metadata= reaches only " \
        "the call it is given to" in refused.value.message, refused.value.message
    # The purge itself ran; only the client's polls were refused.
    wait_until(lambda: count_events(secured.store, SHOP, secured.workdir,
                                    'visitorId = "poll-metadata"') == 0, "the purge")


def test_a_channel_interceptor_sends_the_key_with_every_call(secured: ServerProcess) -> None:
    channel = grpc.intercept_channel(grpc.insecure_channel(secured.address),
                                     KeyInterceptor(ADMIN))
    transport = UserEventServiceGrpcTransport(channel=channel)
    with retail_v2.UserEventServiceClient(transport=transport) as client:
        assert write_then_purge(client, "poll-grpc").purged_events_count == 2
    assert count_events(secured.store, SHOP, secured.workdir, 'visitorId = "poll-grpc"') == 0


def test_an_aio_channel_interceptor_sends_the_key_with_every_call(
        secured: ServerProcess, run: Callable[[Coroutine[Any, Any, int]], int]) -> None:
    async def purged() -> int:
        channel = grpc.aio.insecure_channel(secured.address,
                                            interceptors=[AsyncKeyInterceptor(ADMIN)])
        client = retail_v2.UserEventServiceAsyncClient(
            transport=UserEventServiceGrpcAsyncIOTransport(channel=channel))
        async with client:
            await client.write_user_event(request={"parent": SHOP, "user_event": {
                **EVENT, "visitor_id": "poll-aio"}}, timeout=RPC_DEADLINE)
            operation = await client.purge_user_events(
                request={"parent": SHOP, "filter": 'visitorId = "poll-aio"', "force": True},
                timeout=RPC_DEADLINE)
            response = await finish_async(operation)
        return int(response.purged_events_count)

    assert run(purged()) == 1


def test_rest_sends_the_client_options_key_with_the_operation_polls(
        secured: ServerProcess) -> None:
    client = retail_v2.UserEventServiceClient(
        client_options={"api_endpoint": secured.http_address, "api_key": ADMIN},
        transport=functools.partial(UserEventServiceRestTransport, url_scheme="http"))
    with client:
        assert write_then_purge(client, "poll-rest").purged_events_count == 2


def test_rest_takes_the_key_from_client_options(secured: ServerProcess) -> None:
    def rest_client(key: str) -> retail_v2.UserEventServiceClient:
        return retail_v2.UserEventServiceClient(
            client_options={"api_endpoint": secured.http_address, "api_key": key},
            transport=functools.partial(UserEventServiceRestTransport, url_scheme="http"))

    request = {"parent": SHOP, "user_event": {**EVENT, "visitor_id": "rest-1"}}
    with rest_client(WRITER) as client:
        assert client.write_user_event(request=request, timeout=RPC_DEADLINE).visitor_id == \
            "rest-1"
        with pytest.raises(exceptions.Forbidden, match="project 'elsewhere'"):
            client.write_user_event(request={**request, "parent": ELSEWHERE},
                                    timeout=RPC_DEADLINE)
    with rest_client(OTHER) as other, pytest.raises(exceptions.Forbidden):
        other.write_user_event(request=request, timeout=RPC_DEADLINE)
    with rest_client(WRITER + "x") as unknown, pytest.raises(exceptions.Unauthorized):
        unknown.write_user_event(request=request, timeout=RPC_DEADLINE)
    # Without a key (the client's anonymous credentials cannot answer a 401, so plain HTTP):
    anonymous = requests.post(f"http://{secured.http_address}/v2/{SHOP}/userEvents:write",
                              json={"eventType": "home-page-view", "visitorId": "anon"},
                              timeout=RPC_DEADLINE)
    error = anonymous.json()["error"]
    assert (anonymous.status_code, error["code"], error["status"]) == \
        (401, 401, "UNAUTHENTICATED")
    assert error["details"][0]["reason"] == "API_KEY_MISSING"


def test_the_pixel_takes_the_key_from_the_query(secured: ServerProcess) -> None:
    url = f"http://{secured.http_address}/v2/{SHOP}/userEvents:collect"
    event = json.dumps({"eventType": "home-page-view", "visitorId": "pixel-1"})
    refused = requests.get(url, params={"user_event": event}, timeout=RPC_DEADLINE)
    assert refused.status_code == 200 and refused.content.startswith(b"GIF89a")
    assert refused.headers["X-Footfall-Error"].startswith("UNAUTHENTICATED")
    assert count_events(secured.store, SHOP, secured.workdir, 'visitorId = "pixel-1"') == 0
    taken = requests.get(url, params={"user_event": event, "key": WRITER}, timeout=RPC_DEADLINE)
    assert taken.status_code == 200 and "X-Footfall-Error" not in taken.headers
    assert count_events(secured.store, SHOP, secured.workdir, 'visitorId = "pixel-1"') == 1
    # Elsewhere a key in the URL counts for nothing: keys belong in headers.
    written = requests.post(f"http://{secured.http_address}/v2/{SHOP}/userEvents:write",
                            params={"key": WRITER}, json={"eventType": "home-page-view",
                                                          "visitorId": "q-1"},
                            timeout=RPC_DEADLINE)
    assert written.status_code == 401, written.text


def test_health_and_reflection_stay_open(secured: ServerProcess, grpcurl: str) -> None:
    with grpc.insecure_channel(secured.address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="google.cloud.retail.v2.UserEventService"),
            timeout=RPC_DEADLINE)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    listed = subprocess.run([grpcurl, "-plaintext", secured.address, "list"],
                            capture_output=True, text=True, timeout=30, check=True)
    assert "google.cloud.retail.v2.UserEventService" in listed.stdout


def test_sighup_rereads_the_keys_and_keeps_them_when_the_file_is_bad(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json", {"first-key-0001": ("writer", ["shop"])})
    server = server_factory("--auth-file", str(keys))
    with retail_client(server.address) as client:
        write(client, "first-key-0001")
        write_keys(keys, {"second-key-0002": ("writer", ["shop"])})
        server.proc.send_signal(signal.SIGHUP)

        def second_works() -> bool:
            try:
                write(client, "second-key-0002")
            except exceptions.Unauthenticated:
                return False
            return True

        wait_until(second_works, "the re-read keys to apply")
        with pytest.raises(exceptions.Unauthenticated):
            write(client, "first-key-0001")
        keys.write_text("{not json", encoding="utf-8")
        server.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "the previous keys stay in force" in server.log_text(),
                   "the bad file to be reported")
        write(client, "second-key-0002")
    assert "second-key-0002" not in server.log_text()
    assert "first-key-0001" not in server.log_text()


def test_sighup_keeps_the_keys_when_the_file_nests_past_what_json_reads(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    # json.loads raises RecursionError for a document nested too deep, not the
    # ValueError of a file that is no JSON: the SIGHUP ended the server then and
    # there, with a traceback, no drain and no "stopped".
    keys = write_keys(tmp_path / "keys.json", {"first-key-0001": ("writer", ["shop"])})
    server = server_factory("--auth-file", str(keys))
    keys.write_text("[" * 100_000, encoding="utf-8")
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "the previous keys stay in force" in server.log_text()
               or server.proc.poll() is not None or None, "the bad file to be reported")
    with retail_client(server.address) as client:
        write(client, "first-key-0001")
    assert server.stop() == 0, server.log_text()


def test_a_bad_auth_file_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "keys.json"
    bad.write_text(json.dumps({"keys": {"k-123": {"role": "owner", "projects": ["p"]}}}))
    with pytest.raises(RuntimeError,
                       match="'role' must be 'admin', 'writer' or 'reader'") as caught:
        ServerProcess(tmp_path, sqlite_url(tmp_path / "events.db"), ["--auth-file", str(bad)])
    assert "k-123" not in str(caught.value)


def _keys_text(*entries: tuple[str, str, str]) -> str:
    """An auth file's text with a line per (key, role, name): a key may come twice,
    as JSON allows and json.dumps cannot write."""
    lines = ",\n".join(f'  {json.dumps(key)}: {{"projects": ["shop"], "role": "{role}", '
                        f'"name": "{name}"}}' for key, role, name in entries)
    return '{"keys": {\n' + lines + "\n}}"


def test_a_key_given_twice_in_the_auth_file_is_refused_not_overwritten(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """A key pasted twice (an old line left behind by an edit) would have taken the
    later entry's role without a word, here an admin turned reader by a reload."""
    keys = tmp_path / "keys.json"
    keys.write_text(_keys_text((ADMIN, "admin", "ops")), encoding="utf-8")
    server = server_factory("--auth-file", str(keys))
    keys.write_text(_keys_text((ADMIN, "admin", "ops"), (WRITER, "writer", "front"),
                               (ADMIN, "reader", "ops-old")), encoding="utf-8")
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "the previous keys stay in force" in server.log_text(),
               "the key given twice to be reported")
    assert "key #3 (ops-old) is the same key as key #1 (ops)" in server.log_text()
    with retail_client(server.address) as client:  # the admin key is still an admin's
        op = client.purge_user_events(
            request={"parent": SHOP, "filter": 'eventType = "search"', "force": True},
            metadata=with_key(ADMIN), timeout=RPC_DEADLINE)
        assert op.operation.name
    assert ADMIN not in server.log_text()
    with pytest.raises(RuntimeError, match="key #3 .* is the same key as key #1") as caught:
        ServerProcess(tmp_path, sqlite_url(tmp_path / "other.db"), ["--auth-file", str(keys)])
    assert ADMIN not in str(caught.value)


def test_a_field_given_twice_in_a_key_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": {' + json.dumps(ADMIN) + ': {"projects": ["shop"], '
                    '"role": "admin", "role": "reader"}}}', encoding="utf-8")
    with pytest.raises(RuntimeError, match="key #1: 'role' is given twice"):
        ServerProcess(tmp_path, sqlite_url(tmp_path / "events.db"), ["--auth-file", str(keys)])


def test_a_file_without_keys_is_warned_of_at_start_and_on_sighup(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """`{"keys": {}}` is a valid file that refuses every caller: an edit that left it
    empty was only 'auth is on: 0 API keys' at INFO."""
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": {}}', encoding="utf-8")
    server = server_factory("--auth-file", str(keys))
    said = f"WARNING footfall: {keys} holds no key: every call but health"
    assert said in server.log_text()
    write_keys(keys, {WRITER: ("writer", ["shop"])})
    server.proc.send_signal(signal.SIGHUP)
    # ("SIGHUP: " too: the start's "auth is on" line says "SIGHUP re-reads it")
    wait_until(lambda: "SIGHUP: re-read" in server.log_text(), "the keys to be read again")
    assert server.log_text().count(said) == 1
    assert f"SIGHUP: re-read {keys}: 1 key\n" in server.log_text()  # (it said "1 keys")
    keys.write_text('{"keys": {}}', encoding="utf-8")
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: server.log_text().count(said) == 2, "the empty file to be warned of")
    with retail_client(server.address) as client, pytest.raises(exceptions.Unauthenticated):
        write(client, WRITER)



def test_a_keys_file_other_users_may_read_is_warned_of_at_start_and_on_sighup(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """A keys file written under a umask of 022 (0644) was read without a word, and
    every local user could read the keys; it is still served (refused, such a server
    would not start)."""
    keys = write_keys(tmp_path / "keys.json", {WRITER: ("writer", ["shop"])})
    keys.chmod(0o644)
    server = server_factory("--auth-file", str(keys))
    said = f"WARNING footfall: {keys} is open to other users of this machine (mode 0644)"
    assert server.log_text().count(said) == 1, server.log_text()
    assert f"chmod 600 {keys}" in server.log_text()
    keys.chmod(0o600)
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "SIGHUP: re-read" in server.log_text(), "the keys to be read again")
    assert "is open to other users" not in server.log_text().partition("SIGHUP: re-read")[2]
    keys.chmod(0o640)
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "(mode 0640)" in server.log_text(), "the group's read to be warned of")
    with retail_client(server.address) as client:
        write(client, WRITER)
    assert WRITER not in server.log_text()

def test_talent_without_a_key_is_unauthenticated(secured: ServerProcess) -> None:
    with talent_client(secured.address) as talent, pytest.raises(exceptions.Unauthenticated):
        talent.create_client_event(request=talent_v4.CreateClientEventRequest(
            parent="projects/jobs/tenants/t", client_event={"event_id": "e"}),
            timeout=RPC_DEADLINE)


def test_a_writer_with_a_malformed_parent_is_told_which_field_names_no_project(
        secured: ServerProcess) -> None:
    """A job site's writer key with a typo in its parent was told only "the request
    names no project", where a call without auth is told the field and its form."""
    with talent_client(secured.address) as talent:
        for parent, said in (("jobs/tenants/t", "its parent 'jobs/tenants/t' names no project"),
                             ("", "the request names no project")):
            with pytest.raises(exceptions.PermissionDenied) as refused:
                talent.create_client_event(request=talent_v4.CreateClientEventRequest(
                    parent=parent, client_event={"event_id": "e"}),
                    metadata=with_key(WRITER), timeout=RPC_DEADLINE)
            assert refused.value.message == (
                f"CreateClientEvent: {said} (projects/PROJECT/...), so no API key is "
                "allowed to make it"), refused.value.message


def test_a_watch_admitted_while_the_keys_are_read_again_is_checked_against_them(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """Keys read again between a watch's key check and the start of its stream: the
    watch is checked against the new keys too (it went on with a revoked key)."""
    reader, writer = "reader-key-0001", "writer-key-0004"
    keys = write_keys(tmp_path / "keys.json", {reader: ("reader", ["shop"]),
                                               writer: ("writer", ["shop"])})
    server = server_factory("--auth-file", str(keys), "--allow-fault-injection")
    with grpc.insecure_channel(server.address) as channel, \
            retail_client(server.address) as client:
        # admitted, then held 2 s before its stream starts (a fault's delay stands for
        # a busy moment)
        watch = Console(channel, [*with_key(reader), ("x-footfall-fail", "OK;delay=2")]) \
            .watch("WatchUserEvents", parent=SHOP, seconds=10)
        time.sleep(0.5)
        write_keys(keys, {writer: ("writer", ["shop"])})
        server.proc.send_signal(signal.SIGHUP)

        def revoked() -> bool:
            try:
                Console(channel, with_key(reader)).call("ListCatalogs", parent="projects/shop")
            except grpc.RpcError as refused:
                return refused.code() is grpc.StatusCode.UNAUTHENTICATED
            return False

        wait_until(revoked, "the re-read keys to apply")
        write(client, writer, visitor="after")
        try:
            with pytest.raises(grpc.RpcError) as ended:
                next(watch)
            assert ended.value.code() is grpc.StatusCode.UNAUTHENTICATED
        finally:
            watch.cancel()


def test_watches_end_when_their_key_is_revoked(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """Keys read again (SIGHUP): a watch opened with a key that is gone, or whose role
    no longer reads, ends with the refusal a new call would get; one whose key stays
    goes on."""
    reader, lowered, kept, writer = ("reader-key-0001", "lowered-key-0002", "kept-key-0003",
                                     "writer-key-0004")
    grants = {reader: ("reader", ["shop"]), lowered: ("reader", ["shop"]),
              kept: ("reader", ["shop"]), writer: ("writer", ["shop"])}
    keys = write_keys(tmp_path / "keys.json", grants)
    server = server_factory("--auth-file", str(keys))
    with grpc.insecure_channel(server.address) as channel, \
            retail_client(server.address) as client:
        watches = {key: Console(channel, with_key(key)).watch("WatchUserEvents", parent=SHOP,
                                                              seconds=60)
                   for key in (reader, lowered, kept)}
        http = requests.get(f"http://{server.http_address}/console/v1/{SHOP}/userEvents:watch",
                            headers={"x-goog-api-key": reader}, stream=True,
                            timeout=RPC_DEADLINE)
        try:
            write(client, writer, visitor="before")
            for watch in watches.values():
                assert next(watch)["userEvent"]["visitorId"] == "before"
            lines = http.iter_lines()
            assert b"before" in next(line for line in lines if line.startswith(b"data: "))
            write_keys(keys, {**{k: v for k, v in grants.items() if k != reader},
                              lowered: ("writer", ["shop"])})
            server.proc.send_signal(signal.SIGHUP)
            for key, code in ((reader, grpc.StatusCode.UNAUTHENTICATED),
                              (lowered, grpc.StatusCode.PERMISSION_DENIED)):
                with pytest.raises(grpc.RpcError) as ended:
                    next(watches[key])  # within a poll (0.5 s), with no event to send
                assert ended.value.code() is code
            assert next(line for line in lines if line.startswith(b"event: ")) == b"event: error"
            write(client, writer, visitor="after")
            assert next(watches[kept])["userEvent"]["visitorId"] == "after"
        finally:
            for watch in watches.values():
                watch.cancel()
            http.close()


def test_a_reader_reads_products_and_changes_none(tmp_path: Path) -> None:
    """The console's products page and `footfall products list` read products with a
    reader key: ProductService's reads answered it PERMISSION_DENIED ("needs an admin
    key"), so a reader saw an error where the catalog's products belong."""
    reader, writer, admin = "reader-key-0005", "writer-key-0006", "admin-key-0007"
    keys = write_keys(tmp_path / "keys.json", {reader: ("reader", ["shop"]),
                                               writer: ("writer", ["shop"]),
                                               admin: ("admin", ["shop"])})
    branch = f"{SHOP}/branches/default_branch"
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--auth-file", str(keys)) as server, \
            product_client(server.address) as products:
        for product_id, product in (
                ("sku-1", {"title": "Red shoes", "categories": ["Shoes > Running"],
                           "price_info": {"price": 59.9, "currency_code": "USD"},
                           "availability": "IN_STOCK"}),
                ("sku-1-42", {"title": "Red shoes, 42", "type_": "VARIANT",
                              "primary_product_id": "sku-1"})):
            products.create_product(parent=branch, product=product, product_id=product_id,
                                    metadata=with_key(admin), timeout=RPC_DEADLINE)
        listed = products.list_products(request={"parent": branch},
                                        metadata=with_key(reader), timeout=RPC_DEADLINE)
        assert [p.id for p in listed] == ["sku-1", "sku-1-42"]
        assert products.get_product(name=f"{branch}/products/sku-1", metadata=with_key(reader),
                                    timeout=RPC_DEADLINE).title == "Red shoes"
        rest = requests.get(f"http://{server.http_address}/v2/{branch}/products",
                            headers={"x-goog-api-key": reader}, timeout=RPC_DEADLINE)
        assert rest.status_code == 200, rest.text
        assert [p["id"] for p in rest.json()["products"]] == ["sku-1", "sku-1-42"]

        changes: dict[str, Callable[[], Any]] = {
            "create": lambda: products.create_product(
                parent=branch, product={"title": "x"}, product_id="sku-2",
                metadata=with_key(reader), timeout=RPC_DEADLINE),
            "update": lambda: products.update_product(
                product={"name": f"{branch}/products/sku-1", "title": "changed"},
                metadata=with_key(reader), timeout=RPC_DEADLINE),
            "delete": lambda: products.delete_product(
                name=f"{branch}/products/sku-1-42", metadata=with_key(reader),
                timeout=RPC_DEADLINE),
        }
        for change in changes.values():
            with pytest.raises(exceptions.PermissionDenied, match="needs an admin key"):
                change()
        with pytest.raises(exceptions.PermissionDenied, match="a reader or admin key"):
            products.list_products(request={"parent": branch}, metadata=with_key(writer),
                                   timeout=RPC_DEADLINE)
        assert [(p.id, p.title) for p in products.list_products(
            request={"parent": branch}, metadata=with_key(admin), timeout=RPC_DEADLINE)] \
            == [("sku-1", "Red shoes"), ("sku-1-42", "Red shoes, 42")]

        cli = subprocess.run(
            [sys.executable, "-m", "server", "products", "list", "--server", server.address,
             "--parent", SHOP], capture_output=True, text=True, timeout=60,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")},
                 "FOOTFALL_KEY": reader})
        assert cli.returncode == 0, cli.stderr
        assert cli.stdout.splitlines() == [
            'sku-1  PRIMARY    title="Red shoes" price=59.9USD availability=IN_STOCK '
            'categories="Shoes > Running"',
            'sku-1-42  VARIANT    title="Red shoes, 42" primary=sku-1']


def test_a_keys_large_requests_waiting_are_still_counted_after_a_sighup(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    # A key's large requests were counted by its Grant object's id, and a SIGHUP makes
    # a new one of every key: the 4 waiting (MAX_WAITING_PER_KEY) went on waiting
    # under the old one, and 4 more of the same key were let wait under the new one.
    key = "writer-key-5e0c21b7f9d4"
    keys = write_keys(tmp_path / "keys.json", {key: ("writer", ["shop"])})
    server = server_factory("--auth-file", str(keys))
    # About 2 MB (of 2 MiB at most): over LARGE_REQUEST_BYTES, so it waits for its
    # turn, and is expected to cost 2 s (EXPECTED_SECONDS_PER_BYTE) of the 0.5 s a
    # second of large requests: the next turn comes about 4 s after the first's.
    request = retail_v2.WriteUserEventRequest(parent=SHOP, user_event={
        **EVENT, "attributes": {f"pad{i}": {"text": ["x" * 200]} for i in range(9_000)}})

    with retail_client(server.address) as client:
        def large(timeout: float) -> type[Exception] | None:
            try:
                client.write_user_event(request=request, metadata=with_key(key),
                                        timeout=timeout, retry=None)
            except exceptions.GoogleAPICallError as exc:
                return type(exc)
            return None

        # The first to have its turn (the server's first large request: none has
        # spent the budget) holds it while it waits for the store (locked, as by the
        # sqlite3 shell: up to the server's 10 s wait); 4 others wait for theirs, and
        # the sixth is refused at once.
        lock = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            with concurrent.futures.ThreadPoolExecutor(6) as senders:
                sent = [senders.submit(large, 30.0) for _ in range(6)]
                done, held = concurrent.futures.wait(
                    sent, timeout=20, return_when=concurrent.futures.FIRST_COMPLETED)
                assert [future.result() for future in done] == [exceptions.ResourceExhausted]
                server.proc.send_signal(signal.SIGHUP)
                wait_until(lambda: "SIGHUP: re-read" in server.log_text(), "the reload")
                # (it waited for its turn under the key's new Grant: DeadlineExceeded)
                assert large(3.0) is exceptions.ResourceExhausted
                lock.execute("COMMIT")
                # (answered, or UNAVAILABLE past the server's lock wait on a slow machine)
                assert exceptions.ResourceExhausted not in [f.result() for f in held]
        finally:
            lock.close()


@pytest.mark.timeout(120)
def test_a_write_whose_key_is_taken_away_while_it_runs_is_answered_as_stored(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """A write admitted with its key, the keys read again without it before its answer
    (an event of 100 KB, over 64 KiB) was made: the key was looked up once more to
    count the answer among those not yet taken (policy.unsent), and the write, stored,
    was answered UNAUTHENTICATED, as if refused. (The write waits 6 s in its fault's
    delay, after its admission: the keys are read again meanwhile.)"""
    keys = write_keys(tmp_path / "keys.json", {"taken-away-key-0001": ("writer", ["shop"])})
    server = server_factory("--auth-file", str(keys), "--allow-fault-injection")
    event = retail_v2.UserEvent(
        event_type="home-page-view", visitor_id="large",
        attributes={f"a{n}": retail_v2.CustomAttribute(text=["x" * 250] * 10)
                    for n in range(40)})
    with retail_client(server.address) as client, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        written = pool.submit(
            client.write_user_event, request={"parent": SHOP, "user_event": event},
            metadata=[*with_key("taken-away-key-0001"), ("x-footfall-fail", "OK;delay=6")],
            timeout=60)
        time.sleep(2)  # (admitted by then; no event says so)
        write_keys(keys, {"another-key-0002": ("writer", ["shop"])})
        server.proc.send_signal(signal.SIGHUP)

        def taken_away() -> bool:
            try:
                write(client, "taken-away-key-0001")
            except exceptions.Unauthenticated:
                return True
            return False

        wait_until(taken_away, "the keys read again without it")
        assert not written.done(), "the write ended before its key was taken away"
        assert written.result().visitor_id == "large"
