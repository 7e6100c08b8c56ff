"""The HTTP/JSON gateway in-process: REST calls, Google's JSON errors, the pixel,
CORS and /footfall.js. The same servicers answer as over gRPC."""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import dataclasses
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from footfall.console.v1 import console_pb2
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format
from grpc_health.v1 import health_pb2

from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings, add_serve_arguments, settings_from_args
from server.retail.collect import PIXEL_GIF
from server.store import EventQuery, EventRow

from .http_client import Reply, call, query_value

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
BRANCH = f"{CATALOG}/branches/0"
TENANT = "projects/p/tenants/t"
NOW = "2024-05-01T12:00:00Z"  # conftest's clock


def serve(settings: Settings, clock: FixedClock, **changes: Any) -> Iterator[Running]:
    running = start(dataclasses.replace(settings, http_port=-1, **changes), clock)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def gateway(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    yield from serve(settings, clock)


def stored(running: Running, catalog: str = CATALOG) -> list[user_event_pb2.UserEvent]:
    running.store.flush()  # a pixel is answered before its commit
    rows = running.store.list_user_events(EventQuery(catalog), 100, 0)
    return [user_event_pb2.UserEvent.FromString(payload) for _, payload in rows]


def collect_path(event: dict[str, Any], catalog: str = CATALOG, extra: str = "") -> str:
    return f"/v2/{catalog}/userEvents:collect?user_event={query_value(event)}{extra}"


def post(running: Running, path: str, body: Any = None, **headers: str) -> Reply:
    return call(running.http_port, "POST", path, body, headers)


def get(running: Running, path: str, **headers: str) -> Reply:
    return call(running.http_port, "GET", path, None, headers)


def wait_done(running: Running, name: str, deadline: float = 10.0) -> dict[str, Any]:
    """The operation `name` (read over HTTP) once done; fails after `deadline` s."""
    end = time.monotonic() + deadline
    while not (operation := get(running, f"/v2/{name}").json()).get("done"):
        assert time.monotonic() < end, f"{name} not done in {deadline}s"
        time.sleep(0.01)
    return operation


# -- REST calls ---------------------------------------------------------------


def test_write_answers_the_stored_event_in_proto3_json(gateway: Running) -> None:
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write",
                 {"eventType": "home-page-view", "visitor_id": "v1",
                  "userInfo": {"userId": "u1"}})
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json() == {"eventType": "home-page-view", "visitorId": "v1",
                            "userInfo": {"userId": "u1"}, "eventTime": NOW}
    assert [e.visitor_id for e in stored(gateway)] == ["v1"]


def test_write_async_comes_from_the_query(gateway: Running) -> None:
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write?writeAsync=true",
                 {"eventType": "home-page-view", "visitorId": "v1"})
    assert reply.status == 200, reply.body
    gateway.store.flush()
    assert len(stored(gateway)) == 1


def test_unknown_body_field_is_invalid_argument_not_dropped(gateway: Running) -> None:
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write",
                 {"eventType": "home-page-view", "visitorId": "v1", "visitorIdd": "x"})
    assert reply.status == 400
    assert reply.error()["status"] == "INVALID_ARGUMENT"
    assert "visitorIdd" in reply.violations()["user_event"]
    assert stored(gateway) == []


def test_unknown_query_parameter_and_bad_json_are_invalid_argument(gateway: Running) -> None:
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write?visitor=1", b"{not json")
    assert reply.status == 400
    assert set(reply.violations()) == {"user_event", "visitor"}


@pytest.mark.parametrize(("page_size", "why"), [
    ("1_0", "cannot take '1_0': must be a whole number in ASCII digits (e.g. 10)"),
    ("%D9%A1", "cannot take '\u0661': must be a whole number in ASCII digits (e.g. 10)"),
    ("99999999999", "cannot take '99999999999': out of range for an int32 "
                    "(-2147483648 to 2147483647)"),
])
def test_a_query_number_is_ascii_digits_within_its_type(gateway: Running, page_size: str,
                                                        why: str) -> None:
    """json_format reads a query string with Python's int(): `1_0` and an
    Arabic-Indic one were page sizes, and a whole number past int32 was "not a
    whole number"."""
    reply = get(gateway, f"/v2/{BRANCH}/products?pageSize={page_size}")
    assert (reply.status, reply.error()["status"]) == (400, "INVALID_ARGUMENT")
    assert reply.violations() == {"page_size": why}  # (the proto name, as Google's)
    assert get(gateway, f"/v2/{BRANCH}/products?pageSize=10").status == 200


@pytest.mark.parametrize("path", [f"/v2/{BRANCH}/products?{{}}",
                                  f"/console/v1/{CATALOG}/userEvents?{{}}",
                                  f"/console/v1/{CATALOG}/userEvents:watch?{{}}"])
@pytest.mark.parametrize("value", ["abc", "-1"])
def test_a_bad_query_number_is_named_by_its_field_however_it_was_spelt(
        gateway: Running, path: str, value: str) -> None:
    """`?pageSize=abc` (refused as the query was read) was `pageSize`, `?pageSize=-1`
    (refused by the service) `page_size`: both are the field's proto name, whichever
    spelling was sent, as Google's transcoding names them."""
    field = "after_id" if path.endswith(":watch?{}") else "page_size"
    camel = "afterId" if field == "after_id" else "pageSize"
    for name in (camel, field):
        reply = get(gateway, path.format(f"{name}={value}"))
        assert (reply.status, reply.error()["status"]) == (400, "INVALID_ARGUMENT"), \
            reply.body[:300]
        assert list(reply.violations()) == [field], reply.body[:300]


def test_validation_errors_carry_every_violation(gateway: Running) -> None:
    reply = post(gateway, "/v2/projects/p/locations/global/catalogs/c/userEvents:write",
                 {"eventType": "purchase-complete", "visitorId": "v" * 200})
    error = reply.error()
    assert (reply.status, error["status"]) == (400, "INVALID_ARGUMENT")
    assert {"user_event.visitor_id", "user_event.product_details",
            "user_event.purchase_transaction"} <= set(reply.violations())
    assert "user_event.visitor_id: must be at most 128 characters" in error["message"]


def test_not_found_and_already_exists_map_to_http(gateway: Running) -> None:
    missing = get(gateway, f"/v2/{BRANCH}/products/nope")
    assert (missing.status, missing.error()["status"]) == (404, "NOT_FOUND")
    assert missing.error()["details"][0] == {
        "@type": "type.googleapis.com/google.rpc.ResourceInfo",
        "resourceType": "google.cloud.retail.v2.Product",
        "resourceName": f"{BRANCH}/products/nope"}
    event = {"eventId": "e1", "createTime": NOW,
             "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j1"]}}
    assert post(gateway, f"/v4/{TENANT}/clientEvents", event).status == 200
    taken = post(gateway, f"/v4/{TENANT}/clientEvents",
                 {**event, "createTime": "2024-05-02T00:00:00Z"})
    assert (taken.status, taken.error()["status"]) == (409, "ALREADY_EXISTS")


def test_a_v4beta1_profile_event_is_refused_beside_a_wrong_value(gateway: Running) -> None:
    # The refusal of a profile_event (v4beta1's former field) is a rule about a value
    # that read: said beside a value of the wrong type, not only once it is put right
    profile = {"type": "VIEW", "profiles": [f"{TENANT}/profiles/c"]}
    for name in ("profileEvent", "profile_event"):  # (its JSON name, its proto name)
        event = {"requestId": 5, "eventId": "e1", "createTime": NOW, name: profile}
        reply = post(gateway, f"/v4beta1/{TENANT}/clientEvents", {"clientEvent": event})
        assert reply.status == 400, reply.body
        assert list(reply.violations()) == ["client_event.request_id",
                                            "client_event.profile_event"], reply.body
        # as without it
        del event["requestId"]
        alone = post(gateway, f"/v4beta1/{TENANT}/clientEvents", {"clientEvent": event})
        assert list(alone.violations()) == ["client_event.profile_event"], alone.body


def test_a_direct_user_request_beside_a_wrong_value_is_judged_as_filled_in(
        settings: Settings, clock: FixedClock) -> None:
    # A direct user request's event is filled from its HTTP request (User-Agent,
    # address) before the rules run; refused for a wrong value, it is judged so too.
    # Filled in, this one passes --max-event-bytes: as without the wrong value, it is
    # told that alone (which waits for the value), not its visitor_id.
    write = f"/v2/{CATALOG}/userEvents:write"
    agent = {"User-Agent": "a" * 1_000}
    event = {"eventType": "home-page-view", "visitorId": "v" * 200,
             "uri": "https://shop.example/" + "p" * 1_500, "userInfo": {"directUserRequest": True}}
    for running in serve(settings, clock, max_event_bytes=2_048):
        assert list(post(running, write, {**event, "eventTime": NOW}, **agent).violations()) \
            == ["user_event"]
        assert list(post(running, write, {**event, "eventTime": 5}, **agent).violations()) \
            == ["user_event.event_time"]
        # (its User-Agent short: its visitor_id is said beside the wrong value)
        assert list(post(running, write, {**event, "eventTime": 5}).violations()) == [
            "user_event.event_time", "user_event.visitor_id"]


