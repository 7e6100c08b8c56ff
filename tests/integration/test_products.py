"""ProductService in-process, through our own generated stubs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeAlias

import grpc
import pytest
from footfall.retail.v2 import (
    product_pb2,
    product_service_pb2,
    product_service_pb2_grpc,
)
from google.longrunning import operations_pb2_grpc
from google.protobuf import field_mask_pb2, json_format, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from server.retail import product_listing

from .cli import wait

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
DEFAULT = f"{CATALOG}/branches/default_branch"
BRANCH0 = f"{CATALOG}/branches/0"
Stub: TypeAlias = product_service_pb2_grpc.ProductServiceStub


@pytest.fixture
def stub(channel: grpc.Channel) -> Stub:
    return product_service_pb2_grpc.ProductServiceStub(channel)


def product(**fields: Any) -> product_pb2.Product:
    body = {"title": "Shoe", "categories": ["Shoes"], **fields}
    return json_format.ParseDict(body, product_pb2.Product())


def create(stub: Stub, product_id: str, parent: str = DEFAULT, **fields: Any) -> Any:
    return stub.CreateProduct(product_service_pb2.CreateProductRequest(
        parent=parent, product_id=product_id, product=product(**fields)))


def variant(stub: Stub, product_id: str, primary: str) -> Any:
    return create(stub, product_id, type="VARIANT", primaryProductId=primary, categories=[])


def fails(call: Callable[[], Any], code: grpc.StatusCode) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def detail(error: grpc.RpcError, kind: type) -> Any:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    found = kind()
    assert status.details[0].Unpack(found)
    return found


def fields_of(error: grpc.RpcError) -> list[str]:
    return [v.field for v in detail(error, error_details_pb2.BadRequest).field_violations]


def get(stub: Stub, product_id: str) -> Any:
    return stub.GetProduct(product_service_pb2.GetProductRequest(
        name=f"{DEFAULT}/products/{product_id}"))


def list_ids(stub: Stub, **request: Any) -> tuple[list[str], str]:
    answer = stub.ListProducts(product_service_pb2.ListProductsRequest(
        parent=request.pop("parent", DEFAULT), **request))
    return [p.id for p in answer.products], answer.next_page_token


# -- create and get --------------------------------------------------------

def test_create_sets_name_id_and_defaults_then_get_reads_it(stub: Stub) -> None:
    made = create(stub, "sku-1", priceInfo={"currencyCode": "USD", "price": 9.5})
    assert made.name == f"{BRANCH0}/products/sku-1"
    assert (made.id, made.type, made.primary_product_id) == (
        "sku-1", product_pb2.Product.PRIMARY, "sku-1")
    assert get(stub, "sku-1") == made
    by_number = stub.GetProduct(product_service_pb2.GetProductRequest(name=made.name))
    assert by_number == made


def test_branches_are_separate(stub: Stub) -> None:
    create(stub, "sku-1", parent=f"{CATALOG}/branches/1")
    fails(lambda: get(stub, "sku-1"), grpc.StatusCode.NOT_FOUND)


def test_create_lists_every_violation(stub: Stub) -> None:
    error = fails(lambda: stub.CreateProduct(product_service_pb2.CreateProductRequest(
        parent=f"{CATALOG}/branches/7", product_id="")), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields_of(error) == ["parent", "product_id", "product"]
    error = fails(lambda: create(stub, "x" * 129), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields_of(error) == ["product_id"]
    error = fails(lambda: create(stub, "sku", title="", categories=[], uri="u" * 5001),
                  grpc.StatusCode.INVALID_ARGUMENT)
    assert fields_of(error) == ["product.title", "product.categories", "product.uri"]
    assert "product.title: is required" in error.details()


def test_create_checks_the_primary_of_a_variant(stub: Stub) -> None:
    error = fails(lambda: variant(stub, "v1", "nope"), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields_of(error) == ["product.primary_product_id"]
    create(stub, "p1")
    assert variant(stub, "v1", "p1").primary_product_id == "p1"


def test_create_twice_is_already_exists(stub: Stub) -> None:
    create(stub, "sku-1")
    error = fails(lambda: create(stub, "sku-1"), grpc.StatusCode.ALREADY_EXISTS)
    info = detail(error, error_details_pb2.ResourceInfo)
    assert info.resource_type == "google.cloud.retail.v2.Product"
    assert info.resource_name == f"{BRANCH0}/products/sku-1"


def test_get_missing_and_malformed(stub: Stub) -> None:
    error = fails(lambda: get(stub, "ghost"), grpc.StatusCode.NOT_FOUND)
    assert detail(error, error_details_pb2.ResourceInfo).resource_name == \
        f"{DEFAULT}/products/ghost"
    error = fails(lambda: stub.GetProduct(product_service_pb2.GetProductRequest(
        name=f"{CATALOG}/products/x")), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields_of(error) == ["name"]


def test_an_id_ending_in_a_line_break_is_refused_not_cut_short(stub: Stub) -> None:
    """A product id holds no white space, as no segment of a name does (README,
    Validation); nor is "sku\n" read as "sku"."""
    create(stub, "sku")
    error = fails(lambda: get(stub, "sku\n"), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields_of(error) == ["name"]
    error = fails(lambda: create(stub, "sku\n"), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields_of(error) == ["product_id"]
    assert get(stub, "sku").id == "sku"


# -- list ------------------------------------------------------------------

def test_list_pages_by_id_with_the_default_read_mask(stub: Stub) -> None:
    for i in (3, 1, 4, 0, 2):
        create(stub, f"p{i}", description="long text")
    ids, token = list_ids(stub, page_size=2)
    assert (ids, bool(token)) == (["p0", "p1"], True)
    ids, token = list_ids(stub, page_size=2, page_token=token)
    assert (ids, bool(token)) == (["p2", "p3"], True)
    ids, token = list_ids(stub, page_size=2, page_token=token)
    assert (ids, token) == (["p4"], "")
    first = stub.ListProducts(product_service_pb2.ListProductsRequest(parent=DEFAULT)).products[0]
    assert (first.name, first.title, first.description, list(first.categories)) == (
        f"{BRANCH0}/products/p0", "Shoe", "", [])
    full = stub.ListProducts(product_service_pb2.ListProductsRequest(
        parent=DEFAULT, read_mask=field_mask_pb2.FieldMask(paths=["*"]))).products[0]
    assert full == get(stub, "p0")


def test_list_filters(stub: Stub) -> None:
    create(stub, "p1")
    create(stub, "p2")
    variant(stub, "v1", "p1")
    variant(stub, "v2", "p2")
    variant(stub, "v3", "p1")
    create(stub, "c1", type="COLLECTION", collectionMemberIds=["v3", "p2", "gone"],
           categories=[])
    assert list_ids(stub, filter='primary_product_id = "p1"') == (["v1", "v3"], "")
    assert list_ids(stub, filter='collection_product_id = "c1"') == (["p2", "v3"], "")
    assert list_ids(stub, filter='type = "PRIMARY"') == (["p1", "p2"], "")
    ids, token = list_ids(stub, filter='type = "VARIANT"', page_size=2)
    assert ids == ["v1", "v2"]
    assert list_ids(stub, filter='type = "VARIANT"', page_size=2, page_token=token) == (
        ["v3"], "")
    ids, token = list_ids(stub, filter='collection_product_id = "c1"', page_size=1)
    assert list_ids(stub, filter='collection_product_id = "c1"', page_token=token) == (
        ["v3"], "")


def test_a_filtered_list_reads_at_most_scan_limit_products_a_call(
        stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter that matches few products (or none) read the whole branch in one
    call; a call reads at most SCAN_LIMIT of them, and its page is short or empty,
    with a token to go on from the last one read, as the console's lists do."""
    monkeypatch.setattr(product_listing, "SCAN_LIMIT", 10)
    for n in range(25):
        create(stub, f"p{n:02}")
    variant(stub, "p12v", "p12")  # (after p12, by id)
    variant(stub, "p21v", "p21")
    pages = []
    token = ""
    for _ in range(10):
        ids, token = list_ids(stub, filter='type = "VARIANT"', page_token=token)
        pages.append(ids)
        if not token:
            break
    # 27 products, 10 read a call: short pages (an empty one), each with a token
    assert pages == [[], ["p12v"], ["p21v"]]
    ids, token = list_ids(stub, filter='type = "COLLECTION"')
    assert ids == [] and token
    ids, token = list_ids(stub, filter='primary_product_id = "p21"')
    assert ids == [] and token
    # (a filter matching all fills its page as ever; no filter: every product read shows)
    assert list_ids(stub, filter='type = "PRIMARY"', page_size=5)[0] == [
        "p00", "p01", "p02", "p03", "p04"]
    assert len(list_ids(stub)[0]) == 27


