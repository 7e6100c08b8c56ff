"""CollectUserEvent's prebuilt_rule: this server applies none, and says so.

Google's "ga4_bq" turns a row of the GA4 BigQuery export into a UserEvent, but how
a row's fields map was not found published, so the rule is refused, not guessed.
"""

from __future__ import annotations

import json

import pytest
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2

from server.errors import FieldViolation
from server.retail.collect import decode_collect_request

PARENT = "projects/p/locations/global/catalogs/default_catalog"
# One row of a GA4 BigQuery export (its schema: support.google.com/analytics/answer/7029846).
GA4_ROW = {
    "event_date": "20240520",
    "event_timestamp": 1716213787123456,
    "event_name": "view_item",
    "user_pseudo_id": "1234567.7654321",
    "items": [{"item_id": "sku-1", "quantity": 1}],
}
EVENT = {"eventType": "home-page-view", "visitorId": "v1"}


def decode(**fields: object) -> tuple[user_event_pb2.UserEvent, dict[str, str]]:
    request = user_event_service_pb2.CollectUserEventRequest(parent=PARENT, **fields)
    event = user_event_pb2.UserEvent()
    violations: list[FieldViolation] = decode_collect_request(request, event)
    return event, {v.field: v.description for v in violations}


def test_a_ga4_row_for_ga4_bq_is_refused_naming_the_rule_and_the_row() -> None:
    event, found = decode(raw_json=json.dumps(GA4_ROW), prebuilt_rule="ga4_bq")
    assert set(found) == {"prebuilt_rule", "raw_json"}
    assert "'ga4_bq'" in found["prebuilt_rule"]
    assert "GA4 BigQuery export" in found["prebuilt_rule"]
    assert "not implemented" in found["prebuilt_rule"]
    # what to send instead: a raw_json with the rule set is refused too
    assert "raw_json without prebuilt_rule" in found["prebuilt_rule"]
    # the row is not judged field by field as a UserEvent
    assert found["raw_json"] == ("is not a UserEvent, and this server cannot apply "
                                 "prebuilt_rule 'ga4_bq' to convert it")
    assert event == user_event_pb2.UserEvent()


def test_another_rule_is_unknown_and_named() -> None:
    _, found = decode(raw_json=json.dumps(GA4_ROW), prebuilt_rule="ga360_bq")
    assert set(found) == {"prebuilt_rule", "raw_json"}
    assert found["prebuilt_rule"].startswith("unknown conversion rule 'ga360_bq'")
    assert "'ga360_bq' to convert it" in found["raw_json"]


def test_a_user_event_sent_with_a_rule_is_still_read() -> None:
    # The rule may be the mistake: the event itself is decoded (and then checked).
    event, found = decode(raw_json=json.dumps(EVENT), prebuilt_rule="ga4_bq")
    assert set(found) == {"prebuilt_rule"}
    assert event.visitor_id == "v1"


@pytest.mark.parametrize(("raw_json", "says"), [
    pytest.param('{"event_name": "view_item",', "not valid JSON: unexpected end of data",
                 id="truncated"),
    pytest.param("[1, 2]", "must be a JSON object", id="a-list"),
])
def test_raw_json_that_is_no_json_object_keeps_its_own_error(raw_json: str, says: str) -> None:
    _, found = decode(raw_json=raw_json, prebuilt_rule="ga4_bq")
    assert set(found) == {"prebuilt_rule", "raw_json"}
    assert says in found["raw_json"]


def test_request_limits_are_reported_with_the_rule() -> None:
    _, found = decode(raw_json=json.dumps(GA4_ROW), prebuilt_rule="ga4_bq", uri="u" * 5_001)
    assert set(found) == {"prebuilt_rule", "raw_json", "uri"}
