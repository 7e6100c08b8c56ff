"""What every import job shares: sources read in batches, a checkpoint, error reports.

A job reads its source (inline messages, or `gs://` files of one JSON object per
line) in batches. Each batch's writes and the job's checkpoint (position,
counts, error samples, size of the error file) commit in one transaction, so a
crash resumes after the last committed batch and nothing is written twice.
A batch holds at most BATCH items and about BATCH_BYTES of lines, and a line at
most `max_line_bytes`, so memory stays flat whatever the files hold.

Each item is checked on its own first (`ItemCheck`: decoding a line, the rules that
need no store), then a batch of checked items is stored (`prepare`: joins, upserts).
The first part of a file import runs in worker processes (line_pool), the second
in the job's thread, in the order of the lines.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Generic, Protocol, TypeVar, cast

import orjson
from footfall.retail.v2 import import_config_pb2
from google.longrunning import operations_pb2
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from server import json_keys, json_problems, lenient_json, protojson
from server.errors import (
    FieldViolation,
    Internal,
    InvalidArgument,
    UnreadValue,
    gather,
    summary,
    unlisted,
)
from server.operations import records
from server.operations.runner import JobContext
from server.retail import gcs, ndjson, products
from server.retail.line_pool import LinePool, WorkersLost, ahead
from server.store.console import RejectionRow
from server.store.rows import ProductsChanged, Progress, Step, StepResult

BATCH = 1_000
ERRORS_FIELD = "errors_config.gcs_prefix"
BATCH_BYTES = 8 * 1024 * 1024  # of file lines; a batch ends after the line that passes it
MAX_ERROR_SAMPLES = 50
# One kind of import: its request, and the message it imports (UserEvent, Product).
R = TypeVar("R", import_config_pb2.ImportUserEventsRequest,
            import_config_pb2.ImportProductsRequest)
M = TypeVar("M", bound=Message)
V = TypeVar("V")  # what storing a checked item needs (a row, a product)
T = TypeVar("T")
Response = import_config_pb2.ImportUserEventsResponse | import_config_pb2.ImportProductsResponse


@dataclass(frozen=True)
class Position:
    """Where reading stands: the next inline item, or the file being read (its index
    in ImportState.files), the next byte in it and the lines read so far."""

    index: int = 0
    file: int = 0
    offset: int = 0
    line: int = 0


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

    @property
    def position(self) -> Position:
        return Position(self.index, self.file, self.offset, self.line)

    def after(self, end: Position, imported: int, failures: list[str]) -> ImportState:
        """A new state: this one once a batch that reads up to `end`, imports
        `imported` items and fails `failures` has committed."""
        return replace(self, **asdict(end), success=self.success + imported,
                       failure=self.failure + len(failures),
                       samples=self.samples + failures[:MAX_ERROR_SAMPLES - len(self.samples)])


@dataclass(slots=True)
class Item(Generic[T]):
    """One message to import (or, once checked, what storing it needs) and where
    it came from."""

    where: str  # e.g. input_config.user_event_inline_source.user_events[3]
    message: T
    is_line: bool  # a file's line: its field paths start at the message, not at `where`

    def path(self, root: str) -> str:
        """The message's field path: `root` (e.g. user_event) for a file's line."""
        return root if self.is_line else self.where

    def failure(self, violations: list[FieldViolation]) -> str:
        return failure_message(self.where, self.is_line, violations)


# A checked item: what storing it needs, or the failure message saying why it is refused.
Checked = Item[V] | str


class FailureKeeper(Protocol):
    """What keeps an import's failed lines for the console (console.Rejections)."""

    def import_rows(self, operation: str, failures: Sequence[str], method: str,
                    parent: str) -> list[RejectionRow]:
        """The rows a batch's step inserts for its `failures` (of a call to `method`
        that named `parent`)."""

    def imported(self, operation: str) -> None:
        """Called once a batch's step of `operation` kept them."""


