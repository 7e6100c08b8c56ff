"""What joining a writer key's event with the catalog may make: not a copy of a
product for each of a hundred thousand details before the result is found too
large (the server's peak memory read from /proc), nor an event whose console
message no gRPC client reads by default. Imports nothing of ours."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
import requests
from google.cloud import retail_v2

from .console import Console, rest
from .support import RPC_DEADLINE, ServerProcess, product_client, retail_client

CATALOG = "projects/footfall-interop/locations/global/catalogs/join"
DETAILS = 100_000  # about 700 KB sent, far within --max-event-bytes (2 MiB)


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_an_event_naming_a_product_many_times_is_left_unjoined_without_copying_it(
        server_factory: Callable[..., ServerProcess]) -> None:
    """Each of the 100,000 details held a copy of the 4 KB product before the
    joined event was found larger than --max-event-bytes: the server went from
    0.14 to 1.4 GB for one such write."""
    server = server_factory()
    products = product_client(server.address)
    products.create_product(
        parent=f"{CATALOG}/branches/0", product_id="tent",
        product=retail_v2.Product(title="Tent", categories=["Outdoor"],
                                  description="d" * 4_000),
        timeout=RPC_DEADLINE)
    event = {"eventType": "detail-page-view", "visitorId": "v",
             "productDetails": [{"product": {"id": "tent"}}] * DETAILS}
    before = _peak_rss_kib(server.proc.pid)
    answer = requests.post(f"http://{server.http_address}/v2/{CATALOG}/userEvents:write",
                           json=event, timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    grown_mib = (_peak_rss_kib(server.proc.pid) - before) / 1024
    # (the event itself, parsed from JSON and decoded, took 146 MiB at its peak)
    assert grown_mib < 400, f"the server's peak memory grew {grown_mib:.0f} MiB"
    stored = rest(server.http_address, f"{CATALOG}/userEvents").json()["userEvents"]
    assert [e.get("joined", False) for e in stored] == [False]


def test_an_event_joined_is_kept_only_if_a_client_can_read_it_back(
        server_factory: Callable[..., ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    """An event of 2 MiB less 10 bytes naming a product of the catalog, its title
    changed: joined, it was as large, and kept beside the event as received; the
    console's message of the two was 4,194,431 bytes, and a gRPC client, 4 MiB at
    most by default, read no page holding it. Now it is kept not joined."""
    stored = _write_an_event_just_under_the_limit(server_factory(), channels, "Tenx")
    assert not stored.get("joined", False) and "receivedEvent" not in stored


def _write_an_event_just_under_the_limit(
        server: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel],
        title: str) -> dict[str, Any]:
    """Writes an event of 2 MiB (--max-event-bytes) less 10 bytes naming the catalog's
    product "Tent" with `title` (as long as "Tent": the join changes the event, not its
    size, unless the title is the catalog's), and answers it as the console lists it."""
    products = product_client(server.address)
    tent = products.create_product(
        parent=f"{CATALOG}/branches/0", product_id="tent",
        product=retail_v2.Product(title="Tent", categories=["Outdoor"]),
        timeout=RPC_DEADLINE)
    named = retail_v2.Product.pb(tent)
    named.title = title
    event = retail_v2.UserEvent.pb(retail_v2.UserEvent(
        event_type="detail-page-view", visitor_id="v",
        event_time={"seconds": 1_700_000_000}))
    event.product_details.add().product.CopyFrom(named)
    limit = 2 * 1024 * 1024  # --max-event-bytes
    n = 0
    while event.ByteSize() < limit - 1_100:
        event.attributes[f"k{n}"].text.extend(["a" * 250] * 4)
        n += 1
    while event.ByteSize() < limit - 10:
        event.page_view_id += "x"
    retail_client(server.address).write_user_event(
        request=retail_v2.WriteUserEventRequest(
            parent=CATALOG, user_event=retail_v2.UserEvent.wrap(event)),
        timeout=RPC_DEADLINE)
    page = Console(channels(server)).call("ListUserEvents", parent=CATALOG, pageSize=1)
    [stored] = page["userEvents"]
    return cast(dict[str, Any], stored)


def test_an_event_the_join_leaves_as_it_was_is_joined_whatever_its_size(
        server_factory: Callable[..., ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    """The same event of 2 MiB less 10 bytes, naming the product as the catalog holds
    it: joined, it is the event as received, and only that one form is kept (a
    console message of it is 2 MiB), but the two were counted as kept, and it was
    left not joined though every product it names is in the catalog."""
    stored = _write_an_event_just_under_the_limit(server_factory(), channels, "Tent")
    assert stored.get("joined", False) and "receivedEvent" not in stored
