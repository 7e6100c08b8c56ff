"""What every import job shares: sources read in batches, a checkpoint, error reports.

A job reads its source (inline messages, or `gs://` files of one JSON object per
line) in batches. Each batch's writes and the job's checkpoint (position,
counts, error samples, size of the error file) commit in one transaction, so a
crash resumes after the last committed batch and nothing is written twice.
A batch holds at most BATCH items and about BATCH_BYTES of lines, and a line at
most `max_line_bytes`, so memory stays flat whatever the files hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from server import protojson
from server.errors import FieldViolation, InvalidArgument, gather, summary
from server.operations import records
from server.operations.runner import JobContext
from server.retail import gcs, ndjson
from server.store.rows import Progress, Step, StepResult

BATCH = 1_000
ERRORS_FIELD = "errors_config.gcs_prefix"
BATCH_BYTES = 8 * 1024 * 1024  # of file lines; a batch ends after the line that passes it
MAX_ERROR_SAMPLES = 50


@dataclass
class ImportState:
    """A job's checkpoint; stored as JSON with each batch."""

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
    def load(cls, raw: bytes | None) -> ImportState:
        return cls(**orjson.loads(raw)) if raw else cls()

    def copy(self) -> ImportState:
        return ImportState(**asdict(self))


# (where it came from, the message, whether it is a file line: its field paths then
# start at the message, else at `where`, e.g. input_config...user_events[3])
Item = tuple[str, Any, bool]
# (items, failure messages, how the batch advances the checkpoint)
Batch = tuple[list[Item], list[str], Callable[[ImportState], None]]


def check_gcs_source(source: Any, root: Path, prefix: str, schemas: Sequence[str],
                     schema_help: str, deadline: float | None = None) -> list[FieldViolation]:
    """Violations of a GcsSource at `prefix` (e.g. input_config.gcs_source). Listing
    stops at the first URI past gcs.MAX_FILES files in all; DEADLINE_EXCEEDED when
    `deadline` (time.monotonic()) passes first."""
    uris = f"{prefix}.input_uris"
    out: list[FieldViolation] = []
    if source.data_schema not in schemas:
        out.append(FieldViolation(f"{prefix}.data_schema",
                                  f"unsupported schema {source.data_schema!r}; {schema_help}"))
    if not source.input_uris:
        out.append(FieldViolation(uris, "at least one gs:// URI is required"))
    if len(source.input_uris) > gcs.MAX_FILES:
        out.append(FieldViolation(uris, f"at most {gcs.MAX_FILES} URIs, "
                                        f"got {len(source.input_uris)}"))
        return out
    total = 0
    for i, uri in enumerate(source.input_uris):
        try:
            total += len(gcs.input_files(root, uri, f"{uris}[{i}]",
                                         limit=gcs.MAX_FILES - total, deadline=deadline))
        except InvalidArgument as exc:
            out.extend(exc.violations)
        if total > gcs.MAX_FILES:
            out.append(too_many_files(uris))
            break
    return out


def too_many_files(field: str) -> FieldViolation:
    return FieldViolation(field, f"the URIs match more than {gcs.MAX_FILES} files; at most "
                                 f"{gcs.MAX_FILES} per import")


@dataclass(frozen=True)
class SourceRules:
    """How one kind of import names its sources (user events or products)."""

    inline: str  # the inline source field, e.g. user_event_inline_source
    items: str  # its repeated field, e.g. user_events
    what: str  # one item, for messages: event, product
    schemas: tuple[str, ...]
    schema_help: str
    max_inline: int = 10_000


