"""An export whose server was killed (kill -9) in the middle of a file: no reader of
its folder ever sees a file under its final name that is not whole, and once the
operation has ended (resumed by the next server, or cancelled while no server ran)
the folder holds the files it names, each line once, and no file begun past them.

The servers are real (`python -m server serve` on one store and --gcs-root), run
with small batches and files so that the kill lands in the second file, right after
a batch was written and before its step recorded it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from footfall.retail.v2 import user_event_pb2
from footfall.retail.v2beta import export_config_pb2
from google.longrunning import operations_pb2
from google.protobuf import json_format

from server.retail import export
from server.store import EventRow, Store, open_store
from server.store.rows import OperationRecord

CATALOG = "projects/p/locations/global/catalogs/c"
NAME = f"{CATALOG}/operations/export-user-events-v2beta-9"
BATCH, LINES_PER_FILE, EVENTS = 2, 4, 11
DEADLINE = 60.0

# `footfall serve` with small batches and files; with a first argument "kill", it
# kills itself (kill -9) right after writing the first batch of its second file.
SERVER = f"""
import os, runpy, signal, sys
from server.retail import export, gcs
export.BATCH, export.LINES_PER_FILE = {BATCH}, {LINES_PER_FILE}
if sys.argv[1] == "kill":
    write = gcs.write_output
    def write_then_die(root, path, data, field, at):
        size = write(root, path, data, field, at)
        if data and "-0001.json" in path.name:
            os.kill(os.getpid(), signal.SIGKILL)
        return size
    gcs.write_output = write_then_die
sys.argv = ["server", "serve", *sys.argv[2:]]
runpy.run_module("server", run_name="__main__", alter_sys=True)
"""


def serve(tmp_path: Path, url: str, kill: bool) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    log = (tmp_path / "server.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-c", SERVER, "kill" if kill else "run", "--host", "127.0.0.1",
         "--port", "0", "--http-port", "-1", "--store", url, "--gcs-root",
         str(tmp_path / "gcs"), "--lease-seconds", "30"],
        cwd=Path(__file__).resolve().parents[2], env=clean, stdout=log, stderr=log)


def ended(store: Store) -> operations_pb2.Operation | None:
    record = store.get_operation(NAME)
    assert record is not None
    return operations_pb2.Operation.FromString(record.operation) if record.done else None


def wait_until(done: object, what: str, tmp_path: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}; log:\n{(tmp_path / 'server.log').read_text()}"
        time.sleep(0.05)


def lines(path: Path) -> list[str]:
    return [json.loads(line)["visitorId"] for line in path.read_text().splitlines()]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    url: str = request.getfixturevalue("postgres_databases").create("export_crash")
    return url


@pytest.mark.timeout(180)
@pytest.mark.parametrize("cancel", [False, True], ids=["resumed", "cancelled"])
def test_an_export_killed_midway_leaves_only_whole_files_it_names(
        tmp_path: Path, store_url: str, cancel: bool) -> None:
    store = open_store(store_url)
    try:
        sent = [json_format.ParseDict({"eventType": "home-page-view", "visitorId": f"v{i:02d}",
                                       "eventTime": "2024-01-01T00:00:00Z"},
                                      user_event_pb2.UserEvent()) for i in range(EVENTS)]
        store.write_user_events([EventRow.from_event(CATALOG, e, joined=True) for e in sent])
        request = export_config_pb2.ExportUserEventsRequest(parent=CATALOG, output_config={
            "gcs_destination": {"output_uri_prefix": "gs://bucket/out/"}})
        store.create_operation(OperationRecord(
            name=NAME, kind=export.EVENTS_KIND, done=False, create_time_us=0,
            request=request.SerializeToString(),
            operation=export.new_operation(NAME, 0).SerializeToString()))
        folder = tmp_path / "gcs" / "bucket" / "out"

        first = serve(tmp_path, store_url, kill=True)
        try:
            assert first.wait(DEADLINE) == -signal.SIGKILL, (tmp_path / "server.log").read_text()
        finally:
            if first.poll() is None:
                first.kill()
        # What a reader listing the folder then sees under final names is whole.
        named = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
        assert named, "the kill came before the first file was done"
        assert all(len(lines(folder / n)) == LINES_PER_FILE for n in named), {
            n: lines(folder / n) for n in named}

        if cancel:  # (as another replica would, while no server holds it)
            assert store.request_cancel(NAME) is not None
        second = serve(tmp_path, store_url, kill=False)
        try:
            wait_until(lambda: ended(store) is not None, "the export never ended", tmp_path)
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                second.kill()
                second.wait()
        done = ended(store)
        assert done is not None
    finally:
        store.close()

    left = sorted(p.name for p in folder.iterdir())
    if cancel:
        assert done.error.code == 1  # CANCELLED: the batches recorded before it are kept
        assert left == ["export-user-events-v2beta-9-0000.json"]
        assert lines(folder / left[0]) == [f"v{i:02d}" for i in range(LINES_PER_FILE)]
        return
    answer = export_config_pb2.ExportUserEventsResponse()
    assert done.response.Unpack(answer), done
    uris = [r.output_uri for r in answer.output_result.gcs_result]
    assert left == [uri.rpartition("/")[2] for uri in uris]
    assert [v for name in left for v in lines(folder / name)] == [
        f"v{i:02d}" for i in range(EVENTS)]