def test_enum_encoding_int_is_honoured(gateway: Running) -> None:
    event = {"eventId": "e1", "createTime": NOW,
             "jobEvent": {"type": 2, "jobs": [f"{TENANT}/jobs/j1"]}}  # VIEW, by number
    by_name = post(gateway, f"/v4/{TENANT}/clientEvents", event)
    assert by_name.json()["jobEvent"]["type"] == "VIEW"
    as_int = post(gateway, f"/v4/{TENANT}/clientEvents?$alt=json;enum-encoding=int", event)
    assert as_int.json()["jobEvent"]["type"] == 2
    bad = post(gateway, f"/v4/{TENANT}/clientEvents?alt=proto", event)
    assert set(bad.violations()) == {"alt"}
    # a name it does not know is told the names it does
    misnamed = post(gateway, f"/v4/{TENANT}/clientEvents",
                    {**event, "jobEvent": {"type": "VIEWED", "jobs": [f"{TENANT}/jobs/j1"]}})
    why = misnamed.violations()["client_event.job_event.type"]
    assert "got 'VIEWED'; its names: IMPRESSION, VIEW, " in why, why


def test_system_parameters_of_one_value_are_refused_given_twice(gateway: Running) -> None:
    """`$alt` 900 times was taken (its first read), and `$fields` twice, as no other
    parameter of one value is: alt, fields and prettyPrint, with or without "$"."""
    event = {"eventId": "e1", "createTime": NOW,
             "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j1"]}}
    path = f"/v4/{TENANT}/clientEvents"
    for query, field, times in (("$alt=json&" * 900, "$alt", 900),
                                ("alt=json&$alt=json", "alt", 2),
                                ("$fields=eventId&fields=eventId", "$fields", 2),
                                ("prettyPrint=false&prettyPrint=false", "prettyPrint", 2)):
        refused = post(gateway, f"{path}?{query.rstrip('&')}", event)
        assert refused.status == 400, refused.body
        assert refused.violations() == {field: f"given {times} times; it is not repeated"}
    # one `$fields` is taken, and not applied: the answer is whole
    whole = post(gateway, f"{path}?$fields=eventId&$alt=json", event)
    assert whole.status == 200, whole.body
    assert whole.json()["jobEvent"]["type"] == "VIEW"
    # a pixel's, served before the rest of a call's steps, and a read's too
    pixel = get(gateway, collect_path({"eventType": "home-page-view", "visitorId": "v"},
                                      extra="&fields=a&fields=b"))
    assert pixel.headers["X-Footfall-Error"] == \
        "INVALID_ARGUMENT: fields: given 2 times; it is not repeated", pixel.headers
    read = get(gateway, f"/v2/{CATALOG}/operations?$fields=a&$fields=a")
    assert read.violations() == {"$fields": "given 2 times; it is not repeated"}


def test_products_crud_with_path_query_and_field_mask(gateway: Running) -> None:
    created = post(gateway, f"/v2/{BRANCH}/products?product_id=sku-1",
                   {"title": "Tent", "categories": ["Outdoor"]})
    assert created.status == 200, created.body
    name = created.json()["name"]
    assert name == f"{BRANCH}/products/sku-1"
    patched = call(gateway.http_port, "PATCH", f"/v2/{name}?updateMask=title",
                   {"title": "Tent 2", "categories": ["ignored"]})
    assert (patched.json()["title"], patched.json()["categories"]) == ("Tent 2", ["Outdoor"])
    listed = get(gateway, f"/v2/{BRANCH}/products?pageSize=5&readMask=id,"
                          "title")
    assert listed.json() == {"products": [{"name": name, "id": "sku-1", "title": "Tent 2"}]}
    # masks in snake_case, as a body's are read (Google's JSON front end reads both)
    priced = call(gateway.http_port, "PATCH", f"/v2/{name}?updateMask=price_info,title",
                  {"title": "Tent 3", "priceInfo": {"price": 5, "currencyCode": "EUR"}})
    assert priced.status == 200, priced.body
    assert (priced.json()["title"], priced.json()["priceInfo"]["price"]) == ("Tent 3", 5)
    # a path whose camelCase would name another (attributes.size_2 as size2): refused,
    # not applied to what it does not name
    wrong = call(gateway.http_port, "PATCH", f"/v2/{name}?updateMask=attributes.size_2",
                 {"attributes": {"size_2": {"text": ["new"]}}})
    assert wrong.status == 400 and set(wrong.violations()) == {"update_mask"}, wrong.body
    listed = get(gateway, f"/v2/{BRANCH}/products?readMask=price_info")
    assert listed.json() == {"products": [{"name": name, "priceInfo": {
        "price": 5, "currencyCode": "EUR"}}]}, listed.body
    assert call(gateway.http_port, "DELETE", f"/v2/{name}").json() == {}
    assert get(gateway, f"/v2/{name}").status == 404


def test_import_then_operation_by_get_list_and_wait(gateway: Running) -> None:
    events = [{"eventType": "home-page-view", "visitorId": f"v{i}", "eventTime": NOW}
              for i in range(3)]
    started = post(gateway, f"/v2/{CATALOG}/userEvents:import",
                   {"inputConfig": {"userEventInlineSource": {"userEvents": events}}})
    assert started.status == 200, started.body
    name = started.json()["name"]
    assert name.startswith(f"{CATALOG}/operations/import-user-events-")
    assert started.json()["metadata"]["@type"] == \
        "type.googleapis.com/google.cloud.retail.v2.ImportMetadata"
    operation = wait_done(gateway, name)
    assert operation["response"]["@type"] == \
        "type.googleapis.com/google.cloud.retail.v2.ImportUserEventsResponse"
    listed = get(gateway, f"/v2/{CATALOG}/operations?filter=done%3Dtrue").json()
    assert [o["name"] for o in listed["operations"]] == [name]
    assert len(stored(gateway)) == 3
    # Cancel and Delete: a Footfall extension under the same names.
    assert post(gateway, f"/v2/{name}:cancel", {}).json() == {}
    assert call(gateway.http_port, "DELETE", f"/v2/{name}").status == 200
    assert get(gateway, f"/v2/{name}").status == 404


def test_inventory_routes_take_the_product_from_the_path(gateway: Running) -> None:
    name = f"{BRANCH}/products/sku-9"
    created = post(gateway, f"/v2/{BRANCH}/products?productId=sku-9",
                   {"title": "Stove", "categories": ["Camping"]})
    assert created.status == 200, created.body
    started = post(gateway, f"/v2/{name}:addFulfillmentPlaces",
                   {"type": "pickup-in-store", "placeIds": ["s1", "s2"]})
    assert started.status == 200, started.body
    assert started.json()["name"].startswith(f"{BRANCH}/operations/add-fulfillment-places-")
    done = wait_done(gateway, started.json()["name"])
    assert done["response"]["@type"] == \
        "type.googleapis.com/google.cloud.retail.v2.AddFulfillmentPlacesResponse"
    set_started = post(gateway, f"/v2/{name}:setInventory",
                       {"inventory": {"availability": "PREORDER"}, "setMask": "availability"})
    assert set_started.status == 200, set_started.body
    wait_done(gateway, set_started.json()["name"])
    product = get(gateway, f"/v2/{name}").json()
    assert product["fulfillmentInfo"] == [{"type": "pickup-in-store", "placeIds": ["s1", "s2"]}]
    assert product["availability"] == "PREORDER"
    refused = post(gateway, f"/v2/{name}:removeLocalInventories", {"placeIds": []})
    assert (refused.status, refused.error()["message"]) == (
        400, "place_ids: at least one place id is required")


OTHER_CATALOG = "projects/p/locations/global/catalogs/other"
OF_V1 = 'visitorId = "v1"'


@pytest.mark.parametrize(("path", "body", "field"), [
    (f"/v2/{CATALOG}/userEvents:purge", {"parent": OTHER_CATALOG, "filter": OF_V1}, "parent"),
    (f"/console/v1/{CATALOG}:reset", {"name": OTHER_CATALOG}, "name"),
    (f"/v2/{BRANCH}/products/sku-1:setInventory",
     {"inventory": {"name": f"{BRANCH}/products/sku-2"}}, "inventory.name"),
])
def test_a_body_naming_a_path_bound_field_otherwise_is_refused(
        gateway: Running, path: str, body: dict[str, Any], field: str) -> None:
    """The path's value was taken and the body's dropped without a word, while the
    same conflict in the query was refused: now both are."""
    reply = post(gateway, path, body)
    assert (reply.status, reply.error()["status"]) == (400, "INVALID_ARGUMENT"), reply.body
    why = reply.violations()[field]
    assert why.startswith("is bound by the URL path to ") and "the body gives" in why, why


