"""Product names, defaults, update and read masks, list filters and page tokens."""

from __future__ import annotations

from typing import Any

import pytest
from footfall.retail.v2 import product_pb2
from google.protobuf import field_mask_pb2, json_format

from server.errors import InvalidArgument
from server.retail import product_listing, products
from server.store import open_store

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
BRANCH = f"{CATALOG}/branches/0"
NOW_NS = 1_714_564_800 * 10**9


def make(**fields: Any) -> product_pb2.Product:
    return json_format.ParseDict(fields, product_pb2.Product())


def as_dict(product: product_pb2.Product) -> dict[str, Any]:
    return json_format.MessageToDict(product)


# -- ids -------------------------------------------------------------------

@pytest.mark.parametrize(("product_id", "fields"), [
    ("sku-1", []), ("", ["product_id"]), ("x" * 128, []), ("x" * 129, ["product_id"]),
    ("shoes/sku-1", []), ("../../x", ["product_id"]), ("a/./b", ["product_id"]),
    ("a//b", ["product_id"]), ("a/", ["product_id"]), ("..", ["product_id"]), ("a..b", []),
])
def test_product_id_rules(product_id: str, fields: list[str]) -> None:
    assert [v.field for v in products.product_id_violations(product_id)] == fields


# -- defaults --------------------------------------------------------------

def test_new_product_gets_name_id_and_defaults() -> None:
    request = make(name="ignored", title="T", ttl="60s", variants=[{"id": "x"}],
                   localInventories=[{"placeId": "s"}], priceInfo={"priceRange": {}})
    product = products.new_product(request, BRANCH, "sku-1", NOW_NS)
    assert as_dict(product) == {
        "name": f"{BRANCH}/products/sku-1", "id": "sku-1", "type": "PRIMARY",
        "primaryProductId": "sku-1", "title": "T", "expireTime": "2024-05-01T12:01:00Z"}
    assert request.name == "ignored"  # the request is not changed


def test_variant_keeps_its_primary_and_type() -> None:
    product = products.new_product(make(type="VARIANT", primaryProductId="p", title="T"),
                                   BRANCH, "v", NOW_NS)
    assert (product.type, product.primary_product_id) == (product_pb2.Product.VARIANT, "p")


# -- update masks ----------------------------------------------------------

STORED = make(name=f"{BRANCH}/products/p", id="p", type="PRIMARY", primaryProductId="p",
              title="Old", categories=["C"], brands=["B"], uri="https://old",
              attributes={"color": {"text": ["red"]}, "size": {"text": ["M"]}},
              localInventories=[{"placeId": "store-1"}])


@pytest.mark.parametrize(("mask", "patch", "changes"), [
    (["title"], {"title": "New", "uri": "https://new"}, {"title": "New"}),
    (["uri", "brands"], {}, {"uri": None, "brands": None}),
    (["attributes.color"], {"attributes": {"color": {"text": ["blue"]}}},
     {"attributes": {"color": {"text": ["blue"]}, "size": {"text": ["M"]}}}),
    (["attributes.size"], {}, {"attributes": {"color": {"text": ["red"]}}}),
    (["attributes"], {"attributes": {"new": {"numbers": [1.0]}}},
     {"attributes": {"new": {"numbers": [1.0]}}}),
    (["ttl"], {"ttl": "10s"}, {"expireTime": "2024-05-01T12:00:10Z"}),
])
def test_masked_update_changes_only_named_fields(mask: list[str], patch: dict[str, Any],
                                                 changes: dict[str, Any]) -> None:
    updated = products.apply_update(STORED, make(**patch), mask, NOW_NS)
    expected = {**as_dict(STORED), **changes}
    assert as_dict(updated) == {k: v for k, v in expected.items() if v is not None}


def test_update_without_mask_replaces_updatable_fields_only() -> None:
    patch = make(name="whatever", title="New", categories=["D"], variants=[{"id": "x"}])
    updated = products.apply_update(STORED, patch, [], NOW_NS)
    assert as_dict(updated) == {
        "name": STORED.name, "id": "p", "type": "PRIMARY", "primaryProductId": "p",
        "title": "New", "categories": ["D"], "localInventories": [{"placeId": "store-1"}]}


@pytest.mark.parametrize(("paths", "problem"), [
    (["title", "categories", "attributes.k", "ttl", "expire_time"], None),
    (["nope"], "unknown Product field 'nope'"),
    (["name"], "name is immutable"),
    (["id"], "id is immutable"),
    (["type"], "type is immutable"),
    (["variants"], "variants is output only"),
    (["local_inventories"], "local_inventories is output only"),
    (["price_info.price"], "only whole fields can be updated"),
    (["attributes."], "needs a key"),
])
def test_update_mask_paths(paths: list[str], problem: str | None) -> None:
    found = products.update_mask_violations(field_mask_pb2.FieldMask(paths=paths))
    if problem is None:
        assert found == []
    else:
        [violation] = found
        assert violation.field == "update_mask.paths[0]"
        assert problem in violation.description


@pytest.mark.parametrize(("patch", "fields"), [
    ({}, []), ({"type": "PRIMARY", "id": "p"}, []),
    ({"type": "VARIANT"}, ["product.type"]), ({"id": "q"}, ["product.id"]),
])
def test_immutable_fields(patch: dict[str, Any], fields: list[str]) -> None:
    assert [v.field for v in products.immutable_violations(STORED, make(**patch))] == fields


