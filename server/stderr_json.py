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
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import signal
import time
from typing import TextIO

from server.logsink import DRAIN_SECONDS

# absl's prefix: severity, MMDD, time, thread id, file:line.
_ABSL = re.compile(rb"([IWEF])\d{4} [0-9:.]+ +\d+ ([^\]\s]+)\] ?(.*)")
_ABSL_LEVELS = {b"I": "INFO", b"W": "WARNING", b"E": "ERROR", b"F": "CRITICAL"}
_JSON_LINE = b'{"time":'  # (the start of every logsink.JsonLines line)


def as_json_line(raw: bytes) -> bytes:
    """`raw` (a line, its newline included or not) as one JSON line: as it is if it is
    one of ours (a --processes child's records), else wrapped."""
    line = raw.rstrip(b"\r\n")
    if line.startswith(_JSON_LINE):
        return line + b"\n"
    fields: dict[str, str] = {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")}
    absl = _ABSL.fullmatch(line)
    if absl is not None:
        fields.update(level=_ABSL_LEVELS[absl[1]], logger="grpc",
                      message=absl[3].decode(errors="replace"),
                      source=absl[2].decode(errors="replace"))
    else:
        fields.update(level="WARNING", logger="stderr", message=line.decode(errors="replace"))
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def _relay(pipe: int, out: int) -> None:
    """Writes what comes through `pipe` to `out` as JSON lines until the pipe's end."""
    writable = True
    with open(pipe, "rb") as lines:
        for raw in lines:
            data = memoryview(as_json_line(raw))
            while writable and data:
                try:
                    data = data[os.write(out, data):]
                except OSError:  # a reader gone: the pipe is still read to its end, so
                    writable = False  # that no writer ever waits on it


class Relay:
    """Descriptor 2 sent through a relay process that writes its lines as JSON to the
    stderr this process had; `stream` is that stderr, for our own JSON records."""

    def __init__(self) -> None:
        real = os.dup(2)
        pipe, into = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the relay
            try:
                os.close(into)
                for taken in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(taken, signal.SIG_IGN)
                # (the stdout a harness may read to its end is not held open by the relay)
                null = os.open(os.devnull, os.O_RDWR)
                for kept in (0, 1, 2):
                    os.dup2(null, kept)
                _relay(pipe, real)
            finally:
                os._exit(0)
        os.close(pipe)
        os.dup2(into, 2)
        os.close(into)
        self.stream: TextIO = open(real, "w", encoding="utf-8",  # noqa: SIM115
                                   errors="backslashreplace", buffering=1)

    def close(self, seconds: float = DRAIN_SECONDS) -> None:
        """Descriptor 2 back to the real stderr, and the relay given `seconds` at most to
        write what it holds and end (it ends once the processes this one started, which
        hold the pipe too, have ended): a harness that reads the log once the server
        has exited finds grpc's last lines there."""
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()
            os.dup2(self.stream.fileno(), 2)
        deadline = time.monotonic() + seconds
        while True:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(self.pid, os.WNOHANG)[0] == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
            return
