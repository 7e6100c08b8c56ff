"""ProductService through the official clients (sync and async): the catalog that
events join with. CRUD with Google's status codes, paging, update masks, and
ImportProducts as a long-running operation (inline and gs:// files).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import retail_v2
from google.protobuf import field_mask_pb2
from google.rpc import code_pb2

from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    finish,
    finish_async,
    gcs_path,
    product_async_client,
    put_gcs,
)

Product = retail_v2.Product
Mode = retail_v2.ImportProductsRequest.ReconciliationMode


def tent(**changes: Any) -> Product:
    """A valid PRIMARY product; `changes` replace fields."""
    fields: dict[str, Any] = {
        "title": "Trail Tent 2P", "categories": ["Camping > Tents"], "brands": ["Northpeak"],
        "description": "A two-person backpacking tent.",
        "price_info": {"currency_code": "USD", "price": 299.0, "original_price": 349.0},
        "uri": "https://shop.example.com/p/TENT-2P",
        "availability": Product.Availability.IN_STOCK,
    }
    fields.update(changes)
    return Product(**fields)


def create(products: retail_v2.ProductServiceClient, branch: str, product_id: str,
           product: Product | None = None) -> Product:
    return products.create_product(parent=branch, product=product or tent(),
                                   product_id=product_id, timeout=RPC_DEADLINE)


def get(products: retail_v2.ProductServiceClient, branch: str, product_id: str) -> Product:
    return products.get_product(name=f"{branch}/products/{product_id}", timeout=RPC_DEADLINE)


def inline_products(branch: str, *items: dict[str, Any], **request: Any) -> dict[str, Any]:
    return {"parent": branch,
            "input_config": {"product_inline_source": {"products": list(items)}}, **request}


# -- CRUD --------------------------------------------------------------------------


def test_create_answers_the_stored_product_and_get_reads_it_back(
        products: retail_v2.ProductServiceClient, branch: str, catalog: str) -> None:
    created = create(products, branch, "TENT-2P")
    assert created.name == f"{catalog}/branches/0/products/TENT-2P"
    assert created.id == "TENT-2P"
    assert created.type_ == Product.Type.PRIMARY
    assert created.primary_product_id == "TENT-2P"
    assert (created.title, created.price_info.price) == ("Trail Tent 2P", 299.0)

    assert get(products, branch, "TENT-2P") == created
    assert products.get_product(name=created.name, timeout=RPC_DEADLINE) == created


def test_create_twice_is_already_exists(products: retail_v2.ProductServiceClient,
                                        branch: str) -> None:
    create(products, branch, "DUP-1")
    with pytest.raises(exceptions.AlreadyExists) as refused:
        create(products, branch, "DUP-1", tent(title="Another"))
    assert "DUP-1" in refused.value.message
    assert get(products, branch, "DUP-1").title == "Trail Tent 2P"


@pytest.mark.parametrize("kwargs,fields", [
    ({"product": Product(brands=["x" * 1001])},
     ["product.title", "product.categories", "product.brands[0]"]),
    ({"product": tent(price_info={"currency_code": "usd", "price": 1.0})},
     ["product.price_info.currency_code"]),
    ({"product_id": "p" * 129}, ["product_id"]),
    ({"product_id": ""}, ["product_id"]),
    ({"parent": "projects/p/catalogs/c"}, ["parent"]),
    ({"product": tent(type_=Product.Type.VARIANT)}, ["product.primary_product_id"]),
    # Google: promotion_id matches [a-zA-Z][a-zA-Z0-9_]*, at most 128 characters, and
    # retrievable_fields names at most 30 paths, "otherwise, an INVALID_ARGUMENT error"
    ({"product": tent(promotions=[{"promotion_id": "free_gift"},
                                  {"promotion_id": "10%-off!"}])},
     ["product.promotions[1].promotion_id"]),
    ({"product": tent(retrievable_fields={"paths": [f"attributes.k{i}" for i in range(31)]})},
     ["product.retrievable_fields"]),
])
def test_create_refuses_a_bad_product_naming_every_field(
        products: retail_v2.ProductServiceClient, branch: str, kwargs: dict[str, Any],
        fields: list[str]) -> None:
    request: dict[str, Any] = {"parent": branch, "product": tent(), "product_id": "BAD-1",
                               **kwargs}
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.create_product(request=request, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, fields)
    if request["product_id"] == "BAD-1" and request["parent"] == branch:
        with pytest.raises(exceptions.NotFound):
            get(products, branch, "BAD-1")


@pytest.mark.parametrize("call", ["get", "delete", "update"])
def test_a_missing_product_is_not_found(products: retail_v2.ProductServiceClient, branch: str,
                                        call: str) -> None:
    name = f"{branch}/products/NOPE"
    with pytest.raises(exceptions.NotFound) as missing:
        if call == "get":
            products.get_product(name=name, timeout=RPC_DEADLINE)
        elif call == "delete":
            products.delete_product(name=name, timeout=RPC_DEADLINE)
        else:
            products.update_product(product=tent(name=name), timeout=RPC_DEADLINE)
    assert "NOPE" in missing.value.message


@pytest.mark.parametrize("name", ["projects/p/locations/global/catalogs/c/products/x",
                                  "NOPE", "projects/p/locations/global/catalogs/c/branches/9/"
                                          "products/x"])
def test_a_malformed_product_name_is_invalid_argument(products: retail_v2.ProductServiceClient,
                                                      name: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.get_product(name=name, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["name"])


def test_list_pages_through_every_product_in_id_order(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    ids = [f"SKU-{i:02d}" for i in (4, 0, 3, 1, 2)]
    for product_id in ids:
        create(products, branch, product_id)

    pager = products.list_products(request={"parent": branch, "page_size": 2},
                                   timeout=RPC_DEADLINE)
    pages = list(pager.pages)
    assert [len(page.products) for page in pages] == [2, 2, 1]
    assert not pages[-1].next_page_token
    listed = [p for page in pages for p in page.products]
    assert [p.id for p in listed] == sorted(ids)
    # Google's default read mask: name, id, title, uri, images, price_info, brands.
    first = listed[0]
    assert (first.title, first.brands, first.price_info.price) == ("Trail Tent 2P",
                                                                   ["Northpeak"], 299.0)
    assert not first.categories and not first.description

    everything = products.list_products(request={"parent": branch, "read_mask": {"paths": ["*"]}},
                                        timeout=RPC_DEADLINE)
    assert [p.categories for p in everything] == [["Camping > Tents"]] * 5
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.list_products(request={"parent": branch, "page_size": 2,
                                        "page_token": "bogus"}, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["page_token"])


def bulky(megabytes: float) -> Product:
    """A valid product of about `megabytes` MB: attributes of 400 texts of 250 characters."""
    keys = round(megabytes * 1e6 / (400 * 252))
    return tent(attributes={f"a{k}": retail_v2.CustomAttribute(
        text=[f"{k:03d}{v:03d}" + "x" * 244 for v in range(400)]) for k in range(keys)})


def test_a_product_too_large_to_answer_is_refused_and_not_stored(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    """2.5 MB was stored, and answered RESOURCE_EXHAUSTED by the client (its 4 MiB
    limit past the answer's size): retried, ALREADY_EXISTS; read, never."""
    with pytest.raises(exceptions.InvalidArgument) as refused:
        create(products, branch, "HUGE", bulky(4.5))
    assert_names_fields(refused.value, ["product"])
    assert "at most 2097152" in refused.value.message
    with pytest.raises(exceptions.NotFound):
        get(products, branch, "HUGE")


def test_a_page_of_large_products_ends_before_a_client_cannot_take_it(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    """Five products of 1.3 MB each, listed 100 a page, all fields: one page of 6.5 MB
    failed on the client (RESOURCE_EXHAUSTED), and was built whole in the server's
    memory. Each page now ends before 3 MiB, and the pager reads them all."""
    ids = [f"BIG-{i}" for i in range(5)]
    for product_id in ids:
        create(products, branch, product_id, bulky(1.3))
    pages = list(products.list_products(request={
        "parent": branch, "page_size": 100, "read_mask": {"paths": ["*"]}},
        timeout=RPC_DEADLINE).pages)
    assert [[p.id for p in page.products] for page in pages] == [ids[0:2], ids[2:4], ids[4:]]
    assert all(len(p.attributes) == len(bulky(1.3).attributes) for page in pages
               for p in page.products)


def test_pages_of_a_read_mask_without_the_id_go_on_after_the_last_product(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    """The token was made of the page's last product as shown, whose id the mask left
    out: every page started again from the first product, and the pager never ended."""
    ids = [f"M-{i}" for i in range(8)]
    for product_id in ids:
        create(products, branch, product_id, tent(title=f"Tent {product_id}"))
    pager = products.list_products(request={"parent": branch, "page_size": 3,
                                            "read_mask": {"paths": ["title"]}},
                                   timeout=RPC_DEADLINE)
    pages = []
    for page in pager.pages:
        pages.append([p.title for p in page.products])
        assert len(pages) <= 3, pages
    assert pages == [[f"Tent {i}" for i in ids[:3]], [f"Tent {i}" for i in ids[3:6]],
                     [f"Tent {i}" for i in ids[6:]]]


def test_list_filters_variants_of_a_primary(products: retail_v2.ProductServiceClient,
                                            branch: str) -> None:
    create(products, branch, "JACKET")
    for size in ("S", "M"):
        create(products, branch, f"JACKET-{size}",
               tent(type_=Product.Type.VARIANT, primary_product_id="JACKET", sizes=[size],
                    categories=[]))
    variants = products.list_products(request={"parent": branch,
                                               "filter": 'primary_product_id = "JACKET"'},
                                      timeout=RPC_DEADLINE)
    assert [p.id for p in variants] == ["JACKET-M", "JACKET-S"]
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.list_products(request={"parent": branch, "filter": "title = 'x'"},
                               timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["filter"])


def test_the_pager_walks_the_short_pages_of_a_filter_matching_few_of_many(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    """A call reads at most 5,000 products (SCAN_LIMIT) for a filter: its page may be
    short or empty, with a next_page_token (Google: a page may hold fewer than
    page_size); the pager follows the tokens to every product the filter selects."""
    many = [{"id": f"P{n:05}", "title": "Plain", "categories": ["C"]} for n in range(6_000)]
    finish(products.import_products(request=inline_products(branch, *many),
                                    timeout=RPC_DEADLINE))
    for primary in ("P00100", "P05500"):
        create(products, branch, f"{primary}-V",
               tent(type_=Product.Type.VARIANT, primary_product_id=primary, categories=[]))
    pager = products.list_products(request={"parent": branch, "filter": 'type = "VARIANT"'},
                                   timeout=RPC_DEADLINE)
    pages = list(pager.pages)
    assert [[p.id for p in page.products] for page in pages] == [["P00100-V"], ["P05500-V"]]
    assert [bool(page.next_page_token) for page in pages] == [True, False]
    none = products.list_products(request={"parent": branch, "filter": 'type = "COLLECTION"'},
                                  timeout=RPC_DEADLINE)
    assert [len(page.products) for page in none.pages] == [0, 0]


def test_update_with_a_mask_changes_only_the_masked_fields(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    created = create(products, branch, "TENT-3P", tent(title="Trail Tent 3P"))
    patch = Product(name=created.name, title="Trail Tent 3P (2025)", description="changed?",
                    price_info={"currency_code": "USD", "price": 279.0})
    updated = products.update_product(product=patch,
                                      update_mask=field_mask_pb2.FieldMask(
                                          paths=["title", "price_info"]),
                                      timeout=RPC_DEADLINE)
    assert updated.title == "Trail Tent 3P (2025)"
    assert updated.price_info.price == 279.0
    assert updated.description == created.description  # not in the mask
    assert updated.categories == created.categories
    assert get(products, branch, "TENT-3P") == updated


def test_update_without_a_mask_replaces_every_updatable_field(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    created = create(products, branch, "STOVE")
    replaced = products.update_product(
        product=Product(name=created.name, title="Canister Stove", categories=["Cooking"]),
        timeout=RPC_DEADLINE)
    assert (replaced.title, replaced.categories) == ("Canister Stove", ["Cooking"])
    assert not replaced.description and not replaced.brands
    assert replaced.id == "STOVE" and replaced.type_ == Product.Type.PRIMARY


def test_update_with_allow_missing_creates_the_product(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    name = f"{branch}/products/LANTERN"
    made = products.update_product(request={"product": tent(name=name, title="Lantern"),
                                            "allow_missing": True}, timeout=RPC_DEADLINE)
    assert (made.name.rsplit("/", 1)[-1], made.title) == ("LANTERN", "Lantern")
    assert get(products, branch, "LANTERN").title == "Lantern"


@pytest.mark.parametrize("paths,field", [
    (["id"], "update_mask.paths[0]"),
    (["title", "no_such_field"], "update_mask.paths[1]"),
    (["price_info.price"], "update_mask.paths[0]"),
])
def test_update_refuses_a_bad_mask(products: retail_v2.ProductServiceClient, branch: str,
                                   paths: list[str], field: str) -> None:
    created = create(products, branch, "MASKED")
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.update_product(product=Product(name=created.name, title="x"),
                                update_mask={"paths": paths}, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, [field])
    assert get(products, branch, "MASKED") == created


def test_update_refuses_a_product_that_breaks_a_rule(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    created = create(products, branch, "RULES")
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.update_product(product=Product(name=created.name, title=""),
                                update_mask={"paths": ["title"]}, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["product.title"])


def test_delete_removes_the_product(products: retail_v2.ProductServiceClient,
                                    branch: str) -> None:
    created = create(products, branch, "GONE")
    products.delete_product(name=created.name, timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.NotFound):
        products.get_product(name=created.name, timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.NotFound):
        products.delete_product(name=created.name, timeout=RPC_DEADLINE)
    create(products, branch, "GONE")  # the id is free again


def test_delete_refuses_a_primary_that_still_has_variants(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    create(products, branch, "BOOT")
    create(products, branch, "BOOT-42", tent(type_=Product.Type.VARIANT,
                                             primary_product_id="BOOT", categories=[]))
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.delete_product(name=f"{branch}/products/BOOT", timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["name"])
    assert "BOOT-42" in refused.value.message


def variant(primary: str, currency: str | None = "USD", **changes: Any) -> Product:
    price = {"price_info": {"currency_code": currency, "price": 10.0}} if currency \
        else {"price_info": None}
    return tent(type_=Product.Type.VARIANT, primary_product_id=primary, categories=[],
                **{**price, **changes})


def test_variants_of_one_primary_share_one_currency(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    """Google's PriceInfo: "The Product.Type.VARIANT Products with the same
    Product.primary_product_id must share the same currency_code. Otherwise, a
    FAILED_PRECONDITION error is returned." On create and update alike."""
    create(products, branch, "SHIRT")
    create(products, branch, "SHIRT-S", variant("SHIRT", "USD"))
    create(products, branch, "SHIRT-M", variant("SHIRT", None))  # no price: no currency
    with pytest.raises(exceptions.FailedPrecondition) as refused:
        create(products, branch, "SHIRT-L", variant("SHIRT", "EUR"))
    assert "SHIRT-S" in refused.value.message and "'EUR'" in refused.value.message
    [detail] = refused.value.details
    assert detail.violations[0].subject == "product.price_info.currency_code"
    with pytest.raises(exceptions.NotFound):
        get(products, branch, "SHIRT-L")  # nothing stored
    with pytest.raises(exceptions.FailedPrecondition):
        products.update_product(product={"name": f"{branch}/products/SHIRT-M",
                                         "price_info": {"currency_code": "EUR", "price": 9.0}},
                                update_mask={"paths": ["price_info"]}, timeout=RPC_DEADLINE)
    assert not get(products, branch, "SHIRT-M").price_info.currency_code
    # the same currency, and another primary's variants, are free
    create(products, branch, "SHIRT-L", variant("SHIRT", "USD"))
    create(products, branch, "SOCK")
    create(products, branch, "SOCK-S", variant("SOCK", "EUR"))
    # a variant moved to another primary keeps the currency rule of its new siblings
    with pytest.raises(exceptions.FailedPrecondition):
        products.update_product(product={"name": f"{branch}/products/SOCK-S",
                                         "primary_product_id": "SHIRT"},
                                update_mask={"paths": ["primary_product_id"]},
                                timeout=RPC_DEADLINE)


def test_at_most_2000_variants_share_one_primary(
        products: retail_v2.ProductServiceClient, server: ServerProcess, branch: str,
        gcs_folder: str) -> None:
    """Google's Product.primary_product_id: "A maximum of 2,000 products are allowed
    to share the same Type.PRIMARY Product. Otherwise, an INVALID_ARGUMENT error is
    returned." Checked by CreateProduct and UpdateProduct (an import does not check
    references: see the README)."""
    create(products, branch, "POSTER")
    lines = [json.dumps({"id": f"POSTER-{i:04d}", "type": "VARIANT",
                         "primaryProductId": "POSTER", "title": f"Poster {i}"})
             for i in range(2000)]
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/variants.json", lines)
    imported = finish(products.import_products(request={
        "parent": branch, "input_config": {"gcs_source": {"input_uris": [uri]}}},
        timeout=RPC_DEADLINE))
    assert not imported.error_samples
    with pytest.raises(exceptions.InvalidArgument) as refused:
        create(products, branch, "POSTER-2000", variant("POSTER"))
    assert_names_fields(refused.value, ["product.primary_product_id"])
    assert "2,000" in refused.value.message
    create(products, branch, "FRAME")
    create(products, branch, "FRAME-S", variant("FRAME"))
    with pytest.raises(exceptions.InvalidArgument):  # nor by moving one there
        products.update_product(product={"name": f"{branch}/products/FRAME-S",
                                         "primary_product_id": "POSTER"},
                                update_mask={"paths": ["primary_product_id"]},
                                timeout=RPC_DEADLINE)
    # one of the 2,000 still changes
    changed = products.update_product(product={"name": f"{branch}/products/POSTER-0007",
                                               "title": "Poster seven"},
                                      update_mask={"paths": ["title"]}, timeout=RPC_DEADLINE)
    assert changed.title == "Poster seven"
    products.delete_product(name=f"{branch}/products/POSTER-0000", timeout=RPC_DEADLINE)
    create(products, branch, "POSTER-2000", variant("POSTER"))  # room for one again


# -- ImportProducts ----------------------------------------------------------------


def test_inline_import_creates_products_and_reports_bad_ones(
        products: retail_v2.ProductServiceClient, branch: str, catalog: str) -> None:
    operation = products.import_products(request=inline_products(
        branch,
        {"id": "IMP-1", "title": "Imported One", "categories": ["A"]},
        {"id": "IMP-2", "title": "Imported Two", "categories": ["B"],
         "price_info": {"currency_code": "EUR", "price": 10.0}},
        {"id": "IMP-3", "categories": ["C"]},  # no title
        {"title": "No id", "categories": ["D"]}), timeout=RPC_DEADLINE)
    assert "/branches/0/operations/import-products-" in operation.operation.name
    response = finish(operation)

    assert isinstance(response, retail_v2.ImportProductsResponse)
    messages = sorted(s.message for s in response.error_samples)
    assert len(messages) == 2
    assert "input_config.product_inline_source.products[2].title" in messages[0]
    assert "input_config.product_inline_source.products[3].id" in messages[1]
    assert all(s.code == code_pb2.INVALID_ARGUMENT for s in response.error_samples)
    metadata = operation.metadata
    assert isinstance(metadata, retail_v2.ImportMetadata)
    assert (metadata.success_count, metadata.failure_count) == (2, 2)
    assert get(products, branch, "IMP-2").price_info.currency_code == "EUR"
    with pytest.raises(exceptions.NotFound):
        get(products, branch, "IMP-3")

    # The ProductService client's own operations mixins see the operation too.
    name = operation.operation.name
    assert products.get_operation({"name": name}, timeout=RPC_DEADLINE).done
    listed = products.list_operations({"name": f"{catalog}/branches/0"}, timeout=RPC_DEADLINE)
    assert [op.name for op in listed.operations] == [name]


def test_file_import_reads_gcs_lines_and_writes_errors(
        products: retail_v2.ProductServiceClient, server: ServerProcess, branch: str,
        gcs_folder: str) -> None:
    lines = [json.dumps({"id": f"FILE-{i}", "title": f"File product {i}",
                         "categories": ["Files"], "priceInfo": {"currencyCode": "USD",
                                                                "price": 5 + i}})
             for i in range(25)]
    lines[10] = '{"id": "FILE-10", "title": '          # bad JSON
    lines[20] = '{"id": "FILE-20", "categories": []}'  # no title, no categories
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/products.jsonl", lines)
    prefix = f"{gcs_folder}/product-errors"
    operation = products.import_products(request={
        "parent": branch, "input_config": {"gcs_source": {"input_uris": [uri],
                                                          "data_schema": "product"}},
        "errors_config": {"gcs_prefix": prefix}}, timeout=RPC_DEADLINE)
    response = finish(operation)

    assert (operation.metadata.success_count, operation.metadata.failure_count) == (23, 2)
    messages = sorted(s.message for s in response.error_samples)
    assert messages[0].startswith(f"{uri} line 11: invalid JSON")
    assert messages[1].startswith(f"{uri} line 21: ")
    assert "product.title" in messages[1] and "product.categories" in messages[1]
    op_id = operation.operation.name.rsplit("/", 1)[-1]
    written = gcs_path(server.gcs_root, f"{prefix}/{op_id}-errors.json").read_text()
    assert sorted(json.loads(line)["message"] for line in written.splitlines()) == messages
    listed = list(products.list_products(request={"parent": branch, "page_size": 1000},
                                         timeout=RPC_DEADLINE))
    assert len(listed) == 23
    assert get(products, branch, "FILE-24").price_info.price == 29.0


def test_an_inline_import_writes_its_errors_where_errors_config_says(
        products: retail_v2.ProductServiceClient, server: ServerProcess, branch: str,
        gcs_folder: str) -> None:
    """Google refuses errors_config only for inline *user event* imports; an inline
    product import with one (as its gcs samples always send) was refused."""
    prefix = f"{gcs_folder}/inline-errors"
    operation = products.import_products(request=inline_products(
        branch, {"id": "IN-1", "title": "Inline one", "categories": ["A"]},
        {"id": "IN-2", "categories": ["B"]},  # no title
        errors_config={"gcs_prefix": prefix}), timeout=RPC_DEADLINE)
    response = finish(operation)
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (1, 1)
    assert response.errors_config.gcs_prefix == prefix
    [message] = [s.message for s in response.error_samples]
    assert "input_config.product_inline_source.products[1].title" in message
    op_id = operation.operation.name.rsplit("/", 1)[-1]
    written = gcs_path(server.gcs_root, f"{prefix}/{op_id}-errors.json").read_text()
    assert [json.loads(line)["message"] for line in written.splitlines()] == [message]
    with pytest.raises(exceptions.InvalidArgument) as refused:  # the folder is still checked
        products.import_products(request=inline_products(
            branch, {"id": "IN-3", "title": "Inline three", "categories": ["A"]},
            errors_config={"gcs_prefix": "s3://elsewhere"}), timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["errors_config.gcs_prefix"])


def test_a_product_with_no_availability_is_purged_as_in_stock(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    """Google's Product.availability: "Default to Availability.IN_STOCK". A product
    given none was left by a purge of the IN_STOCK ones, though export counted it."""
    create(products, branch, "AV-1", Product(title="No availability given", categories=["A"]))
    finish(products.import_products(request=inline_products(
        branch, {"id": "AV-2", "title": "Imported", "categories": ["A"]}),
        timeout=RPC_DEADLINE))
    create(products, branch, "AV-3", Product(title="Sold out", categories=["A"],
                                             availability="OUT_OF_STOCK"))
    purge = products.purge_products(request={
        "parent": branch, "filter": 'availability = "IN_STOCK"', "force": True},
        timeout=RPC_DEADLINE)
    assert finish(purge).purge_count == 2
    assert [p.id for p in products.list_products(parent=branch, timeout=RPC_DEADLINE)] == [
        "AV-3"]


def test_import_with_an_update_mask_changes_only_masked_fields_of_existing_products(
        products: retail_v2.ProductServiceClient, branch: str) -> None:
    create(products, branch, "KEEP", tent(title="Old title", description="Kept description"))
    operation = products.import_products(request=inline_products(
        branch,
        {"id": "KEEP", "title": "New title", "description": "ignored", "categories": ["X"]},
        {"id": "FRESH", "title": "Fresh", "description": "all of it", "categories": ["Y"]},
        update_mask={"paths": ["title"]}), timeout=RPC_DEADLINE)
    assert not finish(operation).error_samples

    kept = get(products, branch, "KEEP")
    assert (kept.title, kept.description, kept.categories) == (
        "New title", "Kept description", ["Camping > Tents"])
    # Google: "If provided, only the existing product fields are updated. Missing
    # products will not be created." The line is valid, so it counts as a success.
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (2, 0)
    with pytest.raises(exceptions.NotFound):
        get(products, branch, "FRESH")


def test_import_again_upserts(products: retail_v2.ProductServiceClient, branch: str) -> None:
    for title in ("First", "Second"):
        finish(products.import_products(request=inline_products(
            branch, {"id": "UPSERT", "title": title, "categories": ["Z"]}),
            timeout=RPC_DEADLINE))
    assert get(products, branch, "UPSERT").title == "Second"


@pytest.mark.parametrize("changes,fields", [
    ({"reconciliation_mode": Mode.FULL}, ["reconciliation_mode"]),
    ({"update_mask": {"paths": ["name"]}}, ["update_mask.paths[0]"]),
    ({"errors_config": {"gcs_prefix": "s3://footfall-interop/e"}}, ["errors_config.gcs_prefix"]),
    ({"input_config": {"big_query_source": {"dataset_id": "d", "table_id": "t"}}},
     ["input_config.big_query_source"]),
    ({"input_config": {"gcs_source": {"input_uris": ["gs://footfall-interop/none-*.json"]}}},
     ["input_config.gcs_source.input_uris[0]"]),
    ({"input_config": {"product_inline_source": {"products": []}}},
     ["input_config.product_inline_source.products"]),
    ({"parent": "projects/p/locations/global/catalogs/c"}, ["parent"]),
])
def test_import_is_refused_when_called(products: retail_v2.ProductServiceClient, branch: str,
                                       changes: dict[str, Any], fields: list[str]) -> None:
    request = {**inline_products(branch, {"id": "R", "title": "R", "categories": ["R"]}),
               **changes}
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.import_products(request=request, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, fields)


# -- async ---------------------------------------------------------------------------


def test_async_client_creates_lists_updates_imports_and_deletes(
        server: ServerProcess, branch: str, run: Any) -> None:
    async def scenario() -> None:
        async with product_async_client(server.address) as client:
            created = await client.create_product(parent=branch, product=tent(),
                                                  product_id="ASYNC-1", timeout=RPC_DEADLINE)
            with pytest.raises(exceptions.AlreadyExists):
                await client.create_product(parent=branch, product=tent(),
                                            product_id="ASYNC-1", timeout=RPC_DEADLINE)
            operation = await client.import_products(request=inline_products(
                branch, *({"id": f"ASYNC-{i}", "title": f"Async {i}", "categories": ["A"]}
                          for i in range(2, 6))), timeout=RPC_DEADLINE)
            response = await finish_async(operation)
            assert not response.error_samples
            assert operation.metadata.success_count == 4

            pager = await client.list_products(request={"parent": branch, "page_size": 2},
                                               timeout=RPC_DEADLINE)
            listed = [p.id async for p in pager]
            assert listed == [f"ASYNC-{i}" for i in range(1, 6)]

            updated = await client.update_product(
                product={"name": created.name, "title": "Renamed"},
                update_mask={"paths": ["title"]}, timeout=RPC_DEADLINE)
            assert updated.title == "Renamed" and updated.brands == ["Northpeak"]
            await client.delete_product(name=created.name, timeout=RPC_DEADLINE)
            with pytest.raises(exceptions.NotFound):
                await client.get_product(name=created.name, timeout=RPC_DEADLINE)

    run(scenario())
