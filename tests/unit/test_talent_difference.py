"""first_difference: the field path an ALREADY_EXISTS for a reused event id names."""

from __future__ import annotations

from typing import Any

import pytest
from footfall.retail.v2 import user_event_pb2
from footfall.talent.v4 import event_pb2

from server.talent.difference import first_difference


def client_event() -> event_pb2.ClientEvent:
    event = event_pb2.ClientEvent(event_id="e-1", request_id="r-1",
                                  job_event=event_pb2.JobEvent(type=1, jobs=["a", "b"]))
    event.create_time.FromSeconds(1_716_213_787)
    return event


def user_event() -> user_event_pb2.UserEvent:
    event = user_event_pb2.UserEvent(event_type="add-to-cart", visitor_id="v-1")
    event.attributes["color"].text.append("red")
    event.product_details.add().product.id = "sku-1"
    return event


def _nanos(e: Any) -> None:
    e.create_time.nanos = 1


@pytest.mark.parametrize(("make", "path", "change", "expected"), [
    (client_event, "client_event", lambda e: None, None),
    (client_event, "client_event", lambda e: setattr(e, "request_id", "r-2"),
     "client_event.request_id"),
    (client_event, "client_event", _nanos, "client_event.create_time"),
    (client_event, "client_event", lambda e: e.ClearField("create_time"),
     "client_event.create_time"),
    (client_event, "client_event", lambda e: e.job_event.jobs.__setitem__(1, "c"),
     "client_event.job_event.jobs[1]"),
    (client_event, "client_event", lambda e: e.job_event.jobs.append("c"),
     "client_event.job_event.jobs"),
    (client_event, "client_event",  # the first in declaration order: request_id (1)
     lambda e: (setattr(e, "event_notes", "n"), setattr(e, "request_id", "r-2")),
     "client_event.request_id"),
    (user_event, "user_event", lambda e: e.attributes["color"].text.__setitem__(0, "blue"),
     "user_event.attributes['color']"),
    (user_event, "user_event", lambda e: e.attributes["size"].text.append("9"),
     "user_event.attributes['size']"),
    (user_event, "user_event",
     lambda e: setattr(e.product_details[0].product, "id", "sku-2"),
     "user_event.product_details[0].product.id"),
])
def test_names_the_first_field_that_differs(make: Any, path: str, change: Any,
                                            expected: str | None) -> None:
    stored, sent = make(), make()
    change(sent)
    assert first_difference(stored, sent, path) == expected


def test_fields_the_type_does_not_know_name_their_message() -> None:
    stored, sent = client_event(), client_event()
    sent.job_event.MergeFromString(b"\x1a\x03p-1")  # field 3 (v4beta1's profile)
    assert first_difference(stored, sent, "client_event") == "client_event.job_event"
