"""Under `--log-format json`, the lines others write on the server's stderr, as JSON too.

Our own records are JSON (logsink.JsonLines), but grpc's C core logs through absl
straight to file descriptor 2 (`I1206 15:07:40.520016 16731 ssl_transport_security.cc:2563]
Handshake failed ...` for each failed TLS handshake), and so do Python's warnings and
tracebacks printed outside logging: a collector reading one object a line choked on
them. grpcio 1.85 offers no way to route its log to Python's logging (gpr_set_log_function
went with the move to absl; GRPC_VERBOSITY sets only how much it says), so descriptor 2
becomes a pipe, and what comes through it is written to the real stderr by a relay
process, each line that is not JSON already as an object of its own: `time`, `level`,
`logger` ("grpc" for absl's lines, with `source`, else "stderr") and `message`.

The relay is a process, not a thread: a line written just before the server dies
(absl's FATAL, a crash) is in the pipe, and a thread of the dead process would never
write it; the relay writes what the pipe holds until every writer (this process and
the processes it started, which inherit descriptor 2) has closed it, then exits. It is
forked before any thread starts, ignores the signals that stop the server, and our own
records skip it, written to the real stderr directly (so a line of grpc's may come a
little after a record logged after it).

grpc writes some of its lines for what a client sent, before any call reaches the
server's code and so before any key is asked for: a malformed `grpc-timeout` or
`grpc-encoding` header is a line each (`hpack_parser.cc:1048] Error parsing
'grpc-timeout' metadata: invalid value`). One connection sending such headers on calls
it resets at once had 83,000 lines a second written (13 MB/s of log under `--log-format
json`, 15 MB/s as text), with no key. So the relay runs under `--log-format text` too
(writing the lines as they came), and writes at most GRPC_LINES of grpc's lines of one
place in its code (file:line) every WINDOW_SECONDS, then one line saying how many more
there were; a FATAL line, and every line not grpc's (a traceback), is always written.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import secrets
import select
import signal
import time
from typing import TextIO

from server.logsink import DRAIN_SECONDS

# absl's prefix: severity, MMDD, time, thread id, file:line.
_ABSL = re.compile(rb"([IWEF])\d{4} [0-9:.]+ +\d+ ([^\]\s]+)\] ?(.*)")
_ABSL_LEVELS = {b"I": "INFO", b"W": "WARNING", b"E": "ERROR", b"F": "CRITICAL"}
_JSON_LINE = b'{"time":'  # (the start of every logsink.JsonLines line)
# Lines that say why a server stops: a bad setting (`footfall serve: error: --processes
# 2 needs a store ...`, then exit 2) and an exception no handler caught. A collector
# alerting on ERROR was told neither: they came as WARNING, as any other line.
_ERROR = re.compile(rb"footfall[\w -]*: error: .*|Traceback \(most recent call last\):")
GRPC_LINES = 100  # of one place in grpc's code, at most, every WINDOW_SECONDS
WINDOW_SECONDS = 10.0


def as_json_line(raw: bytes) -> bytes:
    """`raw` (a line, its newline included or not) as one JSON line: as it is if it is
    one of ours (a --processes child's records), else wrapped."""
    line = raw.rstrip(b"\r\n")
    if line.startswith(_JSON_LINE) and _is_object(line):
        return line + b"\n"
    absl = _ABSL.fullmatch(line)
    if absl is not None:
        return _json_line(_ABSL_LEVELS[absl[1]], "grpc", absl[3].decode(errors="replace"),
                          absl[2].decode(errors="replace"))
    return _json_line("ERROR" if _ERROR.fullmatch(line) else "WARNING", "stderr",
                      line.decode(errors="replace"))


def _is_object(line: bytes) -> bool:
    """Whether `line` is one JSON object: a child's record longer than the pipe's
    atomic write (4 KiB: a traceback's) can come cut, or with another's inside it,
    and was passed on as it came, a line no collector could read."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def as_text_line(raw: bytes) -> bytes:
    """`raw` as it came, a line (`--log-format text`)."""
    return raw if raw.endswith(b"\n") else raw + b"\n"


def _json_line(level: str, logger: str, message: str, source: str | None = None) -> bytes:
    fields: dict[str, str] = {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"), "level": level, "logger": logger, "message": message}
    if source is not None:
        fields["source"] = source
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def _not_written(source: bytes, count: int, json_lines: bool) -> bytes:
    """The line that says `count` lines of grpc's from `source` were not written."""
    place = source.decode(errors="replace")
    message = (f"{count} more lines of grpc's from {place} in {WINDOW_SECONDS:g} s were not "
               f"written (at most {GRPC_LINES} of one place every {WINDOW_SECONDS:g} s: "
               f"grpc writes some for what a client sent, a malformed header say)")
    if json_lines:
        return _json_line("WARNING", "grpc", message, place)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    return f"{stamp} WARNING footfall.log: {message}\n".encode()


class _Windows:
    """How many lines of grpc's each place (file:line) has had written in its window of
    WINDOW_SECONDS, and how many not."""

    def __init__(self) -> None:
        self._open: dict[bytes, list[float]] = {}  # source: [window's end, written, not]

    def takes(self, source: bytes, now: float) -> bool:
        """Whether a line of `source` is written now (else it is counted)."""
        window = self._open.get(source)
        if window is None:
            window = self._open[source] = [now + WINDOW_SECONDS, 0, 0]
        if window[1] < GRPC_LINES:
            window[1] += 1
            return True
        window[2] += 1
        return False

    def ended(self, now: float, every: bool = False) -> list[tuple[bytes, int]]:
        """The places whose window has ended (`every`: all), forgotten, with the count
        of their lines not written where some were not."""
        done = [source for source, window in self._open.items() if every or window[0] <= now]
        return [(source, int(window[2])) for source in done
                if (window := self._open.pop(source))[2]]

    def wait(self, now: float) -> float | None:
        """Seconds until the first window holding lines not written ends (None: none)."""
        ends = [window[0] for window in self._open.values() if window[2]]
        return max(0.0, min(ends) - now) if ends else None


def _relay(pipe: int, out: int, mark: bytes, drained: int, json_lines: bool = True) -> None:
    """Writes what comes through `pipe` to `out` (as JSON lines if `json_lines`, else
    as they came) until the pipe's end, grpc's lines within GRPC_LINES a place every
    WINDOW_SECONDS (all of them when GRPC_TRACE is set); `mark` read (a line of the
    server's, the last it writes there), a byte on `drained`: every line before it is
    written, and the counts of those not."""
    writable = True
    windows = _Windows()
    # An operator who turned grpc's tracers on asked for every line they write.
    limited = not os.environ.get("GRPC_TRACE", "").strip()
    shape = as_json_line if json_lines else as_text_line

    def write(line: bytes) -> None:
        nonlocal writable
        data = memoryview(line)
        while writable and data:
            try:
                data = data[os.write(out, data):]
            except OSError:  # a reader gone: the pipe is still read to its end, so
                writable = False  # that no writer ever waits on it

    def counts(every: bool = False) -> None:
        for source, count in windows.ended(time.monotonic(), every):
            write(_not_written(source, count, json_lines))

    def line(raw: bytes) -> None:
        if raw.endswith(mark):  # (after a line a child wrote without its end, if so)
            raw = raw[:-len(mark)]
            if raw:
                line(raw)
            counts(every=True)
            with contextlib.suppress(OSError):
                os.write(drained, b".")
                os.close(drained)
            return
        absl = _ABSL.match(raw)
        if absl is None or absl[1] == b"F" or not limited \
                or windows.takes(absl[2], time.monotonic()):
            write(shape(raw))

    held: list[bytes] = []  # (the start of a line not ended yet)
    while True:
        ready = select.select([pipe], [], [], windows.wait(time.monotonic()))[0]
        # (before the lines that came: a place that filled its window and went quiet
        # past its end had its next line counted against that window, not written)
        counts()
        if ready:
            data = os.read(pipe, 1 << 16)
            if not data:
                break
            if b"\n" not in data:
                held.append(data)
                continue
            *lines, rest = b"".join((*held, data)).split(b"\n")
            held = [rest] if rest else []
            for raw in lines:
                line(raw + b"\n")
    if held:
        line(b"".join(held))
    counts(every=True)
    os.close(pipe)


class Relay:
    """Descriptor 2 sent through a relay process that writes its lines (as JSON if
    `json_lines`) to the stderr this process had; `stream` is that stderr, for our own
    records."""

    def __init__(self, json_lines: bool = True) -> None:
        real = os.dup(2)
        pipe, into = os.pipe()
        self._drained, drained = os.pipe()
        self._mark = f"footfall-relay-drained-{secrets.token_hex(16)}\n".encode()
        self.pid = os.fork()
        if self.pid == 0:  # the relay
            try:
                os.close(into)
                os.close(self._drained)
                for taken in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(taken, signal.SIG_IGN)
                # (the stdout a harness may read to its end is not held open by the relay)
                null = os.open(os.devnull, os.O_RDWR)
                for kept in (0, 1, 2):
                    os.dup2(null, kept)
                _relay(pipe, real, self._mark, drained, json_lines)
            finally:
                os._exit(0)
        os.close(pipe)
        os.close(drained)
        os.dup2(into, 2)
        os.close(into)
        self.stream: TextIO = open(real, "w", encoding="utf-8",  # noqa: SIM115
                                   errors="backslashreplace", buffering=1)

    def close(self, seconds: float = DRAIN_SECONDS) -> None:
        """Descriptor 2 back to the real stderr, and the relay given `seconds` at most to
        write what the pipe holds: a harness that reads the log once the server has
        exited finds grpc's last lines there. What it holds is known by a mark written
        last: the relay's end is not waited for, as processes other than the server's
        hold the pipe too (multiprocessing's resource tracker, started with
        --processes, ends only after this process: each stop waited the whole
        `seconds`). A process this one started that still writes goes on being
        relayed after it ends."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()
        with contextlib.suppress(OSError, ValueError):  # (a relay gone: EPIPE)
            # (a pipe's write end is writable with room for PIPE_BUF bytes: the mark's
            # write, shorter, does not wait on a relay stuck on its reader)
            if select.select([], [2], [], seconds)[1]:
                os.write(2, self._mark)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(self.stream.fileno(), 2)
        with contextlib.suppress(OSError, ValueError):  # (a byte, or its end: the relay gone)
            select.select([self._drained], [], [], max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            os.close(self._drained)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, os.WNOHANG)  # (reaped if it has ended)