class ItemCheck(Protocol[M, V]):
    """The checks of one item that need no store; pickles (it runs in workers)."""

    message_class: type[M]

    def __call__(self, item: Item[M]) -> Checked[V]: ...

    def beside_unread(self, message: M, unread: list[FieldViolation]) -> list[FieldViolation]:
        """What the rules say of the values of a line's `message` that did read beside
        its values of the wrong type (`unread`, UnreadValues), paths starting at the
        message; a line with them is refused whatever they say."""


@dataclass(frozen=True)
class Batch(Generic[V]):
    """What one step imports: the items read, checked, in their order (a line that
    could not be read or decoded is its failure message, in its place), and where
    reading stands after them."""

    items: list[Checked[V]]
    end: Position


@dataclass(frozen=True)
class _Chunk:
    """The lines of one batch as read, before decoding: `cut` holds the failures
    of over-long lines, each with the index in `lines` of the line after it."""

    lines: list[tuple[str, bytes]]  # (where, line)
    cut: list[tuple[int, str]]
    end: Position


def check_lines(check: ItemCheck[M, V], lines: list[tuple[str, bytes]]
                ) -> tuple[list[V | str], list[tuple[int, str]]]:
    """Decode and check `lines` (in a worker process): for each line that decodes,
    what storing it needs or why it is refused; and the failures of the lines that
    do not, each with its index in `lines` (a line of values of the wrong type, with
    what the rules say of those that did read: ItemCheck.beside_unread). (Bare
    values: they pickle fast.)"""
    decode, what = check.message_class, check.message_class.DESCRIPTOR.name
    checked: list[V | str] = []
    unread: list[tuple[int, str]] = []
    for i, (where, raw) in enumerate(lines):
        try:
            message = decode_json_line(raw, decode, what)
        except UnreadLine as exc:
            rules = check.beside_unread(cast(M, exc.message), exc.unread)
            unread.append((i, f"{where}: {exc.said(rules)}"))
            continue
        except ValueError as exc:
            unread.append((i, f"{where}: {exc}"))
            continue
        item = check(Item(where, message, True))
        checked.append(item if isinstance(item, str) else item.message)
    return checked, unread


def _as_items(lines: list[tuple[str, bytes]], checked: list[V | str],
              unread: list[tuple[int, str]], cut: list[tuple[int, str]]) -> list[Checked[V]]:
    """`check_lines`' answer as items in line order, each with the place of its line:
    a line that did not decode (`unread`) or was too long to read (`cut`, placed
    before the line read after it) is its failure message, in its place, so that an
    import's failures are listed in the order of its lines."""
    if not unread and not cut:
        return [value if isinstance(value, str) else Item(where, value, True)
                for (where, _), value in zip(lines, checked, strict=True)]
    unreadable = dict(unread)
    before: dict[int, list[str]] = {}
    for i, message in cut:
        before.setdefault(i, []).append(message)
    values = iter(checked)
    items: list[Checked[V]] = []
    for i, (where, _) in enumerate(lines):
        items += before.get(i, ())
        if i in unreadable:
            items.append(unreadable[i])
            continue
        value = next(values)
        items.append(value if isinstance(value, str) else Item(where, value, True))
    items += before.get(len(lines), ())
    return items


