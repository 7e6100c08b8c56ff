"""CollectUserEvent (the pixel call) through the official retail clients."""

from __future__ import annotations

import json
import struct
from typing import Any
from urllib.parse import quote

import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2

from .examples import as_json, example, user_event
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    count_events,
    field_violations,
    list_events,
    retail_async_client,
)

U = "user_event"
# Characters that URL encoding and JSON escaping both care about.
AWKWARD_QUERY = 'tent 2+ person "100% waterproof" & <light> — Zelt für zwei #1'


def collect(client: Any, request: dict[str, Any]) -> Any:
    return client.collect_user_event(request=request, timeout=RPC_DEADLINE)


def event_json(event_type: str, **changes: Any) -> str:
    return json.dumps(example(event_type, **changes), ensure_ascii=False)


def stored_as(data: dict[str, Any]) -> dict[str, Any]:
    """How `data` reads back from the store (canonical proto3 JSON)."""
    return as_json(user_event(data))


def gif_images(data: bytes) -> tuple[tuple[int, int], list[tuple[int, int, int, int]]]:
    """Walk a GIF block by block (failing on any malformed block); returns its
    logical screen size and the (left, top, width, height) of each image."""

    def sub_blocks(pos: int) -> int:
        while True:
            assert pos < len(data), "data sub-blocks run past the end"
            size = data[pos]
            pos += 1 + size
            if size == 0:
                return pos

    def colour_table(flags: int) -> int:
        return 3 * (2 << (flags & 0x07)) if flags & 0x80 else 0

    assert data[:6] in (b"GIF87a", b"GIF89a"), data[:6]
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13 + colour_table(flags)
    images = []
    while True:
        assert pos < len(data), "no trailer"
        introducer = data[pos]
        if introducer == 0x3B:
            assert pos == len(data) - 1, "bytes after the trailer"
            return (width, height), images
        if introducer == 0x21:  # extension: label, then sub-blocks
            assert pos + 1 < len(data)
            if data[pos + 1] == 0xF9:
                assert data[pos + 2] == 4, "graphic control extension must hold 4 bytes"
            pos = sub_blocks(pos + 2)
        elif introducer == 0x2C:  # image descriptor, local colour table, LZW data
            left, top, w, h, image_flags = struct.unpack_from("<HHHHB", data, pos + 1)
            pos += 10 + colour_table(image_flags)
            assert 2 <= data[pos] <= 8, f"bad LZW minimum code size {data[pos]}"
            pos = sub_blocks(pos + 1)
            images.append((left, top, w, h))
        else:
            raise AssertionError(f"unexpected block introducer 0x{introducer:02x} at {pos}")


def test_collect_answers_a_gif(retail: retail_v2.UserEventServiceClient,
                               catalog: str) -> None:
    body = collect(retail, {"parent": catalog, "user_event": event_json("home-page-view")})
    assert body.content_type == "image/gif"
    assert body.data.startswith(b"GIF8")


def test_collect_answers_a_well_formed_1x1_gif(retail: retail_v2.UserEventServiceClient,
                                               catalog: str) -> None:
    body = collect(retail, {"parent": catalog, "user_event": event_json("home-page-view")})
    assert gif_images(body.data) == ((1, 1), [(0, 0, 1, 1)])


ENCODINGS = [
    pytest.param(lambda text: {"user_event": text}, id="plain-json"),
    pytest.param(lambda text: {"user_event": quote(text, safe="")}, id="url-encoded"),
    # JavaScript's encodeURIComponent leaves these unescaped.
    pytest.param(lambda text: {"user_event": quote(text, safe="-_.!~*'()")},
                 id="encodeURIComponent"),
    pytest.param(lambda text: {"raw_json": text}, id="raw_json"),
]


@pytest.mark.parametrize("encode", ENCODINGS)
@pytest.mark.parametrize("event_type", ["search", "purchase-complete", "signup"])
def test_collected_event_is_stored_as_sent(retail: retail_v2.UserEventServiceClient,
                                           server: ServerProcess, catalog: str,
                                           event_type: str, encode: Any) -> None:
    data = example(event_type, eventTime="2024-05-20T14:03:07.5Z")
    if event_type == "search":
        data["searchQuery"] = AWKWARD_QUERY
    collect(retail, {"parent": catalog, **encode(json.dumps(data, ensure_ascii=False))})
    assert list_events(server.store, catalog, server.workdir) == [stored_as(data)]


