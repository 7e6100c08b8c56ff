"""An import that skips a line longer than it reads (a file of one line of gigabytes
is read past a chunk at a time) keeps its lease meanwhile, as a long read does: its
lease ran out while it skipped, another process took the import over as if its holder
had died (a lost try; the third ended it INTERNAL). A renewal records the position
of the last batch that committed, never an older one."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from footfall.retail.v2 import import_config_pb2
from google.longrunning import operations_pb2

from server.clock import FixedClock
from server.operations.runner import JobContext
from server.retail import bulk_import, gcs, import_events, ndjson
from server.store import Store, open_store
from server.store.rows import OperationRecord

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
NAME = f"{CATALOG}/operations/{import_events.KIND}-1"
LEASE_US = 30_000
NOW_US = 1_714_564_800_000_000  # 2024-05-01T12:00:00Z: the events are of before
LINE = '{"eventType": "home-page-view", "visitorId": "v%d", "eventTime": "2024-01-01T00:00:00Z"}\n'


@pytest.fixture
def store() -> Iterator[Store]:
    opened = open_store("memory://")
    yield opened
    opened.close()


def test_a_line_skipped_for_longer_than_the_lease_keeps_it(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_import, "BATCH", 2)
    monkeypatch.setattr(ndjson, "SKIP_CHUNK", 16)
    (tmp_path / "shop").mkdir()
    # two lines (a batch that commits), then one of 33 chunks past the limit, then one
    (tmp_path / "shop/events.json").write_text(
        LINE % 0 + LINE % 1 + '{"visitorId": "' + "x" * 640 + '"}\n' + LINE % 3)
    request = import_config_pb2.ImportUserEventsRequest(
        parent=CATALOG, input_config={"gcs_source": {"input_uris": ["gs://shop/events.json"]}})
    store.create_operation(OperationRecord(
        NAME, import_events.KIND, False, 0, request.SerializeToString(),
        import_events.new_operation(NAME, 0).SerializeToString()))
    clock = FixedClock(NOW_US * 1000)
    chunks = 0
    lines: list[int] = []  # the checkpoint's line at each chunk
    open_input = gcs.open_input

    class Slow(io.BytesIO):
        """Each chunk of the skipped line takes half a lease."""

        def readline(self, size: int | None = -1) -> bytes:
            nonlocal chunks
            if size == ndjson.SKIP_CHUNK:
                chunks += 1
                clock.advance(LEASE_US / 2e6)
                assert store.claim_operation("w2", clock.now_ns() // 1000, LEASE_US,
                                             lambda _: False) is None, "the lease ran out"
                held = store.get_operation(NAME)
                assert held is not None
                # (the batch before the long line is read ahead of its commit)
                line = json.loads(held.checkpoint)["line"] if held.checkpoint else 0
                assert line >= max(lines, default=0) and line in (0, 2)
                lines.append(line)
            return super().readline(size)

    def slowly(root: Path, path: Path, field: str) -> Any:
        with open_input(root, path, field) as handle:
            return Slow(handle.read())

    monkeypatch.setattr(gcs, "open_input", slowly)
    record = store.claim_operation("w1", NOW_US, LEASE_US, lambda _: False)
    assert record is not None
    job = import_events.ImportJob(tmp_path, False)
    job.max_line_bytes = 128
    job(JobContext(record, store, clock, "w1", LEASE_US, threading.Event()))

    assert chunks >= 20 and lines[-1] == 2
    done = store.get_operation(NAME)
    assert done is not None and done.done and done.lease_owner == "w1"
    operation = operations_pb2.Operation.FromString(done.operation)
    meta = import_config_pb2.ImportMetadata()
    assert operation.metadata.Unpack(meta)
    assert (meta.success_count, meta.failure_count) == (3, 1), operation
    answer = import_config_pb2.ImportUserEventsResponse()
    assert operation.response.Unpack(answer)
    assert "line 3: user_event: its line is 658 bytes" in answer.error_samples[0].message