def test_a_body_or_query_naming_a_path_bound_field_alike_is_accepted(gateway: Running) -> None:
    post(gateway, f"/v2/{CATALOG}/userEvents:write", {"eventType": "home-page-view",
                                                      "visitorId": "v1"})
    purged = post(gateway, f"/v2/{CATALOG}/userEvents:purge",
                  {"parent": CATALOG, "filter": OF_V1, "force": True})
    assert purged.status == 200, purged.body
    wait_done(gateway, purged.json()["name"])
    assert stored(gateway) == []
    assert post(gateway, f"/console/v1/{CATALOG}:reset", {"name": CATALOG}).status == 200
    # (what the official REST transport sends: the whole request, the name in it too)
    product = f"{BRANCH}/products/sku-1"
    post(gateway, f"/v2/{BRANCH}/products?productId=sku-1",
         {"title": "Stove", "categories": ["Camping"]})
    set_started = post(gateway, f"/v2/{product}:setInventory",
                       {"inventory": {"name": product, "availability": "PREORDER"},
                        "setMask": "availability"})
    assert set_started.status == 200, set_started.body
    listed = get(gateway, f"/v2/{CATALOG}/operations?name={CATALOG}")
    assert listed.status == 200, listed.body
    other = get(gateway, f"/v2/{CATALOG}/operations?name={OTHER_CATALOG}")
    assert other.status == 400 and "is bound by the URL path to " in \
        other.violations()["name"], other.body


def test_healthz_says_what_grpc_health_says(settings: Settings, clock: FixedClock,
                                            tmp_path: Path) -> None:
    # For what checks over HTTP only (a load balancer in front of the pixels, a
    # container's health check with curl): open, like gRPC health, with keys on.
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {"healthz-test-key-0123456789": {
        "projects": ["p"], "role": "admin"}}}))
    for running in serve(settings, clock, auth_file=str(keys)):
        answer = get(running, "/healthz")
        assert (answer.status, answer.body) == (200, b"SERVING\n")
        assert answer.headers["Cache-Control"] == "no-store"
        assert call(running.http_port, "HEAD", "/healthz").status == 200
        # the database away (store_health), or draining: gRPC health says NOT_SERVING
        running.loop.run(running.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING))
        assert (get(running, "/healthz").status, get(running, "/healthz").body) == (
            503, b"NOT_SERVING\n")
        assert post(running, "/healthz").status == 404  # (not a route of the API either)


def test_unknown_path_is_a_json_404(gateway: Running) -> None:
    reply = get(gateway, "/v2/nothing/here")
    assert (reply.status, reply.error()["status"]) == (404, "NOT_FOUND")
    wrong_method = get(gateway, f"/v2/{CATALOG}/userEvents:write")
    assert wrong_method.status == 404
    assert "this path answers POST" in wrong_method.error()["message"]


def test_a_mistyped_path_is_told_the_form_of_googles(gateway: Running) -> None:
    # the likeliest mistakes: a catalog without its /locations/*, userEvent:write
    for path in ("/v2/projects/p/catalogs/default_catalog/userEvents:write",
                 f"/v2/{CATALOG}/userEvent:write"):
        reply = post(gateway, path, {"eventType": "home-page-view", "visitorId": "v"})
        assert reply.status == 404, reply.body
        assert "a retail path is /v2/projects/*/locations/*/catalogs/*/userEvents:write" in \
            reply.error()["message"]
    talent = post(gateway, "/v4/projects/p/clientEvents", {})
    assert "a talent path is /v4/projects/*/tenants/*/clientEvents" in talent.error()["message"]
    assert "; " not in get(gateway, "/nothing").error()["message"]
    # (the console's, insights' and a version of none said no form at all)
    for path, form in ((f"/console/v1/{CATALOG}/events", "a console path is /console/v1/"
                        "projects/*/locations/*/catalogs/*/userEvents"),
                       (f"/insights/v1/{CATALOG}/funnel", "an insights path is /insights/v1/"
                        "projects/*/locations/*/catalogs/*:runFunnel"),
                       (f"/v1/{CATALOG}/userEvents:write", "retail is served under /v2")):
        said = get(gateway, path).error()["message"]
        assert form in said, said


def test_a_get_of_the_events_written_says_where_they_are_read(gateway: Running) -> None:
    """A job site's `curl` of the clientEvents it had just POSTed was told only "this
    path answers POST" (a shop's of its userEvents, the form of the write paths):
    Google's APIs read nothing back; the console's API does."""
    tenant = "projects/p/tenants/t1"
    for path, read in ((f"/v4/{tenant}/clientEvents", f"/console/v1/{tenant}/clientEvents"),
                       (f"/v4beta1/{tenant}/clientEvents",
                        f"/console/v1/{tenant}/clientEvents"),
                       ("/v4beta1/projects/p/clientEvents", "/console/v1/projects/p/clientEvents"),
                       (f"/v2/{CATALOG}/userEvents", f"/console/v1/{CATALOG}/userEvents"),
                       (f"/v2beta/{CATALOG}/userEvents/", f"/console/v1/{CATALOG}/userEvents")):
        reply = get(gateway, path)
        assert reply.status == 404, reply.body
        said = reply.error()["message"]
        assert f"Google's API reads no events back: GET {read} lists them" in said, said
        assert get(gateway, read).status == 200, read
    assert "this path answers POST; Google's" in get(
        gateway, f"/v4/{tenant}/clientEvents").error()["message"]
    # (a POST to a path of no route is told the forms, as before)
    assert "reads no events back" not in post(
        gateway, f"/v2/{CATALOG}/userEvents", {}).error()["message"]


def test_a_projects_client_events_are_its_default_tenants(gateway: Running) -> None:
    """`talent-events list --parent projects/p` (and v4beta1) read a project alone as its
    default tenant; the console's HTTP path of it was a 404."""
    event = {"eventId": "e1", "createTime": NOW,
             "jobEvent": {"type": "VIEW", "jobs": ["projects/p/jobs/j1"]}}
    assert post(gateway, "/v4beta1/projects/p/clientEvents", {"clientEvent": event}).status == 200
    by_project = get(gateway, "/console/v1/projects/p/clientEvents")
    assert by_project.status == 200, by_project.body
    by_tenant = get(gateway, "/console/v1/projects/p/tenants/default_tenant/clientEvents")
    assert by_project.json() == by_tenant.json()
    assert [e["clientEvent"]["eventId"] for e in by_project.json()["clientEvents"]] == ["e1"]
    assert get(gateway, "/console/v1/projects/other/clientEvents").json() == {}


def test_a_projects_client_events_are_watched_as_its_default_tenants(gateway: Running) -> None:
    """`talent-events tail --parent projects/p` reads a project alone as its default
    tenant, as the list does; the console's HTTP path of the watch was a 404."""
    event = {"eventId": "e1", "createTime": NOW,
             "jobEvent": {"type": "VIEW", "jobs": ["projects/p/jobs/j1"]}}
    assert post(gateway, "/v4beta1/projects/p/clientEvents", {"clientEvent": event}).status == 200
    conn = http.client.HTTPConnection("127.0.0.1", gateway.http_port, timeout=10)
    try:
        conn.request("GET", "/console/v1/projects/p/clientEvents:watch?afterId=0")
        answer = conn.getresponse()
        assert (answer.status, answer.getheader("Content-Type")) == \
            (200, "text/event-stream"), answer.read()
        line = answer.readline()
        while not line.startswith(b"data: "):
            line = answer.readline()
        seen = json.loads(line[6:])
        assert (seen["tenant"], seen["clientEvent"]["eventId"]) == \
            ("projects/p/tenants/default_tenant", "e1")
    finally:
        conn.close()


def test_a_pixel_of_a_mistyped_path_still_gets_its_gif(gateway: Running) -> None:
    """"Always a 1x1 transparent GIF": a JSON 404 showed as a broken image."""
    reply = get(gateway, "/v2/projects/p/catalogs/default_catalog/userEvents:collect"
                         "?userEvent=%7B%7D")
    assert reply.status == 200 and reply.body[:6] == b"GIF89a"
    assert reply.headers["Content-Type"] == "image/gif"
    assert reply.headers["X-Footfall-Error"].startswith("NOT_FOUND: no route for GET")
    assert "a retail path is" in reply.headers["X-Footfall-Error"]
    # a JSON caller still hears a 404
    asked = get(gateway, "/v2/projects/p/catalogs/default_catalog/userEvents:collect"
                         "?userEvent=%7B%7D&$alt=json")
    assert (asked.status, asked.error()["status"]) == (404, "NOT_FOUND")
    # The pixel's refusal is kept where the project's refusals are read (each of a
    # tracker's events was lost, and only the header said so).
    gateway.store.flush()
    kept = [console_pb2.Rejection.FromString(r.payload)
            for r in gateway.store.rejections_newest(None, 10)]
    assert [(r.parent, r.code, r.method) for r in kept] == [
        ("projects/p/catalogs/default_catalog", 5,
         "/google.cloud.retail.v2.UserEventService/CollectUserEvent")], kept