def test_uri_fills_the_event_uri(retail: retail_v2.UserEventServiceClient,
                                 server: ServerProcess, catalog: str) -> None:
    page = "https://shop.example.com/p/TENT-2P-ULTRA?utm_source=newsletter&utm_medium=email"
    data = example("detail-page-view", uri=None, eventTime="2024-05-20T14:03:07Z")
    collect(retail, {"parent": catalog, "user_event": quote(json.dumps(data)), "uri": page})
    assert list_events(server.store, catalog, server.workdir) == [stored_as({**data,
                                                                              "uri": page})]


def test_ets_milliseconds_become_the_event_time(retail: retail_v2.UserEventServiceClient,
                                                server: ServerProcess, catalog: str) -> None:
    data = example("home-page-view")  # no eventTime
    collect(retail, {"parent": catalog, "user_event": quote(json.dumps(data)),
                     "ets": 1_716_213_787_123})
    stored = list_events(server.store, catalog, server.workdir)
    assert stored == [stored_as({**data, "eventTime": "2024-05-20T14:03:07.123Z"})]


def test_raw_json_wins_over_user_event(retail: retail_v2.UserEventServiceClient,
                                       server: ServerProcess, catalog: str) -> None:
    raw = example("login", eventTime="2024-05-20T14:03:07Z")
    collect(retail, {"parent": catalog, "raw_json": json.dumps(raw),
                     "user_event": event_json("home-page-view")})
    assert list_events(server.store, catalog, server.workdir) == [stored_as(raw)]


# An event as Google's JavaScript pixel example writes one: experimentIds one text
# ("experimentIds": "experiment-id"), and one product detail as an object.
PAGE_SHAPED = {"eventType": "detail-page-view", "visitorId": "v-page", "userInfo": {"userId": "u"},
               "attributionToken": "token-9", "experimentIds": "exp-a",
               "productDetails": {"product": {"id": "sku-3"}, "quantity": 2},
               "eventTime": "2024-05-20T14:03:07Z"}
PAGE_SHAPED_AS_LISTS = {**PAGE_SHAPED, "experimentIds": ["exp-a"],
                        "productDetails": [{"product": {"id": "sku-3"}, "quantity": 2}]}


def test_a_browser_pixel_in_the_page_example_shape_is_recorded(server: ServerProcess,
                                                               catalog: str) -> None:
    answer = requests.get(f"http://{server.http_address}/v2/{catalog}/userEvents:collect",
                          params={"userEvent": json.dumps(PAGE_SHAPED), "ets": "1716213787123"},
                          timeout=RPC_DEADLINE)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/gif"
    assert "X-Footfall-Error" not in answer.headers, answer.headers["X-Footfall-Error"]
    # The browser's address and agent fill what the event left empty.
    filled = {"userId": "u", "ipAddress": "127.0.0.1",
              "userAgent": answer.request.headers["User-Agent"]}
    stored = list_events(server.store, catalog, server.workdir)
    assert stored == [stored_as({**PAGE_SHAPED_AS_LISTS, "userInfo": filled})]


@pytest.mark.parametrize("encode", ENCODINGS)
def test_collect_reads_one_item_where_a_list_goes(retail: retail_v2.UserEventServiceClient,
                                                  server: ServerProcess, catalog: str,
                                                  encode: Any) -> None:
    collect(retail, {"parent": catalog, **encode(json.dumps(PAGE_SHAPED))})
    assert list_events(server.store, catalog, server.workdir) == [stored_as(PAGE_SHAPED_AS_LISTS)]


