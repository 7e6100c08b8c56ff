"""An export whose server was killed (kill -9) in the middle of a file: no reader of
its folder ever sees a file under its final name that is not whole, and once the
operation has ended (resumed by the next server, or cancelled while no server ran)
the folder holds the files it names, each line once, and no file begun past them.

The servers are real (`python -m server serve` on one store and --gcs-root), run
with small batches and files so that the kill lands in the second file, right after
a batch was written and before its step recorded it."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import grpc
import pytest
from footfall.retail.v2 import user_event_pb2
from footfall.retail.v2beta import export_config_pb2
from google.api_core import operations_v1
from google.protobuf import json_format

from server.retail import export
from server.store import EventRow, open_store
from server.store.rows import OperationRecord

from .killed_server import ended, killed, log_of, run_until, serve

CATALOG = "projects/p/locations/global/catalogs/c"
NAME = f"{CATALOG}/operations/export-user-events-v2beta-9"
BATCH, LINES_PER_FILE, EVENTS = 2, 4, 11

# Small batches and files; the first server kills itself (kill -9) right after writing
# the first batch of its second file.
SMALL = f"""
from server.retail import export
export.BATCH, export.LINES_PER_FILE = {BATCH}, {LINES_PER_FILE}
"""
KILL = SMALL + """
import os, signal
from server.retail import gcs
write = gcs.write_output
def write_then_die(root, path, data, field, at):
    size = write(root, path, data, field, at)
    if data and "-0001.json" in path.name:
        os.kill(os.getpid(), signal.SIGKILL)
    return size
gcs.write_output = write_then_die
"""


def lines(path: Path) -> list[str]:
    return [json.loads(line)["visitorId"] for line in path.read_text().splitlines()]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("cancel", [False, True], ids=["resumed", "cancelled"])
def test_an_export_killed_midway_leaves_only_whole_files_it_names(
        tmp_path: Path, crash_store_url: str, cancel: bool) -> None:
    store_url = crash_store_url
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

        killed(tmp_path, serve(tmp_path, store_url, KILL))
        # What a reader listing the folder then sees under final names is whole.
        named = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
        assert named, "the kill came before the first file was done"
        assert all(len(lines(folder / n)) == LINES_PER_FILE for n in named), {
            n: lines(folder / n) for n in named}

        if cancel:  # (as another replica would, while no server holds it)
            assert store.request_cancel(NAME) is not None
        run_until(tmp_path, serve(tmp_path, store_url, SMALL),
                  lambda: ended(store, NAME) is not None, "the export never ended")
        done = ended(store, NAME)
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


# The first server as a replica on another machine: the next cannot tell it is gone,
# and leaves its job to it until its lease runs out (30 s).
ELSEWHERE = KILL + """
import socket
socket.gethostname = lambda: "another-machine"
"""


@pytest.mark.timeout(180)
def test_an_export_deleted_while_no_run_of_it_holds_it_leaves_no_part_file(
        tmp_path: Path, crash_store_url: str) -> None:
    # Deleted while it runs, an export removes its NAME.part itself (ffb24a1); deleted
    # while its holder was gone (killed on another machine, its lease still running),
    # no run of it ever came again, and NAME.part stayed in the folder for good.
    store = open_store(crash_store_url)
    try:
        store.write_user_events([EventRow.from_event(CATALOG, json_format.ParseDict(
            {"eventType": "home-page-view", "visitorId": f"v{i:02d}",
             "eventTime": "2024-01-01T00:00:00Z"}, user_event_pb2.UserEvent()), joined=True)
            for i in range(EVENTS)])
        request = export_config_pb2.ExportUserEventsRequest(parent=CATALOG, output_config={
            "gcs_destination": {"output_uri_prefix": "gs://bucket/out/"}})
        store.create_operation(OperationRecord(
            name=NAME, kind=export.EVENTS_KIND, done=False, create_time_us=0,
            request=request.SerializeToString(),
            operation=export.new_operation(NAME, 0).SerializeToString()))
    finally:
        store.close()
    folder = tmp_path / "gcs" / "bucket" / "out"
    killed(tmp_path, serve(tmp_path, crash_store_url, ELSEWHERE))
    part = "export-user-events-v2beta-9-0001.json.part"
    assert part in {p.name for p in folder.iterdir()}

    server = serve(tmp_path, crash_store_url, SMALL)
    try:
        ready = re.compile(r"serving gRPC on 127\.0\.0\.1:(\d+) ")
        deadline = time.monotonic() + 60
        while len(ready.findall(log_of(tmp_path))) < 2:
            assert server.poll() is None and time.monotonic() < deadline, log_of(tmp_path)
            time.sleep(0.05)
        port = ready.findall(log_of(tmp_path))[-1]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            operations_v1.OperationsClient(channel).delete_operation(NAME)
        left = sorted(p.name for p in folder.iterdir())
        # the file it had named stays; the one it was writing is gone
        assert left == ["export-user-events-v2beta-9-0000.json"], log_of(tmp_path)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
