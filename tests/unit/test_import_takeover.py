"""A job's holder that stalls past its lease (a slow read, a pause) while another
process takes the job over and finishes it: when it comes back it writes nothing
more, so the files the new holder wrote keep every line. (It wrote its batch at its
own, older offset and cut the file there: an import's errors file lost the failures
of the batches after it, an export the lines after it.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from footfall.retail.v2 import import_config_pb2, user_event_pb2
from footfall.retail.v2beta import export_config_pb2
from google.longrunning import operations_pb2

from server.clock import FixedClock
from server.operations.runner import Job, JobContext
from server.retail import bulk_import, export, import_events
from server.store import EventRow, Store, open_store
from server.store.rows import LeaseLost, OperationRecord

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
LEASE_US = 30_000_000
NOW_US = 1_714_564_800_000_000  # 2024-05-01T12:00:00Z: the events are of before
BATCHES = 5  # of two lines: one good, one without event_time


@pytest.fixture
def store() -> Iterator[Store]:
    opened = open_store("memory://")
    yield opened
    opened.close()


class TakenOverAt(threading.Event):
    """The holder's stop check, asked before each batch is written: at the
    `checks`-th, the holder stalls past its lease and `take_over` runs meanwhile."""

    def __init__(self, checks: int, take_over: Callable[[], None]) -> None:
        super().__init__()
        self.checks = checks
        self.take_over = take_over

    def is_set(self) -> bool:
        self.checks -= 1
        if self.checks == 0:
            self.take_over()
        return False


def stall_while_taken_over(store: Store, name: str, job: Job, checks: int) -> None:
    """Run `job` on `name` as holder "old", which stalls at its `checks`-th batch while
    holder "new" claims the job (old's lease ran out) and runs it to its end; old
    learns it lost the job."""
    old = store.claim_operation("old", NOW_US, LEASE_US, lambda _: False)
    assert old is not None and old.name == name

    def take_over() -> None:
        later = NOW_US + LEASE_US + 1
        new = store.claim_operation("new", later, LEASE_US, lambda _: False)
        assert new is not None and new.name == name
        job(JobContext(new, store, FixedClock(later * 1000), "new", LEASE_US,
                       threading.Event()))

    with pytest.raises(LeaseLost):
        job(JobContext(old, store, FixedClock(NOW_US * 1000), "old", LEASE_US,
                       TakenOverAt(checks, take_over)))


def done(store: Store, name: str) -> operations_pb2.Operation:
    record = store.get_operation(name)
    assert record is not None and record.done
    return operations_pb2.Operation.FromString(record.operation)


def test_an_import_taken_over_keeps_every_failure_in_its_errors_file(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_import, "BATCH", 2)
    root = tmp_path / "gcs"
    (root / "shop").mkdir(parents=True)
    (root / "shop/events.json").write_text("".join(
        f'{{"eventType": "home-page-view", "visitorId": "v{i}", '
        f'"eventTime": "2024-01-01T00:00:00Z"}}\n'
        f'{{"eventType": "home-page-view", "visitorId": "late-{i}"}}\n'
        for i in range(BATCHES)))
    name = f"{CATALOG}/operations/{import_events.KIND}-1"
    request = import_config_pb2.ImportUserEventsRequest(
        parent=CATALOG, input_config={"gcs_source": {"input_uris": ["gs://shop/events.json"]}},
        errors_config={"gcs_prefix": "gs://shop/errors"})
    store.create_operation(OperationRecord(
        name, import_events.KIND, False, 0, request.SerializeToString(),
        import_events.new_operation(name, 0).SerializeToString()))

    stall_while_taken_over(store, name, import_events.ImportJob(root, False), checks=2)

    meta = import_config_pb2.ImportMetadata()
    assert done(store, name).metadata.Unpack(meta)
    assert (meta.success_count, meta.failure_count) == (BATCHES, BATCHES)
    written = (root / f"shop/errors/{import_events.KIND}-1-errors.json").read_text()
    assert [json.loads(line)["message"].split(": ")[0] for line in written.splitlines()] == \
        [f"gs://shop/events.json line {2 * i + 2}" for i in range(BATCHES)]


def test_an_export_taken_over_keeps_every_line_it_wrote(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "BATCH", 2)
    events = [user_event_pb2.UserEvent(event_type="home-page-view", visitor_id=f"v{i}",
                                       event_time={"seconds": 1_704_067_200 + i})
              for i in range(2 * BATCHES)]
    store.write_user_events([EventRow.from_event(CATALOG, e, joined=True) for e in events])
    name = f"{CATALOG}/operations/{export.EVENTS_KIND}-v2beta-1"
    request = export_config_pb2.ExportUserEventsRequest(
        parent=CATALOG, output_config={"gcs_destination": {"output_uri_prefix": "gs://shop/out"}})
    store.create_operation(OperationRecord(
        name, export.EVENTS_KIND, False, 0, request.SerializeToString(),
        export.new_operation(name, 0).SerializeToString()))

    stall_while_taken_over(store, name, export.ExportJob(tmp_path, export.EVENTS_KIND),
                           checks=2)

    answer = export_config_pb2.ExportUserEventsResponse()
    assert done(store, name).response.Unpack(answer)
    [uri] = [r.output_uri for r in answer.output_result.gcs_result]
    written = (tmp_path / uri[len("gs://"):]).read_text().splitlines()
    assert [json.loads(line)["visitorId"] for line in written] == \
        [f"v{i}" for i in range(2 * BATCHES)]