def check_sources(request: Any, root: Path, rules: SourceRules,
                  deadline: float | None = None) -> list[FieldViolation]:
    """Violations of an import request's input_config and errors_config; creates
    nothing. DEADLINE_EXCEEDED when `deadline` passes while listing files."""
    out: list[FieldViolation] = []
    config = request.input_config
    source = config.WhichOneof("source")
    inline_path = f"input_config.{rules.inline}.{rules.items}"
    if source is None:
        out.append(FieldViolation("input_config", f"give {rules.inline} or gcs_source"))
    elif source == "big_query_source":
        out.append(FieldViolation(
            "input_config.big_query_source",
            "BigQuery is not available in Footfall: export the table as newline-delimited "
            "JSON (bq extract --destination_format NEWLINE_DELIMITED_JSON), then import the "
            "files with gcs_source"))
    elif source == rules.inline:
        count = len(getattr(getattr(config, rules.inline), rules.items))
        if count == 0:
            out.append(FieldViolation(inline_path, f"at least one {rules.what} is required"))
        elif count > rules.max_inline:
            out.append(FieldViolation(
                inline_path, f"at most {rules.max_inline} {rules.what}s inline, got {count}; "
                             "import larger sets from files with gcs_source"))
        if request.HasField("errors_config"):
            out.append(FieldViolation(
                "errors_config", "is only for gcs_source imports; inline imports report "
                                 "error_samples"))
    else:
        out.extend(check_gcs_source(config.gcs_source, root, "input_config.gcs_source",
                                    rules.schemas, rules.schema_help, deadline))
    if request.errors_config.gcs_prefix and source == "gcs_source":
        gather(out, gcs.check_output_folder, root, request.errors_config.gcs_prefix,
               ERRORS_FIELD)
    return out