def test_a_path_with_a_line_break_is_answered_like_any_other(gateway: Running) -> None:
    # (aiohttp's catch-all pattern, a `.*`, did not match past a line break: such a
    # path got aiohttp's own plain-text 404, with none of the gateway's headers)
    reply = get(gateway, f"/v2/{BRANCH}/products/a%0Ab")
    assert reply.status == 400 and "product" in reply.error()["message"]
    assert reply.headers["Content-Type"].startswith("application/json")
    elsewhere = get(gateway, "/v2/nothing%0Ahere")
    assert (elsewhere.status, elsewhere.error()["status"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize("seconds", ["١".encode(), b"1_0", b"inf", b"-1", b"1e3"])
def test_a_server_timeout_is_plain_seconds(gateway: Running, seconds: bytes) -> None:
    # (float() reads all of these, an Arabic-Indic one among them; none is a deadline)
    reply = call(gateway.http_port, "POST", f"/v2/{CATALOG}/userEvents:write",
                 {"eventType": "home-page-view", "visitorId": "v"},
                 {"X-Server-Timeout": seconds})  # type: ignore[dict-item]
    assert set(reply.violations()) == {"X-Server-Timeout"}


@pytest.mark.parametrize("path", [
    f"/insights/v1/{CATALOG}:runFunnel",  # a read
    f"/v2/{CATALOG}/userEvents:write",  # a write, which would go on past its deadline
])
def test_calls_late_already_give_back_their_bodies(settings: Settings, clock: FixedClock,
                                                   path: str) -> None:
    """A call whose X-Server-Timeout has passed when its body is in runs nothing:
    cancelled before it started, such a call never gave back its body's bytes, and
    16 of them held the room of every body for good (each REST call with a body was
    then 429)."""
    for running in serve(settings, clock, max_request_bytes=64 * 1024):
        body = {"steps": [{"name": "x" * 60_000}]}  # nearly the limit, read whole
        for _ in range(40):  # 2.5 x what all bodies may hold at once
            late = call(running.http_port, "POST", path, body, {"X-Server-Timeout": "0"})
            assert late.status == 504, late.body
            assert late.error()["status"] == "DEADLINE_EXCEEDED"
        written = post(running, f"/v2/{CATALOG}/userEvents:write",
                       {"eventType": "home-page-view", "visitorId": "v"})
        assert written.status == 200, written.body
        assert [e.visitor_id for e in stored(running)] == ["v"]  # the late ones ran not


def test_body_on_a_route_without_one_is_refused(gateway: Running) -> None:
    reply = call(gateway.http_port, "GET", f"/v2/{BRANCH}/products/x", b'{"a": 1}')
    assert set(reply.violations()) == {"body"}


def _head_and_get(running: Running, path: str) -> tuple[Reply, Reply]:
    """HEAD then GET of `path`: their status, headers (the Date aside) and bodies."""
    head, got = (call(running.http_port, method, path) for method in ("HEAD", "GET"))
    for reply in (head, got):
        del reply.headers["Date"]
    return head, got


@pytest.mark.parametrize("path", [
    f"/console/v1/{CATALOG}/userEvents", f"/console/v1/{CATALOG}/userEvents?filter=nonsense",
    "/console/v1/projects/-/rejections", f"/v2/{CATALOG}/operations",
    f"/v2/{BRANCH}/products/none", f"/console/v1/{CATALOG}/userEvents:count"])
def test_head_of_a_read_answers_what_get_does_without_the_body(gateway: Running,
                                                                path: str) -> None:
    assert post(gateway, f"/v2/{CATALOG}/userEvents:write",
                {"eventType": "home-page-view", "visitorId": "v"}).status == 200
    head, got = _head_and_get(gateway, path)
    assert (head.status, head.body) == (got.status, b"")
    length = head.headers.get("Content-Length")
    del head.headers["Content-Length"], got.headers["Content-Length"]
    assert dict(head.headers) == dict(got.headers)
    # An answer's JSON is not written for a HEAD, so its length is left out (RFC 9110
    # section 8.6 allows it); a refusal's body is written anyway, and its length said.
    assert length is None if got.status == 200 else int(length) == len(got.body) > 0


def test_head_of_a_watch_answers_its_headers_and_ends(settings: Settings,
                                                     clock: FixedClock) -> None:
    path = f"/console/v1/{CATALOG}/userEvents:watch?afterId=0"
    for running in serve(settings, clock, max_watches=1):
        for _ in range(3):  # each gives its watch back: the one allowed is free again
            # (and a stream sent on would outlast the client's timeout)
            head = call(running.http_port, "HEAD", path)
            assert (head.status, head.headers["Content-Type"], head.body) == \
                (200, "text/event-stream", b"")
        refused = call(running.http_port, "HEAD", path + "&filter=nonsense")
        assert (refused.status, refused.body) == (400, b"")


@pytest.mark.parametrize("path", [
    f"/console/v1/{CATALOG}/userEvents:watchBatches", f"/console/v1/{TENANT}/clientEvents:watch",
    "/console/v1/projects/p/rejections:watch", f"/console/v1/{CATALOG}/rejections:watch"])
def test_head_of_a_watch_holds_no_watch_while_its_client_stays(settings: Settings,
                                                               clock: FixedClock,
                                                               path: str) -> None:
    # A client that keeps its connection after a HEAD (any client that reuses
    # connections) held the watch opened for it until it left.
    for running in serve(settings, clock, max_watches=1):
        kept = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=10)
        try:
            for _ in range(2):
                kept.request("HEAD", path)
                head = kept.getresponse()
                assert (head.status, head.getheader("Content-Type"), head.read()) == \
                    (200, "text/event-stream", b"")
            assert call(running.http_port, "HEAD", path).status == 200
        finally:
            kept.close()


def test_head_of_the_pixel_records_nothing(gateway: Running) -> None:
    """A link checker or prefetcher asking for the pixel's headers is no visit: HEAD
    answers what an accepted pixel is answered, and records (or refuses) nothing."""
    good = collect_path({"eventType": "home-page-view", "visitorId": "v1"})
    bad = collect_path({"eventType": "home-page-view"})
    for path in (good, bad, good + "&$alt=json"):
        head = call(gateway.http_port, "HEAD", path)
        assert (head.status, head.body) == (200, b""), head.headers
        assert "X-Footfall-Error" not in head.headers
    head, got = _head_and_get(gateway, good)
    assert dict(head.headers) == dict(got.headers)
    assert (head.headers["Content-Type"], head.headers["Content-Length"]) == \
        ("image/gif", str(len(PIXEL_GIF)))
    as_json = call(gateway.http_port, "HEAD", good + "&$alt=json")
    assert as_json.headers["Content-Type"] == "application/json; charset=utf-8"
    assert [e.visitor_id for e in stored(gateway)] == ["v1"]  # the GET's
    assert get(gateway, "/console/v1/projects/-/rejections").json() == {}


# -- the pixel ------------------------------------------------------------------


def test_pixel_answers_a_gif_and_fills_the_event_from_the_request(gateway: Running) -> None:
    reply = get(gateway, collect_path({"eventType": "home-page-view", "visitorId": "v1"}),
                **{"User-Agent": "Mozilla/5.0 (pixel test)",
                   "Referer": "https://shop.example/home"})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "image/gif"
    assert reply.headers["Cache-Control"] == "no-store"
    assert "X-Footfall-Error" not in reply.headers
    assert reply.body == PIXEL_GIF
    [event] = stored(gateway)
    assert event.user_info.user_agent == "Mozilla/5.0 (pixel test)"
    assert event.user_info.ip_address == "127.0.0.1"
    assert event.uri == "https://shop.example/home"  # the page the pixel is on
    assert event.referrer_uri == ""


def test_pixel_keeps_what_the_event_says(gateway: Running) -> None:
    event = {"eventType": "home-page-view", "visitorId": "v1", "uri": "https://a/b",
             "userInfo": {"userAgent": "app/1.0", "ipAddress": "2001:db8::1"}}
    get(gateway, collect_path(event), **{"User-Agent": "other", "Referer": "https://c/d"})
    [stored_event] = stored(gateway)
    assert (stored_event.uri, stored_event.user_info.user_agent,
            stored_event.user_info.ip_address) == ("https://a/b", "app/1.0", "2001:db8::1")


def test_refused_pixel_is_still_a_gif_with_the_reason_in_a_header(
        gateway: Running, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="footfall.requests")
    caplog.set_level(logging.DEBUG, logger="server.http.pixel")  # (the handler's level too)
    reply = get(gateway, collect_path({"eventType": "home-page-view"}))
    [call] = [r for r in caplog.records if r.name == "footfall.requests"]
    # its call's line at INFO, as every client's mistake (anyone may send pixels: a
    # WARNING each would let anyone fill the log at the level operators watch)
    assert call.levelno == logging.INFO
    assert "code=INVALID_ARGUMENT" in call.getMessage()
    assert "user_event.visitor_id: is required" in call.getMessage()
    # the line naming its client's address at DEBUG (besides the call's, it doubled
    # the lines of a flood, outside the budgets of lines: see server.http.pixel)
    [line] = [r for r in caplog.records if r.name == "server.http.pixel"]
    assert line.levelno == logging.DEBUG
    assert "pixel from 127.0.0.1 refused: INVALID_ARGUMENT" in line.getMessage()
    assert (reply.status, reply.headers["Content-Type"], reply.body) == \
        (200, "image/gif", PIXEL_GIF)
    assert reply.headers["X-Footfall-Error"] == \
        "INVALID_ARGUMENT: user_event.visitor_id: is required"
    unknown = get(gateway, collect_path({"eventType": "home-page-view", "visitorId": "v"},
                                        extra="&nonsense=1"))
    assert unknown.body == PIXEL_GIF
    assert "nonsense" in unknown.headers["X-Footfall-Error"]
    assert stored(gateway) == []


def test_api_clients_asking_for_json_get_json(gateway: Running) -> None:
    path = collect_path({"eventType": "home-page-view", "visitorId": "v1"},
                        extra="&$alt=json;enum-encoding=int")
    body = get(gateway, path).json()
    assert body == {"contentType": "image/gif",
                    "data": base64.b64encode(PIXEL_GIF).decode()}
    refused = get(gateway, collect_path({"eventType": "x"}, extra="&$alt=json"))
    assert refused.status == 400
    assert set(refused.violations()) == {"user_event.visitor_id"}


def test_collect_by_post_with_the_whole_request_as_body(gateway: Running) -> None:
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:collect",
                 {"userEvent": json.dumps({"eventType": "home-page-view", "visitorId": "v1"}),
                  "uri": "https://shop/x", "ets": "1714564800000"})
    assert (reply.status, reply.body) == (200, PIXEL_GIF)
    [event] = stored(gateway)
    assert (event.uri, event.event_time.seconds) == ("https://shop/x", 1714564800)
    in_query = post(gateway, f"/v2/{CATALOG}/userEvents:collect?uri=x", {"userEvent": "{}"})
    assert set(in_query.violations()) == {"uri"}


