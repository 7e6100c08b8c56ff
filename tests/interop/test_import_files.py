"""Import from gs:// files a hostile neighbour also writes to, through the official
client against a `footfall serve` subprocess: a file turned into a FIFO, a line
of 64 MB, and API keys limited to their own buckets."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import retail_v2

from .support import (
    GCS_BUCKET,
    RPC_DEADLINE,
    STOP_GRACE,
    ServerProcess,
    alive,
    count_events,
    event_lines,
    finish,
    gcs_path,
    list_events,
    product_client,
    put_gcs,
    retail_client,
    wait_until,
)
from .trust import with_key

SHOP = "projects/shop/locations/global/catalogs/default_catalog"
MIB = 1024 * 1024


def file_import(catalog: str, *uris: str, errors_prefix: str = "") -> dict[str, Any]:
    request: dict[str, Any] = {"parent": catalog,
                               "input_config": {"gcs_source": {"input_uris": list(uris)}}}
    if errors_prefix:
        request["errors_config"] = {"gcs_prefix": errors_prefix}
    return request


def imported_so_far(retail: retail_v2.UserEventServiceClient, name: str,
                    metadata: Any = ()) -> tuple[bool, int]:
    current = retail.get_operation({"name": name}, metadata=metadata, timeout=RPC_DEADLINE)
    meta = retail_v2.ImportMetadata.deserialize(current.metadata.value)
    return current.done, meta.success_count


def test_a_file_turned_into_a_fifo_ends_the_import_and_sigterm_stays_prompt(
        server_factory: Callable[..., ServerProcess], tmp_path: Path, catalog: str) -> None:
    server = server_factory("--gcs-root", str(tmp_path / "gcs"))
    folder = f"gs://{GCS_BUCKET}/fifo"
    put_gcs(server.gcs_root, f"{folder}/part-0.json", event_lines(40_000, visitor="first"))
    second = put_gcs(server.gcs_root, f"{folder}/part-1.json", event_lines(3, visitor="second"))
    with retail_client(server.address) as retail:
        operation = retail.import_user_events(
            request=file_import(catalog, f"{folder}/part-*.json"), timeout=RPC_DEADLINE)
        done, _ = wait_until(
            lambda: (state := imported_so_far(retail, operation.operation.name))[1] and state,
            "the first file's first batch")
        assert not done, "the first file was imported before the test could act"
        # While the first file is read, the second becomes a FIFO nobody writes to:
        # opening it for reading the usual way would wait for a writer forever.
        path = gcs_path(server.gcs_root, second)
        path.unlink()
        os.mkfifo(path)
        with pytest.raises(exceptions.GoogleAPICallError) as failed:
            finish(operation)
    assert failed.value.grpc_status_code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"{second}: not a regular file" in failed.value.message
    started = time.monotonic()
    assert server.stop() == 0  # SIGTERM: drained and exited, not killed
    assert time.monotonic() - started < STOP_GRACE / 2


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_64_mb_line_is_one_failure_and_memory_stays_flat(
        server_factory: Callable[..., ServerProcess], tmp_path: Path, catalog: str) -> None:
    server = server_factory("--gcs-root", str(tmp_path / "gcs"))
    uri = f"gs://{GCS_BUCKET}/long/events.json"
    path = gcs_path(server.gcs_root, uri)
    path.parent.mkdir(parents=True)
    head = (b'{"eventType":"home-page-view","visitorId":"huge",'
            b'"eventTime":"2024-05-20T00:00:00Z","pageViewId":"')
    with path.open("wb") as out:
        out.write(event_lines(1, visitor="before").encode())
        out.write(head)
        for _ in range(64):
            out.write(b"x" * MIB)
        out.write(b'"}\n')
        out.write(event_lines(1, start=1, visitor="after").encode())
    long_line = len(head) + 64 * MIB + 3
    peak_before = _peak_rss_kib(server.proc.pid)
    with retail_client(server.address) as retail:
        operation = retail.import_user_events(request=file_import(catalog, uri),
                                              timeout=RPC_DEADLINE)
        response = finish(operation)
    growth_mib = (_peak_rss_kib(server.proc.pid) - peak_before) / 1024
    # Holding the line took 130 MB and more before; skipping it takes a few.
    assert growth_mib < 32, f"peak memory grew by {growth_mib:.0f} MiB"
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (2, 1)
    [sample] = [s.message for s in response.error_samples]
    assert sample.startswith(f"{uri} line 2: user_event: its line is {long_line} bytes; a line")
    assert count_events(server.store, catalog, server.workdir) == 2


# -- buckets per key (issue 10, item 14) ---------------------------------------------------

SHOP_A, EVERYWHERE = "shop-a-admin-7f3e01c2", "ops-admin-44d09b1e"


def test_a_key_imports_only_from_and_into_its_buckets(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {
        SHOP_A: {"projects": ["shop"], "role": "admin", "buckets": ["shop-a-*"],
                 "name": "shop-a"},
        EVERYWHERE: {"projects": ["shop"], "role": "admin", "name": "ops"}}}))
    server = server_factory("--auth-file", str(keys), "--gcs-root", str(tmp_path / "gcs"))
    own = put_gcs(server.gcs_root, "gs://shop-a-events/e.json", event_lines(2, visitor="a"))
    other = put_gcs(server.gcs_root, "gs://shop-b-events/e.json", event_lines(3, visitor="b"))
    products = put_gcs(server.gcs_root, "gs://shop-b-events/products.json",
                       json.dumps({"id": "p1", "title": "Tent", "categories": ["Tents"]}))
    with retail_client(server.address) as retail, product_client(server.address) as catalog:
        def finished(name: str, key: str) -> bool:
            return imported_so_far(retail, name, with_key(key))[0]

        allowed = retail.import_user_events(
            request=file_import(SHOP, own, errors_prefix="gs://shop-a-errors/import"),
            metadata=with_key(SHOP_A), timeout=RPC_DEADLINE)
        wait_until(lambda: finished(allowed.operation.name, SHOP_A), "the allowed import")
        for request, words in [
            (file_import(SHOP, own, other),
             "bucket 'shop-b-events' (input_config.gcs_source.input_uris[1])"),
            (file_import(SHOP, own, errors_prefix="gs://shop-b-errors/import"),
             "bucket 'shop-b-errors' (errors_config.gcs_prefix)"),
        ]:
            with pytest.raises(exceptions.PermissionDenied) as denied:
                retail.import_user_events(request=request, metadata=with_key(SHOP_A),
                                          timeout=RPC_DEADLINE)
            assert words in denied.value.message
        with pytest.raises(exceptions.PermissionDenied, match="bucket 'shop-b-events'"):
            catalog.import_products(
                request={"parent": f"{SHOP}/branches/default_branch",
                         "input_config": {"gcs_source": {"input_uris": [products]}}},
                metadata=with_key(SHOP_A), timeout=RPC_DEADLINE)
        # A key without a list may use every bucket, as before.
        everywhere = retail.import_user_events(request=file_import(SHOP, other),
                                               metadata=with_key(EVERYWHERE),
                                               timeout=RPC_DEADLINE)
        wait_until(lambda: finished(everywhere.operation.name, EVERYWHERE), "the ops import")
    assert count_events(server.store, SHOP, server.workdir) == 5
    assert not (server.gcs_root / "shop-b-errors").exists()


def test_a_link_in_a_keys_bucket_does_not_lead_into_another_bucket(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """A key limited to shop-a-* buckets, and in one of them a link to a folder of
    another bucket (h5's finding): the import is refused, naming the field, and
    nothing of the other bucket is imported."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {
        SHOP_A: {"projects": ["shop"], "role": "admin", "buckets": ["shop-a-*"]}}}))
    server = server_factory("--auth-file", str(keys), "--gcs-root", str(tmp_path / "gcs"))
    put_gcs(server.gcs_root, "gs://shop-b-events/e.json", event_lines(3, visitor="b"))
    own = put_gcs(server.gcs_root, "gs://shop-a-events/own.json", event_lines(2, visitor="a"))
    os.symlink(server.gcs_root / "shop-b-events", server.gcs_root / "shop-a-events/linkb")
    with retail_client(server.address) as retail:
        for uri in ("gs://shop-a-events/linkb/e.json", "gs://shop-a-events/*/e.json"):
            with pytest.raises(exceptions.InvalidArgument) as refused:
                retail.import_user_events(request=file_import(SHOP, own, uri),
                                          metadata=with_key(SHOP_A), timeout=RPC_DEADLINE)
            assert ("input_config.gcs_source.input_uris[1]: gs://shop-a-events/linkb/e.json: "
                    "a link leads out of bucket 'shop-a-events'") in refused.value.message
    assert count_events(server.store, SHOP, server.workdir) == 0


