"""The official Python clients with their REST transport (HTTP/JSON) against the
gateway: the same calls as over gRPC, Google's JSON errors, long-running
operations polled over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import retail_v2, retail_v2beta, talent_v4, talent_v4beta1
from google.cloud.retail_v2.services.product_service.transports import (
    ProductServiceRestTransport,
)
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceRestTransport,
)
from google.cloud.retail_v2beta.services.user_event_service import (
    transports as beta_transports,
)
from google.cloud.talent_v4.services.event_service.transports import EventServiceRestTransport
from google.cloud.talent_v4beta1.services.event_service import (
    transports as talent_beta_transports,
)
from google.longrunning import operations_pb2

from .examples import GOOGLE_EVENTS, as_json, example, user_event
from .support import RPC_DEADLINE, ServerProcess, finish, list_events

GIF_HEADER = b"GIF89a"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
RESOURCE_INFO = "type.googleapis.com/google.rpc.ResourceInfo"


def rest_transport(transport_class: Any, server: ServerProcess) -> Any:
    assert server.http_port, "the server runs without its HTTP gateway"
    return transport_class(host=server.http_address, url_scheme="http",
                           credentials=AnonymousCredentials())


@pytest.fixture(scope="module")
def events(server: ServerProcess) -> Iterator[retail_v2.UserEventServiceClient]:
    with retail_v2.UserEventServiceClient(
            transport=rest_transport(UserEventServiceRestTransport, server)) as client:
        yield client


@pytest.fixture(scope="module")
def products(server: ServerProcess) -> Iterator[retail_v2.ProductServiceClient]:
    with retail_v2.ProductServiceClient(
            transport=rest_transport(ProductServiceRestTransport, server)) as client:
        yield client


@pytest.fixture(scope="module")
def talent(server: ServerProcess) -> Iterator[talent_v4.EventServiceClient]:
    with talent_v4.EventServiceClient(
            transport=rest_transport(EventServiceRestTransport, server)) as client:
        yield client


def violations(error: exceptions.GoogleAPICallError) -> dict[str, str]:
    """field -> description of the one BadRequest detail (JSON over REST)."""
    bad = [d for d in error.details if isinstance(d, dict) and d.get("@type") == BAD_REQUEST]
    assert len(bad) == 1, error.details
    return {v["field"]: v["description"] for v in bad[0]["fieldViolations"]}


def stored(server: ServerProcess, catalog: str) -> list[dict[str, Any]]:
    return list_events(server.store, catalog, server.workdir)


# -- UserEventService ---------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(GOOGLE_EVENTS))
def test_write_round_trips_every_event_type(events: retail_v2.UserEventServiceClient,
                                            catalog: str, event_type: str) -> None:
    sent = example(event_type, eventTime="2024-05-01T12:00:00.250Z")
    answer = events.write_user_event(
        request={"parent": catalog, "user_event": user_event(sent)}, timeout=RPC_DEADLINE)
    assert as_json(answer) == sent


def test_write_and_collect_are_stored(events: retail_v2.UserEventServiceClient,
                                      server: ServerProcess, catalog: str) -> None:
    events.write_user_event(request={"parent": catalog, "user_event": user_event(
        example("home-page-view", visitorId="rest-write"))}, timeout=RPC_DEADLINE)
    pixel = events.collect_user_event(request={
        "parent": catalog, "uri": "https://shop.example.com/p/1",
        "user_event": json.dumps({"eventType": "detail-page-view", "visitorId": "rest-collect",
                                  "productDetails": [{"product": {"id": "sku-1"}}]}),
    }, timeout=RPC_DEADLINE)
    assert pixel.content_type == "image/gif"
    assert pixel.data.startswith(GIF_HEADER)
    written, collected = stored(server, catalog)
    assert written["visitorId"] == "rest-write"
    assert collected["visitorId"] == "rest-collect"
    assert collected["uri"] == "https://shop.example.com/p/1"
    # Collect over HTTP takes what the event lacks from the request itself.
    assert collected["userInfo"]["ipAddress"] == "127.0.0.1"
    assert collected["userInfo"]["userAgent"]


def test_import_purge_rejoin_run_to_completion(events: retail_v2.UserEventServiceClient,
                                               catalog: str) -> None:
    inline = [user_event(example("home-page-view", visitorId=f"imported-{i}",
                                 eventTime=f"2024-05-01T12:00:0{i}Z")) for i in range(3)]
    operation = events.import_user_events(request={
        "parent": catalog,
        "input_config": {"user_event_inline_source": {"user_events": inline}},
    }, timeout=RPC_DEADLINE)
    assert operation.operation.name.startswith(f"{catalog}/operations/import-user-events-")
    imported = finish(operation)
    assert imported.import_summary.unjoined_events_count == 0  # no products named
    assert operation.metadata.success_count == 3

    rejoined = finish(events.rejoin_user_events(request={
        "parent": catalog,
        "user_event_rejoin_scope": retail_v2.RejoinUserEventsRequest.UserEventRejoinScope
        .UNJOINED_EVENTS,  # sent as a number: the REST transport asks for int enums
    }, timeout=RPC_DEADLINE))
    assert rejoined.rejoined_user_events_count == 0

    purged = finish(events.purge_user_events(request={
        "parent": catalog, "filter": 'visitorId = "imported-1"', "force": True,
    }, timeout=RPC_DEADLINE))
    assert purged.purged_events_count == 1


def test_operations_by_get_and_list(events: retail_v2.UserEventServiceClient,
                                    catalog: str) -> None:
    operation = events.purge_user_events(request={
        "parent": catalog, "filter": 'eventType = "search"'}, timeout=RPC_DEADLINE)
    finish(operation)
    name = operation.operation.name
    got = events.get_operation(operations_pb2.GetOperationRequest(name=name),
                               timeout=RPC_DEADLINE)
    assert (got.name, got.done) == (name, True)
    listed = events.list_operations(operations_pb2.ListOperationsRequest(name=catalog),
                                    timeout=RPC_DEADLINE)
    assert [o.name for o in listed.operations] == [name]


def test_operations_of_every_version_are_listed_in_the_version_asked(
        events: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str) -> None:
    """A REST client parses every operation's types: one started through another
    version (v2beta.ImportMetadata in a v2 listing) failed the whole page."""
    inline = {"user_event_inline_source": {"user_events": [{
        "event_type": "home-page-view", "visitor_id": "v1",
        "event_time": {"seconds": 1_714_564_800}}]}}
    with retail_v2beta.UserEventServiceClient(transport=rest_transport(
            beta_transports.UserEventServiceRestTransport, server)) as beta:
        v2_import = events.import_user_events(
            request={"parent": catalog, "input_config": inline}, timeout=RPC_DEADLINE)
        beta_import = beta.import_user_events(
            request={"parent": catalog, "input_config": inline}, timeout=RPC_DEADLINE)
        export = beta.export_user_events(request={"parent": catalog, "output_config": {
            "gcs_destination": {"output_uri_prefix": f"{gcs_folder}/export/"}}},
            timeout=RPC_DEADLINE)
        for operation in (v2_import, beta_import, export):
            finish(operation)
        names = sorted(o.operation.name for o in (v2_import, beta_import, export))

        listed = events.list_operations(operations_pb2.ListOperationsRequest(name=catalog),
                                        timeout=RPC_DEADLINE)
        assert sorted(o.name for o in listed.operations) == names
        by_name = {o.name: o for o in listed.operations}
        for started in (v2_import, beta_import):  # both as v2 names them
            op = by_name[started.operation.name]
            assert op.metadata.type_url.endswith("google.cloud.retail.v2.ImportMetadata")
            assert op.response.type_url.endswith(
                "google.cloud.retail.v2.ImportUserEventsResponse")
        # v2 has no export types: the export is listed without them
        exported = by_name[export.operation.name]
        assert exported.done and not exported.HasField("response") \
            and not exported.HasField("metadata")
        got = events.get_operation(operations_pb2.GetOperationRequest(
            name=beta_import.operation.name), timeout=RPC_DEADLINE)
        assert got.metadata.type_url.endswith("google.cloud.retail.v2.ImportMetadata")

        listed = beta.list_operations(operations_pb2.ListOperationsRequest(name=catalog),
                                      timeout=RPC_DEADLINE)
        by_name = {o.name: o for o in listed.operations}
        assert sorted(by_name) == names
        assert by_name[v2_import.operation.name].metadata.type_url.endswith(
            "google.cloud.retail.v2beta.ImportMetadata")
        answer = retail_v2beta.ExportUserEventsResponse.deserialize(
            by_name[export.operation.name].response.value)
        assert answer.output_result.gcs_result


def test_invalid_event_is_400_with_bad_request_details(
        events: retail_v2.UserEventServiceClient, catalog: str) -> None:
    with pytest.raises(exceptions.BadRequest) as raised:
        events.write_user_event(request={"parent": catalog, "user_event": user_event(
            example("search", visitorId="v" * 129, searchQuery=None, pageCategories=None))},
            timeout=RPC_DEADLINE)
    assert raised.value.code == 400
    found = violations(raised.value)
    assert set(found) == {"user_event.visitor_id", "user_event.search_query"}
    assert "must be at most 128 characters" in found["user_event.visitor_id"]
    assert "user_event.visitor_id: must be at most 128 characters" in raised.value.message


def test_a_refused_collect_is_an_error_for_an_api_client(
        events: retail_v2.UserEventServiceClient, catalog: str) -> None:
    """The REST client asks for JSON, so it is told (a browser gets the GIF anyway)."""
    with pytest.raises(exceptions.BadRequest) as raised:
        events.collect_user_event(request={"parent": catalog,
                                           "user_event": '{"eventType": "search"'},
                                  timeout=RPC_DEADLINE)
    assert set(violations(raised.value)) == {"user_event"}


def test_bad_filter_and_missing_operation(events: retail_v2.UserEventServiceClient,
                                          catalog: str) -> None:
    with pytest.raises(exceptions.BadRequest) as raised:
        events.purge_user_events(request={"parent": catalog, "filter": "colour = 1"},
                                 timeout=RPC_DEADLINE)
    assert set(violations(raised.value)) == {"filter"}
    with pytest.raises(exceptions.NotFound):
        events.get_operation(operations_pb2.GetOperationRequest(
            name=f"{catalog}/operations/import-user-events-0"), timeout=RPC_DEADLINE)


# -- ProductService -----------------------------------------------------------------


def test_products_crud(products: retail_v2.ProductServiceClient, catalog: str) -> None:
    branch = f"{catalog}/branches/default_branch"
    created = products.create_product(request={
        "parent": branch, "product_id": "tent-2p",
        "product": {"title": "Two-person tent", "categories": ["Outdoor > Tents"],
                    "price_info": {"price": 199.0, "currency_code": "EUR"}},
    }, timeout=RPC_DEADLINE)
    assert created.name == f"{catalog}/branches/0/products/tent-2p"
    assert products.get_product(name=created.name, timeout=RPC_DEADLINE).title == \
        "Two-person tent"
    updated = products.update_product(request={
        "product": {"name": created.name, "title": "Tent for two"},
        "update_mask": {"paths": ["title"]}}, timeout=RPC_DEADLINE)
    assert (updated.title, updated.price_info.price) == ("Tent for two", 199.0)
    listed = products.list_products(request={"parent": branch, "page_size": 10,
                                             "read_mask": {"paths": ["title"]}},
                                    timeout=RPC_DEADLINE)
    assert [p.title for p in listed] == ["Tent for two"]
    with pytest.raises(exceptions.Conflict) as taken:
        products.create_product(request={"parent": branch, "product_id": "tent-2p",
                                         "product": {"title": "x", "categories": ["y"]}},
                                timeout=RPC_DEADLINE)
    assert taken.value.details[0]["@type"] == RESOURCE_INFO
    products.delete_product(name=created.name, timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.NotFound) as missing:
        products.get_product(name=created.name, timeout=RPC_DEADLINE)
    assert missing.value.details[0]["resourceName"] == created.name
    with pytest.raises(exceptions.BadRequest) as refused:
        products.purge_products(request={"parent": branch, "filter": "title = \"x\""},
                                timeout=RPC_DEADLINE)
    assert "unknown field 'title'" in refused.value.message


def test_product_import_polls_the_branch_operation(products: retail_v2.ProductServiceClient,
                                                   catalog: str) -> None:
    operation = products.import_products(request={
        "parent": f"{catalog}/branches/0",
        "input_config": {"product_inline_source": {"products": [
            {"id": f"sku-{i}", "title": f"Item {i}", "categories": ["Gear"]} for i in range(2)
        ]}},
    }, timeout=RPC_DEADLINE)
    assert "/branches/0/operations/import-products-" in operation.operation.name
    finish(operation)
    assert operation.metadata.success_count == 2


# -- talent EventService ------------------------------------------------------------


def test_create_client_event(talent: talent_v4.EventServiceClient, tenant: str) -> None:
    event = {"event_id": "rest-1", "request_id": "req-1",
             "create_time": "2024-05-01T12:00:00Z",
             "job_event": {"type_": talent_v4.JobEvent.JobEventType.APPLICATION_START,
                           "jobs": [f"{tenant}/jobs/j1"]}}
    created = talent.create_client_event(parent=tenant, client_event=event,
                                         timeout=RPC_DEADLINE)
    assert created.event_id == "rest-1"
    assert created.job_event.type_ == talent_v4.JobEvent.JobEventType.APPLICATION_START
    assert talent.create_client_event(parent=tenant, client_event=event,
                                      timeout=RPC_DEADLINE) == created  # identical retry
    with pytest.raises(exceptions.Conflict):
        talent.create_client_event(parent=tenant,
                                   client_event={**event, "request_id": "req-2"},
                                   timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.BadRequest) as raised:
        talent.create_client_event(parent=tenant, client_event={"event_id": "rest-2"},
                                   timeout=RPC_DEADLINE)
    assert {"client_event.create_time", "client_event.job_event"} <= \
        set(violations(raised.value))


def test_create_client_event_through_v4beta1(server: ServerProcess, tenant: str) -> None:
    """v4beta1's REST transport posts the whole request (`body: "*"`)."""
    event = {"event_id": "rest-beta-1", "create_time": "2024-05-01T12:00:00Z",
             "job_event": {"type_": talent_v4beta1.JobEvent.JobEventType.VIEW,
                           "jobs": [f"{tenant}/jobs/j1"], "profile": f"{tenant}/profiles/p1"}}
    with talent_v4beta1.EventServiceClient(transport=rest_transport(
            talent_beta_transports.EventServiceRestTransport, server)) as beta:
        created = beta.create_client_event(parent=tenant, client_event=event,
                                           timeout=RPC_DEADLINE)
        assert created.job_event.profile == f"{tenant}/profiles/p1"
        with pytest.raises(exceptions.BadRequest) as raised:
            beta.create_client_event(parent=tenant, client_event={
                **event, "job_event": {"type_": 0, "jobs": [f"{tenant}/jobs/j1"]}},
                timeout=RPC_DEADLINE)
    assert list(violations(raised.value)) == ["client_event.job_event.type"]
