"""An event over --max-event-bytes is refused naming the field that holds the most of
it (the deepest that holds most of the event) and the server's flag: told only
`client_event: is 3000009 bytes; at most 2097152`, a caller knew neither what to
shorten nor that the limit is the server's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from footfall.retail.v2 import user_event_pb2
from footfall.talent.v4 import event_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from server.policy.limits import event_size_violation, json_size_violation, largest_field

LIMIT = 2_097_152
FLAG = f"at most {LIMIT} (the server's --max-event-bytes)"


def details(count: int) -> list[user_event_pb2.ProductDetail]:
    return [user_event_pb2.ProductDetail(product={"id": f"p{n}"}) for n in range(count)]


def many_lists() -> user_event_pb2.UserEvent:
    event = user_event_pb2.UserEvent(event_type="detail-page-view", visitor_id="v",
                                     product_details=details(150_000),
                                     page_categories=["c" * 30] * 40_000)
    event.attributes["a"].text.extend(["t" * 20] * 20_000)
    return event


# (an event, the field its refusal names)
OVER: list[tuple[Message, str]] = [
    (event_pb2.ClientEvent(request_id="r", event_notes="n" * 3_000_000), "event_notes"),
    (event_pb2.ClientEvent(request_id="r", job_event=event_pb2.JobEvent(
        jobs=["projects/p/tenants/t/jobs/" + "j" * 1000] * 2100)), "job_event.jobs"),
    (user_event_pb2.UserEvent(event_type="search", search_query="q" * 3_000_000,
                              product_details=details(1000)), "search_query"),
    (user_event_pb2.UserEvent(event_type="detail-page-view", product_details=[
        user_event_pb2.ProductDetail(product={"id": "p", "description": "d" * 3_000_000})],
        user_info={"user_agent": "u" * 1_000_000}),
     "product_details[0].product.description"),
    (user_event_pb2.UserEvent(event_type="detail-page-view", product_details=details(300_000),
                              page_categories=["c"] * 100), "product_details"),
    (many_lists(), "product_details"),
]


def field_bytes(event: Message, path: str) -> int:
    """The bytes `path`'s field takes in its message, serialized: measured with it
    cleared."""
    parent, name = event, path
    *steps, name = path.replace("[0]", "").split(".")
    for step in steps:
        parent = getattr(parent, step)
        parent = parent[0] if not isinstance(parent, Message) else parent
    before = parent.ByteSize()
    parent.ClearField(name)
    return before - parent.ByteSize()


@pytest.mark.parametrize(("event", "path"), OVER)
def test_a_refusal_names_the_largest_field_and_its_bytes(event: Message, path: str) -> None:
    size = event.ByteSize()
    refused = event_size_violation(event, "e", LIMIT)
    assert refused is not None
    held = field_bytes(type(event).FromString(event.SerializeToString()), path)
    assert refused.description == f"is {size} bytes ({held} of them in {path}); {FLAG}"


@pytest.mark.parametrize(("event", "path"), OVER[:4])
def test_so_does_a_refusal_of_its_json(event: Message, path: str) -> None:
    document: dict[str, Any] = json.loads(json_format.MessageToJson(event))
    refused = json_size_violation(event.DESCRIPTOR, document, "e", LIMIT)
    assert refused is not None
    assert refused.description.startswith("is at least ")
    assert f" of them in {path}); {FLAG}" in refused.description


def test_under_the_limit_nothing_is_looked_for() -> None:
    assert event_size_violation(event_pb2.ClientEvent(event_notes="n" * 100), "e", LIMIT) is None


def test_a_long_list_is_measured_whole_not_element_by_element(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Of 400,000 product details, their ByteSize one by one took 0.3 s, a copy of the
    event 0.16 s: each is never measured apart."""
    event = user_event_pb2.UserEvent(event_type="x", product_details=details(50_000))
    measured: list[str] = []
    real = user_event_pb2.ProductDetail.ByteSize

    def counted(self: Message) -> int:
        measured.append("detail")
        return real(self)

    monkeypatch.setattr(user_event_pb2.ProductDetail, "ByteSize", counted, raising=False)
    assert largest_field(event, event.ByteSize())[0] == "product_details"  # type: ignore[index]
    assert measured == []


def test_the_readme_quotes_the_refusals_as_they_are_made() -> None:
    readme = re.sub(r"\s+", " ", (Path(__file__).parents[2] / "README.md").read_text())
    grpc = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id="v")
    grpc.attributes["blob"].text.extend(["x" * 1024] * 10240)
    rest = {"requestId": "r1", "eventId": "e1", "createTime": "2026-12-06T10:00:00Z",
            "jobEvent": {"type": "VIEW", "jobs": ["projects/p/tenants/t/jobs/j1"]},
            "eventNotes": "n" * 3_000_000}
    for path, refused in (
            ("user_event", event_size_violation(grpc, "user_event", LIMIT)),
            ("client_event", json_size_violation(event_pb2.ClientEvent.DESCRIPTOR, rest,
                                                 "client_event", LIMIT))):
        assert refused is not None
        assert f"`{path}: {refused.description}`" in readme
