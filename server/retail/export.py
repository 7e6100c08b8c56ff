"""ExportUserEvents and ExportProducts (v2beta, v2alpha): checked when called, then
run as resumable operations writing JSON lines under a gs:// folder.

The lines are the form import reads (one proto3-JSON UserEvent or Product per
line), so export, purge and import give back the same events: an event is
written as it was received (before the catalog join), and import joins it again.
A batch is appended to the current file, which is flushed to disk, and then the
job records how far it got and the file's size with one step; a job resumed
after a crash first cuts the file back to that size, so no line is written twice.
A new file is begun once one holds LINES_PER_FILE lines (a batch is never split);
the response lists them all.

A file is written under its name and PART, and renamed to its name once whole (its
LINES_PER_FILE lines written, or the export's end): a reader of the folder never
sees a file under its name that is still being written, or cut short by a crash.
An export that ends otherwise (cancelled, or ended for its tries) names the lines it
recorded (an empty file is removed), and removes a file begun past its checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from footfall.retail.v2 import user_event_pb2
from footfall.retail.v2alpha import export_config_pb2 as v2alpha_export
from footfall.retail.v2beta import export_config_pb2
from google.longrunning import operations_pb2
from google.protobuf import timestamp_pb2

from server import names, protojson
from server.errors import FieldViolation, gather, raise_if_any
from server.operations import records
from server.operations.runner import JobContext
from server.retail import export_filter, gcs, products
from server.retail.bulk_import import BATCH_BYTES
from server.store.rows import LeaseLost, Progress, Step, StepResult

EVENTS_KIND = "export-user-events"
PRODUCTS_KIND = "export-products"
OUTPUT_FIELD = "output_config.gcs_destination.output_uri_prefix"
BATCH = 1_000  # events or products read at once, and at most about BATCH_BYTES of them
LINES_PER_FILE = 100_000
# What a file's name may take of its prefix's last part: it is followed by the
# operation's id (at most 47 characters) and -0000.json, within a name of 255 bytes.
MAX_NAME_START_BYTES = 192
# What a file's name ends with while it is written (254 bytes at most, with the above).
PART = ".part"
# The v2beta messages stand for v2alpha's too (the same names and numbers);
# records.relabel names them in the version of the call.
EventsRequest = export_config_pb2.ExportUserEventsRequest
ProductsRequest = export_config_pb2.ExportProductsRequest
# What a servicer is given: either version's request.
AnyEventsRequest = EventsRequest | v2alpha_export.ExportUserEventsRequest
AnyProductsRequest = ProductsRequest | v2alpha_export.ExportProductsRequest


def _output_violations(request: AnyEventsRequest | AnyProductsRequest,
                       gcs_root: Path) -> list[FieldViolation]:
    """What is wrong with the request's output_config (nothing is created yet)."""
    config = request.output_config
    if config.HasField("bigquery_destination"):
        return [FieldViolation("output_config.bigquery_destination",
                               "Footfall exports to Cloud Storage only; give "
                               "output_config.gcs_destination.output_uri_prefix instead")]
    prefix = config.gcs_destination.output_uri_prefix
    if not prefix:
        return [FieldViolation(OUTPUT_FIELD, "is required, e.g. gs://bucket/exports/")]
    out: list[FieldViolation] = []
    folder, start = output_place(prefix)
    # (each of its parts, the start of the files' names too; then the folder they go in)
    gather(out, gcs.check_uri, prefix, OUTPUT_FIELD)
    if not out:
        gather(out, gcs.check_output_folder, gcs_root, folder, OUTPUT_FIELD)
    if len(start.encode()) > MAX_NAME_START_BYTES:
        out.append(FieldViolation(
            OUTPUT_FIELD, f"its last part, {start[:40]!r}..., begins each file's name: it "
                          f"may be at most {MAX_NAME_START_BYTES} bytes (a file's name is at "
                          f"most 255), got {len(start.encode())}"))
    return out