def check_gcs_source(source: import_config_pb2.GcsSource, root: Path, prefix: str,
                     schemas: Sequence[str], schema_help: str,
                     deadline: float | None = None, files: bool = True
                     ) -> list[FieldViolation]:
    """Violations of a GcsSource at `prefix` (e.g. input_config.gcs_source). Listing
    stops at the first URI past gcs.MAX_FILES files in all; DEADLINE_EXCEEDED when
    `deadline` (time.monotonic()) passes first. `files`: whether the URIs' files are
    looked for (see check_sources)."""
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
    if not files:
        return out
    total = 0
    for i, uri in enumerate(source.input_uris):
        total += len(gather(out, gcs.input_files, root, uri, f"{uris}[{i}]",
                            gcs.MAX_FILES - total, deadline) or ())
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
    # Whether errors_config may name a folder for an inline import too (products: yes;
    # user events: "Cannot be set for inline user event imports", Google says)
    inline_errors: bool = False

    @property
    def inline_path(self) -> str:
        """The inline source's list, e.g. input_config.user_event_inline_source.user_events."""
        return f"input_config.{self.inline}.{self.items}"

    def too_many_inline(self, count: int) -> FieldViolation | None:
        """The violation of an inline source of `count` items, over max_inline; else None
        (said here for the servicer and for a REST body counted before it is read:
        server.http.body_bounds)."""
        if count <= self.max_inline:
            return None
        return FieldViolation(self.inline_path, f"at most {self.max_inline} {self.what}s "
                                                f"inline, got {count}; import larger sets "
                                                "from files with gcs_source")


def check_sources(request: R, root: Path, rules: SourceRules,
                  deadline: float | None = None, files: bool = True) -> list[FieldViolation]:
    """Violations of an import request's input_config and errors_config; creates
    nothing. DEADLINE_EXCEEDED when `deadline` passes while listing files. `files`:
    whether the files its gs:// URIs name (and its errors folder) are looked for, which
    is done off the event loop: the refusal of a REST body's values of the wrong type,
    made where the body is read, leaves them out (said once the values read)."""
    out: list[FieldViolation] = []
    config = request.input_config
    source = config.WhichOneof("source")
    inline_path = rules.inline_path
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
        too_many = rules.too_many_inline(count)
        if count == 0:
            out.append(FieldViolation(inline_path, f"at least one {rules.what} is required"))
        elif too_many is not None:
            out.append(too_many)
        if request.HasField("errors_config") and not rules.inline_errors:
            out.append(FieldViolation(
                "errors_config", "is only for gcs_source imports; inline imports report "
                                 "error_samples"))
    else:
        out.extend(check_gcs_source(config.gcs_source, root, "input_config.gcs_source",
                                    rules.schemas, rules.schema_help, deadline, files))
    if files and request.errors_config.gcs_prefix and (
            source == "gcs_source" or source == rules.inline and rules.inline_errors):
        gather(out, gcs.check_output_folder, root, request.errors_config.gcs_prefix,
               ERRORS_FIELD)
    return out


# The two bytes every gzip file begins with (RFC 1952 2.3.1): a file made for an import
# as `events.json.gz` is read as it lies, not unpacked.
GZIP_MAGIC = b"\x1f\x8b"
GZIP_FILE = ("invalid JSON: the file is gzip-compressed (it begins with gzip's bytes 1f 8b); "
             "an import reads its files as newline-delimited JSON, not unpacked: gunzip it "
             "first")
# The UTF-8 byte order mark that Windows editors, Excel and PowerShell write at a text
# file's start: a file's first line is read without it (RFC 8259 lets a JSON reader pass
# over one, as jq and Python's utf-8-sig do); one at a later line's start is refused.
UTF8_BOM = b"\xef\xbb\xbf"
BOM_INSIDE = ("invalid JSON: the line begins with a UTF-8 byte order mark (bytes ef bb bf), "
              "which only a file's first line may: files that each had one, joined into "
              "one? remove the mark")


def zero_bytes(count: int) -> str:
    """Why a line of `count` zero bytes, and nothing else, is refused (one that ends the
    file is read over: _is_padding)."""
    return (f"invalid JSON: the line is {count} zero bytes (0x00) and no JSON; zero bytes "
            "are read over only where they end the file (padding)")


def _is_padding(raw: bytes) -> bool:
    """Whether the line `raw` is zero bytes (white space among them) that end its file:
    padding to a block's size (dd conv=sync, a tape), read over as gzip(1) reads over
    the zeros after its data; with a line break after them, they are a line."""
    return not raw.endswith(b"\n") and b"\0" in raw and not raw.strip(b"\0 \t\r")