def test_list_errors(stub: Stub) -> None:
    create(stub, "p1")
    bad: list[tuple[dict[str, Any], str]] = [
        ({"parent": f"{CATALOG}/branches/x"}, "parent"),
        ({"page_size": -1}, "page_size"),
        ({"filter": 'title = "x"'}, "filter"),
        ({"read_mask": field_mask_pb2.FieldMask(paths=["nope"])}, "read_mask.paths[0]"),
        ({"page_token": "garbage"}, "page_token"),
    ]
    for request, field in bad:
        error = fails(partial(list_ids, stub, **request), grpc.StatusCode.INVALID_ARGUMENT)
        assert fields_of(error) == [field]
    fails(lambda: list_ids(stub, filter='primary_product_id = "ghost"'),
          grpc.StatusCode.NOT_FOUND)
    fails(lambda: list_ids(stub, filter='collection_product_id = "ghost"'),
          grpc.StatusCode.NOT_FOUND)


def test_a_read_mask_of_too_many_paths_is_refused_at_once(stub: Stub) -> None:
    """Past MAX_READ_MASK_PATHS, one violation naming the limit, not one a path (a
    million paths took 1.5 s of CPU to list theirs)."""
    for path in ("nope", "title"):
        error = fails(partial(list_ids, stub, read_mask=field_mask_pb2.FieldMask(
            paths=[path] * 10_000)), grpc.StatusCode.INVALID_ARGUMENT)
        assert fields_of(error) == ["read_mask.paths"]
        assert "must name at most 100 paths, got 10,000" in error.details()
    assert list_ids(stub, read_mask=field_mask_pb2.FieldMask(paths=["title"] * 100)) == \
        ([], "")