def output_place(prefix: str) -> tuple[str, str]:
    """(the folder URI, the start of each file's name) of an output_uri_prefix.
    Google names each file the prefix and the name as they stand (its table:
    gs://bucket/folder/ gives gs://bucket/folder/foo.json, gs://bucket/folder/item_
    gives gs://bucket/folder/item_foo.json); a bucket alone, gs://bucket, is its top
    folder."""
    if "/" not in prefix[len("gs://"):]:
        return prefix, ""
    folder, _, start = prefix.rpartition("/")
    return folder, start


def check_events_request(request: AnyEventsRequest, gcs_root: Path
                         ) -> tuple[str, export_filter.EventSelection]:
    """The catalog and the events to write; INVALID_ARGUMENT naming each bad field
    (parent, output_config, filter)."""
    violations: list[FieldViolation] = []
    catalog = gather(violations, names.parse_catalog, request.parent, "parent")
    selection = gather(violations, export_filter.parse_events, request.filter,
                       str(catalog or ""))
    violations.extend(_output_violations(request, gcs_root))
    raise_if_any(violations)
    assert selection is not None
    return str(catalog), selection


def check_products_request(request: AnyProductsRequest, gcs_root: Path
                           ) -> tuple[str, export_filter.ProductSelection]:
    """The branch (as the store names it) and the products to write;
    INVALID_ARGUMENT naming each bad field (parent, output_config, filter)."""
    violations: list[FieldViolation] = []
    branch = gather(violations, names.parse_branch_key, request.parent, "parent")
    selection = gather(violations, export_filter.parse_products, request.filter)
    violations.extend(_output_violations(request, gcs_root))
    raise_if_any(violations)
    assert branch is not None and selection is not None
    return branch, selection


def _metadata(create_us: int, now_us: int) -> export_config_pb2.ExportMetadata:
    created, updated = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
    created.FromMicroseconds(create_us)
    updated.FromMicroseconds(now_us)
    return export_config_pb2.ExportMetadata(create_time=created, update_time=updated)


