"""An event or product in the forms Google's JSON front end reads beyond proto3 JSON
(one object where a list goes, a map as a list of entries) whose value is wrong: the
refusal names the element of the list as it does for the proto3 form, over every road
into a `footfall serve` subprocess (REST write, the pixel, CollectUserEvent through
the official client, lines of imported files, inline imports over REST); and those
forms in requests other than writes and imports (Google's own purge example)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2

from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    count_events,
    finish,
    put_gcs,
)

MAP_AS_ENTRIES = {"product": {"id": "tent", "attributes": [
    {"key": "colour", "value": {"text": ["green"]}}]}}
# (product details in a lenient form, the field at fault below the event, what is said)
CASES = [
    pytest.param({"product": {"id": "tent"}, "quantity": {"value": 2}},
                 "product_details[0].quantity", "must be a whole number, got an object",
                 id="one-object"),
    pytest.param({"product": {"id": "tent"}, "quantity": 1.5},
                 "product_details[0].quantity", "Couldn't parse integer: 1.5",
                 id="one-object-wrapper"),
    pytest.param([MAP_AS_ENTRIES, {"product": {"id": "stakes"}, "quantity": {"value": 2}}],
                 "product_details[1].quantity", "must be a whole number, got an object",
                 id="after-a-map-as-entries"),
]


def cart(details: Any) -> dict[str, Any]:
    return {"eventType": "add-to-cart", "visitorId": "v", "eventTime": "2024-05-20T10:00:00Z",
            "productDetails": details}


def violations(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 400, answer.text
    [bad] = [d for d in answer.json()["error"]["details"]
             if d["@type"].endswith("google.rpc.BadRequest")]
    return {v["field"]: v["description"] for v in bad["fieldViolations"]}


@pytest.mark.parametrize(("details", "field", "says"), CASES)
def test_a_rest_write_names_the_element_at_fault(server: ServerProcess, catalog: str,
                                                 details: Any, field: str, says: str) -> None:
    answer = requests.post(f"http://{server.http_address}/v2/{catalog}/userEvents:write",
                           json=cart(details), timeout=RPC_DEADLINE)
    found = violations(answer)
    assert list(found) == [f"user_event.{field}"] and says in found[f"user_event.{field}"]
    assert count_events(server.store, catalog, server.workdir) == 0


@pytest.mark.parametrize(("details", "field", "says"), CASES)
def test_an_inline_import_over_rest_names_the_element_at_fault(
        server: ServerProcess, catalog: str, details: Any, field: str, says: str) -> None:
    answer = requests.post(f"http://{server.http_address}/v2/{catalog}/userEvents:import",
                           json={"inputConfig": {"userEventInlineSource": {
                               "userEvents": [cart([{"product": {"id": "a"}}]), cart(details)]}}},
                           timeout=RPC_DEADLINE)
    path = f"input_config.user_event_inline_source.user_events[1].{field}"
    found = violations(answer)
    assert list(found) == [path] and says in found[path], found
    assert count_events(server.store, catalog, server.workdir) == 0


@pytest.mark.parametrize(("details", "field", "says"), CASES)
def test_the_pixel_names_the_element_at_fault(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        details: Any, field: str, says: str) -> None:
    text = json.dumps(cart(details))
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.collect_user_event(request={"parent": catalog, "user_event": text},
                                  timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, [f"user_event.{field}"])
    answer = requests.get(f"http://{server.http_address}/v2/{catalog}/userEvents:collect",
                          params={"userEvent": text}, timeout=RPC_DEADLINE)
    assert answer.status_code == 200
    assert f"user_event.{field}: " in answer.headers["X-Footfall-Error"]
    assert count_events(server.store, catalog, server.workdir) == 0


def test_import_lines_name_the_element_at_fault(
        retail: retail_v2.UserEventServiceClient, products: retail_v2.ProductServiceClient,
        server: ServerProcess, catalog: str, branch: str, gcs_folder: str) -> None:
    events = put_gcs(server.gcs_root, f"{gcs_folder}/events.json",
                     [json.dumps(cart(p.values[0])) for p in CASES])
    operation = retail.import_user_events(request={
        "parent": catalog, "input_config": {"gcs_source": {"input_uris": [events]}}},
        timeout=RPC_DEADLINE)
    samples = [s.message for s in finish(operation).error_samples]
    assert [s.partition(": not a UserEvent: ")[2].partition(": ")[0] for s in samples] == \
        [p.values[1] for p in CASES], samples
    # a product's images as one object, beside attributes as a list of entries
    product = {"id": "tent", "title": "Tent", "categories": ["Tents"],
               "images": {"uri": "https://shop.example/tent.jpg", "width": {"px": 300}},
               "attributes": [{"key": "colour", "value": {"text": ["green"]}}]}
    lines = put_gcs(server.gcs_root, f"{gcs_folder}/products.json", [json.dumps(product)])
    operation = products.import_products(request={
        "parent": branch, "input_config": {"gcs_source": {"input_uris": [lines]}}},
        timeout=RPC_DEADLINE)
    [sample] = [s.message for s in finish(operation).error_samples]
    assert sample.startswith(f"{lines} line 1: not a Product: images[0].width: "), sample


def operation_of(server: ServerProcess, answer: requests.Response) -> dict[str, Any]:
    """The operation a REST call started, once done (polled over REST)."""
    assert answer.status_code == 200, answer.text
    name = answer.json()["name"]
    for _ in range(200):
        found = requests.get(f"http://{server.http_address}/v2/{name}",
                             timeout=RPC_DEADLINE).json()
        if found.get("done"):
            return dict(found)
        time.sleep(0.05)
    raise AssertionError(f"{name} not done")


def test_googles_purge_example_runs_as_its_page_sends_it(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    """The curl example of Google's "Manage user events" page sends `"force":"false"`,
    a boolean in quotes: refused with "Expected true or false without quotes", as only
    imports and writes were read in Google's forms."""
    for minute in ("26", "29", "31"):
        retail.write_user_event(request={"parent": catalog, "user_event": {
            "event_type": "home-page-view", "visitor_id": f"v-{minute}",
            "event_time": f"2019-12-23T18:{minute}:00Z"}}, timeout=RPC_DEADLINE)
    window = 'eventTime > "2019-12-23T18:25:43.511Z" eventTime < "2019-12-23T18:30:43.511Z"'
    url = f"http://{server.http_address}/v2/{catalog}/userEvents:purge"
    counted = operation_of(server, requests.post(
        url, data=json.dumps({"filter": window, "force": "false"}, separators=(",", ":")),
        headers={"Content-Type": "application/json; charset=utf-8"}, timeout=RPC_DEADLINE))
    assert counted["response"]["purgedEventsCount"] == "2", counted
    assert count_events(server.store, catalog, server.workdir) == 3  # counted, not purged
    purged = operation_of(server, requests.post(url, json={"filter": window, "force": "true"},
                                                timeout=RPC_DEADLINE))
    assert purged["response"]["purgedEventsCount"] == "2", purged
    assert count_events(server.store, catalog, server.workdir) == 1
    # What Google refuses still is: a boolean's other words.
    refused = requests.post(url, json={"filter": window, "force": "yes"}, timeout=RPC_DEADLINE)
    assert list(violations(refused)) == ["force"], refused.text