# -- files made for Google: the forms its importer accepts (issue 15, item 1) ----------


def google_shaped_product(i: int) -> dict[str, Any]:
    """A product line shaped like Google's retail tutorial data: a bare id as its
    name, attributes as key/value objects with quoted booleans, quoted numbers,
    snake_case retrievable fields."""
    return {"name": f"GGOE{i:06d}", "id": f"GGOE{i:06d}", "type": "PRIMARY",
            "primaryProductId": f"GGOE{i:06d}", "categories": ["Apparel"],
            "title": f"Tutorial sweater {i}", "brands": ["Google"],
            "attributes": [{"key": "eco_friendly", "value": {
                "text": ["Low-impact fabrics"], "indexable": "true", "searchable": "false"}}],
            "priceInfo": {"currencyCode": "USD", "price": "16", "originalPrice": "45.0"},
            "availability": "IN_STOCK", "availableQuantity": "50",
            "images": [{"uri": f"https://shop.example/{i}.jpg", "height": "300",
                        "width": "400"}],
            "retrievableFields": "name,price_info,color_info.color_families"}


def google_shaped_event(i: int) -> dict[str, Any]:
    """An event line as Google's tutorial writes them: a numeric UTC offset, one
    product detail as an object rather than a list, a quoted quantity."""
    return {"eventType": "detail-page-view", "visitorId": f"tutorial-visitor-{i % 97}",
            "eventTime": f"2021-12-12T10:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
            "productDetails": {"product": {"id": f"GGOE{i % 20:06d}"}, "quantity": "1"},
            "attributes": [{"key": "channel", "value": {"text": [f"c{i}"],
                                                       "indexable": "false"}}],
            "userInfo": {"userAgent": "Mozilla/5.0 " + "x" * 200}}


