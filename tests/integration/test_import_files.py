"""Import from gs:// files when someone else also writes into --gcs-root: links,
FIFOs, over-long lines, huge folders; and nothing created for a refused request.

Most tests hold the jobs back (the server's runner is stopped), arrange the
files, then let a runner of their own run the job, so nothing races.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from footfall.retail.v2 import (
    import_config_pb2,
    user_event_service_pb2_grpc,
)
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from server.app import Running, start
from server.clock import SystemClock
from server.config import Settings
from server.errors import DeadlineExceeded, InvalidArgument
from server.operations import records
from server.operations.runner import JobContext, OperationRunner
from server.retail import import_events, import_products, ndjson
from server.retail.bulk_import import ImportState, Position
from server.store import EventQuery, open_store
from server.store.rows import OperationRecord
from tests.integration.http_client import call

PARENT = "projects/p/locations/global/catalogs/default_catalog"
PRECIOUS = b"a file outside the storage root\n"
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(host="127.0.0.1", port=0, store=f"sqlite:///{tmp_path}/events.db",
                    grace_seconds=5, workers=8, gcs_root=str(tmp_path / "gcs"))


@pytest.fixture
def root(settings: Settings) -> Path:
    return Path(settings.gcs_root)


@pytest.fixture
def held(settings: Settings) -> Iterator[Running]:
    """A server whose jobs wait: its runner is stopped until a test runs `jobs`."""
    running = start(settings)
    running.runner.stop()
    yield running
    running.stop()


@pytest.fixture
def stubs(held: Running) -> Iterator[tuple[user_event_service_pb2_grpc.UserEventServiceStub,
                                          operations_pb2_grpc.OperationsStub]]:
    with grpc.insecure_channel(f"127.0.0.1:{held.port}") as channel:
        yield (user_event_service_pb2_grpc.UserEventServiceStub(channel),
               operations_pb2_grpc.OperationsStub(channel))


@contextlib.contextmanager
def jobs(held: Running, root: Path) -> Iterator[None]:
    """Run the held server's jobs while the block lasts."""
    runner = OperationRunner(held.store, SystemClock(), {
        import_events.KIND: import_events.ImportJob(root, False),
        import_products.KIND: import_products.ImportProductsJob(root)})
    runner.start()
    try:
        yield
    finally:
        runner.stop()


def finished(ops: operations_pb2_grpc.OperationsStub, name: str) -> operations_pb2.Operation:
    done = ops.WaitOperation(operations_pb2.WaitOperationRequest(
        name=name, timeout=duration_pb2.Duration(seconds=30)), timeout=40)
    assert done.done, f"{name} did not finish"
    return done


def event_line(visitor: str, **more: object) -> str:
    return json.dumps({"eventType": "home-page-view", "visitorId": visitor,
                       "eventTime": "2024-01-01T00:00:00Z", **more}) + "\n"


def imported_file(retail: user_event_service_pb2_grpc.UserEventServiceStub,
                  ops: operations_pb2_grpc.OperationsStub, held: Running, root: Path,
                  uri: str) -> tuple[tuple[int, int], list[str]]:
    """Import the events of `uri` and run the job: its (success, failure) counts and
    the messages of its error samples (an operation that ended in an error fails)."""
    op = retail.ImportUserEvents(file_import(uri))
    with jobs(held, root):
        done = finished(ops, op.name)
    assert not done.HasField("error"), done.error
    meta = import_config_pb2.ImportMetadata()
    done.metadata.Unpack(meta)
    response = import_config_pb2.ImportUserEventsResponse()
    done.response.Unpack(response)
    return (meta.success_count, meta.failure_count), [e.message for e in response.error_samples]


