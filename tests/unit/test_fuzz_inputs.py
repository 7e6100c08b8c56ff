"""Property-based fuzzing of every parser that takes what a client sends: each
input is either accepted or refused with INVALID_ARGUMENT naming a field, and no
other exception ever escapes (which a server would answer as INTERNAL).

The purge filter has its own properties in test_purge_filter.py; the fault
header in test_faults.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from footfall.retail.v2 import product_pb2, user_event_pb2, user_event_service_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from server import app, names
from server.errors import InvalidArgument
from server.http import transcode
from server.http.routes import Route, derive_routes
from server.policy.auth import AuthFileError, KeyRing
from server.retail import collect
from server.retail.bulk_import import decode_json_line

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# JSON the way a hostile client writes it: any scalar, deep nesting, odd keys.
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False) | st.text(max_size=30))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
EVENT_KEYS = ["eventType", "visitorId", "event_time", "eventTime", "userInfo", "productDetails",
              "attributes", "purchaseTransaction", "sessionId", "uri", "pageCategories",
              "searchQuery", "offset", "experimentIds", "entity", "completionDetail",
              "filter", "orderBy", "panel", "panels", "cartId", "pageViewId"]


@st.composite
def event_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Objects shaped like UserEvents: real field names with values of any type."""
    keys = draw(st.lists(st.sampled_from(EVENT_KEYS) | st.text(max_size=10), max_size=6))
    return {key: draw(JSON) for key in keys}


