"""A large event's deterministic encoding (what its row stores, and its dedup key
hashes) is made by a process of the server's own (server.retail.encoder), so that
the loop, which serves every call, answers meanwhile; a large event is stored all
the same when that process dies or hangs (SIGSTOP: given up on after its allowance),
and a hung one holds no caller past its deadline nor a SIGTERM past its grace.
Through the official clients, on a `footfall serve`."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import retail_v2, retail_v2beta
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceRestTransport,
)
from google.cloud.retail_v2beta.services.user_event_service.transports import (
    UserEventServiceGrpcTransport as BetaTransport,
)
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.retail.encoder import allowance

from .support import ServerProcess, count_events, retail_client, wait_until, workers

CATALOG = "projects/heavy/locations/global/catalogs/default_catalog"
# Of 30,000 attributes, about 0.5 MB: past LARGE_REQUEST_BYTES (64 KiB), decoded,
# checked and encoded off the loop.
ATTRIBUTES = 30_000
# However busy the machine, a health check of a loop that is free answers well within
# this; one behind the large write's encoding would wait for ever (its worker stopped).
GENEROUS = 20.0
# How long a large write may wait for a stopped encoder: its allowance (for 1 MiB: the
# event is 0.8 MB), then the encoding made in the server, the rules, the write.
HUNG = allowance(1 << 20) + GENEROUS


def heavy(visitor: str, seconds: int | None = None) -> retail_v2.UserEvent:
    event = retail_v2.UserEvent(
        event_type="home-page-view", visitor_id=visitor,
        attributes={f"key-{i}": retail_v2.CustomAttribute(text=[f"value {i}"])
                    for i in range(ATTRIBUTES)})
    if seconds is not None:
        event.event_time = timestamp_pb2.Timestamp(seconds=seconds)
    return event


def encoder_of(server: ServerProcess) -> int:
    """The server's one worker process (its encoder), once started."""
    return wait_until(lambda: (lambda found: found[0] if len(found) == 1 else None)(
        workers(server.proc.pid)), "the encoder process", deadline=GENEROUS)


def write(client: Any, event: retail_v2.UserEvent) -> retail_v2.UserEvent:
    return client.write_user_event(request={"parent": CATALOG, "user_event": event},
                                   timeout=60)


def health(server: ServerProcess) -> Callable[[], int]:
    def check() -> int:
        with grpc.insecure_channel(server.address) as channel:
            return int(health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=GENEROUS).status)
    return check


