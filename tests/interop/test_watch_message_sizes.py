"""A gRPC client with its default message limit (4 MiB) reads every watch of
batches, however large the events a writer key sent: a batch is sent as several
messages rather than one past the limit. Imports nothing of ours."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.cloud import retail_v2

from .console import Console
from .support import RPC_DEADLINE, ServerProcess, retail_client

CATALOG = "projects/footfall-interop/locations/global/catalogs/large-batches"
EVENTS = 4


def test_a_watch_of_batches_of_large_events_stays_within_a_clients_message_limit(
        server_factory: Callable[..., ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    """Four events of 1.5 MB: the page a watch from the first row reads was one
    message of 6 MB, and the client's watch ended RESOURCE_EXHAUSTED ("Received
    message larger than max"), as it did each time it came back."""
    server = server_factory()
    writer = retail_client(server.address)
    attributes = {f"a{n}": retail_v2.CustomAttribute(text=["x" * 250] * 4)
                  for n in range(1_500)}  # about 1.5 MB
    for n in range(EVENTS):
        writer.write_user_event(request=retail_v2.WriteUserEventRequest(
            parent=CATALOG, user_event=retail_v2.UserEvent(
                event_type="home-page-view", visitor_id=f"v{n}", attributes=attributes)),
            timeout=RPC_DEADLINE)
    watch = Console(channels(server)).watch("WatchUserEventBatches", parent=CATALOG,
                                            afterId="0")
    try:
        seen: list[str] = []
        while len(seen) < EVENTS:
            seen += [e["userEvent"]["visitorId"] for e in next(watch)["userEvents"]]
        assert seen == [f"v{n}" for n in range(EVENTS)]
    finally:
        watch.cancel()