def decode_json_line(line: bytes, message_class: type[M], what: str) -> M:
    """A `message_class` from one line of JSON: proto3 JSON, or a form Google's
    importer accepts too (lenient_json); ValueError saying what is wrong."""
    # (with its line break, a line cut short was "unexpected end of data at line 2")
    line = line.rstrip(b"\r\n")
    if line.startswith(GZIP_MAGIC):  # (its first line: was told "not valid UTF-8: the
        raise ValueError(GZIP_FILE)  # byte 0x8b at column 2", which names no cause)
    if line.startswith(UTF8_BOM):  # (a file's first line comes without its own: _chunks)
        raise ValueError(BOM_INSIDE)
    if line and not line.strip(b"\0 \t"):
        raise ValueError(zero_bytes(line.count(0)))
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(
            f"invalid JSON: {protojson.syntax_problem(exc, line, one_line=True)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"each line must be one JSON object (a {what})")
    if json_keys.may_repeat(line, data):  # orjson kept the last: the first would be lost
        key = json_keys.repeated_key(line)
        if key is not None:
            raise ValueError(f"invalid JSON: the key {key!r} is given twice in one object")
    data = protojson.exact_numbers(line, data)  # (orjson read 1e-400 as 0.0)
    try:
        return lenient_json.parse_dict(data, message_class)
    except json_format.ParseError as error:
        problems, more = json_problems.listed(
            error, cast(Descriptor, message_class.DESCRIPTOR), data)
        left_out = unlisted(more, json_problems.stopped(error))
        rest = message_class()
        if json_problems.read_around(error, rest):
            read = cast(json_problems.Refusal, error).read()
            raise UnreadLine(what, [UnreadValue(*problem, read) for problem in problems],
                             rest) from None
    raise ValueError(f"not a {what}: " + summary([FieldViolation(*problem)
                                                  for problem in problems] + left_out))


class UnreadLine(ValueError):
    """A line whose values of the wrong type (`unread`, UnreadValues whose paths start
    at the message) leave the rest of it read: `message`, for the rules about its
    values that did read to be said beside them (ItemCheck.beside_unread)."""

    def __init__(self, what: str, unread: list[FieldViolation], message: Message) -> None:
        super().__init__(f"not a {what}: {summary(unread)}")
        self.what, self.unread, self.message = what, unread, message

    def said(self, rules: list[FieldViolation]) -> str:
        """What is wrong with the line: its wrong values, then `rules` (paths alike)."""
        return f"not a {self.what}: {summary([*self.unread, *rules])}"


def new_operation(name: str, now_ns: int) -> operations_pb2.Operation:
    """An import's Operation before its job starts (created at `now_ns`)."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(now_ns)
    meta = import_config_pb2.ImportMetadata(create_time=stamp, update_time=stamp)
    return records.operation(name, meta)


IN_THREAD = LinePool(0)


class BulkImport(Generic[R, M, V]):
    """The batch loop of an import job; subclasses say what they import, how to
    check one item and how to store a batch."""

    # Set by a subclass: what it imports, and from where.
    request_class: type[R]
    sources: SourceRules
    what = "the import"
    # Keeps the failures of each batch for the console, committed with the batch,
    # as refusals of `method` (the gRPC method that started the import).
    rejections: FailureKeeper | None = None
    method: str
    uris_field = "input_config.gcs_source.input_uris"
    # What a file's line holds, as its violations name it (user_event.visitor_id):
    # an over-long line is refused naming it too.
    line_field = "item"
    max_line_bytes = ndjson.MAX_LINE_BYTES
    # Files of fewer bytes (left to read) are decoded in the job's thread: starting
    # worker processes costs more than it saves.
    pool_min_bytes = 1024 * 1024
    # Whether `prepare` of a batch may run while the batch before it commits: only
    # when it reads nothing those batches write.
    prepare_ahead = False

    def __init__(self, gcs_root: Path, pool: LinePool = IN_THREAD) -> None:
        self.root = gcs_root
        self.pool = pool
        # What is told of each batch about to be written (Policy.wrote): the console's
        # reads are paced while an import writes, as while events are written one by
        # one (a flood of them had the import's thread wait on the interpreter's lock).
        self.writing: Callable[[], None] | None = None

    # -- what a subclass provides -------------------------------------------

    def item_check(self, request: R, now_s: int) -> ItemCheck[M, V]:
        """The checks of one item of `request` that need no store, at the server's
        time `now_s`."""
        raise NotImplementedError

    def prepare(self, ctx: JobContext, request: R,
                items: list[Checked[V]]) -> tuple[list[str], Step]:
        """Failure messages of the batch's bad items, a string item among them (each
        in item order: the order of the lines), and the writes for the good ones."""
        raise NotImplementedError

    def response(self, state: ImportState) -> Response:
        """The finished import's response; its error samples and errors_config are
        added by the loop."""
        raise NotImplementedError

    def account(self, state: ImportState, result: StepResult) -> None:
        """Count what the committed step did (e.g. joined events); optional."""

    # -- the loop -------------------------------------------------------------

    def __call__(self, ctx: JobContext) -> None:
        request = self.request_class.FromString(ctx.record.request)
        state = ImportState.load(ctx.record.checkpoint)
        if not state.started:
            self._begin(ctx, request, state)
        # Before the cancel: a job cancelled while its holder was dead ends there, and
        # its file kept the failures of a batch its failure_count never counted.
        self._cut_errors(state)
        if ctx.record.cancel_requested:
            self._finish(ctx, request, state, cancelled=True)
            return
        lease = _LeaseKeeper(ctx, partial(self._progress, ctx), state)
        batches = self._batches(request, state.files, state.position, lease.between_chunks,
                                ctx.clock.now_ns() // 10**9)
        prepared = self._prepared(ctx, request, batches)
        if self.prepare_ahead:
            prepared = ahead(prepared)
        try:
            if self.writing is not None:  # (as it reads and checks its first batch)
                self.writing()
            for batch, bad, step in prepared:
                if self.writing is not None:
                    self.writing()
                remade = 0
                while True:
                    ctx.check_stop()
                    after = state.after(batch.end, len(batch.items) - len(bad), bad)
                    if bad and after.errors_file:
                        # A run stalled past its lease (a slow read, a pause) must not
                        # write: at its own, older offset it would cut the lines that the
                        # process which took the job over wrote for the batches after it.
                        ctx.check_lease()
                        after.errors_size = gcs.write_output(
                            self.root, Path(after.errors_file),
                            _error_lines(bad, self._file_of(state, batch)),
                            ERRORS_FIELD, at=state.errors_size)
                    if bad and self.rejections is not None:
                        step = replace(step, rejections=self.rejections.import_rows(
                            ctx.record.name, bad, self.method, request.parent))
                    try:
                        result = lease.step(step, after)
                        break
                    except ProductsChanged:
                        # A product the batch was merged with was written meanwhile: it
                        # is made again from a new read, its failures (which may differ)
                        # written in place of those written for it; not for ever.
                        remade += 1
                        if remade >= products.MAX_REMAKES:
                            raise products.remade_too_often(self.what) from None
                        self._cut_errors(state)
                        bad, step = self.prepare(ctx, request, batch.items)
                if bad and self.rejections is not None:
                    self.rejections.imported(ctx.record.name)
                state = after
                if result.cancel_requested:
                    lease.end()
                    self._finish(ctx, request, state, cancelled=True)
                    return
        finally:
            lease.end()
            prepared.close()
            batches.close()  # lines in flight in the workers are dropped
        self._finish(ctx, request, state, cancelled=False)

    def settle(self, ctx: JobContext) -> None:
        """Cut the errors file back to the failures the operation's checkpoint counts,
        before the runner ends the operation unrun (see OperationRunner._end_with)."""
        state = ImportState.load(ctx.record.checkpoint)
        if not state.started:  # (a first batch that never committed: its file from none)
            request = self.request_class.FromString(ctx.record.request)
            state.errors_file = str(self._errors_file(ctx, request, make=False) or "")
        self._cut_errors(state)

    def _cut_errors(self, state: ImportState) -> None:
        """Drop what a batch that never committed wrote to the errors file."""
        if state.errors_file:
            gcs.truncate_output(self.root, Path(state.errors_file), state.errors_size,
                                ERRORS_FIELD)

    def _prepared(self, ctx: JobContext, request: R, batches: Iterator[Batch[V]]
                  ) -> Generator[tuple[Batch[V], list[str], Step], None, None]:
        """Each batch with its failures and writes (`prepare`)."""
        for batch in batches:
            bad, step = self.prepare(ctx, request, batch.items)
            yield batch, bad, step

    def _progress(self, ctx: JobContext, state: ImportState, result: StepResult) -> Progress:
        """What a step records with its writes: `state` (with what the step did
        counted) as the checkpoint, and the metadata clients see."""
        self.account(state, result)
        operation = records.operation(ctx.record.name, _metadata(ctx, state))
        return Progress(state.dump(), operation.SerializeToString(), False)

    def _begin(self, ctx: JobContext, request: R, state: ImportState) -> None:
        state.started = True
        if self.inline_items(request) is None:
            for i, uri in enumerate(request.input_config.gcs_source.input_uris):
                state.files.extend(str(p) for p in gcs.input_files(
                    self.root, uri, f"{self.uris_field}[{i}]",
                    limit=gcs.MAX_FILES - len(state.files), unmatched=self._unmatched()))
                if len(state.files) > gcs.MAX_FILES:  # files came since the call
                    raise InvalidArgument([too_many_files(self.uris_field)])
        # Created only now: a refused request leaves nothing behind.
        state.errors_file = str(self._errors_file(ctx, request, make=True) or "")

    def _file_of(self, state: ImportState, batch: Batch[V]) -> str | None:
        """The gs:// name of the file whose lines `batch` holds (a batch never spans
        two); None for an inline import."""
        if batch.end.file >= len(state.files):
            return None
        return gcs.name_of(self.root, state.files[batch.end.file])

    def _unmatched(self) -> str:
        """Why a URI the call matched matches nothing as its job begins. Any replica
        (or server process) may run the job: one whose --gcs-root was another folder
        ended the import INVALID_ARGUMENT "no file matches", as if the file had never
        been, though the replica that took the call had found it."""
        return (f"under --gcs-root {os.path.abspath(self.root)} of the server process that "
                "runs the import, though the call found it: it was moved or removed since, "
                "or this process reads another folder than the one that took the call "
                "(every replica needs the same shared --gcs-root)")

    def _errors_file(self, ctx: JobContext, request: R, make: bool) -> Path | None:
        """The errors file of the job, if its request asks for one; its folder made if
        `make` (else it may not be there)."""
        prefix = request.errors_config.gcs_prefix
        if not prefix:
            return None
        folder = (gcs.make_output_folder if make else gcs.check_output_folder)(
            self.root, prefix, ERRORS_FIELD)
        return folder / f"{ctx.record.name.rsplit('/', 1)[-1]}-errors.json"

    def inline_items(self, request: R) -> Sequence[M] | None:
        """The inline messages, or None for a gcs_source import."""
        config = request.input_config
        if config.WhichOneof("source") != self.sources.inline:
            return None
        items: Sequence[M] = getattr(getattr(config, self.sources.inline), self.sources.items)
        return items

    def _batches(self, request: R, files: Sequence[str], start: Position,
                 check_stop: Callable[[], None], now_s: int
                 ) -> Generator[Batch[V], None, None]:
        """The batches from `start` to the end of the source, their items checked
        at the server's time `now_s`."""
        check = self.item_check(request, now_s)
        inline = self.inline_items(request)
        if inline is not None:
            return self._inline_batches(check, inline, start)
        return self._file_batches(check, files, start, check_stop)

    def _inline_batches(self, check: ItemCheck[M, V], items: Sequence[M],
                        start: Position) -> Generator[Batch[V], None, None]:
        field = f"input_config.{self.sources.inline}.{self.sources.items}"
        for begin in range(start.index, len(items), BATCH):
            end = min(begin + BATCH, len(items))
            yield Batch([check(Item(f"{field}[{i}]", items[i], False))
                         for i in range(begin, end)], Position(index=end))

    def _file_batches(self, check: ItemCheck[M, V], files: Sequence[str], start: Position,
                      check_stop: Callable[[], None]) -> Generator[Batch[V], None, None]:
        """The chunks read, decoded and checked by the pool (or in this thread when
        the files are small), in order."""
        pool = self.pool if _bytes_left(files, start) >= self.pool_min_bytes else IN_THREAD
        chunks = ((chunk, chunk.lines) for chunk in self._chunks(files, start, check_stop))
        answers = pool.ordered_map(check_lines, check, chunks, _lines_size, check_stop)
        try:
            for chunk, (checked, unread) in answers:
                yield Batch(_as_items(chunk.lines, checked, unread, chunk.cut), chunk.end)
        except WorkersLost as lost:
            raise workers_lost(cast(_Chunk, lost.key), lost) from None
        finally:
            answers.close()  # (its window cancelled now, not once collected)

    def _chunks(self, files: Sequence[str], start: Position,
                check_stop: Callable[[], None]) -> Iterator[_Chunk]:
        """The lines of batches of at most BATCH lines and about BATCH_BYTES; after
        each file, an empty one that moves on to the next file."""
        for file in range(start.file, len(files)):
            path = Path(files[file])
            uri = gcs.name_of(self.root, path)
            offset, line_no = (start.offset, start.line) if file == start.file else (0, 0)
            with gcs.open_input(self.root, path, self.uris_field) as handle:
                handle.seek(offset)
                readline, limit = handle.readline, self.max_line_bytes + 1
                more = True
                while more:
                    lines: list[tuple[str, bytes]] = []
                    cut: list[tuple[int, str]] = []
                    begin, full = offset, offset + BATCH_BYTES
                    while len(lines) + len(cut) < BATCH and offset < full:
                        raw = readline(limit)
                        size = len(raw)
                        if not size:
                            more = False
                            break
                        line_no += 1
                        if size == limit and not raw.endswith(b"\n"):  # cut: too long
                            size += ndjson.skip_rest(handle, check_stop)
                            cut.append((len(lines), f"{uri} line {line_no}: " + ndjson.too_long(
                                self.line_field, self.sources.what, size, self.max_line_bytes)))
                            raw = b""
                        offset += size
                        if line_no == 1 and raw.startswith(UTF8_BOM):
                            raw = raw[len(UTF8_BOM):]
                        if raw.strip() and not _is_padding(raw):
                            lines.append((f"{uri} line {line_no}", raw))
                    if offset == begin:
                        break
                    yield _Chunk(lines, cut, Position(file=file, offset=offset, line=line_no))
            yield _Chunk([], [], Position(file=file + 1))

    def _finish(self, ctx: JobContext, request: R, state: ImportState,
                cancelled: bool) -> None:
        response = self.response(state)
        response.error_samples.extend(
            status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=m) for m in state.samples)
        if request.HasField("errors_config"):
            response.errors_config.CopyFrom(request.errors_config)
        ctx.finish(records.ended(ctx.record.name, _metadata(ctx, state), response, cancelled,
                                 self.what), state.dump())