def test_files_made_for_google_import_whole(server: ServerProcess, catalog: str,
                                             branch: str) -> None:
    folder = f"gs://{GCS_BUCKET}/{catalog.rsplit('/', 1)[-1]}"
    products = put_gcs(server.gcs_root, f"{folder}/products.json",
                       [json.dumps(google_shaped_product(i)) for i in range(20)])
    # More than a MiB: decoded by the server's worker processes.
    count = 3_000
    events = put_gcs(server.gcs_root, f"{folder}/user_events.json",
                     [json.dumps(google_shaped_event(i)) for i in range(count)])
    assert gcs_path(server.gcs_root, events).stat().st_size > MIB
    with product_client(server.address) as shop, retail_client(server.address) as retail:
        finish(shop.import_products(request={
            "parent": branch, "input_config": {"gcs_source": {"input_uris": [products]}}},
            timeout=RPC_DEADLINE))
        stored = shop.get_product(name=f"{branch}/products/GGOE000003", timeout=RPC_DEADLINE)
        operation = retail.import_user_events(request=file_import(catalog, events),
                                              timeout=RPC_DEADLINE)
        summary = finish(operation).import_summary
        meta = operation.metadata
    assert stored.attributes["eco_friendly"].indexable is True
    assert stored.attributes["eco_friendly"].searchable is False
    assert stored.price_info.price == 16 and stored.price_info.original_price == 45
    assert list(stored.retrievable_fields.paths) == ["name", "price_info",
                                                     "color_info.color_families"]
    assert (meta.success_count, meta.failure_count) == (count, 0)
    assert summary.joined_events_count == count
    assert count_events(server.store, catalog, server.workdir) == count


def test_one_value_where_a_list_goes_imports_as_a_list_of_one(server: ServerProcess,
                                                                catalog: str) -> None:
    """Google's pages write `"experimentIds": "experiment-id"`; protobuf's converter,
    behind Google's JSON front ends, reads one value as a list of one. A list of
    messages given a text is still a bad line."""
    lines = [{"eventType": "category-page-view", "visitorId": f"single-{i}",
              "eventTime": f"2021-12-12T10:00:0{i}Z", "experimentIds": f"exp-{i}",
              "pageCategories": "Sale > Boots",
              "attributes": {"size": {"numbers": 42}, "tone": {"text": "warm"}}}
             for i in range(3)]
    lines.append({"eventType": "detail-page-view", "visitorId": "single-bad",
                  "eventTime": "2021-12-12T10:00:09Z", "productDetails": "p1"})
    uri = put_gcs(server.gcs_root, f"gs://{GCS_BUCKET}/single-values/events.json",
                  [json.dumps(line) for line in lines])
    with retail_client(server.address) as retail:
        operation = retail.import_user_events(request=file_import(catalog, uri),
                                              timeout=RPC_DEADLINE)
        result = finish(operation)
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (3, 1)
    assert "line 4" in result.error_samples[0].message
    assert "product_details" in result.error_samples[0].message
    stored = list_events(server.store, catalog, server.workdir)
    assert [e["experimentIds"] for e in stored] == [["exp-0"], ["exp-1"], ["exp-2"]]
    assert {tuple(e["pageCategories"]) for e in stored} == {("Sale > Boots",)}
    assert stored[0]["attributes"] == {"size": {"numbers": [42]}, "tone": {"text": ["warm"]}}


