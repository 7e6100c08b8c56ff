"""The server's log is written by a thread of its own: a stderr nobody reads holds up
no caller, and what could not be queued is said, not lost unseen."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import time

from server.logsink import JsonLines, logging_to_stderr


class StuckStream(io.StringIO):
    """A stream whose first write waits until released, as a full pipe does."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.released = threading.Event()

    def write(self, text: str) -> int:
        if not self.entered.is_set():
            self.entered.set()
            assert self.released.wait(30)
        return super().write(text)


def test_a_stuck_stream_holds_up_no_caller_and_the_lines_lost_are_counted() -> None:
    stream = StuckStream()
    log = logging.getLogger("test.logsink")
    with logging_to_stderr(logging.INFO, "%(levelname)s %(message)s", stream, queued=5):
        log.info("first")
        assert stream.entered.wait(30)  # the writer holds "first", stuck
        for n in range(8):  # 5 are queued, 3 are not; none of these calls waits
            log.info("line %d", n)
        stream.released.set()
        deadline = time.monotonic() + 30
        while "line 4" not in stream.getvalue():  # written: the queue has room again
            assert time.monotonic() < deadline
            time.sleep(0.01)
        log.warning("after")
    assert stream.getvalue().splitlines() == [
        "INFO first", *(f"INFO line {n}" for n in range(5)),
        "footfall: 3 log lines were lost: stderr was not read while they came (send it "
        "to a file, or read it to its end)",
        "WARNING after"]


def test_the_lines_queued_at_the_end_are_written_and_the_root_logger_given_back() -> None:
    stream = io.StringIO()
    before = list(logging.getLogger().handlers)
    with logging_to_stderr(logging.INFO, "%(message)s", stream):
        for n in range(100):
            logging.getLogger("test.logsink").info("%d", n)
    assert stream.getvalue().split() == [str(n) for n in range(100)]
    assert logging.getLogger().handlers == before


def test_lines_lost_just_before_the_end_are_said_at_the_end() -> None:
    stream = StuckStream()
    log = logging.getLogger("test.logsink")
    with logging_to_stderr(logging.INFO, "%(levelname)s %(message)s", stream, queued=2):
        log.info("first")
        assert stream.entered.wait(30)  # the writer holds "first", stuck
        for n in range(5):  # 2 are queued, 3 are not; no line comes after them
            log.info("line %d", n)
        stream.released.set()
    assert stream.getvalue().splitlines() == [
        "INFO first", "INFO line 0", "INFO line 1",
        "footfall: 3 log lines were lost: stderr was not read while they came (send it "
        "to a file, or read it to its end)"]


def test_json_lines_carry_a_calls_fields_a_traceback_and_the_notice_of_lines_lost() -> None:
    """README promised a call's fields "on the log record as `call`, for a JSON
    formatter", but `footfall serve` gave no way to have one: a collector that reads
    fields (Loki, Elasticsearch) had to parse the text. `--log-format json`."""
    stream = StuckStream()
    log = logging.getLogger("test.logsink")
    with logging_to_stderr(logging.INFO, "%(message)s", stream, queued=2, json_lines=True):
        log.info("first")
        assert stream.entered.wait(30)  # the writer holds "first", stuck
        log.info("call %s", "method=M code=OK", extra={"call": {"method": "M", "code": "OK"}})
        log.info("queued")
        log.info("not queued")
        stream.released.set()
        deadline = time.monotonic() + 30
        while '"queued"' not in stream.getvalue():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        log.info("after")  # the notice of the line lost comes before it
        while "after" not in stream.getvalue():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["level"], line["logger"], line["message"]) for line in lines] == [
        ("INFO", "test.logsink", "first"),
        ("INFO", "test.logsink", "call method=M code=OK"),
        ("INFO", "test.logsink", "queued"),
        ("WARNING", "footfall.log",
         "footfall: 1 log lines were lost: stderr was not read while they came (send it "
         "to a file, or read it to its end)"),
        ("INFO", "test.logsink", "after"),
        ("ERROR", "test.logsink", "failed")]
    assert lines[1]["call"] == {"method": "M", "code": "OK"}
    assert "ValueError: boom" in lines[5]["exception"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
               for line in lines)


def test_a_json_line_holds_a_path_that_is_not_utf8() -> None:
    """A path of bytes that are not UTF-8 (`--gcs-root $'/srv/g\\xff'`, read with
    surrogateescape) is written in the text form; as JSON, orjson refused its lone
    surrogate and the record was dropped, the ready line naming the gcs root among them,
    with a traceback of the logging module's on stderr. (The formatter alone: a record
    through the root logger is captured by pytest too, which xdist cannot send.)"""
    record = logging.makeLogRecord({"name": "footfall", "levelname": "INFO",
                                    "msg": "gcs root %s",
                                    "args": (os.fsdecode(b"/srv/g\xff"),)})
    line = JsonLines().format(record)
    assert "\n" not in line and json.loads(line)["message"] == "gcs root /srv/g\udcff"


def test_a_json_line_keeps_the_stack_a_record_was_logged_with() -> None:
    """`log.warning(..., stack_info=True)` (where a warning came from) was dropped
    from the JSON line, where the text form prints it below the message."""
    log = logging.getLogger("test.logsink.stack")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log.addHandler(handler)
    try:
        log.warning("from here", stack_info=True)
    finally:
        log.removeHandler(handler)
    line = json.loads(JsonLines().format(records[0]))
    assert line["message"] == "from here"
    assert line["stack"].startswith("Stack (most recent call last):")
    assert "test_a_json_line_keeps_the_stack_a_record_was_logged_with" in line["stack"]
    assert "\n" not in JsonLines().format(records[0])