def new_operation(name: str, now_ns: int) -> operations_pb2.Operation:
    """An export's Operation before its job starts (created at `now_ns`)."""
    return records.operation(name, _metadata(now_ns // 1000, now_ns // 1000))


def _line(message: Any) -> bytes:
    return orjson.dumps(protojson.message_to_dict(message)) + b"\n"


@dataclass
class _State:
    cursor: int | str  # the last row id (events) or product id (products) written
    files: list[str]  # gs:// URIs, the last one being written
    size: int  # bytes of the last file that are written for good
    lines: int  # lines in the last file

    @classmethod
    def load(cls, checkpoint: bytes | None, first: int | str) -> _State:
        if not checkpoint:
            return cls(first, [], 0, 0)
        return cls(**orjson.loads(checkpoint))


# (lines of the next batch, its cursor), or None at the end
NextBatch = Callable[[int | str], "tuple[list[bytes], int | str] | None"]


class ExportJob:
    """Runs export operations of one kind; `gcs_root` is where gs:// URIs live."""

    def __init__(self, gcs_root: Path, kind: str) -> None:
        self.root = gcs_root
        self.kind = kind

    def __call__(self, ctx: JobContext) -> None:
        if self.kind == EVENTS_KIND:
            events_request = EventsRequest.FromString(ctx.record.request)
            _, selection = check_events_request(events_request, self.root)
            self._run(ctx, events_request, 0, _event_batches(ctx, selection),
                      export_config_pb2.ExportUserEventsResponse, "the export of user events")
        else:
            products_request = ProductsRequest.FromString(ctx.record.request)
            branch, products_wanted = check_products_request(products_request, self.root)
            self._run(ctx, products_request, "", _product_batches(ctx, branch, products_wanted),
                      export_config_pb2.ExportProductsResponse, "the export of products")

    def settle(self, ctx: JobContext) -> None:
        """Name the file being written, cut back to the size the operation's checkpoint
        holds (removed if empty), and remove one begun past it, before the runner ends
        the operation unrun (see OperationRunner._end_with)."""
        request_class = EventsRequest if self.kind == EVENTS_KIND else ProductsRequest
        state, place, start = _state(ctx, request_class.FromString(ctx.record.request), 0)
        folder = gcs.check_output_folder(self.root, place, OUTPUT_FIELD)
        self._take_up(folder, state, _next_uri(ctx, state, place, start))
        self._put_in_place(folder, state, keep_empty=False)

    def discard(self, ctx: JobContext) -> None:
        """Remove the file an export deleted before it ended was writing (NAME.part,
        and one begun past its checkpoint), as a run that finds it deleted does: no run
        comes again to name it. The files it had named stay."""
        request_class = EventsRequest if self.kind == EVENTS_KIND else ProductsRequest
        state, place, start = _state(ctx, request_class.FromString(ctx.record.request), 0)
        folder = gcs.check_output_folder(self.root, place, OUTPUT_FIELD)
        for uri in (state.files[-1], _next_uri(ctx, state, place, start)):
            gcs.remove_output(self.root, _part(folder / _base(uri)), OUTPUT_FIELD)

    def _take_up(self, folder: Path, state: _State, begun: str) -> bool:
        """Make the folder as the checkpoint `state` left it: remove the file `begun`
        past it (by a run that died before its step), and cut the last file back to
        its size. Returns whether that file has its name already (whole: its run died
        between naming it and its next step; or written under its name, as before
        2026-12): lines after it go to a new file."""
        for name in (_base(begun), _base(begun) + PART):
            gcs.remove_output(self.root, folder / name, OUTPUT_FIELD)
        current = folder / _base(state.files[-1])
        named = not os.path.lexists(_part(current)) and os.path.lexists(current)
        if named:
            gcs.truncate_output(self.root, current, state.size, OUTPUT_FIELD)
        return named

    def _put_in_place(self, folder: Path, state: _State, keep_empty: bool) -> None:
        """Give the file being written, cut back to the size `state` recorded, its name
        (or remove it, if it is empty and not `keep_empty`)."""
        current = folder / _base(state.files[-1])
        if not os.path.lexists(_part(current)):  # (named already)
            return
        gcs.truncate_output(self.root, _part(current), state.size, OUTPUT_FIELD)
        if state.size or keep_empty:
            gcs.rename_output(self.root, _part(current), current.name, OUTPUT_FIELD)
        else:
            gcs.remove_output(self.root, _part(current), OUTPUT_FIELD)

    def _run(self, ctx: JobContext, request: EventsRequest | ProductsRequest, first: int | str,
             next_batch: NextBatch, response_class: type[export_config_pb2.ExportUserEventsResponse]
             | type[export_config_pb2.ExportProductsResponse], what: str) -> None:
        state, place, start = _state(ctx, request, first)
        folder = gcs.make_output_folder(self.root, place, OUTPUT_FIELD)
        # Lines a run wrote after its last step are not part of the export: cut.
        named = self._take_up(folder, state, _next_uri(ctx, state, place, start))
        if not named:
            gcs.write_output(self.root, _part(folder / _base(state.files[-1])), b"",
                             OUTPUT_FIELD, at=state.size)
        cancelled = ctx.record.cancel_requested

        def reading(_: StepResult) -> Progress:  # (a renewal while a read runs: where it got)
            meta = _metadata(ctx.record.create_time_us, ctx.now_us())
            return Progress(orjson.dumps(state.__dict__),
                            records.operation(ctx.record.name, meta).SerializeToString(), False)

        try:
            while not cancelled:
                ctx.check_stop()
                # (read_leased: a filter such as eventsMissingCatalogItems selects few events,
                # so one batch's scan may pass over millions of others, 0.34 s a million
                # here, a lease at some 90 million)
                batch = ctx.read_leased(lambda: next_batch(state.cursor), reading)
                if batch is None:
                    break
                lines, cursor = batch
                if lines:
                    ctx.check_lease()  # (as an import's errors: see BulkImport.__call__)
                if (state.lines >= LINES_PER_FILE or named) and lines:
                    if not named:  # whole: its name (a run that dies now resumes in the next)
                        self._put_in_place(folder, state, keep_empty=True)
                    state.files.append(_next_uri(ctx, state, place, start))
                    # (the write below, at 0, cuts what a run that stopped before its next
                    # step may have left there)
                    state.size = state.lines = 0
                    named = False
                if lines:
                    state.size = gcs.write_output(self.root, _part(folder / _base(state.files[-1])),
                                                  b"".join(lines), OUTPUT_FIELD, at=state.size)
                state.lines += len(lines)
                state.cursor = cursor
                checkpoint = orjson.dumps(state.__dict__)
                meta = _metadata(ctx.record.create_time_us, ctx.now_us())

                def progress(_: StepResult, checkpoint: bytes = checkpoint,
                             meta: Any = meta) -> Progress:
                    return Progress(checkpoint, records.operation(ctx.record.name, meta)
                                    .SerializeToString(), False)

                cancelled = ctx.step(Step(), progress).cancel_requested
            response = response_class(output_result=export_config_pb2.OutputResult(
                gcs_result=[export_config_pb2.GcsOutputResult(output_uri=uri)
                            for uri in state.files]))
            meta = _metadata(ctx.record.create_time_us, ctx.now_us())
            ctx.check_lease()  # (a run that lost its job must not name the new holder's file)
            # Named before the operation ends (a crash between the two resumes with the file
            # named); a cancelled export keeps the lines it recorded, in a file named too.
            self._put_in_place(folder, state, keep_empty=not cancelled)
            ctx.finish(records.ended(ctx.record.name, meta, response, cancelled, what),
                       orjson.dumps(state.__dict__))
        except LeaseLost:
            if ctx.store.get_operation(ctx.record.name) is None:
                # Deleted (DeleteOperation) while it ran: no run resumes or settles it,
                # and the file it was writing would stay as NAME.part for good.
                gcs.remove_output(self.root, _part(folder / _base(state.files[-1])),
                                  OUTPUT_FIELD)
            raise


def _state(ctx: JobContext, request: EventsRequest | ProductsRequest, first: int | str
           ) -> tuple[_State, str, str]:
    """The job's checkpoint (or its start: its first file, empty), the gs:// folder its
    files are in and what their names begin with."""
    stem = ctx.record.name.rpartition("/")[2]
    state = _State.load(ctx.record.checkpoint, first)
    if state.files:  # (where it began: before 2026-12, every prefix was a folder)
        place, _, began = state.files[0].rpartition("/")
        start = began.removesuffix(f"{stem}-0000.json")
    else:
        place, start = output_place(request.output_config.gcs_destination.output_uri_prefix)
        place = place.rstrip("/")
        state.files.append(_next_uri(ctx, state, place, start))
    return state, place, start


def _next_uri(ctx: JobContext, state: _State, place: str, start: str) -> str:
    """The gs:// URI of the file the export begins after those of `state`."""
    stem = ctx.record.name.rpartition("/")[2]
    return f"{place}/{start}{stem}-{len(state.files):04d}.json"


def _base(uri: str) -> str:
    return uri.rpartition("/")[2]


def _part(path: Path) -> Path:
    """Where the file `path` is written until it is whole."""
    return path.with_name(path.name + PART)


def _event_batches(ctx: JobContext, selection: export_filter.EventSelection) -> NextBatch:
    def next_batch(cursor: int | str) -> tuple[list[bytes], int | str] | None:
        rows = ctx.store.scan_user_events(selection.query, BATCH, after_id=int(cursor),
                                          max_bytes=BATCH_BYTES)
        if not rows:
            return None
        # As received: import joins it again with the catalog of its time.
        events = (user_event_pb2.UserEvent.FromString(received or payload)
                  for _, payload, received in rows)
        return [_line(e) for e in events if selection.matches(e)], rows[-1][0]

    return next_batch


def _product_batches(ctx: JobContext, branch: str,
                     selection: export_filter.ProductSelection) -> NextBatch:
    def next_batch(cursor: int | str) -> tuple[list[bytes], int | str] | None:
        rows = ctx.store.list_products(branch, BATCH, str(cursor), max_bytes=BATCH_BYTES)
        if not rows:
            return None
        kept: Iterable[Any] = (products.decode(payload, branch, pid) for pid, payload in rows)
        return [_line(p) for p in kept if selection.matches(p)], rows[-1][0]

    return next_batch
