"""Import, purge and rejoin as google.longrunning operations, through the official
clients (sync and async) against the server subprocess: the call answers an
Operation, the client polls google.longrunning.Operations until it is done, and
the typed response and metadata come back. What was stored is read with the
events CLI. gs:// files are written under the server's --gcs-root.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2
from google.longrunning import operations_pb2
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2

from .examples import example, user_event
from .support import (
    GCS_BUCKET,
    OPERATION_DEADLINE,
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    count_events,
    event_lines,
    field_violations,
    finish,
    finish_async,
    gcs_path,
    list_events,
    product_async_client,
    put_gcs,
    retail_async_client,
    retail_client,
    wait_until,
)

Scope = retail_v2.RejoinUserEventsRequest.UserEventRejoinScope
BIG_FILES = 5
BIG_FILE_EVENTS = 10_000  # ~2.5 s of import: a cancel after the first batch always lands
BIG_EVENTS = BIG_FILES * BIG_FILE_EVENTS


def timed_events(count: int) -> list[retail_v2.UserEvent]:
    return [user_event(example("home-page-view", visitorId=f"imported-{i}",
                               eventTime=f"2024-05-20T14:03:{i:02d}Z")) for i in range(count)]


def inline_import(catalog: str, events: list[retail_v2.UserEvent]) -> dict[str, Any]:
    return {"parent": catalog,
            "input_config": {"user_event_inline_source": {"user_events": events}}}


def file_import(catalog: str, *uris: str, errors_prefix: str = "") -> dict[str, Any]:
    request: dict[str, Any] = {"parent": catalog,
                               "input_config": {"gcs_source": {"input_uris": list(uris)}}}
    if errors_prefix:
        request["errors_config"] = {"gcs_prefix": errors_prefix}
    return request


def create_product(client: retail_v2.ProductServiceClient, branch: str, product_id: str,
                   title: str, **fields: Any) -> retail_v2.Product:
    product = retail_v2.Product(title=title, categories=["Camping > Tents"], **fields)
    return client.create_product(parent=branch, product=product, product_id=product_id,
                                 timeout=RPC_DEADLINE)


def viewed(product_ids: list[str], label: str,
           price: dict[str, Any] | None = None) -> dict[str, Any]:
    """A detail-page-view (add-to-cart for several products) told apart by its
    sessionId `label`; `price` is the priceInfo the event itself gives."""
    kind = "detail-page-view" if len(product_ids) == 1 else "add-to-cart"
    details = [{"product": {"id": pid, **({"priceInfo": price} if price else {})}}
               for pid in product_ids]
    return example(kind, sessionId=label, eventTime="2024-05-20T10:00:00Z",
                   productDetails=details)


def by_session(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["sessionId"]: e for e in events}


def titles(event: dict[str, Any]) -> list[str | None]:
    return [d["product"].get("title") for d in event["productDetails"]]


def operation_id(operation: Any) -> str:
    return str(operation.operation.name.rsplit("/", 1)[-1])


def operations_in(client: Any, parent: str, **request: Any) -> list[operations_pb2.Operation]:
    """Every operation under `parent`, following next_page_token."""
    found: list[operations_pb2.Operation] = []
    token = ""
    while True:
        page = client.list_operations(operations_pb2.ListOperationsRequest(
            name=parent, page_token=token, **request), timeout=RPC_DEADLINE)
        found.extend(page.operations)
        token = page.next_page_token
        if not token:
            return found


# -- import: inline ------------------------------------------------------------------


def test_inline_import_reports_counts_and_error_samples(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    # The last event breaks two rules: an import needs event_time, a detail view products.
    events = [*timed_events(3), user_event(example("detail-page-view", productDetails=None))]
    operation = retail.import_user_events(request=inline_import(catalog, events),
                                          timeout=RPC_DEADLINE)
    assert operation.operation.name.startswith(f"{catalog}/operations/import-user-events-")
    response = finish(operation)

    assert isinstance(response, retail_v2.ImportUserEventsResponse)
    [sample] = response.error_samples
    assert sample.code == code_pb2.INVALID_ARGUMENT
    assert "user_events[3].event_time" in sample.message
    assert "user_events[3].product_details" in sample.message
    summary = response.import_summary
    assert summary.joined_events_count + summary.unjoined_events_count == 3
    metadata = operation.metadata
    assert isinstance(metadata, retail_v2.ImportMetadata)
    assert (metadata.success_count, metadata.failure_count) == (3, 1)
    assert retail.get_operation({"name": operation.operation.name}).done
    assert count_events(server.store, catalog, server.workdir) == 3


def test_googles_inline_import_sample_joins_and_a_reimport_skips_duplicates(
        retail: retail_v2.UserEventServiceClient, products: retail_v2.ProductServiceClient,
        server: ServerProcess, catalog: str, branch: str) -> None:
    """The request built as Google's python sample (import_user_events_inline.py)
    builds it, attribute by attribute; two of its three products are in the catalog."""
    for pid in ("test_id_0", "test_id_1"):
        create_product(products, branch, pid, f"Product {pid}")
    stamp = timestamp_pb2.Timestamp(seconds=1_716_200_000)
    user_events = []
    for x in range(3):
        product = retail_v2.Product()
        product.id = f"test_id_{x}"
        product_detail = retail_v2.ProductDetail()
        product_detail.product = product
        event = retail_v2.UserEvent()
        event.event_type = "detail-page-view"
        event.visitor_id = "test_visitor_id"
        event.event_time = stamp
        event.product_details = [product_detail]
        user_events.append(event)
    inline_source = retail_v2.UserEventInlineSource()
    inline_source.user_events = user_events
    input_config = retail_v2.UserEventInputConfig()
    input_config.user_event_inline_source = inline_source
    import_request = retail_v2.ImportUserEventsRequest()
    import_request.parent = catalog
    import_request.input_config = input_config

    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    first = retail.import_user_events(import_request, timeout=RPC_DEADLINE)
    wait_until(first.done, "the import to finish")  # the sample loops on done() too
    response = first.result()
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)

    assert not response.error_samples
    summary = response.import_summary
    assert (summary.joined_events_count, summary.unjoined_events_count) == (2, 1)
    metadata = first.metadata
    assert (metadata.success_count, metadata.failure_count) == (3, 0)
    assert before <= metadata.create_time <= metadata.update_time <= after

    again = retail.import_user_events(import_request, timeout=RPC_DEADLINE)
    assert again.operation.name != first.operation.name
    summary = finish(again).import_summary
    # Valid events count as successes; only newly stored ones count as (un)joined.
    assert (again.metadata.success_count, again.metadata.failure_count) == (3, 0)
    assert (summary.joined_events_count, summary.unjoined_events_count) == (0, 0)
    stored = list_events(server.store, catalog, server.workdir)
    assert len(stored) == 3
    assert sorted(titles(e)[0] or "" for e in stored) == ["", "Product test_id_0",
                                                          "Product test_id_1"]


def test_an_operations_create_time_never_changes(
        retail: retail_v2.UserEventServiceClient, catalog: str) -> None:
    operation = retail.import_user_events(request=inline_import(catalog, timed_events(1)),
                                          timeout=RPC_DEADLINE)
    answered = retail_v2.ImportMetadata.deserialize(operation.operation.metadata.value)
    finish(operation)
    final = retail_v2.ImportMetadata.pb(operation.metadata).create_time
    assert final == retail_v2.ImportMetadata.pb(answered).create_time


def test_importing_the_same_events_again_stores_them_once(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    events = timed_events(4)
    for _ in range(2):
        finish(retail.import_user_events(request=inline_import(catalog, events),
                                         timeout=RPC_DEADLINE))
    assert count_events(server.store, catalog, server.workdir) == 4


def test_async_client_imports_the_documented_rest_json_body(
        server: ServerProcess, catalog: str, run: Any) -> None:
    """The JSON body of Google's `userEvents:import` REST example, as proto3 JSON."""
    body = {"parent": catalog, "inputConfig": {"userEventInlineSource": {"userEvents": [
        {"eventType": "home-page-view", "visitorId": "visitor-1",
         "eventTime": "2024-05-20T14:03:00Z"},
        {"eventType": "search", "visitorId": "visitor-1", "searchQuery": "tent",
         "eventTime": "2024-05-20T14:03:05.250Z"},
        {"eventType": "detail-page-view", "visitorId": "visitor-1",
         "eventTime": "2024-05-20T14:03:09Z", "productDetails": [{"product": {"id": "123"}}]},
    ]}}}

    async def scenario() -> tuple[Any, Any]:
        async with retail_async_client(server.address) as client:
            operation = await client.import_user_events(
                request=retail_v2.ImportUserEventsRequest.from_json(json.dumps(body)),
                timeout=RPC_DEADLINE)
            response = await finish_async(operation)
            return response, operation.metadata

    response, metadata = run(scenario())
    assert not response.error_samples
    assert (response.import_summary.joined_events_count,
            response.import_summary.unjoined_events_count) == (2, 1)
    assert (metadata.success_count, metadata.failure_count) == (3, 0)
    assert count_events(server.store, catalog, server.workdir) == 3