def test_updatable_fields_come_from_the_contract() -> None:
    assert {"name", "id", "type"} == products.IMMUTABLE
    assert {"variants", "local_inventories"} == products.OUTPUT_ONLY
    assert {"title", "ttl", "attributes"} <= products.UPDATABLE


# -- read masks ------------------------------------------------------------

@pytest.mark.parametrize(("paths", "keys"), [
    ([], {"name", "id", "title", "uri", "brands"}),
    (["*"], set(as_dict(STORED))),
    (["title"], {"name", "title"}),
    (["attributes", "categories"], {"name", "attributes", "categories"}),
])
def test_read_mask(paths: list[str], keys: set[str]) -> None:
    assert set(as_dict(products.apply_read_mask(STORED, paths))) == keys


def test_read_mask_rejects_unknown_paths() -> None:
    found = products.read_mask_violations(field_mask_pb2.FieldMask(paths=["title", "x"]))
    assert [v.field for v in found] == ["read_mask.paths[1]"]


# -- listing ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "key", "value"), [
    ("", "", ""),
    ('primary_product_id = "p1"', "primary_product_id", "p1"),
    ('collection_product_id="c 1"', "collection_product_id", "c 1"),
    ('  type = "VARIANT" ', "type", "VARIANT"),
    (r'primary_product_id = "a\"b"', "primary_product_id", 'a"b'),
])
def test_supported_filters(text: str, key: str, value: str) -> None:
    assert product_listing.parse_filter(text) == product_listing.ProductFilter(key, value)


@pytest.mark.parametrize(("text", "message"), [
    ('title = "x"', "filter not supported"),
    ('type = "SHOE"', "type must be one of"),
    ('type = "PRIMARY" AND primary_product_id = "x"', "filter not supported"),
    ("primary_product_id = p1", "filter not supported"),
    ('primary_product_id = ""', "needs a product id"),
])
def test_unsupported_filters(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        product_listing.parse_filter(text)
    assert caught.value.violations[0].field == "filter"
    assert message in caught.value.violations[0].description


def test_filter_matching() -> None:
    variant = make(type="VARIANT", primaryProductId="p")
    assert product_listing.ProductFilter("primary_product_id", "p").matches(variant)
    assert not product_listing.ProductFilter("primary_product_id", "p").matches(
        make(type="PRIMARY", primaryProductId="p"))
    assert product_listing.ProductFilter("type", "VARIANT").matches(variant)
    assert not product_listing.ProductFilter("type", "PRIMARY").matches(variant)


@pytest.mark.parametrize(("requested", "size"), [(0, 100), (5, 5), (1000, 1000), (5000, 1000)])
def test_page_size(requested: int, size: int) -> None:
    assert product_listing.page_size(requested) == size


def test_negative_page_size() -> None:
    with pytest.raises(InvalidArgument):
        product_listing.page_size(-1)


def test_page_tokens_round_trip_and_are_bound_to_the_query_and_the_key() -> None:
    key = b"k" * 32
    mine = product_listing.query_fingerprint(BRANCH, "", "")
    token = product_listing.encode_page_token(key, "sku/9", mine)
    assert product_listing.decode_page_token(key, token, mine) == "sku/9"
    assert product_listing.decode_page_token(key, "", mine) == ""
    other = product_listing.query_fingerprint(BRANCH, 'type = "PRIMARY"', "")
    for bad, fingerprint, key_used in ((token, other, key), ("not a token!", mine, key),
                                       ("bm9wZQ", mine, key), (token, mine, b"x" * 32)):
        with pytest.raises(InvalidArgument) as caught:
            product_listing.decode_page_token(key_used, bad, fingerprint)
        assert caught.value.violations[0].field == "page_token"


def test_scan_pages_through_batches_and_prefilters() -> None:
    store = open_store("memory://")
    try:
        for i in range(1_200):
            product = make(id=f"p{i:04}", type="VARIANT",
                           primaryProductId="odd" if i % 2 else "even")
            store.create_product(BRANCH, product.id, product.SerializeToString())
        found = list(product_listing.scan(store, BRANCH,
                                          lambda p: p.primary_product_id == "odd",
                                          after_id="p0100", needle="odd"))
        assert [p.id for p in found] == [f"p{i:04}" for i in range(101, 1_200, 2)]
        assert found[0].name == f"{BRANCH}/products/p0101"
    finally:
        store.close()


def test_a_scan_holds_a_batch_of_products_by_their_bytes(monkeypatch: Any) -> None:
    """A scan reads its products in batches of at most about SCAN_BYTES (plus the one
    product that passes it), not _SCAN_BATCH of up to 2 MiB each (400 MB); and still
    reads every product. (Without max_bytes, one batch held all 24 of 0.5 MiB: 12 MiB.)"""
    store = open_store("memory://")
    batches: list[int] = []
    listed = store.list_products

    def counted(*args: Any, **kwargs: Any) -> list[tuple[str, bytes]]:
        rows = listed(*args, **kwargs)
        batches.append(sum(len(payload) for _, payload in rows))
        return rows

    try:
        for i in range(24):
            product = make(id=f"p{i:02}", description="d" * (512 * 1024))
            store.create_product(BRANCH, product.id, product.SerializeToString())
        monkeypatch.setattr(store, "list_products", counted)
        found = [p.id for p in product_listing.scan(store, BRANCH, lambda _: True)]
        assert found == [f"p{i:02}" for i in range(24)]
        one = len(make(id="p00", description="d" * (512 * 1024)).SerializeToString())
        assert max(batches) <= product_listing.SCAN_BYTES + one, batches
    finally:
        store.close()
