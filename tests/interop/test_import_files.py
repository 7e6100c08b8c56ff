"""Import from gs:// files a hostile neighbour also writes to, through the official
client against a `footfall serve` subprocess: a file turned into a FIFO, a line
of 64 MB, and API keys limited to their own buckets."""

from __future__ import annotations

import json
import os
import time
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
    count_events,
    event_lines,
    finish,
    gcs_path,
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
    assert sample.startswith(f"{uri} line 2: the line is {long_line} bytes; a line")
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
