"""ExportUserEvents and ExportProducts as jobs: every selected item written once,
as received, across files; a job stopped between batches (and one that wrote a
batch but died before recording it) resumes without writing a line twice; a
cancel before the job runs leaves no file. And the operation names and type names
of the retail version a job was started through."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from footfall.retail.v2 import product_pb2, user_event_pb2
from footfall.retail.v2beta import export_config_pb2
from google.longrunning import operations_pb2
from google.protobuf import json_format

from server.clock import FixedClock
from server.errors import InvalidArgument
from server.operations import records
from server.operations.runner import JobContext, OperationRunner
from server.retail import export
from server.store import EventRow, Store, open_store
from server.store.rows import LeaseLost, OperationRecord
from tests.unit.leases import scans_past_the_lease

CATALOG = "projects/p/locations/global/catalogs/c"
BRANCH = f"{CATALOG}/branches/0"
NAME = f"{CATALOG}/operations/export-user-events-v2beta-1"
PREFIX = "gs://bucket/out/"


class StopAfter(threading.Event):
    """A stop request that comes after `checks` checks: a shutdown between batches."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = checks

    def is_set(self) -> bool:
        self.checks -= 1
        return self.checks < 0


@pytest.fixture
def store() -> Iterator[Store]:
    opened = open_store("memory://")
    yield opened
    opened.close()


def events(count: int) -> list[user_event_pb2.UserEvent]:
    return [json_format.ParseDict({"eventType": "search" if i % 3 else "home-page-view",
                                   "visitorId": f"v{i}", "searchQuery": "tent",
                                   "eventTime": f"2024-01-01T00:00:{i:02d}Z"},
                                  user_event_pb2.UserEvent()) for i in range(count)]


def submit(store: Store, request: export_config_pb2.ExportUserEventsRequest | None = None,
           kind: str = export.EVENTS_KIND, name: str = NAME) -> None:
    request = request or export_config_pb2.ExportUserEventsRequest(
        parent=CATALOG, output_config={"gcs_destination": {"output_uri_prefix": PREFIX}})
    store.create_operation(OperationRecord(
        name=name, kind=kind, done=False, create_time_us=0,
        request=request.SerializeToString(),
        operation=export.new_operation(name, 0).SerializeToString()))


def run(store: Store, root: Path, stopping: threading.Event, kind: str = export.EVENTS_KIND
        ) -> None:
    record = store.claim_operation("w1", 0, 10**9, lambda _: False)
    assert record is not None
    job = export.ExportJob(root, kind)
    try:
        job(JobContext(record, store, FixedClock(0), "w1", 10**9, stopping))
    except Exception:
        store.release_operation(record.name, "w1")  # as the runner leaves it for the next
        raise


def response(store: Store, name: str = NAME) -> tuple[operations_pb2.Operation, list[str]]:
    record = store.get_operation(name)
    assert record is not None and record.done
    done = operations_pb2.Operation.FromString(record.operation)
    answer = export_config_pb2.ExportUserEventsResponse()
    if done.HasField("response"):
        assert done.response.Unpack(answer)
    return done, [r.output_uri for r in answer.output_result.gcs_result]


def read(root: Path, uris: list[str]) -> list[dict[str, object]]:
    return [json.loads(line) for uri in uris
            for line in (root / uri[len("gs://"):]).read_text().splitlines()]


