"""Transcoding rules on their own (no server): path templates, query parameters,
bodies, and what is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from google.api import http_pb2

import server.app  # noqa: F401  (registers the served contracts in the default pool)
from server.errors import InvalidArgument
from server.http import transcode
from server.http.routes import Route, Router, derive_routes
from server.http.templates import PathTemplate, TemplateError

USER_EVENTS = "google.cloud.retail.v2.UserEventService"


class AnyServicer:
    def __getattr__(self, name: str) -> Callable[[object, object], None]:
        return lambda request, context: None


def made_up_route(rpc: str, verb: str, path: str, body: str = "") -> Route:
    """A route for `rpc` from a rule made up here (tests only)."""
    rule = http_pb2.HttpRule(selector=f"{USER_EVENTS}.{rpc}", body=body, **{verb: path})
    router = Router(derive_routes({USER_EVENTS: AnyServicer()}, [rule]))
    found = router.match(verb.upper(), PathTemplate.parse(path).example())
    assert found is not None
    return found[0]


WRITE_BY_QUERY = made_up_route("WriteUserEvent", "get", "/test/{parent=**}:write")
REJOIN_BY_QUERY = made_up_route("RejoinUserEvents", "get", "/test/{parent=**}:rejoin")
IMPORT_WHOLE_BODY = made_up_route("ImportUserEvents", "post", "/test/{parent=**}:import", "*")
IMPORT_BODY_FIELD = made_up_route("ImportUserEvents", "post", "/test/{parent=**}:import",
                                  "input_config")


def build(route: Route, query: list[tuple[str, str]], body: bytes = b"",
          path: dict[str, str] | None = None) -> object:
    return transcode.build_request(route, path or {"parent": "p"}, query, body)


def violations(route: Route, query: list[tuple[str, str]], body: bytes = b"") -> dict[str, str]:
    with pytest.raises(InvalidArgument) as raised:
        build(route, query, body)
    return {v.field: v.description for v in raised.value.violations}


# -- templates -------------------------------------------------------------------


@pytest.mark.parametrize(("template", "path", "expected"), [
    ("/v2/{parent=projects/*/catalogs/*}/userEvents:write",
     "/v2/projects/p/catalogs/c/userEvents:write", {"parent": "projects/p/catalogs/c"}),
    ("/v2/{parent=projects/*/catalogs/*}/userEvents:write",
     "/v2/projects/p/catalogs/c/userEvents:purge", None),
    ("/v2/{name=projects/*/products/**}", "/v2/projects/p/products/a/b/c",
     {"name": "projects/p/products/a/b/c"}),
    ("/v2/{name=projects/*/products/**}:set", "/v2/projects/p/products/a%2Fb:set",
     {"name": "projects/p/products/a%2Fb"}),  # multi-segment: %2F stays
    ("/v2/{parent=projects/*/catalogs/*}/userEvents:write",
     "/v2/projects/p/catalogs/a%2fb/userEvents:write",
     {"parent": "projects/p/catalogs/a%2Fb"}),  # %2f is %2F: one spelling, one catalog
    ("/v1/{id}", "/v1/a%2Fb%20c", {"id": "a/b c"}),  # one segment: all decoded
    ("/v1/{id}", "/v1/a/b", None),
    ("/v1/{product.name=items/*}/x", "/v1/items/%C3%BC/x", {"product.name": "items/ü"}),
])
def test_templates_match_and_decode(template: str, path: str,
                                    expected: dict[str, str] | None) -> None:
    assert PathTemplate.parse(template).match(path) == expected


@pytest.mark.parametrize("template", ["v1/x", "/v1/{a", "/v1/a}", "/v1/{a b}", "/v1/x:y:z",
                                      "/v1//x", "/v1/x*y"])
def test_templates_outside_the_grammar_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        PathTemplate.parse(template)


# -- query parameters ----------------------------------------------------------------


def test_query_takes_camel_and_snake_case_nested_and_repeated() -> None:
    request = build(WRITE_BY_QUERY, [
        ("userEvent.eventType", "search"), ("user_event.visitor_id", "v1"),
        ("userEvent.userInfo.userId", "u1"), ("user_event.page_categories", "a"),
        ("userEvent.pageCategories", "b"), ("writeAsync", "true"),
        ("userEvent.eventTime", "2024-05-01T12:00:00Z"), ("$alt", "json"), ("key", "k"),
    ])
    event = request.user_event  # type: ignore[attr-defined]
    assert (event.event_type, event.visitor_id, event.user_info.user_id) == \
        ("search", "v1", "u1")
    assert list(event.page_categories) == ["a", "b"]
    assert request.write_async is True  # type: ignore[attr-defined]
    assert event.event_time.seconds == 1714564800
    assert request.parent == "p"  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["JOINED_EVENTS", "1"])
def test_query_takes_enums_by_name_or_number(value: str) -> None:
    request = build(REJOIN_BY_QUERY, [("userEventRejoinScope", value)])
    assert request.user_event_rejoin_scope == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["1e0", "1.0", "-0", "1"])
def test_query_takes_numbers_as_json_writes_them(value: str) -> None:
    request = build(WRITE_BY_QUERY, [("userEvent.offset", value), ("writeAsync", "true")])
    assert request.user_event.offset == int(float(value))  # type: ignore[attr-defined]


@pytest.mark.parametrize(("query", "field", "why"), [
    ([("nope", "1")], "nope", "unknown query parameter"),
    # a pixel's userEvent={"searchQuery":"socks&shoes"} sent as is: told what cut it
    ([('shoes"}', "")], 'shoes"}', "the rest of a JSON value cut at an '&' left as is: "
                                   "URL-encode the value whole"),
    ([("userEvent.nope", "1")], "userEvent.nope", "has no field 'nope'"),
    ([("userEvent", "x")], "userEvent", "is a message"),
    ([("userEvent.productDetails.quantity", "1")], "userEvent.productDetails.quantity",
     "is repeated"),
    ([("userEvent.attributes", "x")], "userEvent.attributes", "is a message"),
    ([("writeAsync", "maybe")], "write_async",
     "cannot take 'maybe': must be one of true, false, 1, 0"),
    ([("userEvent.eventType", "a"), ("user_event.event_type", "b")], "user_event.event_type",
     "given 2 times"),
    ([("parent", "q")], "parent", "bound by the URL path"),
    ([("userEvent.eventTime", "yesterday")], "user_event.event_time", "cannot take"),
    ([("userEvent.offset", "ten")], "user_event.offset",
     "cannot take 'ten': must be a whole number"),
    ([("userEvent.purchaseTransaction.revenue", "lots")],
     "user_event.purchase_transaction.revenue", "cannot take 'lots': must be a number"),
    # Python's int() and float() read these; a JSON number is ASCII digits.
    ([("userEvent.offset", "1_0")], "user_event.offset",
     "cannot take '1_0': must be a whole number in ASCII digits (e.g. 10)"),
    ([("userEvent.offset", "\u0661")], "user_event.offset",  # ARABIC-INDIC DIGIT ONE
     "cannot take '\u0661': must be a whole number in ASCII digits"),
    ([("userEvent.offset", " 5")], "user_event.offset", "in ASCII digits"),
    ([("userEvent.offset", "\uff11")], "user_event.offset", "in ASCII digits"),  # FULLWIDTH ONE
    ([("userEvent.offset", "9" * 5000)], "user_event.offset", "out of range for an int32"),
    ([("userEvent.purchaseTransaction.revenue", "1_0.5")],
     "user_event.purchase_transaction.revenue", "must be a number in ASCII digits"),
    ([("userEvent.purchaseTransaction.revenue", "inf")],
     "user_event.purchase_transaction.revenue", "must be a number in ASCII digits"),
    # A whole number past the type's range is one: it is out of range.
    ([("userEvent.offset", "99999999999")], "user_event.offset",
     "cannot take '99999999999': out of range for an int32 (-2147483648 to 2147483647)"),
    ([("userEvent.offset", "1e10")], "user_event.offset", "out of range for an int32"),
    ([("userEvent.offset", "1.5")], "user_event.offset",
     "cannot take '1.5': must be a whole number"),
    ([("userEvent.purchaseTransaction.revenue", "1e39")],
     "user_event.purchase_transaction.revenue", "out of range for a float"),
])
def test_bad_query_parameters_are_invalid_argument(query: list[tuple[str, str]], field: str,
                                                   why: str) -> None:
    found = violations(WRITE_BY_QUERY, query)
    assert why in found[field], found


@pytest.mark.parametrize(("value", "expected"), [
    ("-2147483648", -2147483648), ("2147483647", 2147483647), ("1e2", 100), ("10.0", 10)])
def test_query_takes_whole_numbers_as_proto3_json_writes_them(value: str, expected: int
                                                              ) -> None:
    request: Any = build(WRITE_BY_QUERY, [("userEvent.offset", value)])
    assert request.user_event.offset == expected


@pytest.mark.parametrize(("value", "why"), [
    ("\u0661", "not a value of google.cloud.retail.v2.RejoinUserEventsRequest."
                "UserEventRejoinScope (a name, or its number in ASCII digits)"),
    ("1_0", "not a value of"),
    # the names it takes are said (json_format's words named none)
    ("JOINED", "cannot take 'JOINED': not a value of google.cloud.retail.v2."
                "RejoinUserEventsRequest.UserEventRejoinScope (a name, or its number in ASCII "
                "digits); its names: JOINED_EVENTS, UNJOINED_EVENTS"),
    # and the name it looks like
    ("unjoined-events", "its names: JOINED_EVENTS, UNJOINED_EVENTS; did you mean "
                        "'UNJOINED_EVENTS'?"),
    ("99999999999", "out of range for an enum number"),
    # (upb reads a name up to a NUL: this was taken as JOINED_EVENTS)
    ("JOINED_EVENTS\x00junk", "not a value of"),
])
def test_enum_numbers_in_the_query_are_ascii_and_in_range(value: str, why: str) -> None:
    found = violations(REJOIN_BY_QUERY, [("userEventRejoinScope", value)])
    assert why in found["user_event_rejoin_scope"], found


def test_every_bad_parameter_is_reported_together() -> None:
    found = violations(REJOIN_BY_QUERY, [("userEventRejoinScope", "SOMETIMES"), ("x", "1")])
    assert set(found) == {"user_event_rejoin_scope", "x"}


# -- bodies ----------------------------------------------------------------------------


WRITE_BODY_FIELD = made_up_route("WriteUserEvent", "post", "/test/{parent=**}:write",
                                  "user_event")


@pytest.mark.parametrize("key", ["userEvent", "user_event"])
def test_a_body_wrapped_in_its_field_is_told_it_is_the_field_itself(key: str) -> None:
    # (told only that a UserEvent has no field named userEvent)
    body = json.dumps({key: {"eventType": "home-page-view", "visitorId": "v"}}).encode()
    assert violations(WRITE_BODY_FIELD, [], body) == {
        "user_event": "Invalid JSON payload received: the body is the UserEvent itself, not "
                      f"an object holding it: send what {key!r} holds"}
    # the likeliest slip in an attribute is shown the form of one
    body = json.dumps({"eventType": "home-page-view", "visitorId": "v",
                       "attributes": {"color": "red"}}).encode()
    assert violations(WRITE_BODY_FIELD, [], body) == {
        "user_event.attributes['color']": "Invalid JSON payload received: expected a JSON "
        "object (a CustomAttribute), got a text, 'red', e.g. {\"text\": [\"red\"]} or "
        "{\"numbers\": [1.5]}"}
    # a body of several fields is read as sent (its unknown one is named)
    body = json.dumps({key: {}, "visitorId": "v"}).encode()
    assert "has no field named" in violations(WRITE_BODY_FIELD, [], body)["user_event"]


def talent_beta_route() -> Route:
    """v4beta1's CreateClientEvent as its annotation binds it: the body is the request."""
    service = "google.cloud.talent.v4beta1.EventService"
    router = Router(derive_routes({service: AnyServicer()}, []))
    found = router.match("POST", "/v4beta1/projects/p/tenants/t/clientEvents")
    assert found is not None
    return found[0]


