"""--grpc-max-calls-per-connection: the calls one HTTP/2 connection may have open,
cancelled ones the server has not let go yet included (an "HTTP/2 rapid reset"
flood); honest clients that keep many calls in flight are not refused. Raw HTTP/2
frames and a real grpc client, over real sockets."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from google.api_core import exceptions
from google.cloud import retail_v2
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceGrpcTransport,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .http2 import (
    CANCEL,
    END_HEADERS,
    HEADERS,
    MAX_CONCURRENT_STREAMS,
    PREFACE,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    Frames,
    call_headers,
    frame,
    settings_of,
)
from .support import (
    RPC_DEADLINE,
    count_client_events,
    count_events,
    finish,
    running_server,
    sqlite_url,
    talent_client,
)

WATCH = "/grpc.health.v1.Health/Watch"
WRITE = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
PARENT = "projects/shop/locations/global/catalogs/default_catalog"
TENANT = "projects/shop/tenants/jobs"
# How a client is told of a call refused past the bound (grpc's C core: Python, C++,
# Ruby): UNAVAILABLE, "Stream removed (RST_STREAM (Received RST_STREAM with error code 7))".
REFUSED = "error code 7"


def connected(port: int) -> tuple[socket.socket, Frames, dict[int, int]]:
    """A raw HTTP/2 connection whose SETTINGS the server has sent (and been
    acknowledged), with them."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=RPC_DEADLINE)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
    frames = Frames(sock)
    return sock, frames, settings_of(frames.read(0.5))


def refused(frames: Frames, expected: int) -> set[int]:
    """The streams the server refuses (RST_STREAM REFUSED_STREAM), read until
    `expected` of them are (grpc sends each refusal 0.1-1 s late, at random: its
    "tarpit") or RPC_DEADLINE has passed."""
    found: set[int] = set()
    deadline = time.monotonic() + RPC_DEADLINE
    while len(found) < expected and time.monotonic() < deadline and not frames.closed:
        found |= {stream for kind, _, stream, payload in frames.read(0.2)
                  if kind == RST_STREAM and int.from_bytes(payload, "big") == REFUSED_STREAM}
    return found


def test_calls_past_the_bound_of_a_connection_are_refused_reset_ones_included(
        tmp_path: Path) -> None:
    """One connection sending each call's headers and its cancellation together, in
    a loop, had every call taken in and queued for the loop (30,000 a second cost a
    core, and the writes of other connections were cancelled behind them): the
    server set no MAX_CONCURRENT_STREAMS. Now it says --grpc-max-calls-per-connection
    and refuses the calls past it, counting those cancelled that it has not let go."""
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"),
                        "--grpc-max-calls-per-connection", "10") as server:
        sock, frames, settings = connected(server.port)
        try:
            assert settings.get(MAX_CONCURRENT_STREAMS) == 10
            # 30 health watches left open (no request sent): 10 are taken in.
            watch = call_headers(server.port, WATCH)
            held = [1 + 2 * i for i in range(30)]
            sock.sendall(b"".join(frame(HEADERS, END_HEADERS, stream, watch)
                                  for stream in held))
            assert refused(frames, 20) == set(held[10:])
            # Calls reset as soon as sent, on a connection whose 10 places are free:
            # those past the bound are refused, not all taken in.
            sock.close()
            sock, frames, _ = connected(server.port)
            write = call_headers(server.port, WRITE)
            reset = [1 + 2 * i for i in range(500)]
            sock.sendall(b"".join(frame(HEADERS, END_HEADERS, stream, write) +
                                  frame(RST_STREAM, 0, stream, CANCEL.to_bytes(4, "big"))
                                  for stream in reset))
            assert len(refused(frames, 400)) >= 400
            assert not frames.closed
        finally:
            sock.close()
        # Another connection is served.
        with grpc.insecure_channel(server.address) as channel:
            assert health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=RPC_DEADLINE).status == \
                health_pb2.HealthCheckResponse.SERVING


