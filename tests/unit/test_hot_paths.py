"""The short cuts of the pixel and write paths (issue 12) give exactly what the long
way gives: requests built in one call, routes from the recent-paths cache, the
Timestamp check through its plan, rows made on the writer, parsed names and
addresses remembered."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from footfall.retail.v2 import product_pb2, user_event_pb2, user_event_service_pb2
from google.protobuf import json_format
from multidict import CIMultiDict

import server.app  # noqa: F401  (registers the served contracts in the default pool)
from server import names, wellknown
from server.errors import InvalidArgument
from server.http import transcode
from server.http.gateway import Metadata
from server.http.routes import Router, derive_routes
from server.retail import collect, join
from server.store.rows import EventRow

USER_EVENTS = "google.cloud.retail.v2.UserEventService"
CATALOG = "projects/p/locations/global/catalogs/default_catalog"
COLLECT = f"/v2/{CATALOG}/userEvents:collect"
EVENT = '{"eventType":"home-page-view","visitorId":"v"}'


class AnyServicer:
    def __getattr__(self, name: str) -> Callable[[object, object], None]:
        return lambda request, context: None


def router() -> Router:
    return Router(derive_routes({USER_EVENTS: AnyServicer()}, ()))


def walked(route: Any, path: dict[str, str], query: list[tuple[str, str]]) -> Any:
    """The request as build_request makes it field by field (or its violations)."""
    request = route.request_class()
    found = transcode._apply_path(request, path)
    found += transcode._apply_query(request, route, query, path)
    return sorted((v.field, v.description) for v in found) or request


def built(route: Any, path: dict[str, str], query: list[tuple[str, str]]) -> Any:
    try:
        return transcode.build_request(route, path, query, b"")
    except InvalidArgument as exc:
        return sorted((v.field, v.description) for v in exc.violations)


@pytest.mark.parametrize("query, plain", [
    ([("userEvent", EVENT)], True),
    ([("user_event", EVENT), ("uri", "https://shop/p"), ("key", "k"), ("$alt", "json")], True),
    ([("rawJson", EVENT)], True),
    ([("rawJson", EVENT), ("prebuiltRule", "ga4_bq")], False),  # a oneof: the long way
    ([("userEvent", EVENT), ("user_event", EVENT)], False),  # given twice: refused
    ([("userEvent", EVENT), ("parent", CATALOG)], False),  # the path's value again: the long way
    ([("userEvent", EVENT), ("parent", CATALOG + "x")], False),  # another: refused
    ([("userEvent", EVENT), ("ets", "1700000000000")], False),  # a number: the long way
    ([("userEvent", EVENT), ("ets", "soon")], False),
    ([("userEvent", EVENT), ("nope", "1")], False),
    ([("userEvent", "\ud800")], False),  # no valid UTF-8: refused as the long way says
    ([], True),
], ids=["pixel", "system-parameters", "raw", "rule", "twice", "bound", "bound-otherwise",
        "number", "bad-number",
        "unknown", "surrogate", "empty"])
def test_plain_requests_are_built_as_field_by_field(query: list[tuple[str, str]],
                                                     plain: bool) -> None:
    found = router().match("GET", COLLECT)
    assert found is not None
    route, path = found
    assert (transcode._plain_request(route, path, query) is not None) is plain
    assert built(route, path, query) == walked(route, path, query)


def test_a_plain_query_is_built_in_one_call() -> None:
    found = router().match("GET", COLLECT)
    assert found is not None
    request = transcode._plain_request(found[0], found[1], [("userEvent", EVENT), ("key", "k")])
    assert request == user_event_service_pb2.CollectUserEventRequest(parent=CATALOG,
                                                                      user_event=EVENT)
    assert transcode._plain_request(found[0], found[1], [("ets", "5")]) is None


def test_a_path_met_again_is_routed_alike_and_its_values_are_the_callers() -> None:
    routes = router()
    first = routes.match("GET", COLLECT)
    assert first is not None
    first[1]["parent"] = "changed by the caller"
    again = routes.match("GET", COLLECT)
    assert again is not None and again[0] is first[0]
    assert again[1] == {"parent": CATALOG}
    assert (("GET", COLLECT)) in routes._recent
    assert routes.match("GET", "/v2/nothing/here") is None


def test_the_recent_paths_stay_few() -> None:
    routes = router()
    for i in range(1_000):
        routes.match("GET", f"/v2/projects/p{i}/locations/global/catalogs/c/userEvents:collect")
    assert len(routes._recent) <= 256


def _product_event(**product: Any) -> user_event_service_pb2.WriteUserEventRequest:
    return json_format.ParseDict({"parent": CATALOG, "userEvent": {
        "eventType": "detail-page-view", "visitorId": "v",
        "productDetails": [{"product": {"id": "sku", **product}}]}},
        user_event_service_pb2.WriteUserEventRequest())


@pytest.mark.parametrize("bad", [None, "seconds", "nanos"])
def test_the_timestamp_check_finds_what_the_full_walk_finds(bad: str | None) -> None:
    request = _product_event(availableTime="2024-01-01T00:00:00Z")
    request.user_event.event_time.seconds = 1_700_000_000
    if bad == "seconds":
        request.user_event.product_details[0].product.available_time.seconds = -10**12
    if bad == "nanos":
        request.user_event.event_time.nanos = -1
    assert wellknown._valid(request) is (wellknown.violations(request) == [])
    assert wellknown._valid(request) is (bad is None)
    # only the fields that may hold one are looked at
    assert wellknown._plan(request.user_event.DESCRIPTOR) == (
        False, (("event_time", wellknown.SINGLE), ("product_details", wellknown.REPEATED)))


def test_the_timestamp_check_looks_into_repeated_and_map_fields() -> None:
    product = product_pb2.Product(id="p")
    product.variants.add(id="v").publish_time.seconds = 10**13
    assert not wellknown._valid(product)
    assert [v.field for v in wellknown.violations(product)] == ["variants[0].publish_time"]


def test_a_row_made_on_the_writer_says_how_and_when_its_event_came() -> None:
    event = json_format.ParseDict({"eventType": "home-page-view", "visitorId": "v",
                                   "eventTime": "2024-01-01T00:00:00.000001234Z"},
                                  user_event_pb2.UserEvent())
    row = join.joined_row(CATALOG, event, {}, 1 << 20, came=(3, 1234))
    same = EventRow.from_event(CATALOG, event, joined=True)
    assert (row.transport, row.received_us) == (3, 1234)
    assert (row.payload, row.key, row.event_time_us, row.event_time_ns, row.joined) == \
        (same.payload, same.key, same.event_time_us, same.event_time_ns, True)


def test_an_event_whose_products_are_not_in_the_catalog_is_left_unjoined() -> None:
    event = json_format.ParseDict({"productDetails": [{"product": {"id": "sku"}}]},
                                  user_event_pb2.UserEvent())
    assert join.join_with_catalog(event, {}) is False
    assert event.product_details[0].product == product_pb2.Product(id="sku")
    assert join.join_with_catalog(user_event_pb2.UserEvent(), {}) is True


def test_catalog_names_are_parsed_once_and_bad_ones_still_refused() -> None:
    assert names.parse_catalog(CATALOG) is names.parse_catalog(CATALOG)
    assert str(names.parse_catalog(CATALOG)) == CATALOG
    # past the cached length, each segment within its 255 characters
    long_name = f"projects/{'p' * 255}/locations/global/catalogs/{'c' * 255}"
    assert len(long_name) > names._CACHED_NAME_CHARS  # noqa: SLF001
    assert str(names.parse_catalog(long_name)) == long_name
    with pytest.raises(InvalidArgument, match="user_event.parent"):
        names.parse_catalog("projects/p", "user_event.parent")


@pytest.mark.parametrize("text, normal", [
    ("127.0.0.1", "127.0.0.1"), ("2001:DB8::0:1", "2001:db8::1"), ("nope", None),
    ("1" * 100, None), ("::ffff:192.0.2.1", "::ffff:c000:201"),
])
def test_browser_addresses_are_normalised_and_remembered(text: str, normal: str | None) -> None:
    assert collect.normal_address(text) == normal
    assert collect.normal_address(text) == normal  # from the cache this time
    event = user_event_pb2.UserEvent()
    collect.fill_from_requester(event, collect.Requester(ip_address=text))
    assert event.user_info.ip_address == (normal or "")


def test_http_metadata_is_the_lower_case_headers_made_when_read() -> None:
    metadata = Metadata(CIMultiDict([("X-Goog-Api-Key", "k"), ("Host", "h"), ("host", "2")]))
    assert metadata._pairs is None
    assert list(metadata) == [("x-goog-api-key", "k"), ("host", "h"), ("host", "2")]
    assert len(metadata) == 3 and metadata[1] == ("host", "h")


@pytest.mark.parametrize("suffix, document", [
    ("userEvents:write", {"eventType": "add-to-cart", "visitorId": "v",
                          "productDetails": [{"product": {"id": "p"}, "quantity": 1}] * 3000}),
    ("userEvents:import", {"inputConfig": {"userEventInlineSource": {"userEvents": [
        {"eventType": "detail-page-view", "visitorId": f"v{i}",
         "eventTime": "2024-01-31T23:59:59.123Z",
         "productDetails": [{"product": {"id": "p"}}]} for i in range(2000)]}}}),
], ids=["write", "inline-import"])
def test_a_rest_body_is_read_without_json_formats_walk(monkeypatch: pytest.MonkeyPatch,
                                                       suffix: str, document: Any) -> None:
    """A REST body is read by the fast path (protojson.merge_into) where it reads it, into
    what json_format makes of it: json_format's walk took 16 s of the server's CPU for
    an event of 180,000 product details (6.5 MB of JSON, which a public writer key may
    send), and an inline import of 10,000 events over REST ran at its 6k a second."""
    found = router().match("POST", f"/v2/{CATALOG}/{suffix}")
    assert found is not None
    route, path = found
    body = json.dumps(document).encode()
    expected = route.request_class(parent=CATALOG)
    json_format.ParseDict(document if route.body == "*" else {route.body: document}, expected)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("read by json_format")

    monkeypatch.setattr(json_format, "ParseDict", refuse)
    assert transcode.build_request(route, path, [], body) == expected
