"""The official retail_v2beta and retail_v2alpha clients against the server
subprocess: the same UserEventService and ProductService as v2 on the same store
(an event written through one version is read, purged and exported through the
others), ExportUserEvents and ExportProducts writing files that import reads
back, v2alpha's extra fields, and the RPCs out of scope answering UNIMPLEMENTED.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import retail_v2, retail_v2alpha, retail_v2beta
from google.cloud.retail_v2alpha.services.catalog_service.transports import (
    CatalogServiceGrpcTransport,
)
from google.protobuf import json_format
from google.rpc import error_details_pb2

from .examples import GOOGLE_EVENTS, example
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    finish,
    gcs_path,
    list_events,
    product_client,
    retail_client,
    wait_until,
)

VERSIONS = {"v2beta": retail_v2beta, "v2alpha": retail_v2alpha}


class Clients:
    """The UserEventService and ProductService clients of one version (or v2)."""

    def __init__(self, module: Any, address: str) -> None:
        self.module = module
        name = module.__name__.rpartition(".")[2]
        events = __import__(f"google.cloud.{name}.services.user_event_service.transports",
                            fromlist=["UserEventServiceGrpcTransport"])
        catalog = __import__(f"google.cloud.{name}.services.product_service.transports",
                             fromlist=["ProductServiceGrpcTransport"])
        self.events = module.UserEventServiceClient(transport=events.UserEventServiceGrpcTransport(
            channel=grpc.insecure_channel(address)))
        self.products = module.ProductServiceClient(transport=catalog.ProductServiceGrpcTransport(
            channel=grpc.insecure_channel(address)))

    def event(self, data: dict[str, Any]) -> Any:
        """A UserEvent of this version from proto3 JSON."""
        return self.module.UserEvent.from_json(json.dumps(data))

    def close(self) -> None:
        self.events.transport.close()
        self.products.transport.close()


@pytest.fixture(scope="module")
def clients(server: ServerProcess) -> Iterator[dict[str, Clients]]:
    made = {name: Clients(module, server.address) for name, module in VERSIONS.items()}
    made["v2"] = Clients(retail_v2, server.address)
    yield made
    for client in made.values():
        client.close()


@pytest.fixture(params=sorted(VERSIONS))
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def stored(server: ServerProcess, catalog: str) -> list[dict[str, Any]]:
    return list_events(server.store, catalog, server.workdir)


def export_uri(folder: str) -> dict[str, Any]:
    return {"gcs_destination": {"output_uri_prefix": f"{folder}/export/"}}


def exported_lines(server: ServerProcess, response: Any) -> list[dict[str, Any]]:
    uris = [r.output_uri for r in response.output_result.gcs_result]
    assert uris, response
    return [json.loads(line) for uri in uris
            for line in gcs_path(server.gcs_root, uri).read_text().splitlines()]


def events_of(count: int, visitor: str, day: str = "2024-05-20") -> list[dict[str, Any]]:
    types = sorted(t for t in GOOGLE_EVENTS if "productDetails" not in GOOGLE_EVENTS[t])
    return [example(types[i % len(types)], visitorId=f"{visitor}-{i}",
                    eventTime=f"{day}T10:00:{i:02d}Z") for i in range(count)]


# -- UserEventService ------------------------------------------------------------------


def test_write_and_collect_answer_in_the_version_and_store_for_v2(
        clients: dict[str, Clients], server: ServerProcess, catalog: str, version: str) -> None:
    mine = clients[version]
    sent = example("search", eventTime="2024-05-01T12:00:00.250Z")
    answer = mine.events.write_user_event(
        request={"parent": catalog, "user_event": mine.event(sent)}, timeout=RPC_DEADLINE)
    assert isinstance(answer, mine.module.UserEvent)
    assert json.loads(mine.module.UserEvent.to_json(answer)) == \
        json.loads(retail_v2.UserEvent.to_json(retail_v2.UserEvent.from_json(json.dumps(sent))))
    pixel = mine.events.collect_user_event(request={
        "parent": catalog, "user_event": json.dumps(example("home-page-view", visitorId="px"))},
        timeout=RPC_DEADLINE)
    assert pixel.data.startswith(b"GIF89a")
    kept = stored(server, catalog)
    assert [e["eventType"] for e in kept] == ["search", "home-page-view"]
    assert kept[0] == sent


def test_bad_event_is_refused_naming_the_field_and_nothing_is_stored(
        clients: dict[str, Clients], server: ServerProcess, catalog: str, version: str) -> None:
    mine = clients[version]
    bad = example("search", visitorId="v" * 129)
    with pytest.raises(exceptions.InvalidArgument) as caught:
        mine.events.write_user_event(request={"parent": catalog, "user_event": mine.event(bad)},
                                     timeout=RPC_DEADLINE)
    assert_names_fields(caught.value, ["user_event.visitor_id"])
    assert stored(server, catalog) == []


def test_one_store_for_every_version(clients: dict[str, Clients], server: ServerProcess,
                                     catalog: str, gcs_folder: str) -> None:
    """Written through v2, v2beta and v2alpha; counted, exported and purged through
    the others."""
    written = {}
    for i, name in enumerate(("v2", "v2beta", "v2alpha")):
        sent = example("home-page-view", visitorId=f"{name}-visitor",
                       eventTime=f"2024-05-20T10:00:0{i}Z")
        clients[name].events.write_user_event(
            request={"parent": catalog, "user_event": clients[name].event(sent)},
            timeout=RPC_DEADLINE)
        written[name] = sent
    for name in ("v2", "v2beta", "v2alpha"):
        count = finish(clients[name].events.purge_user_events(
            request={"parent": catalog, "filter": 'eventType = "home-page-view"',
                     "force": False}, timeout=RPC_DEADLINE))
        assert count.purged_events_count == 3, name
    exported = finish(clients["v2alpha"].events.export_user_events(request={
        "parent": catalog, "output_config": export_uri(gcs_folder)}, timeout=RPC_DEADLINE))
    assert isinstance(exported, retail_v2alpha.ExportUserEventsResponse)
    assert sorted(exported_lines(server, exported), key=lambda e: e["eventTime"]) == \
        list(written.values())
    purged = finish(clients["v2beta"].events.purge_user_events(
        request={"parent": catalog, "filter": 'visitorId = "v2-visitor"', "force": True},
        timeout=RPC_DEADLINE))
    assert isinstance(purged, retail_v2beta.PurgeUserEventsResponse)
    assert purged.purged_events_count == 1
    assert [e["visitorId"] for e in stored(server, catalog)] == ["v2beta-visitor",
                                                                 "v2alpha-visitor"]
    # The CLI reads the operations from the store as the clients saw them.
    listed = subprocess.run(
        [sys.executable, "-m", "server", "operations", "list", "--parent", catalog,
         "--store", server.store, "--json"], cwd=server.workdir, capture_output=True,
        text=True, timeout=60, check=True).stdout.splitlines()
    types = [json.loads(line)["response"]["@type"].rpartition("/")[2] for line in listed]
    assert types == [f"google.cloud.retail.{v}.PurgeUserEventsResponse"
                     for v in ("v2", "v2beta", "v2alpha")] + [
        "google.cloud.retail.v2alpha.ExportUserEventsResponse",
        "google.cloud.retail.v2beta.PurgeUserEventsResponse"]


def test_export_purge_import_gives_back_the_same_events(
        clients: dict[str, Clients], server: ServerProcess, catalog: str, branch: str,
        gcs_folder: str, version: str) -> None:
    mine = clients[version]
    mine.products.create_product(request={
        "parent": branch, "product_id": "tent-1",
        "product": {"title": "Tent", "categories": ["Camping"],
                    "price_info": {"price": 120, "currency_code": "EUR"}}},
        timeout=RPC_DEADLINE)
    plain = events_of(30, "plain")
    viewed = example("detail-page-view", visitorId="viewer", eventTime="2024-05-20T11:00:00Z",
                     productDetails=[{"product": {"id": "tent-1"}}])
    missing = example("detail-page-view", visitorId="lost", eventTime="2024-05-20T11:00:01Z",
                      productDetails=[{"product": {"id": "not-in-catalog"}}])
    imported = finish(mine.events.import_user_events(request={
        "parent": catalog,
        "input_config": {"user_event_inline_source": {
            "user_events": [mine.event(e) for e in [*plain, viewed, missing]]}}},
        timeout=RPC_DEADLINE))
    assert isinstance(imported, mine.module.ImportUserEventsResponse)
    before = stored(server, catalog)
    assert len(before) == 32

    joined = finish(mine.events.export_user_events(request={
        "parent": catalog, "output_config": export_uri(f"{gcs_folder}/joined")},
        timeout=RPC_DEADLINE))
    unjoined = finish(mine.events.export_user_events(request={
        "parent": catalog, "output_config": export_uri(f"{gcs_folder}/unjoined"),
        "filter": "eventsMissingCatalogItems"}, timeout=RPC_DEADLINE))
    lines = exported_lines(server, joined)
    assert len(lines) == 31 and viewed in lines  # as received: import joins it again
    assert exported_lines(server, unjoined) == [missing]

    finish(mine.events.purge_user_events(request={
        "parent": catalog, "filter": 'eventTime > "2000-01-01T00:00:00Z"', "force": True},
        timeout=RPC_DEADLINE))
    assert stored(server, catalog) == []
    uris = [r.output_uri for r in [*joined.output_result.gcs_result,
                                   *unjoined.output_result.gcs_result]]
    again = finish(mine.events.import_user_events(request={
        "parent": catalog, "input_config": {"gcs_source": {"input_uris": uris}}},
        timeout=RPC_DEADLINE))
    assert again.import_summary.joined_events_count == 31
    assert again.import_summary.unjoined_events_count == 1
    after = stored(server, catalog)
    key = json.dumps
    assert sorted(map(key, after)) == sorted(map(key, before))


@pytest.mark.parametrize("types", [
    '(eventType = search OR eventType = "home-page-view")',
    "eventType = (search OR home-page-view)",  # as Google's "Example 5" writes it
])
def test_export_filter_selects_by_time_and_type(
        clients: dict[str, Clients], server: ServerProcess, catalog: str,
        gcs_folder: str, version: str, types: str) -> None:
    mine = clients[version]
    sent = events_of(12, "f")
    for event in sent:
        mine.events.write_user_event(request={"parent": catalog, "user_event": mine.event(event)},
                                     timeout=RPC_DEADLINE)
    wanted = [e for e in sent if e["eventTime"] >= "2024-05-20T10:00:04Z"
              and e["eventTime"] < "2024-05-20T10:00:10Z"
              and e["eventType"] in ("search", "home-page-view")]
    assert wanted
    response = finish(mine.events.export_user_events(request={
        "parent": catalog, "output_config": export_uri(gcs_folder),
        "filter": f'eventTime >= "2024-05-20T10:00:04Z" eventTime < "2024-05-20T10:00:10Z" '
                  f"{types}"},
        timeout=RPC_DEADLINE))
    assert exported_lines(server, response) == wanted


def test_export_filter_takes_googles_not_example(
        clients: dict[str, Clients], server: ServerProcess, catalog: str,
        gcs_folder: str, version: str) -> None:
    """ExportUserEventsRequest.filter's "Example 3" writes `eventType = (NOT search)`
    (with eventsMissingCatalogItems; these events name no product, so are joined):
    every type but the one named, of the time range asked."""
    mine = clients[version]
    sent = events_of(12, "n")
    for event in sent:
        mine.events.write_user_event(request={"parent": catalog, "user_event": mine.event(event)},
                                     timeout=RPC_DEADLINE)
    wanted = [e for e in sent if e["eventTime"] < "2024-05-20T10:00:10Z"
              and e["eventType"] != "home-page-view"]
    assert wanted and len(wanted) < len([e for e in sent
                                         if e["eventTime"] < "2024-05-20T10:00:10Z"])
    response = finish(mine.events.export_user_events(request={
        "parent": catalog, "output_config": export_uri(gcs_folder),
        "filter": 'eventType = (NOT home-page-view) eventTime < "2024-05-20T10:00:10Z"'},
        timeout=RPC_DEADLINE))
    assert exported_lines(server, response) == wanted


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"output_config": {"bigquery_destination": {"dataset_id": "d", "table_id_prefix": "t",
                                                 "table_type": "table"}}},
     "output_config.bigquery_destination"),
    ({"output_config": {}}, "output_config.gcs_destination.output_uri_prefix"),
    ({"output_config": {"gcs_destination": {"output_uri_prefix": "s3://bucket/x"}}},
     "output_config.gcs_destination.output_uri_prefix"),
    ({"parent": "projects/p/catalogs/c"}, "parent"),
    ({"filter": 'visitorId = "x"'}, "filter"),
    ({"filter": '(eventType = a OR NOT eventType = b)'}, "filter"),
    ({"filter": 'eventTime > "2024-02-01T00:00:00Z" eventTime < "2024-01-01T00:00:00Z"'},
     "filter"),
])
def test_bad_export_requests_are_refused_naming_the_field(
        clients: dict[str, Clients], server: ServerProcess, catalog: str, gcs_folder: str,
        version: str, request_fields: dict[str, Any], field: str) -> None:
    request = {"parent": catalog, "output_config": export_uri(gcs_folder), **request_fields}
    with pytest.raises(exceptions.InvalidArgument) as caught:
        clients[version].events.export_user_events(request=request, timeout=RPC_DEADLINE)
    assert_names_fields(caught.value, [field])
    assert not gcs_path(server.gcs_root, gcs_folder).exists()  # nothing was written


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"output_config": {"bigquery_destination": {"dataset_id": "d"}}},
     "output_config.bigquery_destination"),
    ({"filter": 'lastModifiedTime > "2024-01-01T00:00:00Z"'}, "filter"),
    ({"filter": "productType = collection"}, "filter"),
    ({"parent": "projects/p/locations/global/catalogs/c"}, "parent"),
])
def test_bad_product_export_requests_are_refused_naming_the_field(
        clients: dict[str, Clients], server: ServerProcess, branch: str, gcs_folder: str,
        version: str, request_fields: dict[str, Any], field: str) -> None:
    request = {"parent": branch, "output_config": export_uri(gcs_folder), **request_fields}
    with pytest.raises(exceptions.InvalidArgument) as caught:
        clients[version].products.export_products(request=request, timeout=RPC_DEADLINE)
    assert_names_fields(caught.value, [field])
    assert not gcs_path(server.gcs_root, gcs_folder).exists()


def test_rejoin_answers_in_the_version(clients: dict[str, Clients], catalog: str,
                                      version: str) -> None:
    mine = clients[version]
    mine.events.write_user_event(request={"parent": catalog, "user_event": mine.event(
        example("detail-page-view", productDetails=[{"product": {"id": "later"}}]))},
        timeout=RPC_DEADLINE)
    response = finish(mine.events.rejoin_user_events(request={"parent": catalog},
                                                     timeout=RPC_DEADLINE))
    assert isinstance(response, mine.module.RejoinUserEventsResponse)
    assert response.rejoined_user_events_count == 0


# -- ProductService --------------------------------------------------------------------


def test_products_crud_and_export_import(clients: dict[str, Clients], server: ServerProcess,
                                         branch: str, gcs_folder: str, version: str) -> None:
    mine = clients[version].products
    made = mine.create_product(request={
        "parent": branch, "product_id": "p1",
        "product": {"title": "Stove", "categories": ["Camping > Cooking"],
                    "price_info": {"price": 40, "currency_code": "EUR"}}},
        timeout=RPC_DEADLINE)
    assert made.name == f"{branch.rpartition('/')[0]}/0/products/p1"  # as Google names it
    clients["v2"].products.create_product(request={
        "parent": branch, "product_id": "p2",
        "product": {"title": "Pot", "categories": ["Camping > Cooking"],
                    "availability": "OUT_OF_STOCK"}}, timeout=RPC_DEADLINE)
    updated = mine.update_product(request={"product": {"name": made.name, "title": "Stove 2"},
                                           "update_mask": {"paths": ["title"]}},
                                  timeout=RPC_DEADLINE)
    assert updated.title == "Stove 2"
    assert mine.get_product(name=made.name, timeout=RPC_DEADLINE).title == "Stove 2"
    listed = mine.list_products(request={"parent": branch}, timeout=RPC_DEADLINE)
    assert [p.id for p in listed] == ["p1", "p2"]

    only_in_stock = finish(mine.export_products(request={
        "parent": branch, "output_config": export_uri(f"{gcs_folder}/in-stock"),
        "filter": "availability = IN_STOCK"}, timeout=RPC_DEADLINE))
    assert [p["id"] for p in exported_lines(server, only_in_stock)] == ["p1"]
    in_stock_or_out = finish(mine.export_products(request={  # Google's "Example 5" form
        "parent": branch, "output_config": export_uri(f"{gcs_folder}/either"),
        "filter": "availability = (IN_STOCK OR OUT_OF_STOCK) AND productType = (primary)"},
        timeout=RPC_DEADLINE))
    assert sorted(p["id"] for p in exported_lines(server, in_stock_or_out)) == ["p1", "p2"]
    everything = finish(mine.export_products(request={
        "parent": branch, "output_config": export_uri(f"{gcs_folder}/all")},
        timeout=RPC_DEADLINE))
    assert isinstance(everything, clients[version].module.ExportProductsResponse)
    before = [retail_v2.Product.to_dict(p) for p in
              clients["v2"].products.list_products(request={"parent": branch},
                                                   timeout=RPC_DEADLINE)]
    for product_id in ("p1", "p2"):
        mine.delete_product(name=f"{branch}/products/{product_id}", timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.NotFound) as gone:
        mine.get_product(name=made.name, timeout=RPC_DEADLINE)
    # named as this version names its Product (v2beta and v2alpha were told v2's)
    product_type = f"google.cloud.retail.{version}.Product"
    [info] = [d for d in gone.value.details if isinstance(d, error_details_pb2.ResourceInfo)]
    assert (info.resource_type, info.resource_name) == (product_type, made.name)
    assert gone.value.message.startswith(f"{product_type} '{made.name}' not found")
    uris = [r.output_uri for r in everything.output_result.gcs_result]
    finish(mine.import_products(request={
        "parent": branch, "input_config": {"gcs_source": {"input_uris": uris}}},
        timeout=RPC_DEADLINE))
    after = [retail_v2.Product.to_dict(p) for p in
             clients["v2"].products.list_products(request={"parent": branch},
                                                  timeout=RPC_DEADLINE)]
    assert after == before


def test_v2alpha_force_delete_and_total_size(clients: dict[str, Clients], branch: str) -> None:
    mine = clients["v2alpha"].products
    mine.create_product(request={"parent": branch, "product_id": "primary",
                                 "product": {"title": "Jacket", "categories": ["Wear"]}},
                        timeout=RPC_DEADLINE)
    for color in ("red", "blue"):
        mine.create_product(request={"parent": branch, "product_id": f"jacket-{color}",
                                     "product": {"title": f"Jacket {color}", "type": "VARIANT",
                                                 "primary_product_id": "primary"}},
                            timeout=RPC_DEADLINE)
    page = mine.list_products(request={"parent": branch, "page_size": 1,
                                       "require_total_size": True}, timeout=RPC_DEADLINE)
    assert page.total_size == 3
    assert len(page.products) == 1 and page.next_page_token
    assert mine.list_products(request={"parent": branch, "page_size": 1},
                              timeout=RPC_DEADLINE).total_size == 0  # not asked for
    name = f"{branch}/products/primary"
    with pytest.raises(exceptions.InvalidArgument) as caught:
        mine.delete_product(request={"name": name, "force": False}, timeout=RPC_DEADLINE)
    assert_names_fields(caught.value, ["name"])
    # A variant held by a collection: refused before anything is deleted.
    mine.create_product(request={"parent": branch, "product_id": "set", "product": {
        "title": "Set", "categories": ["Wear"], "type": "COLLECTION",
        "collection_member_ids": ["jacket-red"]}}, timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.InvalidArgument) as caught:
        mine.delete_product(request={"name": name, "force": True}, timeout=RPC_DEADLINE)
    assert_names_fields(caught.value, ["name"])
    assert "'jacket-red' is a member of collection 'set'" in caught.value.message
    assert len(list(mine.list_products(request={"parent": branch}, timeout=RPC_DEADLINE))) == 4
    mine.delete_product(name=f"{branch}/products/set", timeout=RPC_DEADLINE)
    mine.delete_product(request={"name": name, "force": True}, timeout=RPC_DEADLINE)
    assert list(mine.list_products(request={"parent": branch}, timeout=RPC_DEADLINE)) == []


def test_v2alpha_local_inventory_availability_is_refused_naming_where(
        clients: dict[str, Clients], branch: str) -> None:
    mine = clients["v2alpha"].products
    name = f"{branch}/products/boots"
    with pytest.raises(exceptions.InvalidArgument) as caught:
        mine.create_product(request={"parent": branch, "product_id": "boots", "product": {
            "title": "Boots", "categories": ["Wear"], "local_inventories": [
                {"place_id": "store-1"}, {"place_id": "store-2", "availability": "IN_STOCK"}]}},
            timeout=RPC_DEADLINE)
    assert_names_fields(caught.value, ["product.local_inventories[1].availability"])
    with pytest.raises(exceptions.NotFound):
        mine.get_product(name=name, timeout=RPC_DEADLINE)
    mine.create_product(request={"parent": branch, "product_id": "boots", "product": {
        "title": "Boots", "categories": ["Wear"]}}, timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.InvalidArgument) as caught:
        mine.add_local_inventories(request={"product": name, "local_inventories": [
            {"place_id": "store-1", "availability": "PREORDER"}]}, timeout=RPC_DEADLINE)
    assert_names_fields(caught.value, ["local_inventories[0].availability"])
    finish(mine.add_local_inventories(request={"product": name, "local_inventories": [
        {"place_id": "store-1", "fulfillment_types": ["pickup-in-store"]}]},
        timeout=RPC_DEADLINE))
    assert [p.place_id for p in mine.get_product(name=name, timeout=RPC_DEADLINE)
            .local_inventories] == ["store-1"]


# -- out of scope, and REST ------------------------------------------------------------


def test_out_of_scope_rpcs_are_unimplemented_with_a_message(server: ServerProcess) -> None:
    client = retail_v2alpha.CatalogServiceClient(transport=CatalogServiceGrpcTransport(
        channel=grpc.insecure_channel(server.address)))
    with client, pytest.raises(exceptions.MethodNotImplemented) as caught:
        client.list_catalogs(parent="projects/p/locations/global", timeout=RPC_DEADLINE)
    assert "google.cloud.retail.v2alpha.CatalogService/ListCatalogs is not served" in \
        caught.value.message
    assert "README" in caught.value.message


def test_rest_clients_write_and_export_and_a_get_collect_is_a_pixel(
        server: ServerProcess, catalog: str, gcs_folder: str, version: str) -> None:
    module = VERSIONS[version]
    transports = __import__(f"google.cloud.retail_{version}.services.user_event_service."
                            "transports", fromlist=["UserEventServiceRestTransport"])
    transport = transports.UserEventServiceRestTransport(
        host=server.http_address, url_scheme="http", credentials=AnonymousCredentials())
    with module.UserEventServiceClient(transport=transport) as client:
        sent = example("home-page-view", eventTime="2024-05-20T10:00:00Z")
        client.write_user_event(request={"parent": catalog,
                                         "user_event": module.UserEvent.from_json(
                                             json.dumps(sent))}, timeout=RPC_DEADLINE)
        response = finish(client.export_user_events(request={
            "parent": catalog, "output_config": export_uri(gcs_folder)}, timeout=RPC_DEADLINE))
        assert isinstance(response, module.ExportUserEventsResponse)
    assert exported_lines(server, response) == [sent]
    pixel = requests.get(
        f"http://{server.http_address}/{version}/{catalog}/userEvents:collect",
        params={"user_event": json.dumps(example("home-page-view", visitorId="px"))},
        timeout=RPC_DEADLINE)
    assert (pixel.status_code, pixel.headers["Content-Type"]) == (200, "image/gif")
    # a browser's pixel is answered once queued: committed with the next group
    wait_until(lambda: [e["visitorId"] for e in stored(server, catalog)][-1] == "px",
               "the pixel's event to be stored")


def test_v2_clients_still_see_v2_types(server: ServerProcess, catalog: str) -> None:
    with retail_client(server.address) as events, product_client(server.address):
        response = finish(events.purge_user_events(request={
            "parent": catalog, "filter": 'eventType = "search"', "force": False},
            timeout=RPC_DEADLINE))
    assert isinstance(response, retail_v2.PurgeUserEventsResponse)
    assert json_format.MessageToDict(retail_v2.PurgeUserEventsResponse.pb(response)) == {}