def test_a_client_sending_many_calls_together_on_one_connection_is_not_refused(
        tmp_path: Path) -> None:
    """The default bound is 1,000: grpc counts a call for a moment after it ended,
    and a client sends calls past the bound before it has heard of it, so a bound of
    100 refused 20-35% of 500 writes sent together on one channel (and 70% of
    h2load's, 64 at once on each of 4 connections)."""
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db")) as server:
        sock, _, settings = connected(server.port)
        sock.close()
        assert settings.get(MAX_CONCURRENT_STREAMS) == 1000
        with grpc.insecure_channel(server.address) as channel:
            write = channel.unary_unary(
                WRITE, request_serializer=retail_v2.WriteUserEventRequest.serialize)
            calls = [write.future(retail_v2.WriteUserEventRequest(
                parent=PARENT, user_event=retail_v2.UserEvent(
                    event_type="home-page-view", visitor_id=f"visitor-{i}")),
                timeout=60) for i in range(500)]
            failed = [call.exception() for call in calls if call.exception() is not None]
            assert not failed, f"{len(failed)} of 500 failed, the first {failed[0]}"


def _write(index: int, tag: str) -> retail_v2.WriteUserEventRequest:
    return retail_v2.WriteUserEventRequest(parent=PARENT, user_event=retail_v2.UserEvent(
        event_type="home-page-view", visitor_id=f"{tag}-{index}"))