def test_user_event_of_exactly_2_000_000_chars_is_accepted(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    text = padded_event(2_000_000)
    collect(retail, {"parent": catalog, "user_event": text, "uri": "u" * 5_000})
    assert count_events(server.store, catalog, server.workdir) == 1


def padded_event(length: int) -> str:
    """A valid home-page-view in JSON of exactly `length` characters."""
    start = '{"eventType": "home-page-view", "visitorId": "v-big", "experimentIds": ["'
    end = '"]}'
    return start + "x" * (length - len(start) - len(end)) + end


REFUSED = [
    pytest.param({"user_event": '{"eventType": "home-page-view", "visitorId": }'},
                 [U], "line 1 column 46", id="bad-json"),
    pytest.param({"user_event": quote('{"eventType": "home-page-view"')},
                 [U], "line 1 column", id="truncated-url-encoded-json"),
    pytest.param({"raw_json": '{"eventType": "login", "visitorId": "v",}'},
                 ["raw_json"], "line 1 column", id="bad-raw-json"),
    pytest.param({"user_event": '{"eventType": "login", "visitorId": "v", "clicks": 3}'},
                 [U], "clicks", id="unknown-field"),
    # A JSON error inside the event: only it is reported, not the type and visitor sent.
    pytest.param({"user_event": '{"eventType": "detail-page-view", "visitorId": "v", '
                                '"productDetails": "sku-3"}'},
                 [f"{U}.product_details"], "must be a JSON array", id="text-for-a-list-of-objects"),
    pytest.param({"raw_json": '{"eventType": "home-page-view", "visitorId": "v", '
                              '"eventTime": "2024-05-20 14:03"}'},
                 ["raw_json.event_time"], "RFC 3339", id="bad-time-in-raw-json"),
    pytest.param({"user_event": padded_event(2_000_001)}, [U], "2000000", id="user_event-2000001"),
    pytest.param({"user_event": event_json("home-page-view"), "uri": "u" * 5_001},
                 ["uri"], "5000", id="uri-5001"),
    pytest.param({"raw_json": event_json("home-page-view"), "prebuilt_rule": "ga4_bq"},
                 ["prebuilt_rule"], "ga4_bq", id="unknown-prebuilt-rule"),
    pytest.param({}, [U], "required", id="no-event"),
    pytest.param({"user_event": event_json("detail-page-view", productDetails=None)},
                 [f"{U}.product_details"], "detail-page-view", id="invalid-event"),
    pytest.param({"user_event": quote(event_json("home-page-view", visitorId=None))},
                 [f"{U}.visitor_id"], "required", id="invalid-url-encoded-event"),
]


@pytest.mark.parametrize(("request_fields", "fields", "says"), REFUSED)
def test_collect_refusals(retail: retail_v2.UserEventServiceClient, server: ServerProcess,
                          catalog: str, request_fields: dict[str, Any], fields: list[str],
                          says: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        collect(retail, {"parent": catalog, **request_fields})
    assert_names_fields(refused.value, fields)
    assert says in refused.value.message
    assert count_events(server.store, catalog, server.workdir) == 0


def test_collect_refuses_a_bad_parent(retail: retail_v2.UserEventServiceClient) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        collect(retail, {"parent": "projects/p/catalogs/c",
                         "user_event": event_json("home-page-view")})
    assert_names_fields(refused.value, ["parent"])


@pytest.mark.parametrize(("request_fields", "fields"), [
    pytest.param({"parent": "projects/p/catalogs/c"}, ["parent", f"{U}.visitor_id"],
                 id="bad-parent"),
    pytest.param({"uri": "u" * 5_001}, ["uri", f"{U}.visitor_id"], id="long-uri"),
])
def test_collect_reports_request_and_event_violations_together(
        retail: retail_v2.UserEventServiceClient, catalog: str,
        request_fields: dict[str, Any], fields: list[str]) -> None:
    request = {"parent": catalog, "user_event": event_json("login", visitorId=None),
               **request_fields}
    with pytest.raises(exceptions.InvalidArgument) as refused:
        collect(retail, request)
    assert set(fields) <= set(field_violations(refused.value)), refused.value.message


def test_async_client_collects(server: ServerProcess, catalog: str, run: Any) -> None:
    data = example("add-to-cart", eventTime="2024-05-20T14:03:07Z")

    async def scenario() -> Any:
        async with retail_async_client(server.address) as client:
            return await client.collect_user_event(
                request={"parent": catalog, "user_event": quote(json.dumps(data))},
                timeout=RPC_DEADLINE)

    assert run(scenario()).content_type == "image/gif"
    assert list_events(server.store, catalog, server.workdir) == [stored_as(data)]