def test_forwarded_for_is_used_only_when_trusted(settings: Settings, clock: FixedClock) -> None:
    # What the client wrote, then what the proxy in front of the server added.
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}
    for trusted, expected in ((False, "127.0.0.1"), (True, "203.0.113.9")):
        for running in serve(settings, clock, trust_forwarded_for=trusted,
                             store=f"{settings.store}-{trusted}"):
            get(running, collect_path({"eventType": "home-page-view", "visitorId": "v"}),
                **headers)
            assert stored(running)[0].user_info.ip_address == expected


def test_a_forwarded_address_with_a_zone_is_stored_without_it(settings: Settings,
                                                             clock: FixedClock) -> None:
    # A proxy may write an IPv6 link-local address with its interface (fe80::1%eth0),
    # which user_info.ip_address refuses: what the server fills in must not refuse the
    # event it fills.
    for running in serve(settings, clock, trust_forwarded_for=True):
        answer = get(running, collect_path({"eventType": "home-page-view", "visitorId": "v"}),
                     **{"X-Forwarded-For": "fe80::1%eth0"})
        assert "X-Footfall-Error" not in answer.headers
        assert stored(running)[0].user_info.ip_address == "fe80::1"


# -- CORS and the tracker ---------------------------------------------------------


def test_cors_preflight_and_headers(gateway: Running) -> None:
    path = f"/v2/{CATALOG}/userEvents:write"
    preflight = call(gateway.http_port, "OPTIONS", path, headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type"
    reply = post(gateway, path, {"eventType": "home-page-view", "visitorId": "v"},
                 Origin="https://shop.example")
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert call(gateway.http_port, "OPTIONS", "/v2/nowhere").status == 404


def test_a_preflight_grants_the_headers_it_names_within_bounds(gateway: Running) -> None:
    """The headers a preflight names were said back as they came, up to the 64 KiB of a
    header line: now the field names among the first 32, and the Google clients' own
    as ever."""
    path = f"/v2/{CATALOG}/userEvents:write"

    def granted(asked: str) -> list[str]:
        preflight = call(gateway.http_port, "OPTIONS", path, headers={
            "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked})
        assert preflight.status == 204
        return [name.strip() for name in
                preflight.headers["Access-Control-Allow-Headers"].split(",")]

    google = ["authorization", "content-type", "x-goog-api-client", "x-goog-api-key"]
    assert granted(",".join(google)) == google
    flood = [f"x-h{n:05}" for n in range(6_000)]  # 47 KiB
    assert granted(",".join(flood)) == flood[:32]
    assert granted(f"content-type, x y, {'x' * 65}, <b>, x-ok") == ["content-type", "x-ok"]


def test_cors_origins_can_be_listed(settings: Settings, clock: FixedClock) -> None:
    for running in serve(settings, clock, cors_origins=("https://shop.example",)):
        path = f"/v2/{CATALOG}/userEvents:write"
        body = {"eventType": "home-page-view", "visitorId": "v"}
        allowed = post(running, path, body, Origin="https://shop.example")
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        assert allowed.headers["Vary"] == "Origin"
        other = post(running, path, body, Origin="https://evil.example")
        assert "Access-Control-Allow-Origin" not in other.headers
        assert other.status == 403  # and not written (test_http_crosssite.py)


def test_tracker_script_is_served(gateway: Running) -> None:
    reply = get(gateway, "/footfall.js")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/javascript")
    script = reply.body.decode()
    assert "window.footfall" in script and "userEvents:collect" in script


def test_tracker_script_is_revalidated_by_its_etag(gateway: Running) -> None:
    """A browser's copy past its max-age is checked with If-None-Match and answered
    304 with no body (it had no ETag: each visitor's page fetched 25 KB again every
    five minutes, and a client asking in a loop had every byte sent)."""
    reply = get(gateway, "/footfall.js")
    etag = reply.headers["ETag"]
    assert etag.startswith('"') and reply.headers["Cache-Control"] == "public, max-age=300"
    again = get(gateway, "/footfall.js", **{"If-None-Match": f'"other", {etag}'})
    assert again.status == 304 and again.body == b"" and again.headers["ETag"] == etag
    assert get(gateway, "/footfall.js", **{"If-None-Match": '"other"'}).status == 200


def test_same_servicer_answers_grpc_and_http(gateway: Running) -> None:
    """A REST write is visible through gRPC's store and vice versa: one implementation."""
    import grpc
    from footfall.retail.v2 import user_event_service_pb2, user_event_service_pb2_grpc

    post(gateway, f"/v2/{CATALOG}/userEvents:write",
         {"eventType": "home-page-view", "visitorId": "rest"})
    with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stub = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        request = user_event_service_pb2.WriteUserEventRequest(parent=CATALOG)
        json_format.ParseDict({"eventType": "home-page-view", "visitorId": "grpc"},
                              request.user_event)
        stub.WriteUserEvent(request, timeout=10)
    assert [e.visitor_id for e in stored(gateway)] == ["rest", "grpc"]


# -- flags ----------------------------------------------------------------------------


def parse_serve(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, env or {})
    return settings_from_args(parser.parse_args(argv))


def test_http_flags_and_variables() -> None:
    default = parse_serve([])
    assert (default.http_port, default.cors_origins, default.trust_forwarded_for) == \
        (8080, ("*",), False)
    assert parse_serve(["--http-port", "-1"]).http_port == -1  # any free port
    assert parse_serve([], {"FOOTFALL_HTTP_PORT": "0"}).http_port == 0  # off
    listed = parse_serve(["--cors-origins", "https://a.example, https://b.example",
                          "--trust-forwarded-for"])
    assert listed.cors_origins == ("https://a.example", "https://b.example")
    assert listed.trust_forwarded_for is True
    assert parse_serve([], {"FOOTFALL_CORS_ORIGINS": ""}).cors_origins == ()
    with pytest.raises(SystemExit):
        parse_serve(["--http-port", "70000"])


def test_a_taken_http_port_fails_the_start_and_releases_everything(
        gateway: Running, settings: Settings, clock: FixedClock, tmp_path: Path) -> None:
    taken = dataclasses.replace(settings, http_port=gateway.http_port,
                                store=f"sqlite:///{tmp_path}/other.db")
    with pytest.raises(OSError, match="cannot listen for HTTP"):
        start(taken, clock)


def test_a_long_pixel_url_is_accepted(gateway: Running) -> None:
    event = {"eventType": "search", "visitorId": "v", "searchQuery": "tent " * 900,
             "pageCategories": [f"Outdoor > Tents > {i}" for i in range(300)]}
    path = collect_path(event)
    assert len(path) > 16_000  # twice what aiohttp takes by default
    reply = get(gateway, path)
    assert "X-Footfall-Error" not in reply.headers, reply.headers["X-Footfall-Error"]
    assert len(stored(gateway)[0].page_categories) == 300


@pytest.mark.parametrize("route", ["userEvents:write"])
@pytest.mark.parametrize("body", [b"[]", b'"abc"', b"5", b"null", b"true"])
def test_a_body_that_is_no_json_object_is_refused_naming_the_body(
        gateway: Running, route: str, body: bytes) -> None:
    reply = post(gateway, f"/v2/{CATALOG}/{route}", body)
    assert reply.status == 400, reply.body
    assert "must be a JSON object" in reply.violations()["user_event"]
    assert stored(gateway) == []


@pytest.mark.parametrize("charset", ["utf-16", "UTF-16LE", '"iso-8859-1"', "latin1"])
def test_a_body_in_another_charset_than_utf8_is_refused_and_kept(gateway: Running,
                                                                 charset: str) -> None:
    # JSON between systems is UTF-8 (RFC 8259 section 8.1): reading it as such
    # would store what the client did not send.
    event = {"eventType": "home-page-view", "visitorId": "v\u00e9"}
    body = json.dumps(event, ensure_ascii=False).encode(charset.strip('"').replace("LE", "-le"))
    for path, content_type in ((f"/v2/{CATALOG}/userEvents:write", "application/json"),
                               (f"/v2/{CATALOG}/userEvents:collect", "text/plain")):
        refused = post(gateway, path, body if "write" in path else
                       json.dumps({"userEvent": json.dumps(event)}).encode(),
                       **{"Content-Type": f"{content_type}; charset={charset}"})
        assert (refused.status, refused.error()["status"]) == (415, "INVALID_ARGUMENT")
        assert refused.violations() == {"Content-Type": (
            f"charset {charset.strip(chr(34))!r}: a JSON body must be UTF-8 (RFC 8259), "
            f"sent as charset=utf-8 or without a charset")}
    assert stored(gateway) == []
    kept = get(gateway, "/console/v1/projects/-/rejections").json()["rejections"]
    assert [(r["method"].rpartition("/")[2], r["transport"]) for r in kept] == \
        [("CollectUserEvent", "PIXEL"), ("WriteUserEvent", "REST")]
    assert all(f"charset {charset.strip(chr(34))!r}" in r["message"] for r in kept)


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", '"utf-8"', "US-ASCII"])
def test_a_body_in_utf8_or_ascii_is_read(gateway: Running, charset: str) -> None:
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write",
                 {"eventType": "home-page-view", "visitorId": "v"},
                 **{"Content-Type": f"application/json; charset={charset}"})
    assert reply.status == 200, reply.body
    assert [e.visitor_id for e in stored(gateway)] == ["v"]


def test_a_bad_json_value_names_its_field_path(gateway: Running) -> None:
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write",
                 {"eventType": "home-page-view", "visitorId": "v",
                  "userInfo": {"ipAddress": 3}, "eventTime": "2024-13-01T00:00:00Z"})
    assert reply.status == 400
    violations = reply.violations()
    assert "must be a JSON string" in violations["user_event.user_info.ip_address"]
    assert stored(gateway) == []


def test_a_json_value_of_the_wrong_kind_names_its_field_in_plain_words(
        gateway: Running) -> None:
    """A list or map given the wrong kind named only user_event, and an object where a
    number goes said Python's words ("int() argument must be a string, a bytes-like
    object or a real number, not 'dict'")."""
    # (One text where a list of texts goes is read as a list of one, as Google reads it.)
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write",
                 {"eventType": "detail-page-view", "visitorId": "v", "productDetails": "x"})
    assert reply.status == 400
    assert reply.violations() == {"user_event.product_details": "Invalid JSON payload "
                                  "received: must be a JSON array, got \"x\""}
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write",
                 {"eventType": "detail-page-view", "visitorId": "v",
                  "productDetails": [{"product": {"id": "p"}, "quantity": {"value": 1}}]})
    assert reply.status == 400
    assert reply.violations() == {"user_event.product_details[0].quantity": "Invalid JSON "
                                  "payload received: must be a whole number, got an object"}
    assert stored(gateway) == []