def test_calls_waiting_for_the_server_to_take_them_are_not_cancelled(tmp_path: Path) -> None:
    """grpc holds a call that has come until the server's loop takes it, and cancelled
    those past 1,000 waiting at random (its default): three clients keeping 1,000
    writes in flight each, on connections of their own (each within the default
    --grpc-max-calls-per-connection), had 9-14% of them end CANCELLED, not stored.
    Now as many may wait as --max-concurrent-rpcs lets run."""
    store = sqlite_url(tmp_path / "events.db")
    with running_server(tmp_path, store) as server:
        # (a channel of its own subchannel pool has a connection of its own)
        channels = [grpc.insecure_channel(server.address,
                                          options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(3)]
        try:
            for channel in channels:
                grpc.channel_ready_future(channel).result(timeout=RPC_DEADLINE)
            writes = [channel.unary_unary(
                WRITE, request_serializer=retail_v2.WriteUserEventRequest.serialize)
                for channel in channels]
            calls = [write.future(_write(i, f"client-{k}"), timeout=60)
                     for i in range(1000) for k, write in enumerate(writes)]
            failed = [call.code() for call in calls if call.exception() is not None]
        finally:
            for channel in channels:
                channel.close()
        assert not failed, f"{len(failed)} of 3000 failed: {set(failed)}"
        assert count_events(store, PARENT, tmp_path) == 3000


def _together(calls: int, call: Callable[[int], Any]) -> list[Any]:
    """What `call(i)` answered (or raised) for each i of `calls`, 64 made at once."""
    def outcome(index: int) -> Any:
        try:
            return call(index)
        except exceptions.GoogleAPICallError as error:
            return error
    with ThreadPoolExecutor(64) as pool:
        return list(pool.map(outcome, range(calls)))


def _refusals(outcomes: list[Any]) -> list[exceptions.GoogleAPICallError]:
    """The errors among `outcomes`, each checked to be a refusal of its stream."""
    errors = [o for o in outcomes if isinstance(o, exceptions.GoogleAPICallError)]
    for error in errors:
        assert isinstance(error, exceptions.ServiceUnavailable) and REFUSED in str(error), error
    return errors


def test_a_write_refused_past_the_bound_reaches_the_official_clients_unavailable_unstored(
        tmp_path: Path) -> None:
    """What the official Python clients do with a call refused past the bound (HTTP/2
    REFUSED_STREAM, which grpc's C core does not retry by itself): WriteUserEvent and
    talent's CreateClientEvent have no retry by default (transports/base.py), so
    the caller gets ServiceUnavailable (503); a call answered is stored once, a call
    refused is not stored, and the caller may send it again."""
    store = sqlite_url(tmp_path / "events.db")
    with running_server(tmp_path, store, "--grpc-max-calls-per-connection", "10") as server:
        events = retail_v2.UserEventServiceClient(transport=UserEventServiceGrpcTransport(
            channel=grpc.insecure_channel(server.address)))
        written = _together(200, lambda i: events.write_user_event(
            request=_write(i, "retail"), timeout=60))
        refused = _refusals(written)
        assert refused, "no write was refused: the bound was not reached"
        assert count_events(store, PARENT, tmp_path) == len(written) - len(refused)

        jobs = talent_client(server.address)
        created = _together(200, lambda i: jobs.create_client_event(request={
            "parent": TENANT, "client_event": {
                "request_id": "r", "event_id": f"talent-{i}",
                "create_time": {"seconds": 1716213600},
                "job_event": {"type_": "VIEW", "jobs": [f"{TENANT}/jobs/{i}"]}}}))
        refused = _refusals(created)
        assert refused, "no client event was refused: the bound was not reached"
        assert count_client_events(store, TENANT, tmp_path) == len(created) - len(refused)


class _Attempts(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Counts the calls made on a channel and those refused UNAVAILABLE."""

    def __init__(self) -> None:
        self.made = self.refused = 0
        self._counting = threading.Lock()  # (calls are made on many threads)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        answer = continuation(details, request)
        with self._counting:
            self.made += 1
            self.refused += answer.code() == grpc.StatusCode.UNAVAILABLE
        return answer


def test_an_import_refused_past_the_bound_is_sent_again_by_the_official_client(
        tmp_path: Path) -> None:
    """ImportUserEvents (as PurgeUserEvents) has a default retry on UNAVAILABLE in the
    official Python client: a refused import is sent again and starts one operation,
    the caller sees none of it."""
    store = sqlite_url(tmp_path / "events.db")
    with running_server(tmp_path, store, "--grpc-max-calls-per-connection", "10") as server:
        attempts = _Attempts()
        events = retail_v2.UserEventServiceClient(transport=UserEventServiceGrpcTransport(
            channel=grpc.intercept_channel(grpc.insecure_channel(server.address), attempts)))
        imports = _together(40, lambda i: events.import_user_events(request={
            "parent": PARENT, "input_config": {"user_event_inline_source": {"user_events": [
                {"event_type": "home-page-view", "visitor_id": f"import-{i}",
                 "event_time": {"seconds": 1716213600}}]}}}))
        assert not _refusals(imports)
        assert attempts.refused, "no import was refused: the bound was not reached"
        assert attempts.made == 40 + attempts.refused
        for operation in imports:  # (one at a time: none is refused)
            assert finish(operation).error_samples == []
        assert count_events(store, PARENT, tmp_path) == 40


def test_a_channel_retry_policy_sends_refused_calls_again(tmp_path: Path) -> None:
    """What a client of grpc's C core can do about refusals it is not told to retry:
    a retry policy on UNAVAILABLE in its channel's service config (the README says so).
    Every write is then made, once."""
    store = sqlite_url(tmp_path / "events.db")
    retry = {"methodConfig": [{
        "name": [{"service": "google.cloud.retail.v2.UserEventService"}],
        "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.05s", "maxBackoff": "1s",
                        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}
    with running_server(tmp_path, store, "--grpc-max-calls-per-connection", "10") as server, \
            grpc.insecure_channel(server.address, options=[
                ("grpc.service_config", json.dumps(retry))]) as channel:
        write = channel.unary_unary(
            WRITE, request_serializer=retail_v2.WriteUserEventRequest.serialize)
        calls = [write.future(_write(i, "retried"), timeout=60) for i in range(300)]
        failed = [call.code() for call in calls if call.exception() is not None]
        assert not failed, f"{len(failed)} of 300 failed: {set(failed)}"
        assert count_events(store, PARENT, tmp_path) == 300