def decode_json_line(line: bytes, message_class: type[Message], what: str) -> Any:
    """A `message_class` from one line of proto3 JSON; ValueError saying what is wrong."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"each line must be one JSON object (a {what})")
    try:
        return protojson.parse_dict(data, message_class)
    except json_format.ParseError as exc:
        raise ValueError(f"not a {what}: {exc}") from None


class BulkImport:
    """The batch loop of an import job; subclasses say how to read and store items."""

    what = "the import"
    inline_field = ""
    uris_field = ""
    max_line_bytes = ndjson.MAX_LINE_BYTES

    def __init__(self, gcs_root: Path) -> None:
        self.root = gcs_root

    # -- what a subclass provides -------------------------------------------

    def parse_request(self, raw: bytes) -> Any:
        raise NotImplementedError

    def inline_items(self, request: Any) -> Sequence[Any] | None:
        """The inline messages, or None for a gcs_source import."""
        raise NotImplementedError

    def gcs_source(self, request: Any) -> Any:
        raise NotImplementedError

    def decode_line(self, line: bytes) -> Any:
        """One message from one line; ValueError saying what is wrong."""
        raise NotImplementedError

    def prepare(self, ctx: JobContext, request: Any, items: list[Item]) -> tuple[list[str], Step]:
        """Failure messages of the batch's bad items, and the writes for the good ones."""
        raise NotImplementedError

    def metadata(self, ctx: JobContext, state: ImportState) -> Message:
        raise NotImplementedError

    def response(self, request: Any, state: ImportState,
                 samples: list[status_pb2.Status]) -> Message:
        raise NotImplementedError

    def account(self, state: ImportState, result: StepResult) -> None:
        """Count what the committed step did (e.g. joined events); optional."""

    # -- the loop -------------------------------------------------------------

    def __call__(self, ctx: JobContext) -> None:
        request = self.parse_request(ctx.record.request)
        state = ImportState.load(ctx.record.checkpoint)
        if not state.started:
            self._begin(ctx, request, state)
        if ctx.record.cancel_requested:
            self._finish(ctx, request, state, cancelled=True)
            return
        if state.errors_file:  # drop what a batch that never committed wrote
            gcs.truncate_output(self.root, Path(state.errors_file), state.errors_size,
                                ERRORS_FIELD)
        for items, failures, advance in self._batches(request, state, ctx.check_stop):
            ctx.check_stop()
            bad, step = self.prepare(ctx, request, items)
            failures = failures + bad
            after = state.copy()
            advance(after)
            after.success += len(items) - len(bad)
            after.failure += len(failures)
            after.samples.extend(failures[: MAX_ERROR_SAMPLES - len(after.samples)])
            if failures and after.errors_file:
                after.errors_size = gcs.append_output(
                    self.root, Path(after.errors_file), _error_lines(failures), ERRORS_FIELD)

            def progress(result: StepResult, after: ImportState = after) -> Progress:
                self.account(after, result)
                operation = records.operation(ctx.record.name, self.metadata(ctx, after))
                return Progress(after.dump(), operation.SerializeToString(), False)

            result = ctx.step(step, progress)
            state = after
            if result.cancel_requested:
                self._finish(ctx, request, state, cancelled=True)
                return
        self._finish(ctx, request, state, cancelled=False)

    def _begin(self, ctx: JobContext, request: Any, state: ImportState) -> None:
        state.started = True
        if self.inline_items(request) is None:
            for i, uri in enumerate(self.gcs_source(request).input_uris):
                state.files.extend(str(p) for p in gcs.input_files(
                    self.root, uri, f"{self.uris_field}[{i}]",
                    limit=gcs.MAX_FILES - len(state.files)))
                if len(state.files) > gcs.MAX_FILES:  # files came since the call
                    raise InvalidArgument([too_many_files(self.uris_field)])
        if request.errors_config.gcs_prefix:
            # Created only now: a refused request leaves nothing behind.
            folder = gcs.make_output_folder(self.root, request.errors_config.gcs_prefix,
                                            ERRORS_FIELD)
            op_id = ctx.record.name.rsplit("/", 1)[-1]
            state.errors_file = str(folder / f"{op_id}-errors.json")

    def _batches(self, request: Any, state: ImportState,
                 check_stop: Callable[[], None]) -> Iterator[Batch]:
        inline = self.inline_items(request)
        if inline is not None:
            yield from self._inline_batches(inline, state)
        else:
            yield from self._file_batches(state, check_stop)

    def _inline_batches(self, items: Sequence[Any], state: ImportState) -> Iterator[Batch]:
        while state.index < len(items):
            start = state.index
            end = min(start + BATCH, len(items))
            chunk: list[Item] = [(f"{self.inline_field}[{i}]", items[i], False)
                                 for i in range(start, end)]

            def advance(s: ImportState, end: int = end) -> None:
                s.index = end

            yield chunk, [], advance
            state.index = end

    def _file_batches(self, state: ImportState,
                      check_stop: Callable[[], None]) -> Iterator[Batch]:
        while state.file < len(state.files):
            path = Path(state.files[state.file])
            uri = gcs.name_of(self.root, path)
            with gcs.open_input(self.root, path, self.uris_field) as handle:
                handle.seek(state.offset)
                readline, limit = handle.readline, self.max_line_bytes + 1
                line_no, offset, more = state.line, state.offset, True
                while more:
                    chunk: list[Item] = []
                    failures: list[str] = []
                    start, full = offset, offset + BATCH_BYTES
                    while len(chunk) + len(failures) < BATCH and offset < full:
                        raw = readline(limit)
                        size = len(raw)
                        if not size:
                            more = False
                            break
                        line_no += 1
                        if size == limit and not raw.endswith(b"\n"):  # cut: too long
                            size += ndjson.skip_rest(handle, check_stop)
                            failures.append(f"{uri} line {line_no}: "
                                            f"{ndjson.too_long(size, self.max_line_bytes)}")
                            raw = b""
                        offset += size
                        if raw.strip():
                            where = f"{uri} line {line_no}"
                            try:
                                chunk.append((where, self.decode_line(raw), True))
                            except ValueError as exc:
                                failures.append(f"{where}: {exc}")
                    if offset == start:
                        break

                    def advance(s: ImportState, o: int = offset, n: int = line_no) -> None:
                        s.offset, s.line = o, n

                    yield chunk, failures, advance
                    state.offset, state.line = offset, line_no
            state.file += 1
            state.offset = state.line = 0

            def next_file(s: ImportState, f: int = state.file) -> None:
                s.file, s.offset, s.line = f, 0, 0

            yield [], [], next_file

    def _finish(self, ctx: JobContext, request: Any, state: ImportState,
                cancelled: bool) -> None:
        meta = self.metadata(ctx, state)
        if cancelled:
            final = records.operation(ctx.record.name, meta,
                                      error=records.cancelled_status(self.what))
        else:
            samples = [status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=m)
                       for m in state.samples]
            final = records.operation(ctx.record.name, meta,
                                      response=self.response(request, state, samples))
        ctx.finish(final, state.dump())


def failure_message(where: str, is_file_line: bool, violations: list[FieldViolation]) -> str:
    """`gs://b/f.json line 4: user_event.visitor_id: is required`, or for inline items
    just the violations (their paths already say which item); a long list is cut
    as in an INVALID_ARGUMENT answer."""
    text = summary(violations)
    return f"{where}: {text}" if is_file_line else text


def _error_lines(messages: list[str]) -> bytes:
    """One JSON google.rpc.Status per line."""
    return b"".join(orjson.dumps({"code": code_pb2.INVALID_ARGUMENT, "message": message})
                    + b"\n" for message in messages)