@pytest.mark.parametrize("event", [
    {"eventId": "e1", "createTime": "2026-01-01T00:00:00Z",
     "jobEvent": {"type": "VIEW", "jobs": ["projects/p/tenants/t/jobs/j"]}},
    {"event_id": "e1", "parent": "projects/p/tenants/t"},  # (parent: the request's own)
    # (profileEvent: a field v4beta1's ClientEvent had, which its servicer refuses by name)
    {"eventId": "e1", "createTime": "2026-01-01T00:00:00Z",
     "profileEvent": {"type": "VIEW", "profiles": ["projects/p/tenants/t/profiles/x"]}},
])
def test_a_whole_body_holding_its_fields_fields_is_told_where_they_belong(
        event: dict[str, Any]) -> None:
    # Talent v4's body is the ClientEvent, v4beta1's the request: v4's body sent to
    # v4beta1 was told only "unknown name 'eventId' in ...CreateClientEventRequest",
    # once for each of its fields
    found = violations(talent_beta_route(), [], json.dumps(event).encode())
    assert list(found) == ["client_event"], found
    assert found["client_event"].startswith(
        f"Invalid JSON payload received: {repr(next(iter(event)))}")
    assert found["client_event"].endswith(
        "of the ClientEvent, which this body holds under 'clientEvent', not of the "
        "CreateClientEventRequest itself: send {\"clientEvent\": {...}}")
    # the same event under its field is read
    held = {"clientEvent": {key: value for key, value in event.items() if key != "parent"}}
    request = build(talent_beta_route(), [], json.dumps(held).encode(),
                    path={"parent": "projects/p/tenants/t"})
    assert request.client_event.event_id == "e1"  # type: ignore[attr-defined]


