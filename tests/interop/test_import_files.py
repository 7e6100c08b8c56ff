"""Import from gs:// files a hostile neighbour also writes to, through the official
client against a `footfall serve` subprocess: a file turned into a FIFO, a line
of 64 MB."""

from __future__ import annotations

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
    put_gcs,
    retail_client,
    wait_until,
)

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