def test_write_user_event_over_rest_takes_the_same_forms(server: ServerProcess,
                                                         catalog: str) -> None:
    """Google's JSON front end reads one item where a list goes on every call: the
    event JSON of Google's pages (`"experimentIds": "experiment-id"`) writes as it
    imports. A text where a list of objects goes is still refused."""
    written = _post(server, f"{catalog}/userEvents:write", {
        "eventType": "detail-page-view", "visitorId": "v", "experimentIds": "exp-1",
        "productDetails": {"product": {"id": "p"}, "quantity": "2"}})
    assert written["experimentIds"] == ["exp-1"]
    assert written["productDetails"] == [{"product": {"id": "p"}, "quantity": 2}]
    body = json.dumps({"eventType": "detail-page-view", "visitorId": "v",
                       "productDetails": "p"}).encode()
    request = urllib.request.Request(
        f"http://{server.http_address}/v2/{catalog}/userEvents:write", data=body,
        headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=RPC_DEADLINE)
    assert refused.value.code == 400
    assert "user_event.product_details: Invalid JSON payload received: must be a JSON array" \
        in refused.value.read().decode()
    assert count_events(server.store, catalog, server.workdir) == 1


def _post(server: ServerProcess, path: str, document: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://{server.http_address}/v2/{path}", data=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=RPC_DEADLINE) as answer:
        return json.loads(answer.read())


def test_inline_imports_over_rest_take_the_same_forms(server: ServerProcess, catalog: str,
                                                      branch: str) -> None:
    product = google_shaped_product(7)
    del product["id"]  # the bare name alone says which product
    started = _post(server, f"{branch}/products:import", {
        "inputConfig": {"productInlineSource": {"products": [product]}}})
    events = [google_shaped_event(i) for i in range(3)]
    imported = _post(server, f"{catalog}/userEvents:import", {
        "inputConfig": {"userEventInlineSource": {"userEvents": events}}})
    with product_client(server.address) as shop, retail_client(server.address) as retail:
        wait_until(lambda: shop.get_operation({"name": started["name"]},
                                              timeout=RPC_DEADLINE).done, "the product import")
        stored = shop.get_product(name=f"{branch}/products/GGOE000007", timeout=RPC_DEADLINE)
        done = wait_until(lambda: imported_so_far(retail, imported["name"])[0] and
                          imported_so_far(retail, imported["name"]), "the event import")
    assert stored.attributes["eco_friendly"].indexable is True
    assert done == (True, 3)


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = [int(c) for c in task.read_text().split()]
        except FileNotFoundError:
            continue
        for child in children:
            found |= {child} | _descendants(child)
    return found


def test_import_workers_under_processes_end_with_the_server(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """With --processes 2 and 2 import workers: a file of more than a MiB imports
    whole, and a SIGTERM ends the server processes and their workers alike."""
    server = server_factory("--processes", "2", "--import-processes", "2",
                            "--gcs-root", str(tmp_path / "gcs"))
    count = 20_000
    uri = put_gcs(server.gcs_root, f"gs://{GCS_BUCKET}/many/events.json",
                  event_lines(count, visitor="many"))
    assert gcs_path(server.gcs_root, uri).stat().st_size > MIB
    with retail_client(server.address) as retail:
        operation = retail.import_user_events(request=file_import(SHOP, uri),
                                              timeout=RPC_DEADLINE)
        finish(operation)
        assert operation.metadata.success_count == count
    assert "starting 2 import worker processes" in server.log_text()
    family = _descendants(server.proc.pid)
    assert len(family) >= 4  # two server processes, two workers (and resource trackers)
    assert server.stop() == 0
    wait_until(lambda: not any(map(alive, family)), "every process of the server to end",
               deadline=5)