def many_inline_events(catalog: str, count: int) -> retail_v2.ImportUserEventsRequest:
    """An inline import of `count` distinct events, built on the raw protobuf (fast)."""
    request = retail_v2.ImportUserEventsRequest(parent=catalog)
    events = retail_v2.ImportUserEventsRequest.pb(request).input_config \
        .user_event_inline_source.user_events
    for i in range(count):
        event = events.add()
        event.event_type = "home-page-view"
        event.visitor_id = f"visitor-{i}"
        event.event_time.seconds = 1_716_200_000 + i
    return request


def test_ten_thousand_inline_events_are_accepted(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    operation = retail.import_user_events(many_inline_events(catalog, 10_000),
                                          timeout=RPC_DEADLINE)
    finish(operation)
    assert operation.metadata.success_count == 10_000
    assert count_events(server.store, catalog, server.workdir) == 10_000


# -- import: gs:// files -------------------------------------------------------------


def test_file_import_reads_every_file_a_wildcard_matches(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str) -> None:
    root = server.gcs_root
    put_gcs(root, f"{gcs_folder}/day-1/part-000.json", event_lines(30, start=0))
    put_gcs(root, f"{gcs_folder}/day-1/part-001.json", event_lines(20, start=30))
    # Windows line ends and no newline after the last line are fine too.
    put_gcs(root, f"{gcs_folder}/day-2/part-000.json",
            "\r\n".join(event_lines(5, start=50).splitlines()))
    # Not matched: another extension, and a file one folder deeper (`*` stays in a segment).
    put_gcs(root, f"{gcs_folder}/day-2/part-000.json.tmp", event_lines(7, start=100))
    put_gcs(root, f"{gcs_folder}/day-2/late/part-009.json", event_lines(9, start=200))

    operation = retail.import_user_events(
        request=file_import(catalog, f"{gcs_folder}/day-*/part-*.json"), timeout=RPC_DEADLINE)
    response = finish(operation)

    assert not response.error_samples
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (55, 0)
    assert count_events(server.store, catalog, server.workdir) == 55


def test_async_client_imports_files_with_the_documented_rest_json_body(
        server: ServerProcess, catalog: str, gcs_folder: str, run: Any) -> None:
    """The body of Google's `userEvents:import` example for Cloud Storage files."""
    put_gcs(server.gcs_root, f"{gcs_folder}/2024-05-20/events-0.json", event_lines(40))
    bad = put_gcs(server.gcs_root, f"{gcs_folder}/2024-05-21/events-0.json",
                  [*event_lines(2, start=40).splitlines(), '{"visitorId": "no-type"}'])
    body = {"parent": catalog,
            "inputConfig": {"gcsSource": {"inputUris": [f"{gcs_folder}/2024-05-2*/events-*.json"],
                                          "dataSchema": "user_event"}},
            "errorsConfig": {"gcsPrefix": f"{gcs_folder}/errors"}}

    async def scenario() -> tuple[Any, Any, str]:
        async with retail_async_client(server.address) as client:
            operation = await client.import_user_events(
                request=retail_v2.ImportUserEventsRequest.from_json(json.dumps(body)),
                timeout=RPC_DEADLINE)
            response = await finish_async(operation)
            return response, operation.metadata, operation_id(operation)

    response, metadata, op_id = run(scenario())
    assert (metadata.success_count, metadata.failure_count) == (42, 1)
    [sample] = response.error_samples
    assert sample.message.startswith(f"{bad} line 3: user_event.event_type: ")
    error_file = gcs_path(server.gcs_root, f"{gcs_folder}/errors/{op_id}-errors.json")
    # the line's number in the file (the second the pattern matched) as Google writes it
    assert json.loads(error_file.read_text()) == {
        "code": code_pb2.INVALID_ARGUMENT, "message": sample.message,
        "details": [{"@type": "type.googleapis.com/google.protobuf.Struct",
                     "value": {"line_number": 3}}]}
    assert count_events(server.store, catalog, server.workdir) == 42


def test_file_import_joins_with_products_created_first_and_skips_duplicates(
        retail: retail_v2.UserEventServiceClient, products: retail_v2.ProductServiceClient,
        server: ServerProcess, catalog: str, branch: str, gcs_folder: str) -> None:
    create_product(products, branch, "TENT-1", "Trail Tent")
    create_product(products, branch, "STOVE-1", "Canister Stove")
    lines = [json.dumps(e) for e in (
        viewed(["TENT-1"], "known-1"), viewed(["STOVE-1"], "known-2"),
        viewed(["TENT-1", "STOVE-1"], "known-both"),
        viewed(["MAT-9"], "unknown-1"), viewed(["TENT-1", "MAT-9"], "one-unknown"),
        example("home-page-view", sessionId="no-products", eventTime="2024-05-20T10:00:00Z"))]
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/events.json", lines)

    first = retail.import_user_events(request=file_import(catalog, uri), timeout=RPC_DEADLINE)
    summary = finish(first).import_summary
    assert (summary.joined_events_count, summary.unjoined_events_count) == (4, 2)
    assert (first.metadata.success_count, first.metadata.failure_count) == (6, 0)

    again = retail.import_user_events(request=file_import(catalog, uri), timeout=RPC_DEADLINE)
    summary = finish(again).import_summary
    assert (summary.joined_events_count, summary.unjoined_events_count) == (0, 0)
    assert (again.metadata.success_count, again.metadata.failure_count) == (6, 0)

    stored = by_session(list_events(server.store, catalog, server.workdir))
    assert len(stored) == 6
    assert titles(stored["known-both"]) == ["Trail Tent", "Canister Stove"]
    assert titles(stored["one-unknown"]) == [None, None]  # unjoined: stored as received
    assert titles(stored["unknown-1"]) == [None]


BAD_LINES: list[tuple[str, tuple[str, ...]]] = [
    # (the line, what its error message must say besides "<uri> line <n>: ")
    ('{"eventType": "home-page-view", "visitorId": ', ("invalid JSON", "at the end")),
    # (the line's place is the file's: "line 3: ... at line 1 column 1" named two)
    ("not json", ("invalid JSON", "expected 'null' at column 1, at 'not json'")),
    ('["home-page-view", "visitor-1"]', ("JSON object",)),
    ('"home-page-view"', ("JSON object",)),
    ('{"eventType": "home-page-view", "visitorId": "v", "colour": "red", '
     '"eventTime": "2024-05-20T10:00:00Z"}', ("not a UserEvent", "colour")),
    ('{"eventType": "home-page-view", "eventTime": "2024-05-20T10:00:00Z"}',
     ("user_event.visitor_id: ",)),
    ('{"eventType": "detail-page-view", "visitorId": "v", "eventTime": "2024-05-20T10:00:00Z"}',
     ("user_event.product_details: ",)),
    ('{"eventType": "home-page-view", "visitorId": "v-no-time"}', ("user_event.event_time: ",)),
    ('{"eventType": "add-to-cart", "visitorId": "v", "eventTime": "2024-05-20T10:00:00Z", '
     '"productDetails": [{"product": {"id": "a"}}, {"product": {"id": "b"}, "quantity": "x"}]}',
     ("not a UserEvent", "product_details[1].quantity: must be a whole number")),
    ('{"eventType": "home-page-view", "visitorId": "v1", "visitorId": "v2", '
     '"eventTime": "2024-05-20T10:00:00Z"}', ("invalid JSON", "'visitorId' is given twice")),
    ('{"eventType": "search", "visitorId": "v", "eventTime": "2024-05-20T10:00:00Z", '
     '"offset": -1}', ("user_event.search_query: ", "user_event.offset: ")),
]


def test_bad_lines_are_reported_by_file_line_and_field_and_written_to_the_error_prefix(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str) -> None:
    good = event_lines(3, visitor="good").splitlines()
    # Line 1 good, then the bad lines, a blank line (skipped, still counted), good lines.
    first = [good[0], *(line for line, _ in BAD_LINES), "", good[1]]
    first_uri = put_gcs(server.gcs_root, f"{gcs_folder}/part-1.json", first)
    second_uri = put_gcs(server.gcs_root, f"{gcs_folder}/part-2.json", [good[2], "{oops"])
    prefix = f"{gcs_folder}/import-errors"

    operation = retail.import_user_events(
        request=file_import(catalog, f"{gcs_folder}/part-*.json", errors_prefix=prefix),
        timeout=RPC_DEADLINE)
    response = finish(operation)

    failures = len(BAD_LINES) + 1
    metadata = operation.metadata
    assert (metadata.success_count, metadata.failure_count) == (3, failures)
    assert response.errors_config.gcs_prefix == prefix
    samples = [(s.code, s.message) for s in response.error_samples]
    assert all(code == code_pb2.INVALID_ARGUMENT for code, _ in samples)
    by_line = {message.partition(": ")[0]: message for _, message in samples}
    assert len(by_line) == len(samples) == failures
    # in the order of their lines (the lines that did not decode came first, then those
    # whose events were refused)
    assert list(by_line) == [f"{first_uri} line {i + 2}" for i in range(len(BAD_LINES))] \
        + [f"{second_uri} line 2"]
    for i, (_, fragments) in enumerate(BAD_LINES):
        message = by_line[f"{first_uri} line {i + 2}"]
        for fragment in fragments:
            assert fragment in message, (fragment, message)
    assert by_line[f"{second_uri} line 2"].startswith(f"{second_uri} line 2: invalid JSON")

    error_file = gcs_path(server.gcs_root, f"{prefix}/{operation_id(operation)}-errors.json")
    written = [json.loads(line) for line in error_file.read_text().splitlines()]
    assert [(e["code"], e["message"]) for e in written] == samples
    assert count_events(server.store, catalog, server.workdir) == 3


def test_error_samples_stop_at_fifty_while_the_error_file_has_every_failure(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str) -> None:
    lines = [f'{{"eventType": "home-page-view", "visitorId": "v-{i}"}}' for i in range(120)]
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/no-times.json", lines)
    prefix = f"{gcs_folder}/errors/"  # a trailing slash is fine
    operation = retail.import_user_events(request=file_import(catalog, uri, errors_prefix=prefix),
                                          timeout=RPC_DEADLINE)
    response = finish(operation)
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (0, 120)
    assert len(response.error_samples) == 50
    assert response.error_samples[49].message.startswith(f"{uri} line 50: user_event.event_time")
    error_file = gcs_path(server.gcs_root, f"{prefix}{operation_id(operation)}-errors.json")
    assert len(error_file.read_text().splitlines()) == 120


# -- import: refused when called -------------------------------------------------------

URIS = "input_config.gcs_source.input_uris"


def _refusals(catalog: str, folder: str, present: str) -> dict[str, tuple[Any, list[str]]]:
    """Requests refused when called, by case: (request, the fields the refusal names)."""
    inline = inline_import(catalog, timed_events(1))
    return {
        "inline-over-10000": (many_inline_events(catalog, 10_001),
                              ["input_config.user_event_inline_source.user_events"]),
        "inline-empty": (inline_import(catalog, []),
                         ["input_config.user_event_inline_source.user_events"]),
        "inline-with-errors-config": ({**inline, "errors_config": {"gcs_prefix": folder}},
                                      ["errors_config"]),
        "big-query": ({"parent": catalog, "input_config": {"big_query_source": {
            "project_id": "p", "dataset_id": "d", "table_id": "events"}}},
            ["input_config.big_query_source"]),
        "no-source": ({"parent": catalog, "input_config": {}}, ["input_config"]),
        "missing-file": (file_import(catalog, f"{folder}/nothing-*.json"), [f"{URIS}[0]"]),
        "second-uri-missing": (file_import(catalog, present, f"{folder}/gone.json"),
                               [f"{URIS}[1]"]),
        "dot-dot": (file_import(catalog, f"gs://{GCS_BUCKET}/../../etc/passwd"),
                    [f"{URIS}[0]"]),
        "dot-dot-inside": (file_import(catalog, f"{folder}/sub/../events.json"), [f"{URIS}[0]"]),
        "file-uri": (file_import(catalog, "file:///etc/passwd"), [f"{URIS}[0]"]),
        "https-uri": (file_import(catalog, f"https://storage.googleapis.com/{GCS_BUCKET}/e.json"),
                      [f"{URIS}[0]"]),
        "plain-path": (file_import(catalog, "/etc/passwd"), [f"{URIS}[0]"]),
        "folder": (file_import(catalog, f"{folder}/"), [f"{URIS}[0]"]),
        "link-leaving-root": (file_import(catalog, f"{folder}/escape.json"), [f"{URIS}[0]"]),
        "no-uris": (file_import(catalog), [URIS]),
        "ga4-schema": ({"parent": catalog, "input_config": {"gcs_source": {
            "input_uris": [present], "data_schema": "user_event_ga4"}}},
            ["input_config.gcs_source.data_schema"]),
        "errors-prefix-outside": (file_import(catalog, present,
                                              errors_prefix=f"gs://{GCS_BUCKET}/../x"),
                                  ["errors_config.gcs_prefix"]),
        "errors-prefix-not-gs": (file_import(catalog, present, errors_prefix="/tmp/errors"),
                                 ["errors_config.gcs_prefix"]),
        "bad-parent": ({**file_import(catalog, present), "parent": "catalogs/default_catalog"},
                       ["parent"]),
        "everything-wrong": ({**file_import("nope", "file:///x", f"{folder}/gone.json"),
                              "errors_config": {"gcs_prefix": "s3://x"}},
                             ["parent", f"{URIS}[0]", f"{URIS}[1]", "errors_config.gcs_prefix"]),
    }


REFUSALS = list(_refusals("c", "gs://b/f", "gs://b/f/x.json"))


@pytest.fixture
def refused_import(server: ServerProcess, catalog: str, gcs_folder: str,
                   tmp_path: Path) -> Callable[[str], tuple[Any, list[str]]]:
    present = put_gcs(server.gcs_root, f"{gcs_folder}/events.json", event_lines(2))
    outside = tmp_path / "outside.json"
    outside.write_text(event_lines(2))
    os.symlink(outside, gcs_path(server.gcs_root, f"{gcs_folder}/escape.json"))
    cases = _refusals(catalog, gcs_folder, present)
    return cases.__getitem__


@pytest.mark.parametrize("case", REFUSALS)
def test_import_is_refused_when_called(
        retail: retail_v2.UserEventServiceClient, catalog: str, case: str,
        refused_import: Callable[[str], tuple[Any, list[str]]]) -> None:
    request, fields = refused_import(case)
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.import_user_events(request=request, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, fields)
    assert not operations_in(retail, catalog), "a refused import must not create an operation"


# -- purge ---------------------------------------------------------------------------

# (label, visitor, user, type, event time); Google's filter examples use 2012-04-23.
PURGE_SEED = [
    ("a", "visitor1024", "user-7", "detail-page-view", "2012-04-23T18:20:00Z"),
    ("b", "visitor1024", "user-7", "detail-page-view", "2012-04-23T18:25:43.511Z"),
    ("c", "visitor1024", "", "search", "2012-04-23T18:27:00Z"),
    ("d", "visitor2048", "user-8", "detail-page-view", "2012-04-23T18:28:00.000001Z"),
    ("e", "visitor2048", "user-8", "home-page-view", "2012-04-23T18:30:43.511Z"),
    ("f", "visitor4096", "", "home-page-view", "2012-04-23T18:35:00Z"),
    ("g", "visitor4096", "user-7", "add-to-cart", "2012-04-24T09:00:00Z"),
]
LOW, HIGH = "2012-04-23T18:25:43.511Z", "2012-04-23T18:30:43.511Z"
PURGE_CASES = {
    # Google's examples (PurgeUserEventsRequest.filter)
    "time-range": (f'eventTime > "{LOW}" eventTime < "{HIGH}"', "cd"),
    "type-in-time-range": (f'eventTime > "{LOW}" eventType = "detail-page-view"', "d"),
    "visitor": ('visitorId = "visitor1024"', "abc"),
    # each field on its own, explicit AND, inclusive bounds, time zones
    "user": ('userId = "user-7"', "abg"),
    "type": ('eventType = "home-page-view"', "ef"),
    "explicit-and": ('visitorId = "visitor1024" AND eventType = "detail-page-view"', "ab"),
    "inclusive-range": (f'eventTime >= "{LOW}" eventTime <= "{HIGH}"', "bcde"),
    "after-only": ('eventTime > "2012-04-23T18:30:00Z"', "efg"),
    "offset-time-zone": ('eventTime < "2012-04-23T20:25:00+02:00"', "a"),
    "everything-anded": ('eventTime >= "2012-04-23T00:00:00Z" eventTime < "2012-04-24T00:00:00Z" '
                         'visitorId = "visitor2048" AND userId = "user-8" '
                         'eventType = "home-page-view"', "e"),
    "nothing-matches": ('eventType = "purchase-complete"', ""),
    # a bare event type, one of the "valid filter examples" of Google's own refusal
    "bare-type": ('eventType=home-page-view visitorId="visitor2048"', "e"),
    # the seed documentation's range, an extension: inclusive at both ends
    "extension-range": (f'event_time: ["{LOW}", "{HIGH}"]', "bcde"),
    "extension-range-and-type": (f'event_time: ["{LOW}", "{HIGH}"] eventType = "search"', "c"),
    # bounds no time meets: Google documents no refusal of them, and the extension's
    # range of the same bounds was refused while they were not
    "empty-time-range": ('eventTime > "2030-01-01T00:00:00Z" eventTime < "2020-01-01T00:00:00Z"',
                         ""),
    "empty-extension-range": (f'event_time: ["{HIGH}", "{LOW}"]', ""),
    "extension-range-of-an-instant": (f'event_time: ["{LOW}", "{LOW}"]', "b"),
}


def seed_purge_catalog(retail: Any, catalog: str) -> None:
    events = []
    for label, visitor, user, kind, when in PURGE_SEED:
        data = example(kind, sessionId=label, visitorId=visitor, eventTime=when,
                       userInfo={"userId": user} if user else None)
        events.append(user_event(data))
    operation = retail.import_user_events(request=inline_import(catalog, events),
                                          timeout=RPC_DEADLINE)
    finish(operation)
    assert operation.metadata.success_count == len(PURGE_SEED)


def remaining_labels(server: ServerProcess, catalog: str) -> str:
    return "".join(sorted(e["sessionId"] for e in list_events(server.store, catalog,
                                                               server.workdir)))


@pytest.mark.parametrize("case", PURGE_CASES)
def test_purge_counts_without_force_then_deletes_exactly_what_the_filter_selects(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        case: str) -> None:
    purge_filter, selected = PURGE_CASES[case]
    seed_purge_catalog(retail, catalog)
    everything = "".join(label for label, *_ in PURGE_SEED)

    dry_run = retail.purge_user_events(request={"parent": catalog, "filter": purge_filter,
                                                "force": False}, timeout=RPC_DEADLINE)
    assert dry_run.operation.name.startswith(f"{catalog}/operations/purge-user-events-")
    assert finish(dry_run).purged_events_count == len(selected)
    assert isinstance(dry_run.metadata, retail_v2.PurgeMetadata)
    assert count_events(server.store, catalog, server.workdir) == len(PURGE_SEED)

    purge = retail.purge_user_events(request={"parent": catalog, "filter": purge_filter,
                                              "force": True}, timeout=RPC_DEADLINE)
    response = finish(purge)
    assert isinstance(response, retail_v2.PurgeUserEventsResponse)
    assert response.purged_events_count == len(selected)
    assert remaining_labels(server, catalog) == "".join(
        label for label in everything if label not in selected)


def test_async_client_purges(server: ServerProcess, catalog: str, run: Any,
                             retail: retail_v2.UserEventServiceClient) -> None:
    seed_purge_catalog(retail, catalog)

    async def scenario() -> tuple[int, int]:
        async with retail_async_client(server.address) as client:
            request = {"parent": catalog, "filter": 'visitorId = "visitor2048"'}
            counted = await finish_async(await client.purge_user_events(
                request={**request, "force": False}, timeout=RPC_DEADLINE))
            purged = await finish_async(await client.purge_user_events(
                request={**request, "force": True}, timeout=RPC_DEADLINE))
            return counted.purged_events_count, purged.purged_events_count

    assert run(scenario()) == (2, 2)
    assert remaining_labels(server, catalog) == "abcfg"


BAD_FILTERS = {
    # (filter, the text at which the problem is reported; None: at the end)
    "unknown-field": ('eventType = "search" bogus = "x"', "bogus"),
    "or": ('eventType = "search" OR visitorId = "v"', "OR"),
    "bad-time": ('eventTime > "yesterday"', '"yesterday"'),
    "date-only": ('eventTime > "2012-04-23"', '"2012-04-23"'),
    "missing-operator": ('visitorId "visitor1024"', '"visitor1024"'),
    "equals-on-time": (f'eventTime = "{LOW}"', "="),
    "less-on-type": ('eventType < "search"', "<"),
    "single-quotes": ("visitorId = 'visitor1024'", "'"),
    "unquoted-value": ("visitorId = visitor1024", "visitor1024"),
    "dangling-and": ('eventType = "search" AND', None),
    "ends-after-field": ('eventType = "search" eventType', None),
    "unterminated-string": ('visitorId = "visitor1024', '"visitor1024'),
    "range-one-end": (f'event_time: ["{LOW}"]', "]"),
    "snake-case-comparison": (f'event_time > "{LOW}"', "event_time"),
    "lower-case-field": ('eventtype = "search"', "eventtype"),
}


@pytest.mark.parametrize("case", BAD_FILTERS)
def test_a_bad_filter_is_refused_when_called_saying_at_which_character(
        retail: retail_v2.UserEventServiceClient, catalog: str, case: str) -> None:
    purge_filter, culprit = BAD_FILTERS[case]
    at = len(purge_filter) + 1 if culprit is None else purge_filter.index(culprit) + 1
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.purge_user_events(request={"parent": catalog, "filter": purge_filter,
                                          "force": True}, timeout=RPC_DEADLINE)
    assert field_violations(refused.value) == ["filter"]
    assert refused.value.message.startswith(f"filter: at character {at}: "), \
        refused.value.message
    assert not operations_in(retail, catalog)


def test_time_bounds_compare_to_the_nanosecond(
        retail: retail_v2.UserEventServiceClient, catalog: str) -> None:
    events = [user_event(example("home-page-view", visitorId=visitor, eventTime=when))
              for visitor, when in (("later", "2012-04-23T18:25:43.511000500Z"),
                                    ("exact", "2012-04-23T18:25:43.511Z"))]
    finish(retail.import_user_events(request=inline_import(catalog, events),
                                     timeout=RPC_DEADLINE))

    def selected(purge_filter: str) -> int:
        return int(finish(retail.purge_user_events(request={
            "parent": catalog, "filter": purge_filter, "force": False},
            timeout=RPC_DEADLINE)).purged_events_count)

    assert selected('eventTime > "2012-04-23T18:25:43.511Z"') == 1          # got 0
    assert selected('eventTime >= "2012-04-23T18:25:43.5110005Z"') == 1     # got 2
    assert selected('eventTime < "2012-04-23T18:25:43.5110005Z"') == 1      # got 0


@pytest.mark.parametrize("purge_filter", ["", "   ", "x" * 5_001])
def test_an_empty_or_overlong_filter_is_refused(retail: retail_v2.UserEventServiceClient,
                                                 catalog: str, purge_filter: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.purge_user_events(request={"parent": catalog, "filter": purge_filter,
                                          "force": True}, timeout=RPC_DEADLINE)
    assert field_violations(refused.value) == ["filter"]
    assert refused.value.message.startswith("filter: ")


# -- rejoin --------------------------------------------------------------------------


def write(retail: Any, catalog: str, data: dict[str, Any]) -> retail_v2.UserEvent:
    return retail.write_user_event(request={"parent": catalog, "user_event": user_event(data)},
                                   timeout=RPC_DEADLINE)


def rejoin(retail: Any, catalog: str, scope: Any) -> int:
    operation = retail.rejoin_user_events(
        request={"parent": catalog, "user_event_rejoin_scope": scope}, timeout=RPC_DEADLINE)
    assert operation.operation.name.startswith(f"{catalog}/operations/rejoin-user-events-")
    response = finish(operation)
    assert isinstance(operation.metadata, retail_v2.RejoinUserEventsMetadata)
    return int(response.rejoined_user_events_count)


def test_rejoin_enriches_events_written_before_their_products_existed(
        retail: retail_v2.UserEventServiceClient, products: retail_v2.ProductServiceClient,
        server: ServerProcess, catalog: str, branch: str) -> None:
    own_price = {"currencyCode": "USD", "price": 249.5, "originalPrice": 299.0}
    write(retail, catalog, viewed(["SKU-1"], "e1"))
    write(retail, catalog, viewed(["SKU-2"], "e2-own-price", price=own_price))
    write(retail, catalog, viewed(["SKU-3"], "e3-never-listed"))
    before = by_session(list_events(server.store, catalog, server.workdir))
    assert {s: titles(e) for s, e in before.items()} == {
        "e1": [None], "e2-own-price": [None], "e3-never-listed": [None]}

    create_product(products, branch, "SKU-1", "Trail Tent 2P",
                   price_info={"currency_code": "USD", "price": 300.0})
    imported = products.import_products(request={"parent": branch, "input_config": {
        "product_inline_source": {"products": [
            {"id": "SKU-2", "title": "Down Sleeping Bag", "categories": ["Sleeping"],
             "price_info": {"currency_code": "USD", "price": 410.0}}]}}}, timeout=RPC_DEADLINE)
    assert not finish(imported).error_samples

    assert rejoin(retail, catalog, Scope.UNJOINED_EVENTS) == 2
    after = by_session(list_events(server.store, catalog, server.workdir))
    one = after["e1"]["productDetails"][0]["product"]
    assert (one["title"], one["categories"], one["priceInfo"]["price"]) == (
        "Trail Tent 2P", ["Camping > Tents"], 300.0)
    two = after["e2-own-price"]["productDetails"][0]["product"]
    assert two["title"] == "Down Sleeping Bag"
    assert two["priceInfo"] == own_price  # the event's own price, not the catalog's
    assert titles(after["e3-never-listed"]) == [None]
    # Nothing else about the events changed.
    for label, event in after.items():
        assert {k: v for k, v in event.items() if k != "productDetails"} == \
            {k: v for k, v in before[label].items() if k != "productDetails"}

    assert rejoin(retail, catalog, Scope.UNJOINED_EVENTS) == 0  # only e3 is left unjoined


def test_rejoin_scopes_select_joined_unjoined_or_all_events(
        retail: retail_v2.UserEventServiceClient, products: retail_v2.ProductServiceClient,
        server: ServerProcess, catalog: str, branch: str) -> None:
    create_product(products, branch, "A", "Alpine Tent v1")
    write(retail, catalog, viewed(["A"], "e1"))                 # joined
    write(retail, catalog, viewed(["B"], "e2"))                 # unjoined: B is not listed yet
    write(retail, catalog, example("home-page-view", sessionId="e3",
                                   eventTime="2024-05-20T10:00:00Z"))  # joined: no products
    write(retail, catalog, viewed(["A", "B"], "e4"))            # unjoined: B is missing

    def shown() -> dict[str, list[str | None]]:
        return {s: titles(e) if "productDetails" in e else []
                for s, e in by_session(list_events(server.store, catalog,
                                                   server.workdir)).items()}

    assert shown() == {"e1": ["Alpine Tent v1"], "e2": [None], "e3": [], "e4": [None, None]}
    products.update_product(product={"name": f"{branch}/products/A", "title": "Alpine Tent v2"},
                            update_mask={"paths": ["title"]}, timeout=RPC_DEADLINE)
    create_product(products, branch, "B", "Bivy Bag")

    assert rejoin(retail, catalog, Scope.JOINED_EVENTS) == 2          # e1, e3
    assert shown() == {"e1": ["Alpine Tent v2"], "e2": [None], "e3": [], "e4": [None, None]}

    assert rejoin(retail, catalog, Scope.UNJOINED_EVENTS) == 2        # e2, e4
    assert shown() == {"e1": ["Alpine Tent v2"], "e2": ["Bivy Bag"], "e3": [],
                       "e4": ["Alpine Tent v2", "Bivy Bag"]}

    products.delete_product(name=f"{branch}/products/A", timeout=RPC_DEADLINE)
    # All events: e1 and e4 no longer join (A is gone) and are kept as received.
    assert rejoin(retail, catalog, Scope.USER_EVENT_REJOIN_SCOPE_UNSPECIFIED) == 2
    assert shown() == {"e1": [None], "e2": ["Bivy Bag"], "e3": [], "e4": [None, None]}
    assert rejoin(retail, catalog, Scope.UNJOINED_EVENTS) == 0


def test_rejoin_of_an_unknown_scope_rejoins_every_event(
        retail: retail_v2.UserEventServiceClient, products: retail_v2.ProductServiceClient,
        catalog: str, branch: str) -> None:
    """Google: the scope "Defaults to USER_EVENT_REJOIN_SCOPE_UNSPECIFIED if this field
    is not set, or set to an invalid integer value" (it was refused)."""
    write(retail, catalog, viewed(["A"], "e1"))                 # unjoined: A is not listed
    write(retail, catalog, example("home-page-view", sessionId="e2",
                                   eventTime="2024-05-20T10:00:00Z"))  # joined: no products
    create_product(products, branch, "A", "Alpine Tent v1")
    # both, joined and not (either scope alone would rejoin one)
    assert rejoin(retail, catalog, 7) == 2
    with pytest.raises(exceptions.InvalidArgument) as refused:  # the parent is still checked
        retail.rejoin_user_events(request={"parent": "catalogs/x", "user_event_rejoin_scope": 7},
                                  timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["parent"])


def test_async_client_rejoins(server: ServerProcess, catalog: str, branch: str, run: Any,
                              retail: retail_v2.UserEventServiceClient) -> None:
    write(retail, catalog, viewed(["LATE-1"], "late"))

    async def scenario() -> int:
        async with product_async_client(server.address) as products, \
                retail_async_client(server.address) as client:
            await products.create_product(parent=branch, product_id="LATE-1",
                                          product={"title": "Late Lantern",
                                                   "categories": ["Lights"]},
                                          timeout=RPC_DEADLINE)
            operation = await client.rejoin_user_events(
                request={"parent": catalog, "user_event_rejoin_scope": Scope.UNJOINED_EVENTS},
                timeout=RPC_DEADLINE)
            response = await finish_async(operation)
            assert isinstance(operation.metadata, retail_v2.RejoinUserEventsMetadata)
            return int(response.rejoined_user_events_count)

    assert run(scenario()) == 1
    [event] = list_events(server.store, catalog, server.workdir)
    assert titles(event) == ["Late Lantern"]


# -- operations ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_files(server: ServerProcess) -> str:
    """A wildcard URI of BIG_EVENTS distinct events in BIG_FILES files, on the shared server."""
    folder = f"gs://{GCS_BUCKET}/big-import"
    for i in range(BIG_FILES):
        put_gcs(server.gcs_root, f"{folder}/part-{i}.json",
                event_lines(BIG_FILE_EVENTS, start=i * BIG_FILE_EVENTS))
    return f"{folder}/part-*.json"


@pytest.fixture
def big_import(retail: retail_v2.UserEventServiceClient, catalog: str,
               big_files: str) -> Iterator[Any]:
    """A large import into this test's catalog, seen running with its first batch
    committed. Cancelled at teardown if the test left it running, so the shared
    server's one operation worker is free for the next test."""
    operation = retail.import_user_events(request=file_import(catalog, big_files),
                                          timeout=RPC_DEADLINE)

    def started() -> tuple[bool] | None:
        current = retail.get_operation({"name": operation.operation.name},
                                       timeout=RPC_DEADLINE)
        metadata = retail_v2.ImportMetadata.deserialize(current.metadata.value)
        return (current.done,) if metadata.success_count > 0 or current.done else None

    [done] = wait_until(started, "the big import's first batch")
    assert not done, f"all {BIG_EVENTS} events were imported before the test could act"
    yield operation
    with contextlib.suppress(exceptions.NotFound):
        retail.transport.operations_client.cancel_operation(operation.operation.name)


def test_cancel_ends_a_large_import_with_cancelled_and_keeps_committed_events(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        big_import: Any) -> None:
    assert big_import.cancel() is True  # the RPC was made: the operation was not done

    with pytest.raises(exceptions.Cancelled) as cancelled:
        finish(big_import)
    assert cancelled.value.grpc_status_code == grpc.StatusCode.CANCELLED
    assert big_import.cancelled()
    assert isinstance(big_import.exception(), exceptions.Cancelled)
    committed = big_import.metadata.success_count
    assert 0 < committed < BIG_EVENTS
    assert big_import.metadata.failure_count == 0
    # Everything committed before the cancel stays, and nothing after it was added.
    assert count_events(server.store, catalog, server.workdir) == committed
    final = retail.get_operation({"name": big_import.operation.name}, timeout=RPC_DEADLINE)
    assert final.done and final.error.code == code_pb2.CANCELLED
    assert not final.HasField("response")


def test_a_reset_cancels_a_running_import_and_leaves_none_of_its_events(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        big_import: Any) -> None:
    """A test suite resets its catalog before each test: an import the test before
    left running went on storing events after the reset, under the next test's eyes.
    The reset cancels it (the reset named as why), and no event of it is left, and
    /metrics counts its run cancelled, not paused (as a run let go at a stop is)."""
    runs = functools.partial(import_runs, server)
    before = runs()
    answer = requests.post(f"http://{server.http_address}/console/v1/{catalog}:reset",
                           json={}, timeout=RPC_DEADLINE)
    assert answer.status_code == 200, answer.text
    assert int(answer.json()["deletedEventsCount"]) > 0  # (its first batches)
    assert answer.json()["cancelledOperationsCount"] == "1"

    with pytest.raises(exceptions.Cancelled) as cancelled:
        finish(big_import)
    assert f"cancelled by the reset of {catalog}," in cancelled.value.message
    assert 0 < big_import.metadata.success_count < BIG_EVENTS  # as its last step left it
    # The one worker has gone on past it (its next batch found it ended) to this one:
    later = retail.import_user_events(request=inline_import(f"{catalog}-next", timed_events(1)),
                                      timeout=RPC_DEADLINE)
    assert finish(later).error_samples == []
    assert count_events(server.store, catalog, server.workdir) == 0
    name = big_import.operation.name
    assert f"{name} was ended while it ran (its catalog was reset)" in server.log_text()
    assert f"{name} was deleted or taken over" not in server.log_text()
    after = runs()
    assert (after["cancelled"] - before["cancelled"], after["paused"] - before["paused"]) == \
        (1, 0)


def import_runs(server: ServerProcess) -> dict[str, float]:
    """The runs of imports of user events /metrics counts, by how they ended."""
    page = requests.get(f"http://{server.http_address}/metrics", timeout=RPC_DEADLINE).text
    found = {state: float(value) for state, value in re.findall(
        r'^footfall_operations_total\{kind="import-user-events",state="(\w+)"\} (\S+)$',
        page, re.MULTILINE)}
    return {state: found.get(state, 0.0) for state in ("cancelled", "paused")}


def test_async_cancel_ends_with_a_cancelled_error(
        server: ServerProcess, catalog: str, big_import: Any, run: Any) -> None:
    name = big_import.operation.name

    async def scenario() -> tuple[Any, Any]:
        async with retail_async_client(server.address) as client:
            await client.transport.operations_client.cancel_operation(name)
            end = time.monotonic() + OPERATION_DEADLINE
            operation = await client.get_operation({"name": name}, timeout=RPC_DEADLINE)
            while not operation.done:
                assert time.monotonic() < end, "the cancelled import never ended"
                await asyncio.sleep(0.02)
                operation = await client.get_operation({"name": name}, timeout=RPC_DEADLINE)
            return operation, await client.list_operations(
                {"name": catalog, "filter": "done=false"}, timeout=RPC_DEADLINE)

    final, running = run(scenario())
    assert final.error.code == code_pb2.CANCELLED
    assert not running.operations
    committed = retail_v2.ImportMetadata.deserialize(final.metadata.value).success_count
    assert 0 < committed < BIG_EVENTS
    assert count_events(server.store, catalog, server.workdir) == committed


def test_list_get_and_delete_operations_while_one_runs_and_others_wait(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        big_import: Any) -> None:
    # The shared server runs one job at a time: these wait behind the big import.
    waiting = [retail.purge_user_events(request={"parent": catalog, "force": False,
                                                 "filter": f'visitorId = "bulk-{i}"'},
                                        timeout=RPC_DEADLINE) for i in range(4)]
    names = [big_import.operation.name, *(op.operation.name for op in waiting)]

    assert [op.name for op in operations_in(retail, catalog, filter="done=false")] == names
    assert operations_in(retail, catalog, filter="done=true") == []
    fetched = retail.get_operation(operations_pb2.GetOperationRequest(name=names[1]),
                                   timeout=RPC_DEADLINE)
    assert fetched.name == names[1] and not fetched.done
    assert fetched.metadata.Is(retail_v2.PurgeMetadata.pb().DESCRIPTOR)

    # A job cancelled before it started ends CANCELLED without running.
    assert waiting[3].cancel() is True
    big_import.cancel()
    for operation in waiting[:3]:
        assert finish(operation).purged_events_count == 1
    for operation in (big_import, waiting[3]):
        with pytest.raises(exceptions.Cancelled):
            finish(operation)

    first_page = retail.list_operations(operations_pb2.ListOperationsRequest(
        name=catalog, page_size=2), timeout=RPC_DEADLINE)
    assert [op.name for op in first_page.operations] == names[:2]
    assert first_page.next_page_token
    paged = operations_in(retail, catalog, page_size=2)
    assert [op.name for op in paged] == names  # oldest first, across three pages
    assert all(op.done for op in paged)
    assert [op.name for op in operations_in(retail, catalog, filter="done=true")] == names
    assert operations_in(retail, catalog, filter="done = false") == []
    # The location and the project list them too (with other tests' operations).
    location = catalog.rsplit("/catalogs/", 1)[0]
    assert set(names) <= {op.name for op in operations_in(retail, location, page_size=1000)}

    # The api_core operations client (what the futures use) sees the same.
    ops_client = retail.transport.operations_client
    assert [op.name for op in ops_client.list_operations(catalog, "done=true")] == names
    ops_client.delete_operation(names[0])
    with pytest.raises(exceptions.NotFound):
        retail.get_operation({"name": names[0]}, timeout=RPC_DEADLINE)
    assert [op.name for op in operations_in(retail, catalog)] == names[1:]
    # A cancel of a done operation leaves it as it is.
    ops_client.cancel_operation(names[1])
    assert retail.get_operation({"name": names[1]}, timeout=RPC_DEADLINE).HasField("response")


def test_a_file_gone_before_the_job_starts_fails_the_operation_as_a_client_error(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str, big_import: Any) -> None:
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/rotated.json", event_lines(3))
    queued = retail.import_user_events(request=file_import(f"{catalog}-2", uri),
                                       timeout=RPC_DEADLINE)  # waits behind the big import
    gcs_path(server.gcs_root, uri).unlink()
    big_import.cancel()
    with pytest.raises(exceptions.GoogleAPICallError) as failed:
        finish(queued)
    assert failed.value.grpc_status_code in (grpc.StatusCode.INVALID_ARGUMENT,
                                             grpc.StatusCode.NOT_FOUND,
                                             grpc.StatusCode.FAILED_PRECONDITION)
    assert uri in failed.value.message


def test_deleting_a_running_operation_stops_its_job(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        big_import: Any) -> None:
    retail.transport.operations_client.delete_operation(big_import.operation.name)
    with pytest.raises(exceptions.NotFound):
        retail.get_operation({"name": big_import.operation.name}, timeout=RPC_DEADLINE)
    # One job runs at a time, so a later job finishing means the deleted one let go.
    later = retail.purge_user_events(request={"parent": catalog, "force": False,
                                              "filter": 'eventType = "home-page-view"'},
                                     timeout=RPC_DEADLINE)
    counted = finish(later).purged_events_count
    assert 0 < counted < BIG_EVENTS
    assert count_events(server.store, catalog, server.workdir) == counted


@pytest.mark.parametrize("call", ["get", "cancel", "delete"])
def test_an_unknown_operation_is_not_found(retail: retail_v2.UserEventServiceClient,
                                           catalog: str, call: str) -> None:
    name = f"{catalog}/operations/import-user-events-404"
    ops_client = retail.transport.operations_client
    action = {"get": ops_client.get_operation, "cancel": ops_client.cancel_operation,
              "delete": ops_client.delete_operation}[call]
    with pytest.raises(exceptions.NotFound):
        action(name)


@pytest.mark.parametrize("request_fields,field", [
    ({"filter": "state=RUNNING"}, "filter"),
    ({"page_token": "not-a-token"}, "page_token"),
    ({"page_size": -1}, "page_size"),
])
def test_list_operations_refuses_bad_input(retail: retail_v2.UserEventServiceClient,
                                           catalog: str, request_fields: dict[str, Any],
                                           field: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.list_operations(operations_pb2.ListOperationsRequest(name=catalog,
                                                                    **request_fields),
                               timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, [field])


def test_async_client_lists_and_gets_operations(server: ServerProcess, catalog: str,
                                                run: Any) -> None:
    async def scenario() -> tuple[list[str], Any, Any]:
        async with retail_async_client(server.address) as client:
            started = [await client.import_user_events(
                request=inline_import(catalog, timed_events(i + 1)), timeout=RPC_DEADLINE)
                for i in range(3)]
            for operation in started:
                await finish_async(operation)
            page = await client.list_operations({"name": catalog, "page_size": 2},
                                                timeout=RPC_DEADLINE)
            rest = await client.list_operations(
                {"name": catalog, "page_size": 2, "page_token": page.next_page_token},
                timeout=RPC_DEADLINE)
            got = await client.get_operation({"name": started[2].operation.name},
                                             timeout=RPC_DEADLINE)
            listed = [op.name for op in (*page.operations, *rest.operations)]
            assert listed == [op.operation.name for op in started]
            assert not rest.next_page_token
            return listed, got, started[2].metadata

    _, got, metadata = run(scenario())
    assert got.done
    assert retail_v2.ImportMetadata.deserialize(got.metadata.value).success_count == 3
    assert metadata.success_count == 3


def test_a_project_may_have_so_many_operations_not_done_and_no_more(
        server_factory: Callable[..., ServerProcess]) -> None:
    """A hundred inline imports of 9 MB were all taken (65 still queued two minutes
    later), each request held in the store until it ran: --max-pending-operations
    bounds a project's operations not done yet."""
    server = server_factory("--max-pending-operations", "2", "--operation-workers", "1")
    parent = "projects/busy/locations/global/catalogs/default_catalog"
    lines = put_gcs(server.gcs_root, "gs://busy/events.json", (
        json.dumps({"eventType": "home-page-view", "visitorId": f"v-{n}",
                    "eventTime": "2025-06-01T00:00:00Z"}) for n in range(300_000)))
    retail = retail_client(server.address)
    request = {"parent": parent, "input_config": {"gcs_source": {"input_uris": [lines]}}}
    first, second = (retail.import_user_events(request=request, timeout=RPC_DEADLINE)
                     for _ in range(2))
    with pytest.raises(exceptions.ResourceExhausted) as refused:
        retail.import_user_events(request=request, timeout=RPC_DEADLINE)
    assert refused.value.message == (
        "projects/busy has 2 operations not done yet, its limit (--max-pending-operations): "
        "wait for some to end, or cancel some")
    # another project is its own (taken, though it waits for the one worker)
    other = retail.purge_user_events(request={
        "parent": parent.replace("busy", "quiet"), "filter": "visitorId = \"nobody\"",
        "force": True},
        timeout=RPC_DEADLINE)
    for operation in (first, second):
        operation.cancel()
    for operation in (first, second, other):
        with contextlib.suppress(exceptions.GoogleAPICallError):
            finish(operation)
    # with them ended, the project may start another
    purged = retail.purge_user_events(request={"parent": parent, "force": False,
                                               "filter": "visitorId = \"nobody\""},
                                      timeout=RPC_DEADLINE)
    assert finish(purged) is not None


@pytest.mark.timeout(300)
def test_a_page_of_operations_stays_within_a_clients_message_limit(
        server_factory: Callable[..., ServerProcess], catalog: str) -> None:
    """A failed import holds its error samples (50 make 11 KB): a page of 400 passed the
    4 MiB a gRPC client reads by default, and was RESOURCE_EXHAUSTED ('Received message
    larger than max'), with no token to read it in parts (of 1,000, 11 MB, past the
    server's own 10 MiB). A page ends at 3 MiB now."""
    # 50 events, each missing its event_time and its products: 50 error samples
    failing = [user_event(example("detail-page-view", productDetails=None))] * 50
    imports = 400
    server = server_factory("--max-pending-operations", str(imports))
    with retail_client(server.address) as retail:
        for _ in range(imports):
            retail.import_user_events(request=inline_import(catalog, failing),
                                      timeout=RPC_DEADLINE)
        wait_until(lambda: not operations_in(retail, catalog, filter="done=false"),
                   "every import done")
        first = retail.list_operations(operations_pb2.ListOperationsRequest(
            name=catalog, page_size=imports), timeout=RPC_DEADLINE)
        assert 0 < len(first.operations) < imports and first.next_page_token
        assert first.ByteSize() <= 3 * 1024 * 1024 + 8 * 1024
        every = operations_in(retail, catalog, page_size=imports)
    assert len({op.name for op in every}) == imports
