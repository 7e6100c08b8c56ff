"""line_pool: the next item made in a thread while the caller uses the one before (`ahead`);
the workers of a server process kept to one core run on all of its cores."""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.retail import line_pool
from server.retail.line_pool import LinePool, WorkersLost, ahead

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


def echo(fixed: None, x: int) -> int:
    return x


def started_pool() -> tuple[LinePool, int]:
    """A pool of one worker process, started (it answered), and that worker's pid."""
    pool = LinePool(1)
    assert list(pool.ordered_map(echo, None, iter([(0, 0)]))) == [(0, 0)]
    [worker] = multiprocessing.active_children()
    assert worker.pid is not None
    return pool, worker.pid


def test_close_ends_a_stopped_worker() -> None:
    """A SIGTERM's close waited for ever for a worker stopped (SIGSTOP) or swapped out."""
    pool, worker = started_pool()
    os.kill(worker, signal.SIGSTOP)
    closing = threading.Thread(target=pool.close, daemon=True)
    try:
        closing.start()
        closing.join(line_pool.CLOSE_SECONDS + 20)
        assert not closing.is_alive(), "close waited for the stopped worker"
        # (killed, not waited for: gone within moments, which a loaded CI's stop-64 run
        # had not yet seen as close returned; a worker not killed stays stopped for ever)
        gone_by = time.monotonic() + 10
        while multiprocessing.active_children():
            assert time.monotonic() < gone_by, multiprocessing.active_children()
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)


class Stop(Exception):
    pass


def test_a_wait_for_a_stopped_worker_ends_at_a_stop() -> None:
    """A job waiting for a chunk its stopped worker owes stops when the server does,
    not once the chunk's allowance has passed."""
    pool, worker = started_pool()
    os.kill(worker, signal.SIGSTOP)
    stopping = threading.Event()

    def check_stop() -> None:
        if stopping.is_set():
            raise Stop

    try:
        answers = pool.ordered_map(echo, None, iter([(1, 1)]), check_stop=check_stop)
        threading.Timer(0.5, stopping.set).start()
        started = time.monotonic()
        with pytest.raises(Stop):
            next(answers)
        assert time.monotonic() - started < line_pool.WAIT_SECONDS / 2
    finally:
        pool.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)


def sleeps(seconds: float, x: int) -> int:
    time.sleep(seconds)
    return x


def test_a_close_with_no_map_in_progress_ends_the_workers_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """At a server's stop its jobs have ended their maps: what the workers still decode
    (a worker still starting takes, once up, the chunk queued for it) is nobody's, and
    close waited CLOSE_SECONDS for it (a SIGTERM as an import's workers started took
    2.4 s) before it killed them."""
    monkeypatch.setattr(line_pool, "CLOSE_SECONDS", 60.0)
    pool = LinePool(1)

    def stop() -> None:  # (the server stops as the map waits for its first answer)
        raise Stop

    with pytest.raises(Stop):
        next(pool.ordered_map(sleeps, 600.0, iter([(0, 0)]), check_stop=stop))
    [worker] = multiprocessing.active_children()
    started = time.monotonic()
    pool.close()
    assert time.monotonic() - started < 10.0, "close waited for a chunk nobody awaits"
    assert not worker.is_alive()


def dies_at(fixed: int, x: int) -> int:
    if x == fixed:
        os._exit(3)
    return x


def test_a_chunk_that_kills_its_worker_ends_the_map_with_workers_lost() -> None:
    pool = LinePool(2)
    try:
        answers = pool.ordered_map(dies_at, 5, ((f"chunk {i}", i) for i in range(9)))
        got = []
        with pytest.raises(WorkersLost) as lost:
            for _, x in answers:
                got.append(x)
        assert got == [0, 1, 2, 3, 4]  # in order, each once: those after are not given
        assert (lost.value.key, lost.value.reason, lost.value.times) == ("chunk 5", "died", 3)
        assert pool.replaced["died"] >= line_pool.MAX_LOSSES
        # the next map starts others
        assert list(pool.ordered_map(echo, None, iter([(0, 7)]))) == [(0, 7)]
    finally:
        pool.close()


SLOW_SECONDS = 3.0  # (longer than the workers take to start and die on a loaded machine)


def slow_or_dies_at(fixed: tuple[int, int], x: int) -> int:
    """x, but the worker dies at `fixed[0]` and takes SLOW_SECONDS over `fixed[1]`."""
    deadly, slow = fixed
    if x == deadly:
        os._exit(3)
    if x == slow:
        time.sleep(SLOW_SECONDS)
    return x