def test_page_token_is_bound_to_its_query(stub: Stub) -> None:
    create(stub, "p1")
    create(stub, "p2")
    _, token = list_ids(stub, page_size=1)
    error = fails(lambda: list_ids(stub, page_token=token, filter='type = "PRIMARY"'),
                  grpc.StatusCode.INVALID_ARGUMENT)
    assert "different parent, filter or read_mask" in error.details()
    assert list_ids(stub, page_token=token, page_size=50) == (["p2"], "")


# -- update ----------------------------------------------------------------

def update(stub: Stub, patch: product_pb2.Product, paths: list[str] | None = None,
           allow_missing: bool = False) -> Any:
    request = product_service_pb2.UpdateProductRequest(product=patch,
                                                       allow_missing=allow_missing)
    if paths is not None:
        request.update_mask.paths.extend(paths)
    return stub.UpdateProduct(request)


def test_update_with_a_mask_changes_only_those_fields(stub: Stub) -> None:
    create(stub, "p1", uri="https://old", attributes={"a": {"text": ["1"]},
                                                       "b": {"text": ["2"]}})
    patch = product(name=f"{DEFAULT}/products/p1", title="New", uri="https://ignored",
                    attributes={"a": {"text": ["9"]}})
    updated = update(stub, patch, ["title", "attributes.a", "attributes.b"])
    assert (updated.title, updated.uri) == ("New", "https://old")
    assert {k: list(v.text) for k, v in updated.attributes.items()} == {"a": ["9"]}
    assert updated.name == f"{BRANCH0}/products/p1"
    assert get(stub, "p1") == updated