def test_the_loop_answers_while_a_large_events_encoding_is_made_elsewhere(
        server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory()
    with retail_client(server.address) as client, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = write(client, heavy("v-first"))
        assert len(first.attributes) == ATTRIBUTES and first.event_time.timestamp() > 0
        encoder = encoder_of(server)
        os.kill(encoder, signal.SIGSTOP)  # its next encoding waits
        try:
            pending = pool.submit(write, client, heavy("v-second"))
            # (the write's decode and rules on the server's threads, then its wait)
            time.sleep(1.0)
            started = time.monotonic()
            assert health(server)() == health_pb2.HealthCheckResponse.SERVING
            answered_in = time.monotonic() - started
            assert not pending.done(), "the write was answered while its encoder was stopped"
        finally:
            os.kill(encoder, signal.SIGCONT)
        second = pending.result(timeout=60)
    assert answered_in < GENEROUS
    assert second.visitor_id == "v-second" and len(second.attributes) == ATTRIBUTES
    assert second.attributes["key-7"].text == ["value 7"]
    assert count_events(server.store, CATALOG, server.workdir) == 2
    # Slow, not hung: the same worker goes on, given up on by nobody.
    assert workers(server.proc.pid) == [encoder]
    assert replaced(server) == {"died": 0, "hung": 0}


def test_a_large_event_is_stored_and_deduplicated_when_its_encoder_dies(
        server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory()
    with retail_client(server.address) as client:
        write(client, heavy("v-first"))
        encoder = encoder_of(server)
        os.kill(encoder, signal.SIGKILL)
        wait_until(lambda: encoder not in workers(server.proc.pid) or None,
                   "the encoder's end", deadline=GENEROUS)
        # Encoded here once the encoder is found dead, then by a new one: one row,
        # the second a duplicate of the first (the same bytes hashed alike).
        sent = heavy("v-again", seconds=1_700_000_000)
        assert write(client, sent).attributes["key-9"].text == ["value 9"]
        assert write(client, sent).visitor_id == "v-again"
        assert len(workers(server.proc.pid)) == 1
    assert count_events(server.store, CATALOG, server.workdir) == 2


def with_products(visitor: str) -> retail_v2.UserEvent:
    """A large add-to-cart of the attributes and 300 products the catalog lacks."""
    event = heavy(visitor, seconds=1_700_000_100)
    event.event_type = "add-to-cart"
    event.cart_id = "cart-1"
    event.product_details = [retail_v2.ProductDetail(product=retail_v2.Product(id=f"sku-{i}"),
                                                     quantity=1) for i in range(300)]
    return event


def test_a_large_event_is_answered_and_stored_alike_on_every_surface(
        server_factory: Callable[..., ServerProcess]) -> None:
    """Its answer (made of its bytes off the loop; in another version, made that
    version's there) is the event sent, stamped; the same event sent again on another
    surface is stored once: its row's bytes, whatever path made them, hash alike."""
    server = server_factory()
    rest = retail_v2.UserEventServiceClient(transport=UserEventServiceRestTransport(
        host=server.http_address, url_scheme="http", credentials=AnonymousCredentials()))
    beta = retail_v2beta.UserEventServiceClient(transport=BetaTransport(
        channel=grpc.insecure_channel(server.address)))
    for sent in (heavy("v-every", seconds=1_700_000_000), with_products("v-cart")):
        with retail_client(server.address) as client:
            answers = [write(client, sent), write(rest, sent)]
        beta_sent = retail_v2beta.UserEvent.deserialize(retail_v2.UserEvent.serialize(sent))
        answers.append(retail_v2.UserEvent.deserialize(retail_v2beta.UserEvent.serialize(
            beta.write_user_event(request={"parent": CATALOG, "user_event": beta_sent},
                                  timeout=60))))
        for answer in answers:
            assert answer == sent
    assert count_events(server.store, CATALOG, server.workdir) == 2


def replaced(server: ServerProcess) -> dict[str, float]:
    """footfall_encoder_workers_replaced_total by reason, from /metrics."""
    text = requests.get(f"http://{server.http_address}/metrics", timeout=GENEROUS).text
    prefix = "footfall_encoder_workers_replaced_total{reason=\""
    return {line[len(prefix):].split('"')[0]: float(line.split()[-1])
            for line in text.splitlines() if line.startswith(prefix)}


def stopped_encoder(server: ServerProcess, client: Any) -> int:
    """The server's encoder, started by a large event and then stopped (SIGSTOP)."""
    write(client, heavy("v-first"))
    encoder = encoder_of(server)
    os.kill(encoder, signal.SIGSTOP)
    return encoder


def ended(pid: int) -> bool:
    """Whether process `pid` is gone (or a zombie: killed, not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def kill_if_left(pid: int) -> None:
    """SIGKILL `pid` if it is still there: a stopped encoder that its server did not
    end stays stopped for ever."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def write_within(client: Any, event: retail_v2.UserEvent, seconds: float) -> retail_v2.UserEvent:
    return client.write_user_event(request={"parent": CATALOG, "user_event": event},
                                   timeout=seconds)


@pytest.mark.timeout(3 * HUNG)
def test_a_large_event_is_stored_once_when_its_encoder_hangs(
        server_factory: Callable[..., ServerProcess], each_store: str) -> None:
    """A stopped encoder holds a large write no longer than its allowance: it is killed,
    the event encoded in the server, and the next large event starts another, whose
    bytes are the server's (the same event sent again is a duplicate)."""
    server = server_factory(store=each_store)
    with retail_client(server.address) as client:
        encoder = stopped_encoder(server, client)
        try:
            sent = heavy("v-hung", seconds=1_700_000_000)
            started = time.monotonic()
            assert write_within(client, sent, HUNG).attributes["key-9"].text == ["value 9"]
            answered_in = time.monotonic() - started
            wait_until(lambda: ended(encoder), "the stopped encoder's end", deadline=GENEROUS)
            assert replaced(server) == {"died": 0, "hung": 1}
            assert write_within(client, sent, HUNG).visitor_id == "v-hung"
            assert encoder_of(server) != encoder
        finally:
            kill_if_left(encoder)
    assert answered_in < HUNG
    assert count_events(server.store, CATALOG, server.workdir) == 2


@pytest.mark.timeout(3 * HUNG)
def test_callers_gone_from_a_hung_encoder_hold_no_thread_and_store_nothing(
        server_factory: Callable[..., ServerProcess]) -> None:
    """Large writes whose deadline passes while the encoder is stopped end there: they
    give back the two threads that every large request is decoded on (a large refusal,
    which needs no encoding, is answered long before the encoder's allowance), and
    nothing of theirs is stored, even once the encoder goes on."""
    server = server_factory()
    with retail_client(server.address) as client, \
            concurrent.futures.ThreadPoolExecutor(2) as pool:
        encoder = stopped_encoder(server, client)
        try:
            started = time.monotonic()
            short = [pool.submit(write_within, client, heavy(f"v-short-{i}"), 2.0)
                     for i in range(2)]
            for call in short:
                with pytest.raises(exceptions.DeadlineExceeded):
                    call.result()
            refused = heavy("")  # (no visitor_id: refused by the rules, before any encoding)
            with pytest.raises(exceptions.InvalidArgument, match="visitor_id"):
                write_within(client, refused, allowance(0) - 3.0)
            assert time.monotonic() - started < allowance(0)
            os.kill(encoder, signal.SIGCONT)
            # (the encodings it owed made, and dropped: their callers went)
            assert write(client, heavy("v-after")).visitor_id == "v-after"
            assert workers(server.proc.pid) == [encoder]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(encoder, signal.SIGCONT)
    assert count_events(server.store, CATALOG, server.workdir) == 2


@pytest.mark.timeout(3 * HUNG)
def test_large_events_queued_behind_a_hung_encoder_are_all_stored(
        server_factory: Callable[..., ServerProcess]) -> None:
    """Three large writes at once (two over gRPC, one over REST) while the encoder is
    stopped, behind two whose callers went (the worker owes theirs): the two decoder
    threads wait for it, the third for a thread; within the allowance (and a new
    encoder's start) each is answered and stored once."""
    server = server_factory()
    rest = retail_v2.UserEventServiceClient(transport=UserEventServiceRestTransport(
        host=server.http_address, url_scheme="http", credentials=AnonymousCredentials()))
    with retail_client(server.address) as client, \
            concurrent.futures.ThreadPoolExecutor(3) as pool:
        encoder = stopped_encoder(server, client)
        try:
            for call in [pool.submit(write_within, client, heavy(f"v-gone-{i}"), 2.0)
                         for i in range(2)]:
                with pytest.raises(exceptions.DeadlineExceeded):
                    call.result()
            calls = [pool.submit(write_within, caller, heavy(f"v-queued-{i}"), 2 * HUNG)
                     for i, caller in enumerate((client, client, rest))]
            answers = [call.result() for call in calls]
        finally:
            kill_if_left(encoder)
    assert [answer.visitor_id for answer in answers] == ["v-queued-0", "v-queued-1",
                                                         "v-queued-2"]
    assert replaced(server)["hung"] == 1
    assert count_events(server.store, CATALOG, server.workdir) == 4


@pytest.mark.timeout(3 * HUNG)
def test_sigterm_is_not_held_by_a_hung_encoder(
        server_factory: Callable[..., ServerProcess]) -> None:
    """SIGTERM while a large write waits for a stopped encoder: the write is ended
    when the grace is over (not acknowledged, not stored), the encoder killed, and the
    server exits 0 within moments (it used to wait for the encoder for ever)."""
    server = server_factory("--grace-seconds", "2")
    with retail_client(server.address) as client, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        encoder = stopped_encoder(server, client)
        try:
            pending = pool.submit(write_within, client, heavy("v-draining"), 60.0)
            time.sleep(2.0)  # (the write decoded, checked, and waiting for the encoder)
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            try:
                code = server.proc.wait(timeout=GENEROUS)
            except subprocess.TimeoutExpired:
                code = None
            assert code == 0, f"still running {time.monotonic() - started:.1f}s after SIGTERM"
            with pytest.raises((exceptions.ServiceUnavailable, exceptions.Cancelled)):
                pending.result(timeout=GENEROUS)  # (ended by the drain, unanswered)
            assert ended(encoder)
        finally:
            kill_if_left(encoder)
    assert count_events(server.store, CATALOG, server.workdir) == 1
