"""line_pool.ahead: the next item made in a thread while the caller uses the one before."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from server.retail.line_pool import ahead

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_items_come_in_order_made_in_the_callers_context() -> None:
    def made() -> Iterator[tuple[int, str]]:
        for i in range(5):
            yield i, WHO.get()

    WHO.set("the job")
    assert list(ahead(made())) == [(i, "the job") for i in range(5)]


def test_an_error_comes_after_the_items_before_it_and_the_source_is_closed() -> None:
    closed = []

    def made() -> Iterator[int]:
        try:
            yield 1
            raise RuntimeError("the third batch")
        finally:
            closed.append(True)

    got = []
    with pytest.raises(RuntimeError, match="the third batch"):
        for item in ahead(made()):
            got.append(item)
    assert got == [1] and closed == [True]


def test_stopping_early_closes_the_source_once_its_thread_is_done() -> None:
    closed = []

    def made() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed.append(True)

    items = ahead(made())
    assert next(items) == 0
    items.close()
    assert closed == [True]


def test_a_stuck_next_item_does_not_hold_the_process_at_exit() -> None:
    # A job thread (a daemon, as the operation runner's are) left behind at shutdown
    # while its next batch waits on a file system that does not answer.
    script = textwrap.dedent("""
        import threading, time
        from server.retail.line_pool import ahead

        def made():
            yield 1
            time.sleep(60)
            yield 2

        def job():
            for _ in ahead(made()):
                pass

        threading.Thread(target=job, daemon=True).start()
        time.sleep(0.5)
    """)
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=50)
    assert time.monotonic() - started < 20