def test_update_without_a_mask_replaces_the_product(stub: Stub) -> None:
    create(stub, "p1", uri="https://old", brands=["B"])
    updated = update(stub, product(name=f"{BRANCH0}/products/p1", title="New"))
    assert (updated.title, updated.uri, list(updated.brands)) == ("New", "", [])
    assert (updated.id, updated.type, updated.primary_product_id) == (
        "p1", product_pb2.Product.PRIMARY, "p1")


def test_update_missing_is_not_found_unless_allow_missing(stub: Stub) -> None:
    patch = product(name=f"{DEFAULT}/products/new")
    error = fails(lambda: update(stub, patch, ["title"]), grpc.StatusCode.NOT_FOUND)
    assert detail(error, error_details_pb2.ResourceInfo).resource_name == patch.name
    made = update(stub, patch, ["title"], allow_missing=True)  # the mask is ignored
    assert (made.id, list(made.categories)) == ("new", ["Shoes"])
    assert get(stub, "new") == made


def test_update_errors(stub: Stub) -> None:
    create(stub, "p1")
    name = f"{DEFAULT}/products/p1"
    cases = [
        (lambda: stub.UpdateProduct(product_service_pb2.UpdateProductRequest()), ["product"]),
        (lambda: update(stub, product(name="bad")), ["product.name"]),
        (lambda: update(stub, product(name=name), ["nope", "id"]),
         ["update_mask.paths[0]", "update_mask.paths[1]"]),
        # (past 1,000 paths, one violation: a million took 1.2 s of CPU to list theirs)
        (lambda: update(stub, product(name=name), ["nope"] * 1_001), ["update_mask.paths"]),
        (lambda: update(stub, product(name=name, type="VARIANT")), ["product.type"]),
        (lambda: update(stub, product(name=name, title=""), ["title"]), ["product.title"]),
        (lambda: update(stub, product(name=name, type="PRIMARY", primaryProductId="zz"),
                        ["primary_product_id"]), ["product.primary_product_id"]),
    ]
    for call, fields in cases:
        error = fails(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert fields_of(error) == fields
    assert get(stub, "p1").title == "Shoe"
    # With a mask, fields outside it (even immutable ones) are ignored.
    assert update(stub, product(name=name, type="VARIANT", title="T"), ["title"]).type == \
        product_pb2.Product.PRIMARY


# A ttl whose end (now + ttl) is past 9999-12-31, the last time a Timestamp holds.
TTL_PAST_9999 = "315576000000s"


def test_a_ttl_ending_past_9999_is_refused_naming_it(stub: Stub) -> None:
    error = fails(lambda: create(stub, "p1", ttl=TTL_PAST_9999), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields_of(error) == ["product.ttl"]
    assert "must end by 9999-12-31T23:59:59Z" in error.details()
    create(stub, "p1")
    error = fails(lambda: update(stub, product(name=f"{DEFAULT}/products/p1", ttl=TTL_PAST_9999),
                                 ["ttl"]), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields_of(error) == ["product.ttl"]
    assert not get(stub, "p1").HasField("expire_time")


# -- delete ----------------------------------------------------------------

def delete(stub: Stub, product_id: str) -> Any:
    return stub.DeleteProduct(product_service_pb2.DeleteProductRequest(
        name=f"{DEFAULT}/products/{product_id}"))


def test_delete_then_it_is_gone(stub: Stub) -> None:
    create(stub, "p1")
    delete(stub, "p1")
    fails(lambda: get(stub, "p1"), grpc.StatusCode.NOT_FOUND)
    fails(lambda: delete(stub, "p1"), grpc.StatusCode.NOT_FOUND)
    error = fails(lambda: stub.DeleteProduct(product_service_pb2.DeleteProductRequest(
        name="nope")), grpc.StatusCode.INVALID_ARGUMENT)
    assert fields_of(error) == ["name"]


def test_delete_refuses_a_primary_with_variants_and_collection_members(stub: Stub) -> None:
    create(stub, "p1")
    variant(stub, "v1", "p1")
    create(stub, "c1", type="COLLECTION", collectionMemberIds=["v1"], categories=[])
    error = fails(lambda: delete(stub, "p1"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "still has variants (v1)" in error.details()
    error = fails(lambda: delete(stub, "v1"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "member of collection 'c1'" in error.details()
    delete(stub, "c1")
    delete(stub, "v1")
    delete(stub, "p1")
    assert list_ids(stub) == ([], "")


# -- inventory ------------------------------------------------------------

def test_an_inventory_update_without_a_time_takes_the_servers_when_called(
        stub: Stub, channel: grpc.Channel, running: Any, clock: Any) -> None:
    create(stub, "p1")
    started = stub.SetInventory(product_service_pb2.SetInventoryRequest(
        inventory=product(name=f"{DEFAULT}/products/p1",
                          priceInfo={"currencyCode": "USD", "price": 5.0}),
        set_mask=field_mask_pb2.FieldMask(paths=["price_info"])))
    done = wait(operations_pb2_grpc.OperationsStub(channel), started.name)
    assert done.HasField("response"), done
    assert get(stub, "p1").price_info.price == 5.0
    record = running.store.get_operation(started.name)
    stored = product_service_pb2.SetInventoryRequest.FromString(record.request)
    assert stored.set_time.ToNanoseconds() == clock.now_ns()


def test_an_update_that_meets_the_product_made_meanwhile_stamps_all_it_sets(
        stub: Stub, channel: grpc.Channel, running: Any, clock: Any) -> None:
    """UpdateProduct runs its change twice: on a read (for the check of the product's
    references) and in its transaction, and once more after a rollback (the connection
    to PostgreSQL cut). Without a mask it sets every inventory field; but a run that
    found the product missing kept, for the next, the fields of the product it would
    have made. So an update that met a product made meanwhile (another caller's
    CreateProduct) stamped only those: an older SetInventory of another field then
    overwrote what the update had set."""
    store = running.store
    held, free = threading.Event(), threading.Event()

    def hold(_db: Any) -> None:  # the writer busy: the writes queue behind it
        held.set()
        free.wait(30)

    holding = threading.Thread(target=store._write, args=(hold,))
    holding.start()
    try:
        assert held.wait(30)
        made = stub.CreateProduct.future(product_service_pb2.CreateProductRequest(
            parent=DEFAULT, product_id="p1", product=product(availableQuantity=3)))
        eventually(lambda: store._committer._queue.qsize() == 1)  # (its check passed)
        created_ns = clock.now_ns()
        clock.advance(10)
        updated = stub.UpdateProduct.future(product_service_pb2.UpdateProductRequest(
            product=product(name=f"{DEFAULT}/products/p1",
                            priceInfo={"currencyCode": "USD", "price": 5.0}),
            allow_missing=True))  # (found missing by its check)
        eventually(lambda: store._committer._queue.qsize() == 2)
    finally:
        free.set()
        holding.join(30)
    made.result(timeout=30)
    assert updated.result(timeout=30).available_quantity.value == 0  # (no mask: cleared)
    # Set 5 s after the create, before the update: the update's quantity stays.
    started = stub.SetInventory(product_service_pb2.SetInventoryRequest(
        inventory=product(name=f"{DEFAULT}/products/p1", availableQuantity=7),
        set_time=timestamp_pb2.Timestamp(seconds=(created_ns + 5 * 10**9) // 10**9),
        set_mask=field_mask_pb2.FieldMask(paths=["available_quantity"])))
    done = wait(operations_pb2_grpc.OperationsStub(channel), started.name)
    assert done.HasField("response"), done
    assert get(stub, "p1").available_quantity.value == 0


def eventually(probe: Callable[[], bool], seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while not probe():
        assert time.monotonic() < end, "gave up waiting"
        time.sleep(0.01)


def test_an_inventory_update_is_not_refused_for_what_it_does_not_change(
        stub: Stub, channel: grpc.Channel, running: Any) -> None:
    # Stored before a rule it breaks (here: no title); the update still lands.
    running.store.create_product(BRANCH0, "old", product_pb2.Product(
        id="old", categories=["Shoes"]).SerializeToString())
    started = stub.AddFulfillmentPlaces(product_service_pb2.AddFulfillmentPlacesRequest(
        product=f"{DEFAULT}/products/old", type="pickup-in-store", place_ids=["s1"]))
    done = wait(operations_pb2_grpc.OperationsStub(channel), started.name)
    assert done.HasField("response"), done.error
    assert list(get(stub, "old").fulfillment_info[0].place_ids) == ["s1"]


def test_a_product_stored_past_the_size_bound_can_still_be_changed(
        stub: Stub, channel: grpc.Channel, running: Any) -> None:
    # Stored before products were bound to 2 MiB: its size, said afresh ("product: is N
    # bytes"), differed from the one before with every change, so none was let through,
    # not even one making it smaller.
    big = product_pb2.Product(id="big", title="Big", categories=["Shoes"])
    for n in range(30):
        place = big.local_inventories.add(place_id=f"s{n}")
        for k in range(30):
            place.attributes[f"a{k}"].text.append("x" * 3_000)
    assert big.ByteSize() > 2 * 1024 * 1024
    running.store.create_product(BRANCH0, "big", big.SerializeToString())
    started = stub.RemoveLocalInventories(product_service_pb2.RemoveLocalInventoriesRequest(
        product=f"{DEFAULT}/products/big", place_ids=["s0"]))
    done = wait(operations_pb2_grpc.OperationsStub(channel), started.name)
    assert done.HasField("response"), done.error
    assert [p.place_id for p in get(stub, "big").local_inventories][:1] == ["s1"]


def test_an_inventory_time_past_what_its_record_keeps_is_refused_naming_it(
        stub: Stub) -> None:
    # Times are kept to the nanosecond in 64 bits: 9999-12-31 and 0001-01-01 are
    # valid Timestamps beyond that (they were INTERNAL).
    before = create(stub, "p1")
    name = f"{DEFAULT}/products/p1"
    late = timestamp_pb2.Timestamp(seconds=253_402_300_799)
    early = timestamp_pb2.Timestamp(seconds=-62_135_596_800)
    R = product_service_pb2
    cases = [
        (lambda: stub.SetInventory(R.SetInventoryRequest(
            inventory=product(name=name, availability="OUT_OF_STOCK"), set_time=late,
            set_mask=field_mask_pb2.FieldMask(paths=["availability"]))), "set_time"),
        (lambda: stub.AddFulfillmentPlaces(R.AddFulfillmentPlacesRequest(
            product=name, type="pickup-in-store", place_ids=["s1"], add_time=early)), "add_time"),
        (lambda: stub.RemoveFulfillmentPlaces(R.RemoveFulfillmentPlacesRequest(
            product=name, type="pickup-in-store", place_ids=["s1"], remove_time=late)),
         "remove_time"),
        (lambda: stub.AddLocalInventories(R.AddLocalInventoriesRequest(
            product=name, local_inventories=[{"place_id": "s1"}], add_time=late)), "add_time"),
        (lambda: stub.RemoveLocalInventories(R.RemoveLocalInventoriesRequest(
            product=name, place_ids=["s1"], remove_time=early)), "remove_time"),
    ]
    for call, field in cases:
        error = fails(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert fields_of(error) == [field]
        assert "must be between 1677-09-21T00:12:44Z and 2262-04-11T23:47:16Z" in error.details()
    assert get(stub, "p1") == before
