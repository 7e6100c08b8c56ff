"""A large event is made into its row on a decoder's thread, its deterministic
encoding by the encoder's process (server.retail.encoder); a small one on the loop,
encoded in place. The two paths are held to each other here: the same catalog, the
same products named, the same row (payload, dedup key, source, columns), the same
bytes kept to answer it, the same size, the same refusal, for events of every shape."""

from __future__ import annotations

import multiprocessing
import random
from dataclasses import replace
from typing import Any

import pytest
from footfall.retail.v2 import common_pb2, user_event_pb2

from server.clock import FixedClock
from server.config import Settings
from server.errors import InvalidArgument
from server.retail import encoder
from server.retail.user_event_service import UserEventService

PARENT = "projects/p/locations/global/catalogs/default_catalog"
NOW_NS = 1_700_000_000_123_456_789


@pytest.fixture(scope="module", autouse=True)
def _encoder_stopped_after() -> Any:
    yield
    encoder.close()


def random_event(rng: random.Random, attributes: int) -> user_event_pb2.UserEvent:
    """An event of random shape: keys of any script, text and number attributes,
    product details with and without prices, a time or none."""
    event = user_event_pb2.UserEvent(
        event_type=rng.choice(["home-page-view", "detail-page-view", "add-to-cart",
                               "purchase-complete", "search"]),
        visitor_id=f"v-{rng.randrange(10**6)}", session_id=f"s-{rng.randrange(99)}")
    if event.event_type == "search":
        event.search_query = "shoes"
    if event.event_type == "purchase-complete":
        event.purchase_transaction.revenue = 12.5
        event.purchase_transaction.currency_code = "EUR"
    for i in range(attributes):
        key = rng.choice(["k", "ключ", "鍵", "k_é"]) + str(i * 7919 % 100_003)
        if rng.random() < 0.5:
            event.attributes[key].text.extend(f"t{j}-{rng.random():.5f}"
                                              for j in range(rng.randint(1, 3)))
        else:
            event.attributes[key].numbers.extend(rng.uniform(-1e6, 1e6)
                                                 for _ in range(rng.randint(1, 3)))
    if event.event_type != "home-page-view" and rng.random() < 0.6:
        for i in range(rng.randint(1, 30)):
            detail = event.product_details.add()
            detail.product.id = f"sku-{rng.randrange(50)}-{i}"
            detail.quantity.value = rng.randint(1, 5)
            if rng.random() < 0.3:
                detail.product.price_info.CopyFrom(common_pb2.PriceInfo(
                    price=rng.uniform(1, 100), currency_code="EUR"))
    if rng.random() < 0.5:
        event.event_time.FromNanoseconds(NOW_NS - rng.randrange(10**12))
    event.user_info.user_agent = rng.choice(["", "Mozilla/5.0 (X11; Linux x86_64)"])
    return event


def made(event: user_event_pb2.UserEvent, large: bool, wait: bool,
         answered: bool) -> Any:
    """What `_made` makes of a copy of `event` (a service of its own each, so that an
    event without a time is stamped alike), the row as its columns are, and the event
    as it is left; or the refusal's message."""
    service = UserEventService(None, Settings(), FixedClock(NOW_NS),  # type: ignore[arg-type]
                               runner=None)  # type: ignore[arg-type]
    copy = user_event_pb2.UserEvent()
    copy.CopyFrom(event)
    try:
        name, ids, row, received, size, wire = service._made(PARENT, copy, "user_event", wait,
                                                             None, answered, None, large)
    except InvalidArgument as refusal:
        return str(refusal), [(v.field, v.description) for v in refusal.violations]
    kept = replace(row, received_us=0).as_params() if row is not None else None
    # (the event as left, and `wire` beside what the answer is made of then)
    return (name, ids, kept, received, size, copy.SerializeToString(deterministic=True),
            wire is None or wire == copy.SerializeToString())


@pytest.mark.parametrize("seed", range(16))
def test_a_large_events_row_is_the_one_the_loop_would_make(seed: int) -> None:
    rng = random.Random(seed)
    event = random_event(rng, rng.choice([0, 3, 300, 5000]))
    for wait in (True, False):
        for answered in (True, False):
            on_loop = made(event, False, wait, answered)
            off_loop = made(event, True, wait, answered)
            assert off_loop[:3] == on_loop[:3]  # (name, ids, row; or the refusal)
            if len(on_loop) > 2:
                name, ids, row, received, size, left, _ = on_loop
                # The loop's path keeps no encoding where it needs none (a pixel's
                # event naming products, encoded by the writer when it joins it): the
                # large path's is that one.
                assert off_loop[3] == (received if received is not None or not ids
                                       else left)
                assert off_loop[4:] == (size, left, True)


def test_a_refused_large_event_is_told_what_the_loop_would_tell() -> None:
    event = random_event(random.Random(1), 50)
    event.attributes["bad"].text.append("")
    event.attributes["also bad"].numbers.append(float("nan"))
    event.visitor_id = ""
    refusal = made(event, False, True, True)
    assert isinstance(refusal[0], str) and refusal[1]
    assert made(event, True, True, True) == refusal


def test_the_encoders_bytes_are_the_deterministic_serialization() -> None:
    rng = random.Random(7)
    for attributes in (0, 1, 40, 20_000):
        event = random_event(rng, attributes)
        assert encoder.deterministic(event) == event.SerializeToString(deterministic=True)


def test_a_large_event_written_after_the_last_server_stopped_starts_no_worker() -> None:
    # A call its grace left running goes on after stop closed the encoder: its large
    # event started a worker process that nobody closed (until the process ended).
    event = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id="v")
    expected = event.SerializeToString(deterministic=True)
    encoder.open()
    encoder.open()  # (two servers of one process)
    try:
        assert encoder.encodings(event)[1] == expected
        encoder.close()  # the first stops: the other's worker goes on
        assert encoder.encodings(event)[1] == expected
        assert encoder._worker is not None  # noqa: SLF001
    finally:
        encoder.close()
    assert encoder._worker is None  # noqa: SLF001
    assert encoder.encodings(event) == (event.SerializeToString(), expected)
    assert encoder._worker is None  # noqa: SLF001
    assert not [child for child in multiprocessing.active_children()
                if child.name.startswith("SpawnProcess")]
