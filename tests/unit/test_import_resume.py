"""An import resumed after its process died between writing a batch's failures to
its errors file and committing the batch: however it ends next (it goes on, it was
cancelled meanwhile, or the runner ends it for the tries that ended their process),
the errors file holds only the failures of the batches that committed, as many as
the operation's failure_count."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from footfall.retail.v2 import import_config_pb2
from google.longrunning import operations_pb2
from google.rpc import code_pb2

from server.clock import FixedClock
from server.operations.runner import JobContext, OperationRunner
from server.retail import bulk_import, import_events
from server.store import Store, open_store
from server.store.rows import OperationRecord

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
NAME = f"{CATALOG}/operations/{import_events.KIND}-1"
LEASE_US = 30_000_000
NOW_US = 1_714_564_800_000_000  # 2024-05-01T12:00:00Z: the events are of before
BATCHES = 3  # of two lines: one good, one without event_time


class Killed(Exception):
    """The process running the job died here."""


@pytest.fixture
def store() -> Iterator[Store]:
    opened = open_store("memory://")
    yield opened
    opened.close()


def run(store: Store, root: Path, owner: str) -> None:
    record = store.claim_operation(owner, NOW_US, LEASE_US, lambda _: True)
    assert record is not None and record.name == NAME
    import_events.ImportJob(root, False)(JobContext(
        record, store, FixedClock(NOW_US * 1000), owner, LEASE_US, threading.Event()))


@pytest.mark.parametrize("dies_at", [1, 2])  # (1: before its first batch committed)
@pytest.mark.parametrize("ending", ["cancelled", "given up"])
def test_an_import_ended_after_its_holder_died_drops_the_failures_it_never_committed(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dies_at: int,
        ending: str) -> None:
    monkeypatch.setattr(bulk_import, "BATCH", 2)
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop/events.json").write_text("".join(
        f'{{"eventType": "home-page-view", "visitorId": "v{i}", '
        f'"eventTime": "2024-01-01T00:00:00Z"}}\n'
        f'{{"eventType": "home-page-view", "visitorId": "late-{i}"}}\n'
        for i in range(BATCHES)))
    request = import_config_pb2.ImportUserEventsRequest(
        parent=CATALOG, input_config={"gcs_source": {"input_uris": ["gs://shop/events.json"]}},
        errors_config={"gcs_prefix": "gs://shop/errors"})
    store.create_operation(OperationRecord(
        NAME, import_events.KIND, False, 0, request.SerializeToString(),
        import_events.new_operation(NAME, 0).SerializeToString()))
    steps = 0
    run_step = store.run_step

    def dies_at_a_commit(*args: object, **kwargs: object) -> object:
        nonlocal steps
        steps += 1
        if steps == dies_at:  # its failure is in the errors file already
            raise Killed
        return run_step(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "run_step", dies_at_a_commit)
    with pytest.raises(Killed):
        run(store, tmp_path, "dead")
    monkeypatch.setattr(store, "run_step", run_step)

    if ending == "cancelled":
        store.request_cancel(NAME)  # (through another replica, or before the restart)
        run(store, tmp_path, "next")
    else:  # the third of the tries that ended their process
        job = import_events.ImportJob(tmp_path, False)
        runner = OperationRunner(store, FixedClock(NOW_US * 1000), {import_events.KIND: job},
                                 settle={import_events.KIND: job.settle})
        record = store.claim_operation("next", NOW_US, LEASE_US, lambda _: True)
        assert record is not None
        runner._run(replace(record, lost_tries=3), "next")

    record = store.get_operation(NAME)
    assert record is not None and record.done
    ended = operations_pb2.Operation.FromString(record.operation)
    assert ended.error.code == (code_pb2.CANCELLED if ending == "cancelled" else code_pb2.INTERNAL)
    meta = import_config_pb2.ImportMetadata()
    assert ended.metadata.Unpack(meta)
    assert (meta.success_count, meta.failure_count) == (dies_at - 1, dies_at - 1)
    written = (tmp_path / f"shop/errors/{import_events.KIND}-1-errors.json").read_text()
    assert [json.loads(line)["message"].split(": ")[0] for line in written.splitlines()] == \
        ["gs://shop/events.json line 2"][:dies_at - 1]
