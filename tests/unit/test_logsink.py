"""The server's log is written by a thread of its own: a stderr nobody reads holds up
no caller, and what could not be queued is said, not lost unseen."""

from __future__ import annotations

import io
import logging
import threading
import time

from server.logsink import logging_to_stderr


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
