"""line_pool: the next item made in a thread while the caller uses the one before (`ahead`);
the workers of a server process kept to one core run on all of its cores."""

from __future__ import annotations

import contextvars
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

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


WORKERS_OF_A_KEPT_PROCESS = """
import os
import sys

from server import cores
from server.retail.line_pool import LinePool


def where(fixed: None, x: int) -> list[int]:
    return sorted(os.sched_getaffinity(0))


if __name__ == "__main__":
    every = sorted(os.sched_getaffinity(0))
    cores.keep_to(1, 2)
    kept = sorted(os.sched_getaffinity(0))
    pool = LinePool(-1)
    seen = [cpus for _, cpus in pool.ordered_map(where, None, iter([(0, 0), (1, 1)]))]
    pool.close()
    print(every, kept, pool.processes, seen)
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: nothing to keep to")
def test_the_workers_of_a_process_kept_to_one_core_run_on_all_its_cores(tmp_path: Path) -> None:
    """Under --processes a server process keeps to one core (server.cores); its
    import workers, one per core of the server's, work beside it on every core."""
    script = tmp_path / "kept.py"
    script.write_text(WORKERS_OF_A_KEPT_PROCESS)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    every = sorted(os.sched_getaffinity(0))
    assert out.split("\n")[0] == f"{every} {every[1:2]} {len(every)} {[every, every]}", out
