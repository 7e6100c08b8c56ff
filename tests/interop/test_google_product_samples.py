"""What Google's published Retail product samples send, sent as they send it, against
a `footfall serve` subprocess: each test names the sample it stands for, repeats its
calls with data of the same shape (our own), and asserts what the sample's own test
asserts (the inventory samples: test_google_inventory_samples.py).

- python-docs-samples retail/interactive-tutorials/product/: create, get, update,
  delete and crud_product; import_products_inline_source and import_products_gcs
  (resources/products.json and products_some_invalid.json); setup_product/
  setup_cleanup. Their tests expect names under `branches/0` though the samples name
  `branches/default_branch`.
- java-docs-samples: the same calls under `branches/0` with UUID product ids, an
  import polled with the operations client's GetOperation.
- The tutorials' further steps (an update_mask, error handling), test_resources_recovery
  (import, then delete every product while paging), and
  import_products_big_query_table.py (refused: Footfall reads no BigQuery).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import retail_v2
from google.protobuf import field_mask_pb2

from .product_samples import (
    PICKUP,
    Client,
    Product,
    branch_0,
    create_as_setup_does,
    default_branch,
    places,
    sample_id,
    setup_product,
    stored_as,
)
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    finish,
    gcs_path,
    put_gcs,
    wait_until,
)

# -- create, get, update, delete ------------------------------------------------------


def test_the_create_get_and_delete_samples(products: Client, branch: str) -> None:
    """create_product.py, get_product.py, delete_product.py on setup_cleanup's product:
    the name answered is under `branches/0` (their tests' regex), the title comes back,
    and setup_cleanup.get_product of a deleted one reads NOT_FOUND's message."""
    product_id = sample_id()
    created = create_as_setup_does(products, default_branch(branch), product_id)
    assert created.name == stored_as(branch, product_id)
    assert (created.id, created.title, created.availability) == (
        product_id, "Desk Lamp", Product.Availability.IN_STOCK)
    assert places(created) == {PICKUP: ["store0", "store1"]}

    request = retail_v2.GetProductRequest()
    request.name = created.name
    got = products.get_product(request, timeout=RPC_DEADLINE)
    assert got.name == stored_as(branch, product_id) and got.title == "Desk Lamp"
    assert got == created

    deleting = retail_v2.DeleteProductRequest()
    deleting.name = created.name
    products.delete_product(deleting, timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.NotFound) as gone:
        products.get_product(request, timeout=RPC_DEADLINE)
    assert created.name in gone.value.message
    # setup_cleanup.try_to_delete_product_if_exists: NOT_FOUND is what it catches
    with pytest.raises(exceptions.NotFound):
        products.delete_product(deleting, timeout=RPC_DEADLINE)


def updated_product(parent: str, product_id: str) -> Product:
    """generate_product_for_update's shape: id and name (under default_branch) set,
    every catalog field changed, a price in another currency."""
    price = retail_v2.PriceInfo()
    price.price = 20.0
    price.original_price = 25.5
    price.currency_code = "EUR"
    return Product(id=product_id, name=f"{parent}/products/{product_id}",
                   title="Updated Desk Lamp", type_=Product.Type.PRIMARY,
                   categories=["Updated Lighting"], brands=["Updated Lumen"],
                   availability="OUT_OF_STOCK", price_info=price)


def test_the_crud_sample_creates_gets_updates_and_deletes(products: Client,
                                                          branch: str) -> None:
    """crud_product.py: every call names the product under `default_branch`; the update
    sends the whole product with allow_missing and no mask; its test expects the
    updated title, brands and price."""
    parent = default_branch(branch)
    product_id = sample_id()
    name = f"{parent}/products/{product_id}"
    created = products.create_product(retail_v2.CreateProductRequest(
        product=setup_product([]), product_id=product_id, parent=parent),
        timeout=RPC_DEADLINE)
    assert created.title == "Desk Lamp"
    assert products.get_product(retail_v2.GetProductRequest(name=name),
                                timeout=RPC_DEADLINE) == created

    request = retail_v2.UpdateProductRequest()
    request.product = updated_product(parent, product_id)
    request.allow_missing = True
    updated = products.update_product(request, timeout=RPC_DEADLINE)
    assert updated.name == stored_as(branch, product_id)
    assert (updated.title, list(updated.brands), updated.price_info.price,
            updated.price_info.currency_code, updated.availability) == (
        "Updated Desk Lamp", ["Updated Lumen"], 20.0, "EUR", Product.Availability.OUT_OF_STOCK)

    products.delete_product(retail_v2.DeleteProductRequest(name=name), timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.NotFound):
        products.get_product(name=name, timeout=RPC_DEADLINE)


@pytest.mark.parametrize("sample", ["python", "java"])
def test_the_update_sample_updates_setups_product(products: Client, branch: str,
                                                  sample: str) -> None:
    """update_product.py: the product setup_cleanup created (with places), then the
    update of the crud sample, named by the id of the product created.
    UpdateProduct.java: the same, a UUID id, the name under `branches/0`."""
    if sample == "python":
        parent, product_id = default_branch(branch), sample_id()
    else:
        parent, product_id = branch_0(branch), str(uuid.uuid4())
    original = create_as_setup_does(products, default_branch(branch), product_id)
    updated = products.update_product(retail_v2.UpdateProductRequest(
        product=updated_product(parent, original.id), allow_missing=True),
        timeout=RPC_DEADLINE)
    assert (updated.title, list(updated.brands), updated.price_info.price) == (
        "Updated Desk Lamp", ["Updated Lumen"], 20.0)
    products.delete_product(name=original.name, timeout=RPC_DEADLINE)


def test_the_update_tutorials_mask_changes_only_what_it_names(products: Client,
                                                                branch: str) -> None:
    """The update tutorial's next step: the same request with update_mask title,
    price_info, color_info; "only the product fields listed in the update_mask were
    updated, the other fields were not changed even if provided"."""
    parent = default_branch(branch)
    original = create_as_setup_does(products, parent, sample_id())
    request = retail_v2.UpdateProductRequest(product=updated_product(parent, original.id),
                                             allow_missing=True)
    request.update_mask = field_mask_pb2.FieldMask(paths=["title", "price_info", "color_info"])
    updated = products.update_product(request, timeout=RPC_DEADLINE)
    assert (updated.title, updated.price_info.currency_code) == ("Updated Desk Lamp", "EUR")
    assert (list(updated.brands), list(updated.categories), updated.availability) == (
        ["Lumen"], ["Lighting"], Product.Availability.IN_STOCK)


def test_the_tutorials_error_handling_steps(products: Client, branch: str) -> None:
    """The create tutorial: "Remove the product field categories": INVALID_ARGUMENT
    naming product.categories. The update tutorial: "remove the product field name":
    INVALID_ARGUMENT naming product.name."""
    product = setup_product()
    del product.categories[:]
    with pytest.raises(exceptions.InvalidArgument) as no_categories:
        products.create_product(retail_v2.CreateProductRequest(
            product=product, product_id=sample_id(), parent=default_branch(branch)),
            timeout=RPC_DEADLINE)
    assert_names_fields(no_categories.value, ["product.categories"])
    unnamed = updated_product(default_branch(branch), sample_id())
    unnamed.name = ""
    with pytest.raises(exceptions.InvalidArgument) as no_name:
        products.update_product(retail_v2.UpdateProductRequest(
            product=unnamed, allow_missing=True), timeout=RPC_DEADLINE)
    assert_names_fields(no_name.value, ["product.name"])


# -- imports --------------------------------------------------------------------------


def inline_products(ids: list[str], with_title: bool = True) -> list[Product]:
    """import_products_inline_source.get_products's shape: two products with a uri,
    colors, pickup places, and retrievable_fields in snake_case."""
    made = []
    for n, (product_id, category) in enumerate(zip(ids, ["Stationery", "Apparel"],
                                                    strict=True)):
        product = Product()
        if with_title or n:
            product.title = ["Recycled Notebook", "Merino Crew Sweater"][n]
        product.id = product_id
        product.categories = [category]
        product.uri = f"https://shop.example.com/{category}/{product_id}"
        product.brands = ["Footfall"]
        product.price_info = retail_v2.PriceInfo(price=14.0 + 20 * n, original_price=40.0,
                                                 cost=10.0, currency_code="USD")
        product.color_info = retail_v2.ColorInfo(color_families=["Green"],
                                                 colors=["Moss", "Sage"][:n + 1])
        product.fulfillment_info = [retail_v2.FulfillmentInfo(
            type_=PICKUP, place_ids=[f"store{n + 1}", f"store{n + 2}"])]
        product.retrievable_fields = field_mask_pb2.FieldMask(
            paths=["title", "categories", "price_info", "color_info"])
        made.append(product)
    return made


def inline_request(parent: str, products_: list[Product]) -> retail_v2.ImportProductsRequest:
    inline = retail_v2.ProductInlineSource()
    inline.products = products_
    config = retail_v2.ProductInputConfig()
    config.product_inline_source = inline
    request = retail_v2.ImportProductsRequest()
    request.parent = parent
    request.input_config = config
    return request


def test_the_inline_import_sample_imports_its_two_products(products: Client,
                                                          branch: str) -> None:
    """import_products_inline_source.py: no reconciliation mode, polled with done();
    its test expects an operation `.../branches/0/operations/import-products...`, 2
    successes and 0 failures. Its "comment out the product title" variant fails one."""
    ids = [sample_id(), sample_id()]
    operation = products.import_products(
        inline_request(default_branch(branch), inline_products(ids)), timeout=RPC_DEADLINE)
    assert re.fullmatch(f"{branch_0(branch)}/operations/import-products-.+",
                        operation.operation.name), operation.operation.name
    wait_until(operation.done, "the import's done()")
    assert operation.metadata is not None
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (2, 0)
    got = products.get_product(name=stored_as(branch, ids[0]), timeout=RPC_DEADLINE)
    assert list(got.retrievable_fields.paths) == ["title", "categories", "price_info",
                                                  "color_info"]
    assert places(got) == {PICKUP: ["store1", "store2"]}

    untitled = products.import_products(inline_request(
        default_branch(branch), inline_products([sample_id(), sample_id()], with_title=False)),
        timeout=RPC_DEADLINE)
    response = finish(untitled)
    assert (untitled.metadata.success_count, untitled.metadata.failure_count) == (1, 1)
    assert "products[0].title" in response.error_samples[0].message


def test_the_java_inline_import_is_polled_with_get_operation(products: Client,
                                                              branch: str) -> None:
    """ImportProductsInlineSource.java: parent `branches/0`, UUID ids, the operation
    polled by name through the operations client; metadata and response unpacked."""
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    name = products.import_products(inline_request(branch_0(branch), inline_products(ids)),
                                    timeout=RPC_DEADLINE).operation.name
    assert name.startswith(f"{branch_0(branch)}/operations/import-products-")
    operations = products._transport.operations_client

    def done() -> Any:
        polled = operations.get_operation(name, timeout=RPC_DEADLINE)
        return polled if polled.done else None

    polled = wait_until(done, "GetOperation to say done")
    assert polled.HasField("metadata") and polled.HasField("response")
    metadata = retail_v2.ImportMetadata.deserialize(polled.metadata.value)
    assert (metadata.success_count, metadata.failure_count) == (2, 0)
    assert polled.response.type_url.endswith("google.cloud.retail.v2.ImportProductsResponse")
    assert products.get_product(name=stored_as(branch, ids[1]),
                                timeout=RPC_DEADLINE).title == "Merino Crew Sweater"


def tutorial_product(product_id: str, availability: str = "IN_STOCK",
                     attributes: bool = True) -> str:
    """A line of resources/products.json's shape: the bare id as its name, prices and
    image sizes in quotes, times with a numeric offset, retrievableFields in camelCase
    naming attributes, attributes as a list of key/value objects with quoted booleans."""
    line: dict[str, Any] = {
        "id": product_id, "name": product_id, "title": f"Trail Bottle {product_id[-3:]}",
        "brands": ["Footfall"], "categories": ["Outdoor"],
        "priceInfo": {"cost": "9.0", "currencyCode": "USD", "originalPrice": "30.0",
                      "priceEffectiveTime": "2021-03-01T08:00:00+00:00",
                      "priceExpireTime": "2121-03-01T08:00:00+00:00", "price": "18"},
        "colorInfo": {"colorFamilies": ["Orange"], "colors": ["Amber", "Rust"]},
        "availability": availability, "availableQuantity": 25,
        "availableTime": "2022-01-15T09:30:00+00:00",
        "images": [{"height": "240", "width": "320",
                    "uri": f"https://shop.example.com/img/{product_id}.jpg"}],
        "sizes": ["S", "M", "L"],
        "retrievableFields": "name,title,brands,categories,priceInfo,colorInfo,availability,"
                             "images,attributes.fabric,attributes.season,uri",
        "uri": f"https://shop.example.com/Outdoor/{product_id}"}
    if attributes:
        line["attributes"] = [
            {"key": "season", "value": {"indexable": "true", "numbers": [2023.0]}},
            {"key": "fabric", "value": {"indexable": "false", "searchable": "true",
                                        "text": ["Steel", "Silicone"]}}]
    return json.dumps(line, separators=(",", ":"))


def gcs_request(parent: str, uri: str, errors: str) -> retail_v2.ImportProductsRequest:
    """import_products_gcs.get_import_products_gcs_request: INCREMENTAL, errors_config."""
    source = retail_v2.GcsSource()
    source.input_uris = [uri]
    config = retail_v2.ProductInputConfig()
    config.gcs_source = source
    errors_config = retail_v2.ImportErrorsConfig()
    errors_config.gcs_prefix = errors
    request = retail_v2.ImportProductsRequest()
    request.parent = parent
    request.reconciliation_mode = retail_v2.ImportProductsRequest.ReconciliationMode.INCREMENTAL
    request.input_config = config
    request.errors_config = errors_config
    return request


def test_the_gcs_import_sample_imports_the_tutorial_products(
        products: Client, server: ServerProcess, branch: str, gcs_folder: str) -> None:
    """import_products_gcs.py with products.json: its test expects an operation under
    `branches/0`, every line a success and none a failure; it prints result()."""
    count = 40
    ids = [f"GGFF{n:06d}" for n in range(count)]
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/products.json",
                  [tutorial_product(i, attributes=n % 3 != 1) for n, i in enumerate(ids)])
    errors = f"{gcs_folder}/error"
    operation = products.import_products(gcs_request(default_branch(branch), uri, errors),
                                         timeout=RPC_DEADLINE)
    assert "/branches/0/operations/import-products" in operation.operation.name
    wait_until(operation.done, "the import's done()")
    result = operation.result()
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (count, 0)
    assert result.errors_config.gcs_prefix == errors and not result.error_samples

    got = products.get_product(name=stored_as(branch, ids[0]), timeout=RPC_DEADLINE)
    assert got.name == stored_as(branch, ids[0])  # not the bare id the line named
    assert (got.price_info.price, got.price_info.original_price) == (18.0, 30.0)
    assert got.attributes["season"].indexable is True
    assert list(got.attributes["fabric"].text) == ["Steel", "Silicone"]
    assert "attributes.fabric" in got.retrievable_fields.paths
    assert (got.available_quantity, got.images[0].height) == (25, 240)


