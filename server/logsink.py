"""Where `footfall serve` logs: stderr, written by a thread of its own.

A call is logged by the thread that serves it, the event loop's included. Written there,
a stderr that nobody reads (a test harness that read the ready line from a pipe and
then stopped reading, a stuck log collector) stopped the server once the pipe held
64 KiB: about 240 refused calls later, every call waited on the log. Here a record is
formatted by its caller and queued; the writer thread takes the waiting. Past
`QUEUED` records waiting, later ones are not kept but counted, and the next line
written says how many were lost, so that nothing is lost unseen.

(logging.handlers.QueueHandler and QueueListener are close, but a full queue is an
error there, not a count, and QueueListener.stop() waits without bound for a writer
stuck on a stderr nobody reads: an ending server would hang on its last lines.)
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import queue
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

import orjson

QUEUED = 10_000  # records waiting to be written (about 2 MB of lines)
DRAIN_SECONDS = 2.0  # how long an ending process waits for its last lines to be written


class JsonLines(logging.Formatter):
    """A record as one JSON object on one line (`--log-format json`), for a collector
    that reads fields rather than text: `time` (UTC, ISO 8601), `level`, `logger`,
    `message`, a call's fields as `call` (see policy: method, code, duration_ms, ...),
    a traceback as `exception` and a record's `stack_info` as `stack`."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        call = getattr(record, "call", None)
        if call is not None:
            fields["call"] = call
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if record.stack_info:  # (`stack_info=True`: where it was logged from; was dropped)
            fields["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(fields, default=str).decode()
        except TypeError:
            # orjson takes no lone surrogate (a path of bytes that are not UTF-8, as a
            # --gcs-root given so, read with surrogateescape): the record was dropped,
            # the ready line among them, with a traceback of the logging module's on
            # stderr. json escapes it (\udcff), as the text form's stderr does.
            return json.dumps(fields, default=str, separators=(",", ":"))


def _notice(text: str, formatter: logging.Formatter) -> str:
    """A line of the sink's own (not a record's), in the form of the others."""
    if isinstance(formatter, JsonLines):
        return formatter.format(logging.makeLogRecord(
            {"name": "footfall.log", "levelname": "WARNING", "levelno": logging.WARNING,
             "msg": text}))
    return text


class _Queued(logging.Handler):
    """Formats each record on its caller's thread and queues the line, never waiting."""

    def __init__(self, lines: queue.Queue[str | None]) -> None:
        super().__init__()
        self.lines = lines
        self.lost = 0  # lines not queued since the last one that was

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        try:  # (handle() holds the handler's lock: the count and its notice stay in order)
            self.say_lost()
            self.lines.put_nowait(line)
        except queue.Full:
            self.lost += 1

    def say_lost(self, seconds: float | None = None) -> None:
        """Queue the notice of the lines lost since the last one queued, if any, at once
        or (`seconds`) waiting that long at most for room; queue.Full if there is none."""
        if self.lost:
            self.lines.put(_notice(
                f"footfall: {self.lost} log lines were lost: stderr was not read while "
                "they came (send it to a file, or read it to its end)",
                self.formatter or logging.Formatter()),
                block=seconds is not None, timeout=seconds)
            self.lost = 0


class _Writer(threading.Thread):
    """Writes the queued lines to `stream` until it takes None."""

    def __init__(self, lines: queue.Queue[str | None], stream: TextIO) -> None:
        super().__init__(name="footfall-log", daemon=True)  # never holds up an exit
        self.lines = lines
        self.stream = stream

    def run(self) -> None:
        while (line := self.lines.get()) is not None:
            with contextlib.suppress(OSError, ValueError):  # a closed stderr: nothing to do
                self.stream.write(line + "\n")
                self.stream.flush()


@contextlib.contextmanager
def logging_to_stderr(level: int | str, fmt: str, stream: TextIO | None = None,
                      queued: int = QUEUED, json_lines: bool = False) -> Iterator[None]:
    """The root logger writes to `stream` (stderr) through a queue of `queued` lines
    while the block runs, each formatted by `fmt` (or, `json_lines`, as JsonLines);
    at its end what is queued is written, waiting `DRAIN_SECONDS` at most."""
    lines: queue.Queue[str | None] = queue.Queue(queued)
    handler = _Queued(lines)
    handler.setFormatter(JsonLines() if json_lines else logging.Formatter(fmt))
    writer = _Writer(lines, stream or sys.stderr)
    # The server takes its signals on one thread with sigwait, every other one having
    # them blocked (see app.serve and processes.run): this one takes none. A thread
    # inherits the signal mask of the one starting it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        writer.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    root = logging.getLogger()
    level_before = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level_before)
        with contextlib.suppress(queue.Full):  # (a writer stuck on a full pipe)
            # Lines lost with no line after them to say so are said here, not lost unseen.
            handler.acquire()  # (as emit is called: the count stays its own)
            try:
                handler.say_lost(DRAIN_SECONDS)
            finally:
                handler.release()
            lines.put(None, timeout=DRAIN_SECONDS)
        writer.join(DRAIN_SECONDS)