def _accepted_or_invalid(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except InvalidArgument as exc:
        assert exc.violations and all(v.description for v in exc.violations), exc
        return None


# -- collect payloads ------------------------------------------------------------------


@FUZZ
@example(user_event="", raw_json='{"productDetails":[false]}', uri="", ets=0, rule=None)
@given(user_event=st.text(max_size=200) | event_documents().map(json.dumps),
       raw_json=st.sampled_from([""]) | event_documents().map(json.dumps) | st.text(max_size=50),
       uri=st.text(max_size=40), ets=st.integers(min_value=-(2**63), max_value=2**63 - 1),
       rule=st.none() | st.text(max_size=10))
def test_collect_payloads_give_violations_never_exceptions(
        user_event: str, raw_json: str, uri: str, ets: int, rule: str | None) -> None:
    request = user_event_service_pb2.CollectUserEventRequest(
        parent="projects/p/locations/global/catalogs/c", user_event=user_event,
        raw_json=raw_json, uri=uri, ets=ets)
    if rule is not None:
        request.prebuilt_rule = rule
    event = user_event_pb2.UserEvent()
    violations = collect.decode_collect_request(request, event)
    assert all(v.field and v.description for v in violations)


@pytest.mark.parametrize("depth", [50, 300, 600, 1_000, 5_000, 200_000])
def test_deeply_nested_collect_json_is_refused_not_a_crash(depth: int) -> None:
    nested = '{"eventType": "home-page-view", "visitorId": "v", "x": ' + "[" * depth + \
        "]" * depth + "}"
    request = user_event_service_pb2.CollectUserEventRequest(user_event=nested)
    violations = collect.decode_collect_request(request, user_event_pb2.UserEvent())
    assert [v.field for v in violations] == ["user_event"]


@pytest.mark.parametrize("depth", [150, 300, 450])
def test_a_collected_product_nested_past_the_limit_is_refused_not_a_crash(depth: int) -> None:
    """Product.variants holds Products: a pixel's JSON may nest as deep as orjson
    reads (1,024), deeper than it writes (255) and than the stack holds."""
    product = '{"id":"p","variants":[' * depth + '{"id":"p"}' + "]}" * depth
    event = '{"eventType":"detail-page-view","visitorId":"v","productDetails":[{"product":' \
        + product + "}]}"
    request = user_event_service_pb2.CollectUserEventRequest(user_event=event)
    violations = collect.decode_collect_request(request, user_event_pb2.UserEvent())
    [violation] = violations
    # (named to its first repeated field, not by 100 steps of "variants")
    assert violation.field == "user_event.product_details[0].product.variants[0].variants[0]"
    assert violation.description.endswith(
        "nests messages too deep for protobuf (Max recursion depth is 100)")


# -- resource names ----------------------------------------------------------------------

SEGMENT = st.text(st.characters(blacklist_characters="/"), min_size=1, max_size=8)
# What a name's segment may be: no white space, control or format (invisible)
# character, not `-` (every project, in reads only), not `.` or `..`.
WELL_FORMED = st.text(st.characters(blacklist_characters="/", blacklist_categories=(
    "Cc", "Cf", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=8).filter(
    lambda s: s not in ("-", ".", "..") and not any(c.isspace() for c in s))
PARSERS: list[tuple[Callable[..., Any], str]] = [
    (names.parse_catalog, "projects/{}/locations/{}/catalogs/{}"),
    (names.parse_branch, "projects/{}/locations/{}/catalogs/{}/branches/{}"),
    (names.parse_product, "projects/{}/locations/{}/catalogs/{}/branches/{}/products/{}"),
    (names.parse_tenant, "projects/{}/tenants/{}"),
    (names.parse_job, "projects/{}/tenants/{}/jobs/{}"),
]


@FUZZ
@given(st.sampled_from(PARSERS), st.text(max_size=80) | st.lists(SEGMENT, min_size=1,
       max_size=8).map("/".join))
def test_any_name_parses_or_is_invalid_argument(parser: tuple[Callable[..., Any], str],
                                                text: str) -> None:
    parsed = _accepted_or_invalid(lambda: parser[0](text, "name"))
    if parsed is not None:
        assert str(parsed) == text


@FUZZ
@given(st.sampled_from(PARSERS), st.data())
def test_well_formed_names_round_trip(parser: tuple[Callable[..., Any], str],
                                      data: st.DataObject) -> None:
    parse, form = parser
    text = form.format(*(data.draw(WELL_FORMED) for _ in range(form.count("{}"))))
    assert str(parse(text, "name")) == text


# -- JSON bodies over HTTP -----------------------------------------------------------------


class AnyServicer:
    def __getattr__(self, name: str) -> Callable[[object, object], None]:
        return lambda request, context: None


ROUTES = [r for r in derive_routes({s: AnyServicer() for s in app.GUARDED}) if r.body]


@FUZZ
@given(route=st.sampled_from(ROUTES), document=event_documents() | JSON,
       wrap=st.booleans(), raw=st.none() | st.binary(max_size=40))
def test_any_json_body_builds_a_request_or_is_invalid_argument(
        route: Route, document: Any, wrap: bool, raw: bytes | None) -> None:
    if wrap and route.body == "*":  # a body whose event sits where the request wants it
        document = {"userEvent": document, "parent": "x"}
    body = raw if raw is not None else json.dumps(document).encode()
    path = {v.field_path: "projects/p/locations/global/catalogs/c"
            for v in route.template.variables}
    _accepted_or_invalid(lambda: transcode.build_request(route, path, [], body))


@FUZZ
@given(route=st.sampled_from(ROUTES),
       query=st.lists(st.tuples(st.sampled_from(["userEvent.visitorId", "writeAsync", "ets",
                                                 "filter", "pageSize", "$alt", "key", "x.y",
                                                 "user_event", "prebuiltRule"])
                                | st.text(max_size=8), st.text(max_size=12)), max_size=4))
def test_any_query_builds_a_request_or_is_invalid_argument(
        route: Route, query: list[tuple[str, str]]) -> None:
    path = {v.field_path: "projects/p" for v in route.template.variables}
    _accepted_or_invalid(lambda: transcode.build_request(route, path, query, b""))
    _accepted_or_invalid(lambda: transcode.output_of(dict(query)))


# -- the auth file ---------------------------------------------------------------------------


@FUZZ
@given(JSON.map(json.dumps) | st.text(max_size=60)
       | st.dictionaries(st.text(max_size=6), JSON, max_size=3).map(
           lambda keys: json.dumps({"keys": keys})))
def test_any_auth_file_loads_or_is_an_auth_file_error(text: str) -> None:
    try:
        KeyRing.parse(text)
    except AuthFileError:
        pass


# -- import lines and inline imports (lenient JSON) ------------------------------------------


def _shaped(message: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Objects shaped like `message` the way an import file may write it (maps as
    lists of key/value objects, one object for a list, quoted booleans), with any
    JSON at any place: a map's key too."""
    fields = list(message.fields)

    @st.composite
    def objects(draw: st.DrawFn) -> dict[str, Any]:
        chosen = draw(st.lists(st.sampled_from(fields), max_size=4)) if fields else []
        return {draw(st.sampled_from([f.json_name, f.name])): draw(_shaped_value(f, depth))
                for f in chosen}

    return objects()


def _shaped_value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    message = field.message_type
    if message is None or depth > 2 or message.full_name.startswith("google.protobuf."):
        return JSON | st.sampled_from(["true", "false", "price_info"])
    if message.GetOptions().map_entry:
        value = _shaped_value(message.fields_by_name["value"], depth + 1)
        entry = st.fixed_dictionaries({"key": JSON, "value": value})
        return st.lists(entry, max_size=3) | st.dictionaries(st.text(max_size=4), value,
                                                             max_size=2) | JSON
    single = _shaped(message, depth + 1)
    return single | st.lists(single, max_size=2) | JSON


@FUZZ
@given(st.sampled_from([user_event_pb2.UserEvent, product_pb2.Product]), st.data())
def test_any_import_line_decodes_or_is_a_failed_line(message_class: type,
                                                     data: st.DataObject) -> None:
    document = data.draw(_shaped(message_class.DESCRIPTOR))
    try:
        decode_json_line(json.dumps(document).encode(), message_class, "x")
    except ValueError as exc:
        assert str(exc).startswith(("not a x", "invalid JSON")), exc  # Infinity: not JSON


@pytest.mark.parametrize("key", [["x"], {"a": 1}, 1, None])
def test_an_import_line_with_a_map_key_not_a_string_is_a_failed_line(key: Any) -> None:
    line = orjson.dumps({"eventType": "home-page-view", "visitorId": "evil",
                         "attributes": [{"key": key, "value": {"text": ["v"]}}]})
    with pytest.raises(ValueError, match=r"^not a UserEvent: attributes"):
        decode_json_line(line, user_event_pb2.UserEvent, "UserEvent")


@pytest.mark.parametrize("depth", [300, 500])
def test_a_deeply_nested_import_line_is_a_failed_line(depth: int) -> None:
    """Product.variants holds Products: nesting is as deep as the line's JSON."""
    for inner in (b'{"id":"p"}', b'{"id":"p","attributes":[{"key":"a","value":{}}]}'):
        line = b'{"id":"p","variants":[' * depth + inner + b"]}" * depth
        with pytest.raises(ValueError, match="too deep"):
            decode_json_line(line, product_pb2.Product, "Product")


IMPORT_ROUTES = [r for r in ROUTES if r.grpc_method.endswith(("/ImportUserEvents",
                                                              "/ImportProducts"))]


@FUZZ
@given(route=st.sampled_from(IMPORT_ROUTES), data=st.data())
def test_any_inline_import_builds_a_request_or_is_invalid_argument(
        route: Route, data: st.DataObject) -> None:
    if route.grpc_method.endswith("/ImportUserEvents"):
        items = {"userEventInlineSource": {"userEvents": data.draw(
            st.lists(_shaped(user_event_pb2.UserEvent.DESCRIPTOR), max_size=2))}}
    else:
        items = {"productInlineSource": {"products": data.draw(
            st.lists(_shaped(product_pb2.Product.DESCRIPTOR), max_size=2))}}
    path = {v.field_path: "projects/p/locations/global/catalogs/c/branches/0"
            if "branches" in route.template.text else "projects/p/locations/global/catalogs/c"
            for v in route.template.variables}
    body = json.dumps({"inputConfig": items}).encode()
    _accepted_or_invalid(lambda: transcode.build_request(route, path, [], body))