def test_the_gcs_import_of_the_some_invalid_file_fails_its_one_bad_line(
        products: Client, server: ServerProcess, branch: str, gcs_folder: str) -> None:
    """products_some_invalid.json: three lines, the first of availability
    "INVALID_VALUE"; the others import, the one failure is written under the errors
    prefix."""
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/products_some_invalid.json", [
        tutorial_product("GGFF900001", availability="INVALID_VALUE"),
        tutorial_product("GGFF900002", attributes=False), tutorial_product("GGFF900003")])
    errors = f"{gcs_folder}/error"
    operation = products.import_products(gcs_request(default_branch(branch), uri, errors),
                                         timeout=RPC_DEADLINE)
    result = finish(operation)
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (2, 1)
    [sample] = result.error_samples
    assert sample.message.startswith(f"{uri} line 1: ") and "availability" in sample.message
    # the errors file as the tutorial shows Google's: code 3, the line's number in a Struct
    op_id = operation.operation.name.rsplit("/", 1)[-1]
    [written] = gcs_path(server.gcs_root, f"{errors}/{op_id}-errors.json").read_text(
        ).splitlines()
    assert json.loads(written) == {
        "code": 3, "message": sample.message,
        "details": [{"@type": "type.googleapis.com/google.protobuf.Struct",
                     "value": {"line_number": 1}}]}
    with pytest.raises(exceptions.NotFound):
        products.get_product(name=stored_as(branch, "GGFF900001"), timeout=RPC_DEADLINE)