class _LeaseKeeper:
    """A job's steps, and the renewals of its lease while a long line is skipped
    (ndjson.skip_rest: a line of gigabytes, read a chunk at a time) in the thread that
    reads the lines, which may not be the job's (`ahead`). A renewal records the state
    of the last step that committed, never one older; none once the job is ending (its
    last step, done, must stay the last)."""

    def __init__(self, ctx: JobContext, progress: Callable[[ImportState, StepResult], Progress],
                 state: ImportState) -> None:
        self._ctx, self._progress = ctx, progress
        self._lock = threading.Lock()
        self._committed = state
        self._ended = False

    def step(self, step: Step, after: ImportState) -> StepResult:
        """ctx.step with `after` as its progress (ProductsChanged, LeaseLost as it)."""
        with self._lock:
            result = self._ctx.step(step, partial(self._progress, after))
            self._committed = after
            return result

    def between_chunks(self) -> None:
        """Between two chunks of a skipped line: StopRequested at a stop, and the lease
        renewed once a third of it has passed (LeaseLost when the job was taken over)."""
        self._ctx.check_stop()
        with self._lock:
            if not self._ended:
                self._ctx.keep_lease(partial(self._progress, self._committed))

    def end(self) -> None:
        with self._lock:
            self._ended = True


def _lines_size(lines: list[tuple[str, bytes]]) -> int:
    return sum(len(raw) for _, raw in lines)


