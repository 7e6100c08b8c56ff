"""A large event's deterministic encoding (what its row stores, and its dedup key
hashes) is made by a process of the server's own (server.retail.encoder), so that
the loop, which serves every call, answers meanwhile; a large event is stored all
the same when that process dies. Through the official client, on a `footfall serve`."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
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

from .support import ServerProcess, count_events, retail_client, wait_until

CATALOG = "projects/heavy/locations/global/catalogs/default_catalog"
# Of 30,000 attributes, about 0.5 MB: past LARGE_REQUEST_BYTES (64 KiB), decoded,
# checked and encoded off the loop.
ATTRIBUTES = 30_000
# However busy the machine, a health check of a loop that is free answers well within
# this; one behind the large write's encoding would wait for ever (its worker stopped).
GENEROUS = 20.0


def heavy(visitor: str, seconds: int | None = None) -> retail_v2.UserEvent:
    event = retail_v2.UserEvent(
        event_type="home-page-view", visitor_id=visitor,
        attributes={f"key-{i}": retail_v2.CustomAttribute(text=[f"value {i}"])
                    for i in range(ATTRIBUTES)})
    if seconds is not None:
        event.event_time = timestamp_pb2.Timestamp(seconds=seconds)
    return event


def workers(pid: int) -> list[int]:
    """The worker processes `pid` spawned that still run (not multiprocessing's
    resource tracker, which the first starts beside it)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:  # (ended meanwhile)
                continue
            if b"spawn_main" in command:
                found.append(int(child))
    return found


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