def put(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def file_import(*uris: str, errors: str = "") -> import_config_pb2.ImportUserEventsRequest:
    request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
    request.input_config.gcs_source.input_uris.extend(uris)
    if errors:
        request.errors_config.gcs_prefix = errors
    return request


def stored(held: Running) -> int:
    return held.store.count_user_events(EventQuery(PARENT))


def resumed(held: Running, state: ImportState,
            request: import_config_pb2.ImportUserEventsRequest) -> str:
    """An import operation as a crashed process leaves it: begun, with a checkpoint."""
    name = records.new_name(PARENT, import_events.KIND)
    now_us = time.time_ns() // 1000
    held.store.create_operation(OperationRecord(
        name=name, kind=import_events.KIND, done=False, create_time_us=now_us,
        request=request.SerializeToString(),
        operation=import_events.new_operation(name, now_us * 1000).SerializeToString(),
        checkpoint=state.dump()))
    return name


# -- nothing is created for a refused request (issue 10, item 19) ------------------------


def test_a_refused_import_creates_no_errors_folder(stubs, root: Path) -> None:
    retail, _ = stubs
    put(root / "shop/events.json", event_line("a"))
    with pytest.raises(grpc.RpcError) as refused:
        retail.ImportUserEvents(file_import("gs://shop/events.json", "gs://shop/missing.json",
                                            errors="gs://shop/new/errors"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not (root / "shop/new").exists()


def test_the_errors_folder_is_made_when_the_job_runs(stubs, held: Running, root: Path) -> None:
    retail, ops = stubs
    put(root / "shop/events.json", event_line("a") + "{oops\n")
    op = retail.ImportUserEvents(file_import("gs://shop/events.json", errors="gs://shop/e/1"))
    assert not (root / "shop/e").exists()  # accepted, but nothing ran yet
    with jobs(held, root):
        done = finished(ops, op.name)
    assert done.HasField("response")
    [error_file] = (root / "shop/e/1").iterdir()
    assert "line 2: invalid JSON" in error_file.read_text()


# -- links (item 3) -------------------------------------------------------------------


def test_a_link_planted_at_the_errors_file_is_not_followed(
        stubs, held: Running, root: Path, tmp_path: Path) -> None:
    retail, ops = stubs
    outside = put(tmp_path / "outside.txt", PRECIOUS)
    put(root / "shop/events.json", event_line("a") + "{oops\n")
    op = retail.ImportUserEvents(file_import("gs://shop/events.json", errors="gs://shop/errors"))
    op_id = op.name.rsplit("/", 1)[-1]
    (root / "shop/errors").mkdir()
    os.symlink(outside, root / f"shop/errors/{op_id}-errors.json")
    with jobs(held, root):
        done = finished(ops, op.name)
    assert done.error.code == INVALID_ARGUMENT, done
    assert f"gs://shop/errors/{op_id}-errors.json" in done.error.message
    assert "link" in done.error.message
    assert outside.read_bytes() == PRECIOUS


def test_resume_does_not_truncate_through_a_link(held: Running, root: Path,
                                                 tmp_path: Path) -> None:
    outside = put(tmp_path / "outside.txt", PRECIOUS)
    events = put(root / "shop/events.json", event_line("a"))
    errors = root / "shop/errors/crashed-errors.json"
    errors.parent.mkdir(parents=True)
    os.symlink(outside, errors)  # planted while the process was down
    name = resumed(held, ImportState(files=[str(events)], started=True,
                                     errors_file=str(errors), errors_size=0),
                   file_import("gs://shop/events.json", errors="gs://shop/errors"))
    with grpc.insecure_channel(f"127.0.0.1:{held.port}") as channel, jobs(held, root):
        done = finished(operations_pb2_grpc.OperationsStub(channel), name)
    assert done.error.code == INVALID_ARGUMENT, done
    assert "gs://shop/errors/crashed-errors.json" in done.error.message
    assert outside.read_bytes() == PRECIOUS


def test_resume_does_not_read_a_file_swapped_for_a_link_leaving_the_root(
        held: Running, root: Path, tmp_path: Path) -> None:
    outside = put(tmp_path / "outside.json", event_line("stolen"))
    events = root / "shop/events.json"
    events.parent.mkdir(parents=True)
    os.symlink(outside, events)  # a regular file when the job began
    name = resumed(held, ImportState(files=[str(events)], started=True),
                   file_import("gs://shop/events.json"))
    with grpc.insecure_channel(f"127.0.0.1:{held.port}") as channel, jobs(held, root):
        done = finished(operations_pb2_grpc.OperationsStub(channel), name)
    assert done.error.code == INVALID_ARGUMENT, done
    assert "gs://shop/events.json" in done.error.message
    assert "outside the storage root" in done.error.message
    assert stored(held) == 0


def test_links_that_stay_inside_their_bucket_are_read(stubs, held: Running,
                                                     root: Path) -> None:
    """(A link into another bucket is refused: see test_gcs.)"""
    retail, ops = stubs
    put(root / "shop/archive/2024/events.json", event_line("a") + event_line("b"))
    os.symlink(root / "shop/archive/2024", root / "shop/latest")
    op = retail.ImportUserEvents(file_import("gs://shop/latest/*.json"))
    with jobs(held, root):
        done = finished(ops, op.name)
    assert done.HasField("response"), done
    assert stored(held) == 2


# -- FIFOs (item 5) ---------------------------------------------------------------------


def test_a_fifo_at_the_errors_file_ends_the_operation(stubs, held: Running,
                                                      root: Path) -> None:
    retail, ops = stubs
    put(root / "shop/events.json", event_line("a") + "{oops\n")
    op = retail.ImportUserEvents(file_import("gs://shop/events.json", errors="gs://shop/errors"))
    op_id = op.name.rsplit("/", 1)[-1]
    (root / "shop/errors").mkdir()
    os.mkfifo(root / f"shop/errors/{op_id}-errors.json")  # nobody ever reads it
    with jobs(held, root):
        done = finished(ops, op.name)
    assert done.error.code == INVALID_ARGUMENT, done
    assert f"gs://shop/errors/{op_id}-errors.json" in done.error.message
    assert "not a regular file" in done.error.message


def test_a_file_swapped_for_a_fifo_ends_the_operation(held: Running, root: Path) -> None:
    events = root / "shop/events.json"
    events.parent.mkdir(parents=True)
    os.mkfifo(events)  # nobody ever writes to it
    name = resumed(held, ImportState(files=[str(events)], started=True),
                   file_import("gs://shop/events.json"))
    with grpc.insecure_channel(f"127.0.0.1:{held.port}") as channel, jobs(held, root):
        done = finished(operations_pb2_grpc.OperationsStub(channel), name)
    assert done.error.code == INVALID_ARGUMENT, done
    assert "gs://shop/events.json" in done.error.message
    assert "not a regular file" in done.error.message


def test_a_fifo_is_refused_when_called(stubs, root: Path) -> None:
    retail, _ = stubs
    (root / "shop").mkdir(parents=True)
    os.mkfifo(root / "shop/pipe.json")
    with pytest.raises(grpc.RpcError) as refused:
        retail.ImportUserEvents(file_import("gs://shop/*.json"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "gs://shop/pipe.json is not a regular file" in refused.value.details()


# -- over-long lines (item 6) -----------------------------------------------------------


def test_an_over_long_line_is_one_failure_and_its_neighbours_import(
        stubs, held: Running, root: Path) -> None:
    retail, ops = stubs
    long_line = event_line("long", pageViewId="x" * (ndjson.MAX_LINE_BYTES + 10))
    put(root / "shop/events.json", event_line("a") + long_line + event_line("b"))
    counts, [sample] = imported_file(retail, ops, held, root, "gs://shop/events.json")
    assert counts == (2, 1)
    # (named as any other failure of a line is: the file, the line, the field)
    assert sample == (f"gs://shop/events.json line 2: user_event: its line is "
                      f"{len(long_line)} bytes; a line (one event) may hold at most "
                      f"{ndjson.MAX_LINE_BYTES} bytes")
    assert stored(held) == 2


def test_an_over_long_line_of_products_names_its_product(root: Path) -> None:
    long_line = json.dumps({"id": "p", "description": "d" * ndjson.MAX_LINE_BYTES}) + "\n"
    path = put(root / "shop/products.json", long_line + '{"id": "q"}\n')
    job = import_products.ImportProductsJob(root)
    chunks = list(job._chunks([str(path)], Position(), lambda: None))
    assert [message for chunk in chunks for _, message in chunk.cut] == [
        f"gs://shop/products.json line 1: product: its line is {len(long_line)} bytes; a "
        f"line (one product) may hold at most {ndjson.MAX_LINE_BYTES} bytes"]


def test_lines_at_the_cap_import_and_one_byte_more_does_not(
        stubs, held: Running, root: Path) -> None:
    retail, ops = stubs

    def padded(visitor: str, size: int) -> bytes:  # JSON allows the spaces
        line = event_line(visitor).rstrip("\n").encode()
        return line + b" " * (size - len(line))

    cap = ndjson.MAX_LINE_BYTES
    put(root / "shop/events.json", padded("at-cap", cap) + b"\n" + padded("over", cap + 1)
        + b"\n" + event_line("small").encode() + padded("last-over", cap + 1))
    op = retail.ImportUserEvents(file_import("gs://shop/events.json"))
    with jobs(held, root):
        done = finished(ops, op.name)
    response = import_config_pb2.ImportUserEventsResponse()
    done.response.Unpack(response)
    assert [s.message.split(" bytes;")[0] for s in response.error_samples] == [
        f"gs://shop/events.json line 2: user_event: its line is {cap + 2}",
        f"gs://shop/events.json line 4: user_event: its line is {cap + 1}"]  # no newline at the end
    assert stored(held) == 2


# -- huge folders (item 7) --------------------------------------------------------------

MANY = 50_000


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --gcs-root whose gs://many/d holds MANY files (made once for the module)."""
    root = tmp_path_factory.mktemp("many") / "gcs"
    folder = root / "many/d"
    folder.mkdir(parents=True)
    for i in range(MANY):
        os.close(os.open(folder / f"f-{i:05d}.json", os.O_CREAT | os.O_WRONLY, 0o644))
    return root


def test_wildcards_over_a_huge_folder_are_refused_fast(many_files: Path) -> None:
    # Before: every URI listed and checked all 50,000 files (minutes of CPU).
    started = time.monotonic()
    with pytest.raises(InvalidArgument) as refused:
        import_events.check_request(file_import(*["gs://many/d/*"] * 100), many_files)
    assert time.monotonic() - started < 5  # about 0.02 s here; 6 s a URI before
    assert [v.field for v in refused.value.violations] == ["input_config.gcs_source.input_uris"]
    assert "more than 100 files" in refused.value.message


def test_listing_stops_at_the_deadline(many_files: Path) -> None:
    # Each URI matches one file, but finding it lists the whole folder.
    request = file_import(*[f"gs://many/d/f-{i:05d}*" for i in range(100)])
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        import_events.check_request(request, many_files, deadline=started + 0.3)
    assert time.monotonic() - started < 3  # all 100 listings take 5 s or more


def test_the_call_deadline_bounds_the_listing(tmp_path: Path, many_files: Path) -> None:
    settings = Settings(host="127.0.0.1", port=0, store=f"sqlite:///{tmp_path}/events.db",
                        gcs_root=str(many_files))
    running = start(settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
            request = file_import(*[f"gs://many/d/f-{i:05d}*" for i in range(100)])
            with pytest.raises(grpc.RpcError) as late:
                retail.ImportUserEvents(request, timeout=0.5)
            assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert running.policy is not None
        registry = running.policy.metrics.registry
        labels = {"service": "google.cloud.retail.v2.UserEventService",
                  "method": "ImportUserEvents", "transport": "grpc"}
        end = time.monotonic() + 30
        while registry.get_sample_value("footfall_request_duration_seconds_count",
                                        labels) is None:
            assert time.monotonic() < end, "the server never finished the call"
            time.sleep(0.01)
        # The server stopped at the deadline too, instead of listing on for seconds.
        assert registry.get_sample_value("footfall_requests_total",
                                         {**labels, "code": "DEADLINE_EXCEEDED"}) == 1
        assert registry.get_sample_value("footfall_request_duration_seconds_sum", labels) < 3
        assert running.store.list_operations(PARENT, None, 10) == []
    finally:
        running.stop()


def test_shutdown_leaves_a_job_that_is_stuck_in_io(tmp_path: Path) -> None:
    # A job held by a file system that never answers (a hung NFS mount, say) must not
    # hold SIGTERM too: the runner waits its grace, then leaves the thread behind.
    store = open_store("memory://")
    entered, release = threading.Event(), threading.Event()

    def stuck(ctx: JobContext) -> None:
        entered.set()
        release.wait()  # stands for a read that does not return

    store.create_operation(OperationRecord(
        name=f"{PARENT}/operations/stuck-1", kind="stuck", done=False, create_time_us=0,
        request=b"", operation=b""))
    runner = OperationRunner(store, SystemClock(), {"stuck": stuck})
    runner.start()
    try:
        assert entered.wait(30)
        started = time.monotonic()
        runner.stop(timeout=0.2)
        assert time.monotonic() - started < 5
        record = store.get_operation(f"{PARENT}/operations/stuck-1")
        assert record is not None and not record.done  # it resumes at the next start
    finally:
        release.set()
        store.close()


# -- a map key that is not a string (lenient_json) ---------------------------------------

BAD_KEY_LINE = ('{"eventType":"home-page-view","visitorId":"evil",'
                '"eventTime":"2024-05-01T12:00:00Z",'
                '"attributes":[{"key":["x"],"value":{"text":["v"]}}]}\n')


def test_a_map_key_not_a_string_is_one_failed_line_and_the_job_goes_on(
        stubs, held: Running, root: Path) -> None:
    retail, ops = stubs
    lines = [event_line(f"v{i}") for i in range(2_500)]
    lines[1_500] = BAD_KEY_LINE  # line 1501: past the first batch of 1,000
    put(root / "shop/events.json", "".join(lines))
    counts, [sample] = imported_file(retail, ops, held, root, "gs://shop/events.json")
    assert counts == (2_499, 1)
    assert sample.startswith("gs://shop/events.json line 1501: not a UserEvent: attributes: ")
    assert stored(held) == 2_499


@pytest.mark.parametrize("key", [["x"], {"a": 1}])
def test_an_inline_import_with_a_map_key_not_a_string_is_invalid_argument(
        settings: Settings, key: object) -> None:
    running = start(dataclasses.replace(settings, http_port=-1))
    try:
        attributes = [{"key": key, "value": {"text": ["v"]}}]
        events = call(running.http_port, "POST", f"/v2/{PARENT}/userEvents:import", {
            "inputConfig": {"userEventInlineSource": {"userEvents": [{
                "eventType": "home-page-view", "visitorId": "evil",
                "attributes": attributes}]}}})
        products = call(running.http_port, "POST", f"/v2/{PARENT}/branches/0/products:import", {
            "inputConfig": {"productInlineSource": {"products": [{
                "id": "p", "title": "t", "attributes": attributes}]}}})
    finally:
        running.stop()
    for reply in (events, products):
        assert reply.status == 400, reply.body
        [(field, why)] = reply.violations().items()
        assert field.startswith("input_config.") and field.endswith("[0].attributes"), field
        assert why.startswith("Invalid JSON payload received: "), why
