"""ImportUserEvents: checked when called, then run as a resumable operation.

The job streams its source in batches; each batch's new events and the job's
checkpoint (position, counts, error samples) commit in one transaction, so a
crash resumes after the last committed batch and every event is stored once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from footfall.retail.v2 import import_config_pb2, user_event_pb2
from google.protobuf import json_format, timestamp_pb2
from google.rpc import code_pb2, status_pb2

from server.errors import FieldViolation, InvalidArgument, raise_if_any
from server.names import parse_catalog
from server.operations import records
from server.operations.runner import JobContext
from server.retail import gcs, join, validation
from server.store import EventRow
from server.store.rows import Progress, Step

KIND = "import-user-events"
MAX_INLINE_EVENTS = 10_000
BATCH = 1_000
MAX_ERROR_SAMPLES = 50
SCHEMAS = ("", "user_event")
_INLINE = "input_config.user_event_inline_source.user_events"
_URIS = "input_config.gcs_source.input_uris"


def check_request(request: Any, gcs_root: Path) -> str:
    """Everything that can be checked before the job runs; returns the catalog.

    INVALID_ARGUMENT naming each bad field.
    """
    violations: list[FieldViolation] = []
    catalog = ""
    try:
        catalog = str(parse_catalog(request.parent, "parent"))
    except InvalidArgument as exc:
        violations.extend(exc.violations)
    config = request.input_config
    source = config.WhichOneof("source")
    if source is None:
        violations.append(FieldViolation("input_config", "give user_event_inline_source or "
                                                         "gcs_source"))
    elif source == "big_query_source":
        violations.append(FieldViolation(
            "input_config.big_query_source",
            "BigQuery is not available in Footfall: export the table as newline-delimited "
            "JSON (bq extract --destination_format NEWLINE_DELIMITED_JSON), then import the "
            "files with gcs_source"))
    elif source == "user_event_inline_source":
        count = len(config.user_event_inline_source.user_events)
        if count == 0:
            violations.append(FieldViolation(_INLINE, "at least one event is required"))
        elif count > MAX_INLINE_EVENTS:
            violations.append(FieldViolation(
                _INLINE, f"at most {MAX_INLINE_EVENTS} events inline, got {count}; import "
                         "larger sets from files with gcs_source"))
        if request.HasField("errors_config"):
            violations.append(FieldViolation(
                "errors_config", "is only for gcs_source imports; inline imports report "
                                 "error_samples"))
    else:
        violations.extend(_check_files(config.gcs_source, gcs_root))
    if request.errors_config.gcs_prefix and source == "gcs_source":
        try:
            gcs.output_folder(gcs_root, request.errors_config.gcs_prefix,
                              "errors_config.gcs_prefix")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
    raise_if_any(violations)
    return catalog


def _check_files(source: Any, root: Path) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if source.data_schema not in SCHEMAS:
        out.append(FieldViolation("input_config.gcs_source.data_schema",
                                  f"unsupported schema {source.data_schema!r}; Footfall reads "
                                  "'user_event' (one proto3-JSON UserEvent per line)"))
    if not source.input_uris:
        out.append(FieldViolation(_URIS, "at least one gs:// URI is required"))
    if len(source.input_uris) > gcs.MAX_FILES:
        out.append(FieldViolation(_URIS, f"at most {gcs.MAX_FILES} URIs, "
                                         f"got {len(source.input_uris)}"))
        return out
    total = 0
    for i, uri in enumerate(source.input_uris):
        try:
            total += len(gcs.input_files(root, uri, f"{_URIS}[{i}]"))
        except InvalidArgument as exc:
            out.extend(exc.violations)
    if total > gcs.MAX_FILES:
        out.append(FieldViolation(_URIS, f"the URIs match {total} files; at most "
                                         f"{gcs.MAX_FILES} per import"))
    return out


@dataclass
class _State:
    """The job's checkpoint; stored as JSON with each batch."""

    files: list[str] = field(default_factory=list)
    file: int = 0
    offset: int = 0
    line: int = 0
    index: int = 0
    success: int = 0
    failure: int = 0
    joined: int = 0
    unjoined: int = 0
    samples: list[str] = field(default_factory=list)
    errors_file: str = ""
    errors_size: int = 0
    started: bool = False

    def dump(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def load(cls, raw: bytes | None) -> _State:
        return cls(**orjson.loads(raw)) if raw else cls()


# (where it came from, the event, the path prefix for its fields or None to use `where`)
_Source = tuple[str, Any, str | None]
# (events, failure messages, how the batch advances the checkpoint)
_Batch = tuple[list[_Source], list[str], Callable[[_State], None]]


def _decode_line(line: bytes) -> Any:
    """One proto3-JSON UserEvent; raises ValueError saying what is wrong."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("each line must be one JSON object (a UserEvent)")
    event = user_event_pb2.UserEvent()
    try:
        json_format.ParseDict(data, event)
    except json_format.ParseError as exc:
        raise ValueError(f"not a UserEvent: {exc}") from None
    return event


class ImportJob:
    """Runs import-user-events operations."""

    def __init__(self, gcs_root: Path, strict_event_types: bool) -> None:
        self._root = gcs_root
        self._strict = strict_event_types

    def __call__(self, ctx: JobContext) -> None:
        request = import_config_pb2.ImportUserEventsRequest.FromString(ctx.record.request)
        catalog = str(parse_catalog(request.parent))
        state = _State.load(ctx.record.checkpoint)
        if not state.started:
            self._begin(request, state, ctx)
        if ctx.record.cancel_requested:
            self._finish(ctx, request, state, cancelled=True)
            return
        if state.errors_file:
            _truncate(Path(state.errors_file), state.errors_size)
        for events, failures, advance in self._batches(request, state):
            ctx.check_stop()
            rows = self._rows(ctx, catalog, events)
            failures = failures + [message for message, row in rows if row is None]
            good = [row for _, row in rows if row is not None]
            after = _State(**asdict(state))
            advance(after)
            after.success += len(good)
            after.failure += len(failures)
            after.samples.extend(failures[: MAX_ERROR_SAMPLES - len(after.samples)])
            if failures and after.errors_file:
                after.errors_size = _append_errors(Path(after.errors_file), failures)

            def progress(result: Any, after: _State = after) -> Progress:
                after.joined += result.inserted_joined
                after.unjoined += result.inserted - result.inserted_joined
                return Progress(after.dump(), self._operation(ctx, request, after).
                                SerializeToString(), False)

            result = ctx.step(Step(insert_events=good), progress)
            state = after
            if result.cancel_requested:
                self._finish(ctx, request, state, cancelled=True)
                return
        self._finish(ctx, request, state, cancelled=False)

    def _begin(self, request: Any, state: _State, ctx: JobContext) -> None:
        state.started = True
        source = request.input_config
        if source.WhichOneof("source") == "gcs_source":
            for i, uri in enumerate(source.gcs_source.input_uris):
                state.files.extend(str(p) for p in gcs.input_files(self._root, uri,
                                                                   f"{_URIS}[{i}]"))
        if request.errors_config.gcs_prefix:
            folder = gcs.output_folder(self._root, request.errors_config.gcs_prefix,
                                       "errors_config.gcs_prefix")
            op_id = ctx.record.name.rsplit("/", 1)[-1]
            state.errors_file = str(folder / f"{op_id}-errors.json")

    def _batches(self, request: Any, state: _State) -> Iterator[_Batch]:
        """Yields (events with where they came from, failures, advance(state))."""
        if request.input_config.WhichOneof("source") == "user_event_inline_source":
            yield from self._inline_batches(
                request.input_config.user_event_inline_source.user_events, state)
        else:
            yield from self._file_batches(state)

    @staticmethod
    def _inline_batches(events: Any, state: _State) -> Iterator[_Batch]:
        while state.index < len(events):
            start = state.index
            end = min(start + BATCH, len(events))
            chunk: list[_Source] = [(f"{_INLINE}[{i}]", events[i], None)
                                    for i in range(start, end)]

            def advance(s: _State, end: int = end) -> None:
                s.index = end

            yield chunk, [], advance
            state.index = end

    def _file_batches(self, state: _State) -> Iterator[_Batch]:
        while state.file < len(state.files):
            path = Path(state.files[state.file])
            uri = self._uri(path)
            with path.open("rb") as handle:
                handle.seek(state.offset)
                line_no, offset = state.line, state.offset
                while True:
                    chunk: list[_Source] = []
                    failures: list[str] = []
                    while len(chunk) + len(failures) < BATCH:
                        raw = handle.readline()
                        if not raw:
                            break
                        offset += len(raw)
                        line_no += 1
                        if not raw.strip():
                            continue
                        where = f"{uri} line {line_no}"
                        try:
                            chunk.append((where, _decode_line(raw), "user_event"))
                        except ValueError as exc:
                            failures.append(f"{where}: {exc}")
                    if not chunk and not failures:
                        break

                    def advance(s: _State, o: int = offset, n: int = line_no) -> None:
                        s.offset, s.line = o, n

                    yield chunk, failures, advance
                    state.offset, state.line = offset, line_no
            state.file += 1
            state.offset = state.line = 0

            def next_file(s: _State, f: int = state.file) -> None:
                s.file, s.offset, s.line = f, 0, 0

            yield [], [], next_file

    def _rows(self, ctx: JobContext, catalog: str,
              events: list[_Source]) -> list[tuple[str, EventRow | None]]:
        products = join.load_products(ctx.store, catalog,
                                      join.product_ids(e for _, e, _ in events))
        out: list[tuple[str, EventRow | None]] = []
        for where, event, prefix in events:
            path = prefix if prefix is not None else where
            violations = validation.user_event_violations(
                event, path, strict_event_types=self._strict, require_event_time=True)
            if violations:
                label = f"{where}: " if prefix is not None else ""
                out.append((label + "; ".join(str(v) for v in violations), None))
                continue
            received = event.SerializeToString(deterministic=True)
            joined = join.join_with_catalog(event, products)
            out.append(("", EventRow.from_event(catalog, event, joined, received)))
        return out

    def _uri(self, path: Path) -> str:
        return "gs://" + path.resolve().relative_to(self._root.resolve()).as_posix()

    def _metadata(self, ctx: JobContext, state: _State) -> Any:
        meta = import_config_pb2.ImportMetadata(success_count=state.success,
                                                failure_count=state.failure)
        meta.create_time.FromMicroseconds(ctx.record.create_time_us)
        meta.update_time.FromNanoseconds(ctx.clock.now_ns())
        return meta

    def _operation(self, ctx: JobContext, request: Any, state: _State,
                   done: bool = False, cancelled: bool = False) -> Any:
        meta = self._metadata(ctx, state)
        if cancelled:
            return records.operation(ctx.record.name, meta,
                                     error=records.cancelled_status("the import"))
        if not done:
            return records.operation(ctx.record.name, meta)
        response = import_config_pb2.ImportUserEventsResponse(
            error_samples=[status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=m)
                           for m in state.samples],
            import_summary=import_config_pb2.UserEventImportSummary(
                joined_events_count=state.joined, unjoined_events_count=state.unjoined))
        if request.HasField("errors_config"):
            response.errors_config.CopyFrom(request.errors_config)
        return records.operation(ctx.record.name, meta, response=response)

    def _finish(self, ctx: JobContext, request: Any, state: _State, cancelled: bool) -> None:
        ctx.finish(self._operation(ctx, request, state, done=True, cancelled=cancelled),
                   state.dump())


def _truncate(path: Path, size: int) -> None:
    """Drop error lines written by a batch that never committed (before a crash)."""
    if path.exists() and path.stat().st_size > size:
        with path.open("r+b") as handle:
            handle.truncate(size)


def _append_errors(path: Path, messages: list[str]) -> int:
    """Append one JSON google.rpc.Status per line; returns the file's new size."""
    with path.open("ab") as handle:
        for message in messages:
            handle.write(orjson.dumps({"code": code_pb2.INVALID_ARGUMENT, "message": message}))
            handle.write(b"\n")
        handle.flush()
        os.fsync(handle.fileno())
        return handle.tell()


def new_operation(name: str, now_ns: int) -> Any:
    meta = import_config_pb2.ImportMetadata()
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(now_ns)
    meta.create_time.CopyFrom(stamp)
    meta.update_time.CopyFrom(stamp)
    return records.operation(name, meta)