def test_whole_body_request_in_either_naming() -> None:
    body = (b'{"inputConfig": {"user_event_inline_source": {"userEvents": '
            b'[{"eventType": "home-page-view", "visitorId": "v"}]}}}')
    request = build(IMPORT_WHOLE_BODY, [("$alt", "json;enum-encoding=int")], body)
    events = request.input_config.user_event_inline_source.user_events  # type: ignore[attr-defined]
    assert [e.visitor_id for e in events] == ["v"]


@pytest.mark.parametrize(("body", "query", "fields"), [
    (b'{"inputConfig": {}, "nope": 1}', [], {"nope"}),
    (b'{"inputConfig": {"nope": 1}}', [], {"input_config"}),
    (b'{"inputConfig": {}, "input_config": {}}', [], {"input_config"}),
    (b"[1, 2]", [], {"body"}),
    (b"{oops", [], {"body"}),
    # a key given twice (orjson keeps the last silently: the first was dropped)
    (b'{"inputConfig": {}, "inputConfig": {}}', [], {"body"}),
    (b'{"inputConfig": {"userEventInlineSource": {"userEvents": [{"eventType": "a", '
     b'"visitorId" : "v", "visitorId": "w"}]}}}', [], {"body"}),
    (b"{}", [("errorsConfig.gcsPrefix", "gs://x")], {"errorsConfig.gcsPrefix"}),
])
def test_bad_bodies_are_invalid_argument(body: bytes, query: list[tuple[str, str]],
                                         fields: set[str]) -> None:
    assert set(violations(IMPORT_WHOLE_BODY, query, body)) == fields