def test_a_stopped_export_resumes_writing_every_event_once_across_files(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "BATCH", 4)
    monkeypatch.setattr(export, "LINES_PER_FILE", 6)
    sent = events(23)
    store.write_user_events([EventRow.from_event(CATALOG, e, joined=True) for e in sent])
    submit(store)
    with pytest.raises(Exception, match=NAME):  # StopRequested after two batches
        run(store, tmp_path, StopAfter(2))
    record = store.get_operation(NAME)
    assert record is not None and not record.done
    state = json.loads(record.checkpoint or b"{}")
    assert state["cursor"] > 0 and state["size"] > 0
    # A run that wrote its next batch and died before recording it leaves lines behind,
    # in the file it writes: under its name and PART until it is whole.
    current = tmp_path / (state["files"][-1][len("gs://"):] + export.PART)
    with current.open("ab") as leftover:
        leftover.write(b'{"eventType": "written-but-never-recorded"}\n')
    run(store, tmp_path, threading.Event())

    done, uris = response(store)
    # a file is full after two batches (8 lines >= 6): 8 + 8 + 7
    assert uris == [f"{PREFIX}export-user-events-v2beta-1-{i:04d}.json" for i in range(3)]
    assert read(tmp_path, uris) == [json_format.MessageToDict(e) for e in sent]
    meta = export_config_pb2.ExportMetadata()
    assert done.metadata.Unpack(meta) and meta.HasField("update_time")


@pytest.mark.parametrize(("prefix", "first_file"), [
    # OutputConfig.GcsDestination.output_uri_prefix's own table: the prefix and each
    # file's name, as they stand
    ("gs://bucket/", "gs://bucket/export-user-events-v2beta-1-0000.json"),
    ("gs://bucket/folder/", "gs://bucket/folder/export-user-events-v2beta-1-0000.json"),
    ("gs://bucket/folder/item_", "gs://bucket/folder/item_export-user-events-v2beta-1-0000.json"),
    ("gs://bucket/folder", "gs://bucket/folderexport-user-events-v2beta-1-0000.json"),
    ("gs://bucket", "gs://bucket/export-user-events-v2beta-1-0000.json"),  # a bucket alone
])
def test_files_are_named_by_the_prefix_as_google_names_them(
        store: Store, tmp_path: Path, prefix: str, first_file: str) -> None:
    sent = events(3)
    store.write_user_events([EventRow.from_event(CATALOG, e, joined=True) for e in sent])
    submit(store, export_config_pb2.ExportUserEventsRequest(
        parent=CATALOG, output_config={"gcs_destination": {"output_uri_prefix": prefix}}))
    run(store, tmp_path, threading.Event())
    _, uris = response(store)
    assert uris == [first_file]
    assert read(tmp_path, uris) == [json_format.MessageToDict(e) for e in sent]