@pytest.mark.parametrize(("source", "parent"), [
    ("inline", "invalid_catalog_name"), ("gcs", "invalid_catalog_name"),
    ("gcs", "INVALID_DEFAULT_CATALOG")])
def test_the_import_samples_invalid_catalog_name_is_refused_naming_parent(
        products: Client, server: ServerProcess, gcs_folder: str, source: str,
        parent: str) -> None:
    """'TO CHECK ERROR HANDLING PASTE THE INVALID CATALOG NAME HERE: default_catalog =
    "invalid_catalog_name"' (Python); the Java tutorial's `setParent(
    "INVALID_DEFAULT_CATALOG")`, which it shows answered "400 Request contains an
    invalid argument": INVALID_ARGUMENT naming `parent` alone. (Its other suggestion,
    a well-formed `catalogs/invalid_catalog`, names a catalog Footfall keeps like any
    other; with --strict-names it is NOT_FOUND, as every retail call there.)"""
    if source == "inline":
        request = inline_request(parent, inline_products([sample_id(), sample_id()]))
    else:
        uri = put_gcs(server.gcs_root, f"{gcs_folder}/products.json",
                      [tutorial_product("GGFF000001")])
        request = gcs_request(parent, uri, f"{gcs_folder}/error")
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.import_products(request, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["parent"])