def test_a_body_nesting_past_the_stack_is_invalid_argument() -> None:
    """json_format's message for an object where a list goes takes the repr of the
    rest, which raised RecursionError a thousand levels down: INTERNAL, and a
    traceback of thousands of lines in the log for each such request."""
    depth = 1000
    product = b'{"id": "x", "variants": ' * depth + b'{"id": "y"}' + b"}" * depth
    body = (b'{"inputConfig": {"userEventInlineSource": {"userEvents": [{"eventType": "x", '
            b'"visitorId": "v", "productDetails": [{"product": ' + product + b"}]}]}}}")
    assert set(violations(IMPORT_WHOLE_BODY, [], body)) == {"input_config"}


def test_the_body_names_a_path_bound_field_only_with_the_paths_value() -> None:
    request = build(IMPORT_WHOLE_BODY, [], b'{"parent": "p"}', {"parent": "p"})
    assert request.parent == "p"  # type: ignore[attr-defined]
    assert violations(IMPORT_WHOLE_BODY, [], b'{"parent": "q"}') == {
        "parent": "is bound by the URL path to 'p'; the body gives 'q': leave it out or "
                  "give the same value"}


def test_a_named_body_names_a_path_bound_field_only_with_the_paths_value() -> None:
    """google/api/http.proto: the path template's fields come from the path and the
    body carries the rest, so UpdateProduct's URL names the product it changes; a
    body naming another was dropped without a word."""
    router = Router(derive_routes({"google.cloud.retail.v2.ProductService": AnyServicer()}))
    name = "projects/p/locations/global/catalogs/c/branches/0/products/a/b"
    found = router.match("PATCH", f"/v2/{name}")
    assert found is not None
    body = json.dumps({"name": name, "title": "T"}).encode()
    request: Any = transcode.build_request(found[0], found[1], [("updateMask", "title")], body)
    assert (request.product.name, request.product.title) == (name, "T")
    assert list(request.update_mask.paths) == ["title"]
    body = b'{"name": "projects/p/locations/global/catalogs/c/branches/0/products/x", "title": "T"}'
    with pytest.raises(InvalidArgument) as raised:
        transcode.build_request(found[0], found[1], [("updateMask", "title")], body)
    assert [v.field for v in raised.value.violations] == ["product.name"]


