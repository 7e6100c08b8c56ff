"""The times the server gives events sent without one (server/clock.py EventStamps)."""

from __future__ import annotations

import threading

from server.clock import EventStamps, FixedClock

NOW_NS = 1_714_564_800 * 10**9


def test_stamps_follow_the_clock_and_never_repeat() -> None:
    clock = FixedClock(NOW_NS)
    stamps = EventStamps(clock)
    assert [stamps.now_ns() for _ in range(3)] == [NOW_NS, NOW_NS + 1, NOW_NS + 2]
    clock.advance(1)
    assert stamps.now_ns() == NOW_NS + 10**9
    clock.advance(-5)  # a clock set back: still after the last stamp
    assert stamps.now_ns() == NOW_NS + 10**9 + 1


def test_the_processes_of_one_server_never_give_one_time() -> None:
    # Two --processes reading the same nanosecond stamped two equal events alike, and
    # the dedup index kept one of the two acknowledged writes.
    clock = FixedClock(NOW_NS + 7)
    processes = [EventStamps(clock, index, 3) for index in range(3)]
    given: list[int] = []
    for _ in range(100):
        for stamps in processes:
            given.append(stamps.now_ns())
        clock.advance(1e-9)
    assert len(set(given)) == len(given)
    assert all(stamp % 3 == i % 3 for i, stamp in enumerate(given))
    assert min(given) >= NOW_NS + 7 and max(given) < NOW_NS + 7 + 3 * 100 + 3


def test_threads_stamping_at_once_get_times_of_their_own() -> None:
    stamps = EventStamps(FixedClock(NOW_NS))
    given: list[int] = []
    lock = threading.Lock()

    def stamp() -> None:
        mine = [stamps.now_ns() for _ in range(2000)]
        with lock:
            given.extend(mine)

    threads = [threading.Thread(target=stamp) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(given)) == len(given) == 8000
