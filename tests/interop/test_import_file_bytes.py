"""Import files as other tools leave them, through the official client against a
`footfall serve` subprocess: a byte order mark at the start (Notepad, Excel,
PowerShell), zero bytes at the end (padding to a block), numbers whose double only is
whole, and values of the wrong JSON type named in JSON's words."""

from __future__ import annotations

import json
from typing import Any

from .support import (
    GCS_BUCKET,
    RPC_DEADLINE,
    ServerProcess,
    count_events,
    event_lines,
    finish,
    gcs_path,
    list_events,
    product_client,
    put_gcs,
    retail_client,
)

BOM = b"\xef\xbb\xbf"


def put_bytes(server: ServerProcess, uri: str, content: bytes) -> str:
    path = gcs_path(server.gcs_root, uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return uri


def imported(server: ServerProcess, catalog: str, uri: str) -> tuple[int, int, list[str]]:
    """(successes, failures, error samples) of importing the events of `uri`."""
    with retail_client(server.address) as retail:
        operation = retail.import_user_events(request={
            "parent": catalog, "input_config": {"gcs_source": {"input_uris": [uri]}}},
            timeout=RPC_DEADLINE)
        response = finish(operation)
    meta = operation.metadata
    return meta.success_count, meta.failure_count, [s.message for s in response.error_samples]


def folder(catalog: str) -> str:
    return f"gs://{GCS_BUCKET}/{catalog.rsplit('/', 1)[-1]}"


def test_a_byte_order_mark_at_a_files_start_is_read_over(server: ServerProcess,
                                                         catalog: str, branch: str) -> None:
    # Saved by Notepad or Excel, or by PowerShell's Out-File: it was "line 1: invalid
    # JSON: UTF-8 byte order mark (BOM) is not supported", one event lost per file.
    uri = put_bytes(server, f"{folder(catalog)}/events.json",
                    BOM + event_lines(3, visitor="marked").encode())
    assert imported(server, catalog, uri) == (3, 0, [])
    product = json.dumps({"id": "bom-1", "title": "Marked", "categories": ["Shoes"]})
    products = put_bytes(server, f"{folder(catalog)}/products.json",
                         BOM + product.encode() + b"\n")
    with product_client(server.address) as shop:
        operation = shop.import_products(request={
            "parent": branch, "input_config": {"gcs_source": {"input_uris": [products]}}},
            timeout=RPC_DEADLINE)
        finish(operation)
        stored = shop.get_product(name=f"{branch}/products/bom-1", timeout=RPC_DEADLINE)
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (1, 0)
    assert stored.title == "Marked"


def test_a_byte_order_mark_starting_a_later_line_is_named(server: ServerProcess,
                                                          catalog: str) -> None:
    # Two marked files joined with cat: the second's mark begins line 3.
    first, second = event_lines(2, visitor="one"), event_lines(2, visitor="two")
    uri = put_bytes(server, f"{folder(catalog)}/joined.json",
                    BOM + first.encode() + BOM + second.encode())
    done, failed, [sample] = imported(server, catalog, uri)
    assert (done, failed) == (3, 1)
    assert sample == (f"{uri} line 3: invalid JSON: the line begins with a UTF-8 byte order "
                      "mark (bytes ef bb bf), which only a file's first line may: files that "
                      "each had one, joined into one? remove the mark")


def test_zero_bytes_ending_a_file_are_padding(server: ServerProcess, catalog: str) -> None:
    # dd conv=sync (or a tape) pads a file to its block with zero bytes: gzip -d reads
    # over them after its data; the import counted them a failed line.
    uri = put_bytes(server, f"{folder(catalog)}/padded.json",
                    event_lines(3, visitor="padded").encode() + b"\0" * 509)
    assert imported(server, catalog, uri) == (3, 0, [])
    # Followed by a line, they are one that says what it holds.
    inside = put_bytes(server, f"{folder(catalog)}/zeros-inside.json",
                       b"\0" * 16 + b"\n" + event_lines(1, visitor="after").encode())
    assert imported(server, catalog, inside) == (1, 1, [
        f"{inside} line 1: invalid JSON: the line is 16 zero bytes (0x00) and no JSON; zero "
        "bytes are read over only where they end the file (padding)"])


def _cart(visitor: str, quantity: str, time: str = "2024-05-20T10:00:00Z") -> str:
    # (the quantity as written: json.dumps would write the double)
    return (f'{{"eventType": "add-to-cart", "visitorId": "{visitor}", "eventTime": "{time}", '
            f'"productDetails": [{{"product": {{"id": "p"}}, "quantity": {quantity}}}]}}')


def test_an_integer_field_refuses_a_number_whose_double_only_is_whole(
        server: ServerProcess, catalog: str) -> None:
    # json_format took the double: 1e-400 was stored as a quantity of 0, as a REST body's
    # was until it was read again with its digits.
    lines = [_cart("tiny", "1e-400"), _cart("long", "1.0000000000000000001"),
             _cart("hundred", "1e2"),
             # nine fraction digits and a Google Analytics client id: no number to read again
             _cart("1234567890.1700000000", "2.0", "2024-05-20T10:00:00.123456789Z")]
    uri = put_gcs(server.gcs_root, f"{folder(catalog)}/numbers.json", lines)
    done, failed, samples = imported(server, catalog, uri)
    assert (done, failed) == (2, 2)
    assert samples == [
        f"{uri} line 1: not a UserEvent: product_details[0].quantity: must be a "
        "whole number, got 1e-400",
        f"{uri} line 2: not a UserEvent: product_details[0].quantity: must be a "
        "whole number, got 1.0000000000000000001"]
    stored: list[dict[str, Any]] = list_events(server.store, catalog, server.workdir)
    assert sorted((e["visitorId"], e["productDetails"][0]["quantity"]) for e in stored) == [
        ("1234567890.1700000000", 2), ("hundred", 100)]


def test_a_value_of_the_wrong_type_is_named_in_jsons_words(server: ServerProcess,
                                                           catalog: str) -> None:
    line = {"eventType": "home-page-view", "visitorId": "typed", "sessionId": {"id": 1},
            "experimentIds": [["e"]], "productDetails": "p"}
    uri = put_gcs(server.gcs_root, f"{folder(catalog)}/typed.json", [json.dumps(line)])
    done, failed, [sample] = imported(server, catalog, uri)
    assert (done, failed) == (0, 1)
    assert "session_id: must be a JSON string, got an object" in sample, sample
    assert "experiment_ids[0]: must be a JSON string, got an array of 1" in sample
    assert 'product_details: must be a JSON array, got "p"' in sample, sample
    assert count_events(server.store, catalog, server.workdir) == 0