@pytest.mark.parametrize(("query", "expected"), [
    ({}, transcode.Output(False, True, False)),
    ({"$alt": "json;enum-encoding=int"}, transcode.Output(True, True, True)),
    ({"alt": "json", "prettyPrint": "false"}, transcode.Output(False, False, True)),
])
def test_output_follows_the_system_parameters(query: dict[str, str],
                                              expected: transcode.Output) -> None:
    assert transcode.output_of(query) == expected


# -- numbers given as JSON strings -----------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("+5", 5), ("5.", 5), ("50e-1", 5)])
def test_query_takes_what_a_json_string_may_hold_for_a_number(value: str, expected: int) -> None:
    """One reading for both (protojson.NUMBER_TEXT): a sign, a point, an exponent."""
    request: Any = build(WRITE_BY_QUERY, [("userEvent.offset", value)])
    assert request.user_event.offset == expected
    body = b'{"userEventInlineSource": {"userEvents": [{"offset": "%s"}]}}' % value.encode()
    request = build(IMPORT_BODY_FIELD, [], body)
    assert request.input_config.user_event_inline_source.user_events[0].offset == expected


@pytest.mark.parametrize("lenient", ["", ', "experimentIds": "e"'])
@pytest.mark.parametrize(("value", "field", "why"), [
    ("1_0", "offset", "must be a whole number in ASCII digits (e.g. 10), got '1_0'"),
    ("\u0661", "offset", "in ASCII digits"),
    ("\u0661.5", "purchase_transaction.revenue", "must be a number in ASCII digits"),
    ("Inf", "purchase_transaction.revenue", "must be a number in ASCII digits"),
])
def test_a_body_takes_numbers_in_json_strings_in_ascii_digits_only(
        value: str, field: str, why: str, lenient: str) -> None:
    """json_format read all of these (Python's int() and float()); the strict and the
    lenient reading of a body refuse them alike."""
    json_field = "offset" if field == "offset" else "purchaseTransaction"
    json_value = f'"{value}"' if field == "offset" else f'{{"revenue": "{value}"}}'
    body = ('{"userEventInlineSource": {"userEvents": [{"eventType": "x"}, '
            f'{{"{json_field}": {json_value}{lenient}}}]}}}}').encode()
    found = violations(IMPORT_BODY_FIELD, [], body)
    path = f"input_config.user_event_inline_source.user_events[1].{field}"
    assert list(found) == [path], found
    assert found[path].startswith("Invalid JSON payload received: ") and why in found[path]