def test_the_big_query_import_sample_is_refused_saying_what_to_do(products: Client,
                                                                  branch: str) -> None:
    """import_products_big_query_table.py: a BigQuerySource (project, dataset
    "products", table "products", data_schema "product"), INCREMENTAL. Footfall reads
    no BigQuery: INVALID_ARGUMENT naming the source, saying to export the table as
    newline-delimited JSON and import the files."""
    source = retail_v2.BigQuerySource(project_id="footfall-interop", dataset_id="products",
                                      table_id="products", data_schema="product")
    request = retail_v2.ImportProductsRequest(
        parent=default_branch(branch),
        input_config=retail_v2.ProductInputConfig(big_query_source=source),
        reconciliation_mode=retail_v2.ImportProductsRequest.ReconciliationMode.INCREMENTAL)
    with pytest.raises(exceptions.InvalidArgument) as refused:
        products.import_products(request, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["input_config.big_query_source"])
    assert "NEWLINE_DELIMITED_JSON" in refused.value.message


def test_the_test_resources_scripts_import_then_delete_every_product_while_listing(
        products: Client, server: ServerProcess, branch: str, gcs_folder: str) -> None:
    """test_resources_recovery: create_test_resources.py imports products.json as
    import_products_gcs.py does; remove_test_resources.delete_all_products lists the
    branch with the pager (no page size) and deletes each product as it goes, the
    pages after the first fetched once the products before them are gone."""
    count = 130  # two pages of the default 100
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/products.json",
                  [tutorial_product(f"GGRR{n:06d}", attributes=n % 2 == 0)
                   for n in range(count)])
    operation = products.import_products(
        gcs_request(default_branch(branch), uri, f"{gcs_folder}/error"), timeout=RPC_DEADLINE)
    wait_until(operation.done, "the import's done()")
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (count, 0)

    request = retail_v2.ListProductsRequest()
    request.parent = default_branch(branch)
    deleted = 0
    for product in products.list_products(request, timeout=RPC_DEADLINE):
        delete = retail_v2.DeleteProductRequest()
        delete.name = product.name
        products.delete_product(delete, timeout=RPC_DEADLINE)
        deleted += 1
    assert deleted == count
    assert not list(products.list_products(request, timeout=RPC_DEADLINE))
