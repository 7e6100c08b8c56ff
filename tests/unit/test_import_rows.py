"""An import's worker hands over each valid event as a plain tuple (GoodEvent), not
as a row: the row the job's thread makes of it is the row EventRow.from_event makes
of the event, field for field, and an event too big is refused with the message
every other path gives."""

from __future__ import annotations

import pickle

import pytest
from footfall.retail.v2 import user_event_pb2

from server.policy.limits import event_size_violation
from server.retail.bulk_import import Item
from server.retail.import_events import EventCheck, good_event, unjoined_row
from server.store import EventRow

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
NOW_S = 1_714_564_800
CAME = (3, 1_714_564_800_123_456)  # (transport, received_us)


def events() -> list[user_event_pb2.UserEvent]:
    plain = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id="v1",
                                      event_time={"seconds": NOW_S - 60, "nanos": 123_456_789})
    with_user = user_event_pb2.UserEvent(
        event_type="detail-page-view", visitor_id="v2", event_time={"seconds": NOW_S - 1},
        user_info={"user_id": "u2", "ip_address": "198.51.100.7"},
        product_details=[{"product": {"id": "p1"}, "quantity": {"value": 2}}],
        attributes={"k": {"text": ["t"]}})
    cart = user_event_pb2.UserEvent(
        event_type="add-to-cart", visitor_id="v3", event_time={"seconds": NOW_S, "nanos": 7},
        user_info={"user_id": "u3"},
        product_details=[{"product": {"id": "p1"}}, {"product": {"id": "p2"}},
                         {"product": {"id": "p1"}}])
    return [plain, with_user, cart]


@pytest.mark.parametrize("event", events(), ids=lambda e: e.event_type)
def test_a_good_events_row_is_the_row_made_from_the_event(event: user_event_pb2.UserEvent
                                                          ) -> None:
    checked = EventCheck(CATALOG, False, 20_000, NOW_S)(Item("line 1", event, True))
    assert isinstance(checked, Item)
    good = pickle.loads(pickle.dumps(checked.message))  # as it crosses from a worker
    assert type(good) is tuple
    row = unjoined_row(good, CATALOG, CAME)
    expected = EventRow.from_event(CATALOG, event, joined=not event.product_details)
    expected.transport, expected.received_us = CAME
    assert row.as_params() == expected.as_params()
    assert (row.payload, row.counts) == (expected.payload, expected.counts)
    assert good == good_event(CATALOG, event, expected.payload)


def test_an_event_too_big_is_refused_as_on_every_path() -> None:
    event = events()[1]
    limit = event.ByteSize() - 1
    refused = EventCheck(CATALOG, False, limit, NOW_S)(Item("gs://b/f.json line 4", event, True))
    violation = event_size_violation(event, "user_event", limit)
    assert violation is not None
    assert refused == f"gs://b/f.json line 4: user_event: {violation.description}"
    assert isinstance(EventCheck(CATALOG, False, limit + 1, NOW_S)(
        Item("gs://b/f.json line 4", event, True)), Item)