def test_a_map_value_of_null_names_its_key(gateway: Running) -> None:
    """A map's value given as null named the map alone, in Python's words ("'NoneType'
    object is not iterable"), over REST and in a pixel's event."""
    event = {"eventType": "home-page-view", "visitorId": "v",
             "attributes": {"color": {"text": ["red"]}, "size": None}}
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write", event)
    assert reply.status == 400
    assert reply.violations() == {"user_event.attributes['size']": "Invalid JSON payload "
                                  "received: must not be null (a map's value: leave its "
                                  "key out)"}
    pixel = get(gateway, collect_path(event))
    assert pixel.status == 200
    assert pixel.headers["X-Footfall-Error"] == (
        "INVALID_ARGUMENT: user_event.attributes['size']: not a valid UserEvent in JSON: "
        "must not be null (a map's value: leave its key out)")
    assert stored(gateway) == []


def test_a_large_request_is_decoded_off_the_loop(gateway: Running,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # A body of a few MB takes the JSON parser seconds: on the loop it would hold up
    # every call of both transports meanwhile.
    from server.http import transcode
    from server.policy.envelope import LARGE_REQUEST_BYTES, LARGE_REQUEST_ELEMENTS
    decoded_on: list[str] = []
    build = transcode.build_request

    def recording(*args: Any) -> Any:
        decoded_on.append(threading.current_thread().name)
        return build(*args)

    monkeypatch.setattr(transcode, "build_request", recording)
    categories = ["c" * 20] * (LARGE_REQUEST_BYTES // 20)
    for event in ({"eventType": "home-page-view", "visitorId": "small"},
                  {"eventType": "category-page-view", "visitorId": "large",
                   "pageCategories": categories}):
        post(gateway, f"/v2/{CATALOG}/userEvents:write", event)
    assert [name.rpartition("_")[0] for name in decoded_on] == ["", "footfall-decode"]
    assert decoded_on[0] == "footfall-loop"
    # a pixel too, though a short one is served inline, on the loop (a large one is
    # then refused for its size: over 16 KiB of event in a URL, as on Google)
    for event in ({"eventType": "home-page-view", "visitorId": "small-pixel"},
                  {"eventType": "category-page-view", "visitorId": "large-pixel",
                   "pageCategories": categories}):
        answer = get(gateway, collect_path(event))
        assert answer.status == 200
    assert "at most 16,384 characters" in answer.headers["X-Footfall-Error"]
    assert [name.rpartition("_")[0] for name in decoded_on[2:]] == ["", "footfall-decode"]
    assert [e.visitor_id for e in stored(gateway)] == ["small", "large", "small-pixel"]
    # ... and so is one of many elements in few bytes, pixel or not: 620 products (16
    # KiB) of GET pixels, served inline, took another project's writes from about 860
    # a second to 7
    many = {"eventType": "detail-page-view", "visitorId": "many",
            "productDetails": [{"product": {"id": f"p{i}"}}
                               for i in range(LARGE_REQUEST_ELEMENTS)]}
    del decoded_on[:]
    post(gateway, f"/v2/{CATALOG}/userEvents:write", many)
    assert get(gateway, collect_path({**many, "visitorId": "many-pixel"})).status == 200
    assert [name.rpartition("_")[0] for name in decoded_on] == ["footfall-decode"] * 2
    assert [e.visitor_id for e in stored(gateway)][-2:] == ["many", "many-pixel"]


def test_a_large_answer_is_written_off_the_loop(gateway: Running,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # json_format writes about 3 MB a second: the echo of a 2 MB event written on the
    # loop held every call of both transports for 1.6 s.
    from server.http import transcode
    written_on: list[str] = []
    write = transcode.response_json

    def recording(*args: Any) -> Any:
        written_on.append(threading.current_thread().name)
        return write(*args)

    monkeypatch.setattr(transcode, "response_json", recording)
    categories = ["c" * 20] * 4_000  # 80 KB, past the 64 KiB of LARGE_ANSWER_BYTES
    gateway.store.write_user_events([EventRow.from_event(CATALOG, json_format.ParseDict(
        {"eventType": "category-page-view", "visitorId": "large", "pageCategories": categories,
         "eventTime": "2026-01-01T00:00:00Z"}, user_event_pb2.UserEvent()), joined=True)])
    assert get(gateway, f"/v2/{CATALOG}/branches/0/products").status == 200  # small
    listed = get(gateway, f"/console/v1/{CATALOG}/userEvents")  # a small request, large answer
    assert listed.status == 200
    assert listed.json()["userEvents"][0]["userEvent"]["visitorId"] == "large"
    assert [name.rpartition("_")[0] for name in written_on] == ["", "footfall-decode"]
    assert written_on[0] == "footfall-loop"


def test_a_small_answer_of_many_fields_is_written_off_the_loop(
        gateway: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    # json_format's time goes by fields, not bytes: an event of 9,000 product details
    # is 63 KB (under LARGE_ANSWER_BYTES) and 792 KB of JSON, and each GET of it held
    # the loop 78 ms. A page of 150 ordinary events, about as large, is still written
    # on the loop.
    from server.http import transcode
    written_on: list[str] = []
    write = transcode.response_json

    def recording(*args: Any) -> Any:
        written_on.append(threading.current_thread().name.rpartition("_")[0] or
                          threading.current_thread().name)
        return write(*args)

    monkeypatch.setattr(transcode, "response_json", recording)
    other = CATALOG.replace("default_catalog", "other")
    many = json_format.ParseDict(
        {"eventType": "detail-page-view", "visitorId": "many", "eventTime": NOW,
         "productDetails": [{"product": {"id": "p"}}] * 9_000}, user_event_pb2.UserEvent())
    assert many.ByteSize() < transcode.LARGE_ANSWER_BYTES
    ordinary = [json_format.ParseDict(
        {"eventType": "detail-page-view", "visitorId": f"visitor-{i}", "eventTime": NOW,
         "sessionId": f"session-{i}", "uri": "https://shop.example.com/p/12345?ref=home",
         "userInfo": {"userId": f"user-{i}", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"},
         "productDetails": [{"product": {"id": f"sku-{i}-{k}"}, "quantity": 1}
                            for k in range(3)],
         "attributes": {"campaign": {"text": ["spring"]}}}, user_event_pb2.UserEvent())
        for i in range(150)]
    gateway.store.write_user_events([EventRow.from_event(CATALOG, many, joined=True)] + [
        EventRow.from_event(other, event, joined=True) for event in ordinary])
    page = get(gateway, f"/console/v1/{other}/userEvents?pageSize=150")
    assert page.status == 200 and len(page.json()["userEvents"]) == 150
    assert len(page.body) > 100_000  # (as large a page as that of the event of 9,000)
    listed = get(gateway, f"/console/v1/{CATALOG}/userEvents")
    assert listed.status == 200
    assert len(listed.json()["userEvents"][0]["userEvent"]["productDetails"]) == 9_000
    assert written_on == ["footfall-loop", "footfall-decode"]


def json_held_back(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """An event until whose setting the decoder threads write no answer's JSON."""
    from server.http import transcode
    gate = threading.Event()
    write = transcode.response_json

    def held_back(*args: Any) -> Any:
        if threading.current_thread().name.startswith("footfall-decode"):
            assert gate.wait(30)
        return write(*args)

    monkeypatch.setattr(transcode, "response_json", held_back)
    return gate


def test_large_answers_waiting_to_be_written_hold_a_bounded_number_of_bytes(
        settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large answer waits for one of the two decoder threads to be written as JSON:
    30 console reads at once of pages of one event naming 60,000 products held 1.2 GB
    waiting. The answers waiting or being written hold at most ANSWERS_HELD times
    --max-request-bytes between them; past that a read is refused 429 with a
    Retry-After, and the room is given back as they are written."""
    from server.http.answers import ANSWERS_HELD
    limit = 64 * 1024  # the room: 1 MiB
    gate = json_held_back(monkeypatch)
    page = f"/console/v1/{CATALOG}/userEvents?pageSize=4"
    for running in serve(settings, clock, max_request_bytes=limit):
        running.store.write_user_events([EventRow.from_event(CATALOG, json_format.ParseDict(
            {"eventType": "category-page-view", "visitorId": f"v{i}",
             "pageCategories": ["c" * 20] * 3_400, "eventTime": NOW},
            user_event_pb2.UserEvent()), joined=True) for i in range(4)])  # 75 KB each
        answers = running.http._answers  # type: ignore[union-attr]
        assert answers.room == ANSWERS_HELD * limit
        with concurrent.futures.ThreadPoolExecutor(3) as readers:
            try:
                waiting, sizes = [], [0]
                for _ in range(3):  # two being written, one waiting
                    waiting.append(readers.submit(get, running, page))
                    sizes.append(wait_held(answers, lambda held, was=sizes[-1]: held > was))
                one = sizes[1]
                assert sizes == [0, one, 2 * one, 3 * one]  # (the same page three times)
                assert 3 * one <= answers.room < 4 * one  # (300 KB each: a fourth is over)
                refused = get(running, page)
                assert refused.status == 429, refused.body
                assert refused.headers["Retry-After"] == "1"
                assert refused.error()["status"] == "RESOURCE_EXHAUSTED"
                assert "too many large answers waiting to be written as JSON or sent" in \
                    refused.error()["message"]
                # (a HEAD answers the status its GET would: it wrote no JSON, and was 200)
                assert call(running.http_port, "HEAD", page).status == 429
            finally:
                gate.set()
            for reply in waiting:  # those let in are answered in full
                assert reply.result().status == 200
                assert len(reply.result().json()["userEvents"]) == 4
        wait_held(answers, lambda held: held == 0)  # and their room is given back
        assert get(running, page).status == 200


def test_head_of_a_small_answer_whose_json_is_large_has_its_gets_status(
        settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A message under LARGE_ANSWER_BYTES (of fewer fields than FIELDS_ON_LOOP) is
    written as JSON on the loop, but its JSON, over FREE_ANSWER_BYTES, is counted in
    the budget of large answers as it is sent: refused 429 when they hold the room.
    Its HEAD answered 200."""
    from server.http import transcode
    from server.http.connections import FREE_ANSWER_BYTES
    gate = json_held_back(monkeypatch)
    other = CATALOG.replace("default_catalog", "other")
    large, small = (f"/console/v1/{catalog}/userEvents" for catalog in (CATALOG, other))
    for running in serve(settings, clock, max_request_bytes=8 * 1024):  # room: 128 KiB
        events = {catalog: json_format.ParseDict(
            {"eventType": "detail-page-view", "visitorId": "v", "eventTime": NOW,
             "productDetails": [{"product": {"id": "p"}}] * count}, user_event_pb2.UserEvent())
            for catalog, count in ((CATALOG, 11_000), (other, 2_000))}  # (6,000 fields)
        assert events[other].ByteSize() < transcode.LARGE_ANSWER_BYTES - 1000 < \
            events[CATALOG].ByteSize()
        running.store.write_user_events([EventRow.from_event(catalog, event, joined=True)
                                         for catalog, event in events.items()])
        answers = running.http._answers  # type: ignore[union-attr]
        with concurrent.futures.ThreadPoolExecutor(1) as reader:
            try:
                waiting = reader.submit(get, running, large)  # holds some of the room
                held = wait_held(answers, lambda held: held > 0)
                refused = get(running, small)
                assert refused.status == 429, refused.body
                assert call(running.http_port, "HEAD", small).status == 429
            finally:
                gate.set()
            assert waiting.result().status == 200
        wait_held(answers, lambda held: held == 0)
        answer = get(running, small)
        assert answer.status == 200 and held + len(answer.body) > answers.room
        assert len(answer.body) > FREE_ANSWER_BYTES
        assert call(running.http_port, "HEAD", small).status == 200


def test_a_large_answer_written_after_its_deadline_gives_its_room_back(
        settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write whose X-Server-Timeout passes goes on, and its answer, written as
    JSON once it is done, is never sent: its bytes, held until its request is done
    with them, are given back once it is written (else they held the budget of
    large answers for good)."""
    event = {"eventType": "category-page-view", "visitorId": "late",
             "pageCategories": ["c" * 100_000]}  # an answer larger than LARGE_ANSWER_BYTES
    for running in serve(settings, clock):
        write = running.store.write_user_events_async

        async def slow(*args: Any, write: Any = write, **kwargs: Any) -> Any:
            await asyncio.sleep(0.3)  # (the deadline passes meanwhile)
            return await write(*args, **kwargs)

        monkeypatch.setattr(running.store, "write_user_events_async", slow)
        late = post(running, f"/v2/{CATALOG}/userEvents:write", event,
                    **{"X-Server-Timeout": "0.1"})
        assert late.status == 504, late.body
        answers = running.http._answers  # type: ignore[union-attr]
        deadline = time.monotonic() + 60  # (a loaded CI's took more than 10 s)
        while [e.visitor_id for e in stored(running)] != ["late"]:  # the write goes on
            assert time.monotonic() < deadline, "the write was not stored"
            time.sleep(0.01)
        wait_held(answers, lambda held: held == 0)


def wait_held(answers: Any, until: Callable[[int], bool]) -> int:
    """The bytes `answers` hold once `until` says yes to them (within 10 s)."""
    deadline = time.monotonic() + 10
    while not until(held := answers.total):
        assert time.monotonic() < deadline, f"{held} bytes held for 10 s"
        time.sleep(0.01)
    return held


def test_a_query_that_is_not_utf8_is_refused_not_mended(gateway: Running) -> None:
    # A byte that is no UTF-8 was stored as U+FFFD: the visitor id was not what the
    # page sent. A U+FFFD the page sent itself is text like any other.
    path = f"/v2/{CATALOG}/userEvents:collect?userEvent="
    event = "%7B%22eventType%22%3A%22home-page-view%22%2C%22visitorId%22%3A%22px{}10%22%7D"
    refused = get(gateway, path + event.format("%FF"))
    assert refused.status == 200 and refused.headers["X-Footfall-Error"] == \
        "INVALID_ARGUMENT: userEvent: is not UTF-8 text (byte 0xff at 45)"
    as_json = get(gateway, path + event.format("%C3") + "&$alt=json")
    assert as_json.status == 400 and as_json.violations() == {
        "userEvent": "is not UTF-8 text (byte 0xc3 at 45)"}
    assert get(gateway, path + event.format("%EF%BF%BD")).status == 200
    assert [e.visitor_id for e in stored(gateway)] == ["px\ufffd10"]


def test_a_query_with_a_malformed_percent_escape_is_refused_naming_it(
        gateway: Running) -> None:
    # yarl's decoding kept a '%' that began no escape as it was (the path's now is 400:
    # connections.url_refusal), so `?productId=a%` made the product `a%`, a pixel's event
    # with a bare '%' was stored as written, and so was a write whatever it asked of
    # its answer.
    branch = f"/v2/{BRANCH}/products"
    for product_id in ("a%", "a%zz", "a%2"):
        refused = post(gateway, f"{branch}?productId={product_id}",
                       {"title": "t", "categories": ["c"]})
        at = product_id.index("%")
        assert refused.status == 400 and refused.violations() == {"productId": (
            f"has a malformed percent-escape {product_id[at:at + 3]!r} at character {at + 1} of "
            f"its value: '%' begins an escape of two hex digits (a '%' of a value is written "
            f"%25)")}, refused.body
    assert get(gateway, branch).json() == {}  # no product was made
    write = post(gateway, f"/v2/{CATALOG}/userEvents:write?prettyPrint=false%",
                 {"eventType": "home-page-view", "visitorId": "pretty"})
    assert write.status == 400 and set(write.violations()) == {"prettyPrint"}, write.body
    for visitor in ("px%", "px%zz", "px%4"):  # a pixel's event written in a URL by hand
        event = quote(json.dumps({"eventType": "home-page-view", "visitorId": visitor}),
                      safe="%")
        path = f"/v2/{CATALOG}/userEvents:collect?userEvent={event}"
        image = get(gateway, path)  # the browser's: its GIF, the reason in its header
        assert image.status == 200 and image.body == PIXEL_GIF
        assert image.headers["X-Footfall-Error"].startswith(
            "INVALID_ARGUMENT: userEvent: has a malformed percent-escape '%"), image.headers
        as_json = get(gateway, path + "&$alt=json")
        assert as_json.status == 400 and set(as_json.violations()) == {"userEvent"}
    listed = get(gateway, f"/console/v1/{CATALOG}/userEvents?filter=eventType%")
    assert listed.status == 400 and set(listed.violations()) == {"filter"}, listed.body
    # each parameter so written is named, beside one that is not UTF-8 (a character
    # counted from 1, as a filter's are)
    named = get(gateway, f"/v2/{CATALOG}/userEvents:collect?user%event=%7B%7D&uri=%FF&ets=1%"
                         f"&$alt=json")
    assert named.violations() == {
        "user%event": "has a malformed percent-escape '%ev' at character 5 of its name: '%' "
                      "begins an escape of two hex digits (a '%' of a name is written %25)",
        "uri": "is not UTF-8 text (byte 0xff at 0)",
        "ets": "has a malformed percent-escape '%' at character 2 of its value: '%' begins "
               "an escape of two hex digits (a '%' of a value is written %25)"}, named.body
    assert stored(gateway) == []
    # escapes written out are read as they always were
    assert post(gateway, f"{branch}?productId=a%25zz",
                {"title": "t", "categories": ["c"]}).json()["id"] == "a%zz"
    event = {"eventType": "home-page-view", "visitorId": "px%zz"}
    assert get(gateway, collect_path(event)).headers.get("X-Footfall-Error") is None
    assert [e.visitor_id for e in stored(gateway)] == ["px%zz"]


def test_a_path_that_is_not_utf8_is_refused_not_mended(gateway: Running) -> None:
    # `cat%FFx` was stored under catalog `cat\ufffdx`, the name `cat%EF%BF%BDx` gives.
    path = "/v2/projects/p/locations/global/catalogs/cat{}x/userEvents:write"
    event = {"eventType": "home-page-view", "visitorId": "v"}
    refused = post(gateway, path.format("%FF"), event)
    assert refused.status == 400 and refused.violations() == {
        "parent": "is not UTF-8 text (in the URL path)"}
    assert post(gateway, path.format("%EF%BF%BD"), event).status == 200
    assert get(gateway, collect_path(event, catalog="projects/p/locations/global/catalogs/c%FF")
               ).headers["X-Footfall-Error"] == \
        "INVALID_ARGUMENT: parent: is not UTF-8 text (in the URL path)"


def test_a_lenient_form_beside_a_bad_field_reports_the_bad_field(gateway: Running) -> None:
    """One text where a list goes is read as a list of one: the refusal of the event
    names what is still wrong once it is, not the field read leniently (it named
    user_event.experiment_ids, "must be a JSON array", for an unknown field or a bad
    time beside it)."""
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write",
                 {"eventType": "home-page-view", "visitorId": "v", "experimentIds": "x",
                  "eventTime": "2024-13-01T00:00:00Z"})
    assert reply.status == 400
    assert list(reply.violations()) == ["user_event.event_time"]
    reply = post(gateway, f"/v2/{CATALOG}/userEvents:write",
                 {"eventType": "home-page-view", "visitorId": "v", "experimentIds": "x",
                  "clicks": 3})
    assert reply.status == 400
    [(field, why)] = reply.violations().items()
    assert "clicks" in why and "experiment" not in field
    assert stored(gateway) == []


def test_a_gcs_root_that_cannot_be_made_fails_the_start_naming_the_flag(
        settings: Settings, clock: FixedClock, tmp_path: Path) -> None:
    """It said only "[Errno 2] No such file or directory: '/proc/x'"."""
    (tmp_path / "a-file").write_text("")
    bad = dataclasses.replace(settings, gcs_root=str(tmp_path / "a-file" / "gcs"))
    with pytest.raises(OSError, match=r"^--gcs-root .*/a-file/gcs: cannot make the folder: "):
        start(bad, clock)
    start(settings, clock).stop()  # nothing was left held (the store was closed)


def test_metrics_are_rendered_off_the_loop_and_scrapes_at_once_share_one(
        settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rendered on the loop for each scrape (about 15 ms a page), 40 keyless HEADs
    of /metrics a second took another caller's writes from 579 a second to 6."""
    from server.policy import metrics
    rendered_on: list[str] = []
    render = metrics.Metrics.render

    def recording(self: metrics.Metrics) -> tuple[bytes, str]:
        rendered_on.append(threading.current_thread().name)
        return render(self)

    monkeypatch.setattr(metrics.Metrics, "render", recording)
    for running in serve(settings, clock):
        head = call(running.http_port, "HEAD", "/metrics")
        assert head.status == 200 and head.headers["Content-Type"].startswith("text/plain")
        assert rendered_on == []  # the headers alone
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            pages = list(pool.map(get, [running] * 30, ["/metrics"] * 30))
        assert all(p.status == 200 and b"footfall_requests_total" in p.body for p in pages)
        assert 1 <= len(rendered_on) < 10, rendered_on  # shared, not one each
        assert "footfall-loop" not in rendered_on
        # each page is rendered after its request came: a write just answered is in it
        assert post(running, f"/v2/{CATALOG}/userEvents:write",
                    {"eventType": "home-page-view", "visitorId": "v"}).status == 200
        page = get(running, "/metrics").body.decode()
        assert 'footfall_requests_total{code="OK",method="WriteUserEvent",service=' \
               '"google.cloud.retail.v2.UserEventService",transport="http"} 1.0' in page


@pytest.mark.parametrize("path", [
    "/v2/nowhere",
    "/v2/projects/p/catalogs/default_catalog/userEvents:collect?userEvent=%7B%7D"])
def test_a_key_header_not_of_utf_8_is_masked_not_a_500(gateway: Running, path: str) -> None:
    """A byte 0xff in an x-goog-api-key header (aiohttp gives it as a surrogate) made
    the mask of the no-route message raise: 500 and an ERROR with its traceback, for
    any client, no key needed."""
    with socket.create_connection(("127.0.0.1", gateway.http_port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     .encode() + b"x-goog-api-key: ab\xffc\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith((b"HTTP/1.1 404 ", b"HTTP/1.1 200 ")), answer[:300]
    assert b"no route for GET" in answer, answer[:600]