@pytest.mark.parametrize(("events", "field"), [
    ('{"productDetails": {"product": {"id": "a"}, "quantity": {"value": 1}}}',
     "user_events[0].product_details[0].quantity"),
    ('{"productDetails": [{"product": {"id": "a", "attributes": [{"key": "k", "value": '
     '{"text": ["x"]}}]}}, {"product": {"id": "b"}, "quantity": 1.5}]}',
     "user_events[0].product_details[1].quantity"),
    ('{"productDetails": {"product": {"id": "a"}, "quantity": 1.5}}',
     "user_events[0].product_details[0].quantity"),  # (said quantity.value)
    # proto3 JSON: json_format names no step for user_event_inline_source (a oneof's)
    ('{"productDetails": [{"product": {"id": "a"}}, {"quantity": {"value": 1}}]}',
     "user_events[0].product_details[1].quantity"),
], ids=["one-object", "after-a-map-as-entries", "wrapper", "proto3"])
def test_a_body_read_leniently_names_the_element_at_fault(events: str, field: str) -> None:
    body = b'{"userEventInlineSource": {"userEvents": %s}}' % events.encode()
    found = violations(IMPORT_BODY_FIELD, [], body)
    assert list(found) == [f"input_config.user_event_inline_source.{field}"], found


@pytest.mark.parametrize("value", ["\u0662\u0660\u0662\u0664-05-01T12:00:00Z",
                                   "2024-05-01T12:00:00.1_0Z", "2024-05-01T12:00:00+5:00"])
def test_a_timestamp_in_the_query_or_the_body_is_read_in_ascii_digits_only(value: str) -> None:
    found = violations(WRITE_BY_QUERY, [("userEvent.eventTime", value)])
    assert "RFC 3339" in found["user_event.event_time"], found
    body = json.dumps({"userEventInlineSource": {"userEvents": [{"eventTime": value}]}}).encode()
    found = violations(IMPORT_BODY_FIELD, [], body)
    path = "input_config.user_event_inline_source.user_events[0].event_time"
    assert list(found) == [path] and "RFC 3339" in found[path], found


@pytest.mark.parametrize("key", ["userEvent", "rawJson"])
def test_a_collect_body_holding_its_event_as_an_object_is_told_to_send_it_as_text(
        key: str) -> None:
    """It was told only "must be a JSON string, got an object"."""
    route = made_up_route("CollectUserEvent", "post", "/test/{parent=**}:collect", "*")
    body = json.dumps({key: {"eventType": "home-page-view", "visitorId": "v"}}).encode()
    found = violations(route, [], body)
    field = "user_event" if key == "userEvent" else "raw_json"
    assert found[field].endswith(
        "must be a JSON string, got an object: user_event (and raw_json) holds the event's JSON "
        'as text, {"userEvent": "{\\"eventType\\": ...}"} (JSON.stringify(event))'), found


def test_a_pixel_with_a_cache_buster_of_its_own_is_told_of_ets() -> None:
    route = made_up_route("CollectUserEvent", "get", "/test/{parent=**}:collect")
    found = violations(route, [("userEvent", '{"eventType": "home-page-view"}'), ("cb", "17")])
    assert found["cb"] == (
        "unknown query parameter: google.cloud.retail.v2.CollectUserEventRequest has no "
        "field 'cb'; a pixel takes userEvent (or rawJson), uri, prebuiltRule and ets (its "
        "cache buster: the time it was sent, in milliseconds)"), found
    # the hint is the pixel's: another request's unknown parameter is told as before
    assert "pixel" not in violations(WRITE_BY_QUERY, [("cb", "17")])["cb"]