def workers_lost(chunk: _Chunk, lost: WorkersLost) -> Internal:
    """The error that ends an import whose `chunk`, decoded alone, lost its worker
    process again and again (a line that kills its decoder, a machine out of memory):
    the batches before it are imported and counted, the rest is not."""
    where = ""
    if chunk.lines:
        uri, _, first = chunk.lines[0][0].rpartition(" line ")
        where = f" at {uri} lines {first}-{chunk.lines[-1][0].rpartition(' line ')[2]}"
    why = "died: killed, or out of memory?" if lost.reason == "died" else \
        "owed these lines past their allowance: stopped, or swapped out?"
    return Internal(f"the import stopped{where}: the worker processes decoding these lines "
                    f"were given up on {lost.times} times in a row (the last time they {why}); "
                    "the lines before them are imported and counted. See the server log")


def _bytes_left(files: Sequence[str], start: Position) -> int:
    """About how many bytes are left to read from `start` (0 for what is not a
    regular file: a FIFO, a link, a file gone; reading says what is wrong)."""
    total = -start.offset
    for name in files[start.file:]:
        with contextlib.suppress(OSError):
            total += os.lstat(name).st_size
    return max(total, 0)


def _metadata(ctx: JobContext, state: ImportState) -> import_config_pb2.ImportMetadata:
    """What clients see of a running or ended import."""
    meta = import_config_pb2.ImportMetadata(success_count=state.success,
                                            failure_count=state.failure)
    meta.create_time.FromMicroseconds(ctx.record.create_time_us)
    meta.update_time.FromNanoseconds(ctx.clock.now_ns())
    return meta


def failure_message(where: str, is_file_line: bool, violations: list[FieldViolation]) -> str:
    """`gs://b/f.json line 4: user_event.visitor_id: is required`, or for inline items
    just the violations (their paths already say which item); a long list is cut
    as in an INVALID_ARGUMENT answer."""
    text = summary(violations)
    return f"{where}: {text}" if is_file_line else text


_STRUCT = "type.googleapis.com/google.protobuf.Struct"


def _error_lines(messages: list[str], uri: str | None) -> bytes:
    """One JSON google.rpc.Status per line; a failure of a line of the file `uri`
    (`gs://b/f.json line 4: ...`) carries the line's number in a Struct detail, as
    Google's errors files do (`{"line_number": 4}`)."""
    prefix = f"{uri} line " if uri is not None else None
    lines = []
    for message in messages:
        status: dict[str, object] = {"code": code_pb2.INVALID_ARGUMENT, "message": message}
        number = message[len(prefix):].partition(":")[0] if prefix is not None \
            and message.startswith(prefix) else ""
        if number.isdigit():
            status["details"] = [{"@type": _STRUCT, "value": {"line_number": int(number)}}]
        lines.append(orjson.dumps(status) + b"\n")
    return b"".join(lines)