def test_googles_single_quoted_curl_bodies_run_as_its_pages_send_them(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    """Google's pages on managing user events send their JSON in single quotes (`--data
    "{ 'userEventRejoinScope': 'UNJOINED_EVENTS' }"`): refused as "expected a string
    key". What is still not JSON once its quotes are doubled is refused as sent."""
    for minute in ("26", "29", "31"):
        retail.write_user_event(request={"parent": catalog, "user_event": {
            "event_type": "detail-page-view", "visitor_id": f"v-{minute}",
            "event_time": f"2019-12-23T18:{minute}:00Z",
            "product_details": [{"product": {"id": "never-listed"}}]}}, timeout=RPC_DEADLINE)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    base = f"http://{server.http_address}/v2/{catalog}/userEvents"
    rejoined = operation_of(server, requests.post(
        f"{base}:rejoin", data="{\n     'userEventRejoinScope': 'UNJOINED_EVENTS'\n     }",
        headers=headers, timeout=RPC_DEADLINE))
    assert rejoined["response"]["@type"].endswith("RejoinUserEventsResponse"), rejoined
    assert "error" not in rejoined and rejoined["response"].get(
        "rejoinedUserEventsCount", "0") == "0", rejoined  # (no product is listed)
    # a double quote inside single quotes, as the shell leaves `\"` of the purge example
    purge = ("{ 'filter':'eventTime > \"2019-12-23T18:25:43.511Z\" "
             "eventTime < \"2019-12-23T18:30:43.511Z\"', 'force':'true' }")
    purged = operation_of(server, requests.post(f"{base}:purge", data=purge, headers=headers,
                                                timeout=RPC_DEADLINE))
    assert purged["response"]["purgedEventsCount"] == "2", purged
    assert count_events(server.store, catalog, server.workdir) == 1
    # Python's str() of a dict: True is no JSON in any quotes; said where it stops
    refused = requests.post(f"{base}:purge", data="{'filter': '*', 'force': True}",
                            headers=headers, timeout=RPC_DEADLINE)
    assert refused.status_code == 400 and list(violations(refused)) == ["body"], refused.text
    said = violations(refused)["body"]
    assert "line 1 column 26" in said and said.endswith("(its strings in single quotes read "
                                                        "as double)"), said
    assert count_events(server.store, catalog, server.workdir) == 1


def imported_failures(retail: retail_v2.UserEventServiceClient, server: ServerProcess,
                      catalog: str, uri: str, event: dict[str, Any]) -> list[str]:
    """The error samples of importing `event` as the one line of the file `uri`."""
    lines = put_gcs(server.gcs_root, uri, [json.dumps(event)])
    operation = retail.import_user_events(request={
        "parent": catalog, "input_config": {"gcs_source": {"input_uris": [lines]}}},
        timeout=RPC_DEADLINE)
    return [s.message for s in finish(operation).error_samples]


def test_a_field_under_both_its_names_is_refused_on_every_road(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str) -> None:
    """`visitorId` and `visitor_id` in one event: the last was stored, silently (a key
    given twice in the query was refused already)."""
    event = {"eventType": "home-page-view", "visitorId": "a", "visitor_id": "b",
             "eventTime": "2024-05-20T10:00:00Z"}
    said = "given twice, as 'visitorId' and 'visitor_id' (its JSON and its proto name)"
    found = violations(requests.post(f"http://{server.http_address}/v2/{catalog}"
                                     f"/userEvents:write", json=event, timeout=RPC_DEADLINE))
    assert list(found) == ["user_event.visitor_id"] and said in found["user_event.visitor_id"]
    pixel = requests.get(f"http://{server.http_address}/v2/{catalog}/userEvents:collect",
                         params={"userEvent": json.dumps(event)}, timeout=RPC_DEADLINE)
    assert pixel.status_code == 200 and said in pixel.headers["X-Footfall-Error"]
    tenant = catalog.replace("/locations/global/catalogs/", "/tenants/")
    talent = violations(requests.post(
        f"http://{server.http_address}/v4/{tenant}/clientEvents", timeout=RPC_DEADLINE,
        json={"eventId": "e-1", "event_id": "e-2", "createTime": "2024-05-20T10:00:00Z",
              "jobEvent": {"type": "VIEW", "jobs": [f"{tenant}/jobs/j"]}}))
    assert list(talent) == ["client_event.event_id"], talent
    [sample] = imported_failures(retail, server, catalog, f"{gcs_folder}/twice.json", event)
    assert "visitor_id" in sample and said in sample, sample
    assert count_events(server.store, catalog, server.workdir) == 0


@pytest.mark.parametrize(("value", "kind"), [("u1", "a text, 'u1'"), (5, "a number, 5"),
                                             (True, "true"), ("", "a text, ''")])
def test_a_scalar_where_an_object_goes_is_refused_in_words_on_every_road(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str, value: Any, kind: str) -> None:
    """`"userInfo": "u1"` was refused as having "no field named \\"u\\"" (a text read as
    the names of its letters), 5 as "'int' object is not iterable"; and "" was stored,
    as an empty UserInfo."""
    event = {"eventType": "home-page-view", "visitorId": "v", "userInfo": value,
             "eventTime": "2024-05-20T10:00:00Z"}
    said = f"expected a JSON object (a UserInfo), got {kind}"
    found = violations(requests.post(f"http://{server.http_address}/v2/{catalog}"
                                     f"/userEvents:write", json=event, timeout=RPC_DEADLINE))
    assert list(found) == ["user_event.user_info"] and said in found["user_event.user_info"], \
        found
    [sample] = imported_failures(retail, server, catalog, f"{gcs_folder}/scalar.json", event)
    assert "user_info" in sample and said in sample, sample
    assert count_events(server.store, catalog, server.workdir) == 0