@pytest.mark.timeout(120)
def test_the_loss_is_laid_on_the_chunk_that_kills_not_on_one_decoded_beside_it() -> None:
    """The chunk before the deadly one is still decoded when the deadly one kills its
    worker: it was blamed (the oldest not yet answered), and named as the one at fault.
    Each chunk the workers owed is decoded again alone: only the deadly one is lost."""
    pool = LinePool(2)
    try:
        answers = pool.ordered_map(slow_or_dies_at, (5, 4),
                                   ((f"chunk {i}", i) for i in range(9)))
        got = []
        with pytest.raises(WorkersLost) as lost:
            for _, x in answers:
                got.append(x)
        assert got == [0, 1, 2, 3, 4]
        assert (lost.value.key, lost.value.reason, lost.value.times) == ("chunk 5", "died", 3)
        # (once with the others, then MAX_LOSSES times alone)
        assert pool.replaced == {"died": line_pool.MAX_LOSSES + 1, "hung": 0}
        assert len(multiprocessing.active_children()) <= 2  # (none on probation left)
    finally:
        pool.close()


@pytest.mark.timeout(120)
def test_a_chunk_that_kills_its_worker_ends_its_own_map_not_one_beside_it() -> None:
    """Two maps share the workers; one has a deadly chunk, the other a slow one decoded
    while it kills them: the other was blamed for every loss and ended with the first;
    now it gives every answer, in order, each once."""
    pool = LinePool(2)
    try:
        outcomes: dict[str, object] = {}

        def run(name: str, fixed: tuple[int, int]) -> None:
            got = []
            try:
                for _, x in pool.ordered_map(slow_or_dies_at, fixed,
                                             ((f"{name} {i}", i) for i in range(9))):
                    got.append(x)
            except WorkersLost as lost:
                outcomes[name] = (got, lost.key)
            else:
                outcomes[name] = (got, None)

        maps = [threading.Thread(target=run, args=("deadly", (2, -1))),
                threading.Thread(target=run, args=("innocent", (-1, 0)))]
        for each in maps:
            each.start()
        for each in maps:
            each.join()
        assert outcomes == {"deadly": ([0, 1], "deadly 2"),
                            "innocent": (list(range(9)), None)}
        assert pool.replaced == {"died": line_pool.MAX_LOSSES + 1, "hung": 0}
    finally:
        pool.close()


def hangs_at(fixed: int, x: int) -> int:
    if x == fixed:
        time.sleep(600)
    return x


@pytest.mark.timeout(120)
def test_a_chunk_that_hangs_alone_ends_the_map_once_past_its_allowance_each_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk owed past its allowance is decoded again alone, and taken for hung there
    too: the map ends saying so, the workers given up on counted as hung."""
    monkeypatch.setattr(line_pool, "WAIT_SECONDS", 2.0)
    pool = LinePool(1)
    try:
        with pytest.raises(WorkersLost) as lost:
            list(pool.ordered_map(hangs_at, 1, ((f"chunk {i}", i) for i in range(3))))
        assert (lost.value.key, lost.value.reason, lost.value.times) == ("chunk 1", "hung", 3)
        assert pool.replaced == {"died": 0, "hung": line_pool.MAX_LOSSES + 1}
    finally:
        pool.close()


def dies_once(folder: str, x: str) -> str:
    """x ("<how> <name>"), but the first time the worker dies (a file in `folder` keeps
    count); then, for "hangs", it hangs (saying so by another file)."""
    how, _, name = x.partition(" ")
    marker = Path(folder) / name
    if not marker.exists():
        marker.touch()
        os._exit(3)
    if how == "hangs":
        (Path(folder) / f"{name}-hangs").touch()
        time.sleep(600)
    return x


def wait_for(what: str, done: Callable[[], bool]) -> None:
    ends = time.monotonic() + 60
    while not done():
        assert time.monotonic() < ends, f"still waiting for {what}"
        time.sleep(0.05)


@pytest.mark.timeout(120)
def test_a_map_stopped_while_its_suspect_is_decoded_alone_does_not_hold_up_the_next(
        tmp_path: Path) -> None:
    """A map stops (a SIGTERM, a cancel) while its suspect hangs on probation: the
    worker is killed (not counted: nothing was lost), and another map's suspect is
    decoded by a new one, not queued behind the hung chunk until taken for hung too."""
    pool = LinePool(1)
    stopping = threading.Event()
    outcomes: dict[str, object] = {}

    def check_stop() -> None:
        if stopping.is_set():
            raise Stop

    def run(name: str, how: str, check: Callable[[], None]) -> None:
        try:
            outcomes[name] = list(pool.ordered_map(dies_once, str(tmp_path),
                                                   iter([(name, f"{how} {name}")]),
                                                   check_stop=check))
        except Stop:
            outcomes[name] = "stopped"

    maps = [threading.Thread(target=run, args=("a", "hangs", check_stop))]
    try:
        maps[0].start()
        wait_for("a's chunk decoded alone", (tmp_path / "a-hangs").exists)
        maps.append(threading.Thread(target=run, args=("b", "answers", lambda: None)))
        maps[1].start()
        wait_for("b's chunk to kill its workers", lambda: pool.replaced["died"] == 2)
        stopping.set()
        for each in maps:
            each.join()
        assert outcomes == {"a": "stopped", "b": [("b", "answers b")]}
        assert pool.replaced == {"died": 2, "hung": 0}
    finally:
        stopping.set()
        pool.close()