@pytest.mark.parametrize(("prefix", "words"), [
    ("gs://bucket/folder/..", "must not contain '.', '..'"),
    # (a folder and a name's start that break one rule: one violation, not one of each)
    ("gs://bucket/../..", "must not contain '.', '..'"),
    ("gs://bucket/a\\b/c\\", "must not contain '.', '..', backslashes"),
    ("gs://bucket/" + "é" * 97, "may be at most 192 bytes (a file's name is at most 255), got 194"),
    ("gs://Bucket/x", "is not a valid bucket name"),
])
def test_a_prefix_no_file_name_can_follow_is_refused_when_called(
        tmp_path: Path, prefix: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        export.check_events_request(export_config_pb2.ExportUserEventsRequest(
            parent=CATALOG, output_config={"gcs_destination": {"output_uri_prefix": prefix}}),
            tmp_path)
    [violation] = refused.value.violations
    assert violation.field == export.OUTPUT_FIELD and words in violation.description
    assert export.check_events_request(export_config_pb2.ExportUserEventsRequest(
        parent=CATALOG, output_config={"gcs_destination": {
            "output_uri_prefix": "gs://bucket/" + "é" * 96}}), tmp_path)[0] == CATALOG


def test_an_export_begun_before_names_followed_the_prefix_resumes_in_its_folder(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint of a Footfall that took every prefix for a folder
    (gs://bucket/folder/item_/NAME) goes on in the files it began."""
    monkeypatch.setattr(export, "BATCH", 2)
    monkeypatch.setattr(export, "LINES_PER_FILE", 2)
    sent = events(5)
    store.write_user_events([EventRow.from_event(CATALOG, e, joined=True) for e in sent])
    submit(store, export_config_pb2.ExportUserEventsRequest(parent=CATALOG, output_config={
        "gcs_destination": {"output_uri_prefix": "gs://bucket/folder/item_"}}))
    with pytest.raises(Exception, match=NAME):  # StopRequested after one batch
        run(store, tmp_path, StopAfter(1))
    record = store.get_operation(NAME)
    assert record is not None
    state = json.loads(record.checkpoint or b"{}")
    began = "gs://bucket/folder/item_/export-user-events-v2beta-1-0000.json"
    (tmp_path / began[len("gs://"):]).parent.mkdir(parents=True, exist_ok=True)
    # (written under its name then)
    (tmp_path / (state["files"][0][len("gs://"):] + export.PART)).rename(
        tmp_path / began[len("gs://"):])
    store.delete_operation(NAME)
    store.create_operation(dataclasses.replace(
        record, checkpoint=json.dumps({**state, "files": [began]}).encode(), lease_owner=None,
        lease_expires_us=None))
    run(store, tmp_path, threading.Event())
    _, uris = response(store)
    assert uris == [f"gs://bucket/folder/item_/export-user-events-v2beta-1-{i:04d}.json"
                    for i in range(3)]
    assert read(tmp_path, uris) == [json_format.MessageToDict(e) for e in sent]


def test_an_export_ended_for_its_tries_keeps_only_what_it_recorded(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ended unrun by the runner (its tries ended their process), it is cut back as a
    resumed run cuts it (its file kept the lines of a batch it never recorded), and
    the file is named."""
    monkeypatch.setattr(export, "BATCH", 4)
    sent = events(10)
    store.write_user_events([EventRow.from_event(CATALOG, e, joined=True) for e in sent])
    submit(store)
    with pytest.raises(Exception, match=NAME):  # StopRequested after two batches
        run(store, tmp_path, StopAfter(2))
    record = store.get_operation(NAME)
    assert record is not None
    written = tmp_path / json.loads(record.checkpoint or b"{}")["files"][-1][len("gs://"):]
    with written.with_name(written.name + export.PART).open("ab") as leftover:
        leftover.write(b'{"eventType": "written-but-never-recorded"}\n')
    job = export.ExportJob(tmp_path, export.EVENTS_KIND)
    runner = OperationRunner(store, FixedClock(0), {export.EVENTS_KIND: job},
                             settle={export.EVENTS_KIND: job.settle})
    claimed = store.claim_operation("w2", 0, 10**9, lambda _: True)
    assert claimed is not None
    runner._run(dataclasses.replace(claimed, lost_tries=3), "w2")

    done, _ = response(store)
    assert done.error.code == 13  # INTERNAL
    assert [json.loads(line) for line in written.read_text().splitlines()] == [
        json_format.MessageToDict(e) for e in sent[:8]]


def test_a_cancel_before_the_job_runs_leaves_no_file(store: Store, tmp_path: Path) -> None:
    store.write_user_events([EventRow.from_event(CATALOG, e, joined=True) for e in events(3)])
    submit(store)
    store.request_cancel(NAME)
    run(store, tmp_path, threading.Event())
    done, _ = response(store)
    assert done.error.code == 1  # CANCELLED
    assert list((tmp_path / "bucket/out").iterdir()) == []


def test_an_export_deleted_while_it_runs_leaves_no_part_file(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DeleteOperation while it ran: the job stops at its next step (LeaseLost) and no
    run resumes or settles it, so its file being written stayed as NAME.part for good.
    The files it had named stay, as Google's outputs of a deleted operation do."""
    monkeypatch.setattr(export, "BATCH", 4)
    monkeypatch.setattr(export, "LINES_PER_FILE", 6)
    store.write_user_events([EventRow.from_event(CATALOG, e, joined=True) for e in events(20)])
    submit(store)
    steps = 0
    run_step = store.run_step

    def deleted_at_the_fourth(*args: object, **kwargs: object) -> object:
        nonlocal steps
        steps += 1
        if steps == 4:  # (a file named after two steps; the next one begun)
            store.delete_operation(NAME)
        return run_step(*args, **kwargs)

    monkeypatch.setattr(store, "run_step", deleted_at_the_fourth)
    with pytest.raises(LeaseLost):
        run(store, tmp_path, threading.Event())
    left = sorted(p.name for p in (tmp_path / "bucket/out").iterdir())
    assert left == ["export-user-events-v2beta-1-0000.json"]


def test_products_export_as_stored_with_their_names(store: Store, tmp_path: Path) -> None:
    for pid, availability in (("a", 0), ("b", product_pb2.Product.OUT_OF_STOCK)):
        store.create_product(BRANCH, pid, product_pb2.Product(
            title=pid, availability=availability).SerializeToString())
    name = f"{BRANCH}/operations/export-products-v2alpha-7"
    submit(store, export_config_pb2.ExportProductsRequest(
        parent=BRANCH, filter="availability = IN_STOCK",
        output_config={"gcs_destination": {"output_uri_prefix": PREFIX}}),
        export.PRODUCTS_KIND, name)
    run(store, tmp_path, threading.Event(), export.PRODUCTS_KIND)
    record = store.get_operation(name)
    assert record is not None
    answer = export_config_pb2.ExportProductsResponse()
    assert operations_pb2.Operation.FromString(record.operation).response.Unpack(answer)
    assert read(tmp_path, [r.output_uri for r in answer.output_result.gcs_result]) == [
        {"name": f"{BRANCH}/products/a", "id": "a", "title": "a"}]


def test_operations_carry_the_version_they_were_started_through() -> None:
    assert records.version_of(records.new_name(CATALOG, "purge-user-events")) == ""
    token = records.API_VERSION.set("v2alpha")
    try:
        name = records.new_name(CATALOG, "purge-user-events")
    finally:
        records.API_VERSION.reset(token)
    assert records.version_of(name) == "v2alpha"
    op = records.operation(name, export_config_pb2.ExportMetadata(),
                           response=user_event_pb2.UserEvent())
    records.relabel(op)
    assert op.metadata.type_url == "type.googleapis.com/google.cloud.retail.v2alpha.ExportMetadata"
    assert op.response.type_url == "type.googleapis.com/google.cloud.retail.v2alpha.UserEvent"
    v2 = records.operation(f"{CATALOG}/operations/purge-user-events-12",
                           export_config_pb2.ExportMetadata())
    # a v2 operation is answered as stored
    assert records.relabel(v2).metadata.type_url.endswith("retail.v2beta.ExportMetadata")


def test_a_scan_longer_than_the_lease_keeps_it(store: Store, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """eventsMissingCatalogItems among joined events: 0.34 s a million events passed
    over here, so a batch's scan outlasts the 30 s of a lease at some 90 million. Under
    --processes the other process took the export over as if its holder had died; the
    third take-over ended it INTERNAL. The renewals record how far it got."""
    monkeypatch.setattr(export, "BATCH", 1)
    sent = events(2)
    store.write_user_events([EventRow.from_event(CATALOG, e, joined=False) for e in sent])
    submit(store, export_config_pb2.ExportUserEventsRequest(
        parent=CATALOG, filter="eventsMissingCatalogItems",
        output_config={"gcs_destination": {"output_uri_prefix": PREFIX}}))
    lease_us, clock = 30_000, FixedClock(0)  # (the job looks every third of it: 10 ms)
    record = store.claim_operation("w1", 0, lease_us, lambda _: False)
    assert record is not None
    scans_past_the_lease(store, monkeypatch, clock, NAME, lease_us,
                         lambda checkpoint: checkpoint.get("cursor", 0))
    export.ExportJob(tmp_path, export.EVENTS_KIND)(
        JobContext(record, store, clock, "w1", lease_us, threading.Event()))

    _, uris = response(store)
    assert read(tmp_path, uris) == [json_format.MessageToDict(e) for e in sent]
