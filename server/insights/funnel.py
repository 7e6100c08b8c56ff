"""Funnels: how many entrants went through ordered steps within a window.

An entrant (a visitor, a session, a request, a job...) reaches step k when it
has events e1, ..., ek, in the order of (event time, storage order), with ei
matching step i and ek no later than e1 plus the window. Of all the ways to reach
its furthest step, the one counted (for the times between steps and the day of a
breakdown) is the earliest: the first start that gets that far, then at each
step the first event that matches.
"""

from __future__ import annotations

import bisect
import datetime
import heapq
import itertools
import statistics
from collections import Counter, defaultdict, deque
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

US_PER_DAY = 86_400_000_000


# One event as a funnel sees it: its group (None: the whole funnel), its entrant,
# its time in microseconds, its storage order (breaking ties between events of
# one time) and the steps it matches (bit i: step i). A plain tuple: millions
# are made per question.
Point = tuple[Hashable, Hashable, int, int, int]


@dataclass(frozen=True)
class StepCount:
    entrants: int
    # microseconds from the previous step, one per entrant that reached this step
    median_us: float | None


def path(points: Sequence[tuple[int, int, int]], steps: int, window_us: int) -> list[int]:
    """The times of the counted way through the funnel of one entrant's points
    ((time, order, step bits), sorted): one per step reached. Each start jumps
    from step to step by bisection, so a visitor of a million events (a bot)
    costs starts x steps x log, not starts x events."""
    # the positions of each step's points, in one pass over them
    by_bits: dict[int, list[int]] = defaultdict(list)
    for i, point in enumerate(points):
        by_bits[point[2]].append(i)
    at: list[list[int]] = []
    for k in range(steps):
        parts = [positions for bits, positions in by_bits.items() if bits >> k & 1]
        at.append(parts[0] if len(parts) == 1 else sorted(itertools.chain(*parts)))
    best: list[int] = []
    for start in at[0]:
        start_time = points[start][0]
        times, position = [start_time], start
        for matching in at[1:]:
            i = bisect.bisect_right(matching, position)
            if i == len(matching) or points[matching[i]][0] - start_time > window_us:
                break
            position = matching[i]
            times.append(points[position][0])
        if len(times) == steps:
            return times
        if len(times) > len(best):
            best = times
    return best


def kind_path(kinds: str, times: Sequence[int], steps: str, window_us: int) -> list[int]:
    """`path` for a funnel whose steps are event types alone, over one entrant's
    events in (time, order) order given as their kinds (a character per event
    type: `kinds`) and `times`; step i is an event of kind `steps[i]`. The next
    event of a step is found by str.find (in C) and kept for the later starts,
    whose every step lies no earlier; a start that cannot beat the one before is
    skipped. So an entrant costs a few steps of Python, not one per event."""
    first, rest = steps[0], steps[1:]
    found = [-1] * len(rest)  # per step: the last event found for it
    best: list[int] = []
    start = kinds.find(first)
    while start >= 0:
        start_time = times[start]
        reached, position = [start_time], start
        for k, kind in enumerate(rest):
            at = found[k]
            if at <= position:
                at = found[k] = kinds.find(kind, position + 1)
                if at < 0:  # none after this start's: no later start gets further
                    return reached if len(reached) > len(best) else best
            if times[at] - start_time > window_us:
                break
            position = at
            reached.append(times[at])
        else:
            return reached
        if len(reached) > len(best):
            best = reached
        # a start earlier than this step's event less the window misses it too
        start = kinds.find(first, max(start + 1, bisect.bisect_left(times, times[at] - window_us)))
    return best


class Walks:
    """The counted paths (see `path`) of each key's (a group's entrant's) points
    given in (time, order) order, one point at a time: what is held is each key's
    ways under way (their times) that started within the window before its latest
    point, and each key's path once known, never the points.

    A way that has reached step k takes the next point that matches step k+1,
    unless it is past the window from its start, when it can go no further. Ways
    at one step take the same next points: so each step holds a queue of ways, in
    the order of their starts, and the queues of later steps hold the earlier
    starts. The counted way is the earliest start of those that get furthest
    (`path` keeps a later one only when it gets further): a way past its window is
    done, and the earliest start is known as soon as a way reaches the last step,
    those that started before it being done short of it."""

    def __init__(self, steps: int, window_us: int) -> None:
        self.steps = steps
        self.window_us = window_us
        self.found: dict[Hashable, list[int]] = {}  # keys whose counted path is known
        self.best: dict[Hashable, list[int]] = {}  # the furthest way done, of the others
        self.ways: dict[Hashable, list[deque[list[int]]]] = {}  # per step, by start

    def add(self, key: Hashable, time_us: int, bits: int) -> None:
        """The next point of `key` (none earlier than its last, in (time, order))."""
        if key in self.found:
            return
        queues = self.ways.get(key)
        if queues is None:
            if not bits & 1:
                return  # (no start yet: no way takes it)
            queues = self.ways[key] = [deque() for _ in range(self.steps)]
        oldest = time_us - self.window_us
        for queue in reversed(queues):  # the earliest starts first
            while queue and queue[0][0] < oldest:
                self._done(key, queue.popleft())
            if queue:
                break  # every later start is within the window too
        last = self.steps - 1
        for k in range(last - 1, -1, -1):  # (from the last: a point takes a way one step)
            if bits >> (k + 1) & 1 and queues[k]:
                moving = queues[k]
                for times in moving:
                    times.append(time_us)
                queues[k + 1].extend(moving)
                moving.clear()
        if bits & 1:
            queues[0].append([time_us])
        if queues[last]:
            self.found[key] = queues[last][0]
            del self.ways[key]
            self.best.pop(key, None)

    def _done(self, key: Hashable, times: list[int]) -> None:
        if len(times) > len(self.best.get(key, ())):
            self.best[key] = times

    def paths(self) -> dict[Hashable, list[int]]:
        """Each key's counted path: those of keys with a start, when every point
        has been added."""
        for key, queues in self.ways.items():
            for queue in reversed(queues):
                for times in queue:
                    self._done(key, times)
        self.ways.clear()
        self.best.update(self.found)
        return self.best


def leading_paths(paths: dict[Any, list[int]], top: int
                  ) -> tuple[dict[Any, list[int]], int]:
    """As `leading`, of the counted paths of each (group, entrant): an entrant is at
    the first step when its path is not empty."""
    first: Counter[Hashable] = Counter(group for (group, _), times in paths.items()
                                       if group is not None and times)
    kept = set(heapq.nsmallest(top, first, key=lambda group: (-first[group], str(group))))
    return ({key: times for key, times in paths.items() if key[0] is None or key[0] in kept},
            len(first))


# Each (group, entrant)'s points: (time, order, step bits), in any order.
Trails = dict[tuple[Hashable, Hashable], list[tuple[int, int, int]]]


def gather(points: Iterable[Point]) -> Trails:
    """The trails of `points`, those that match a step."""
    trails: Trails = defaultdict(list)
    for group, entrant, time_us, order, steps_matched in points:
        if steps_matched:
            trails[group, entrant].append((time_us, order, steps_matched))
    return trails


def leading(trails: Trails, top: int) -> tuple[Trails, int]:
    """`trails` with only the whole funnel's and those of the `top` groups with
    the most entrants at the first step (ties by the key's text, as an answer
    orders them), and how many groups have an entrant there. An entrant is at the
    first step when a point of its trail matches it: that is known without its
    path, so a breakdown walks the paths of the groups it keeps only, not of
    every product or job its events name (hundreds of thousands, from a few
    events that name that many)."""
    first: Counter[Hashable] = Counter()
    for (group, _), trail in trails.items():
        if group is not None and any(bits & 1 for _, _, bits in trail):
            first[group] += 1
    kept = set(heapq.nsmallest(top, first, key=lambda group: (-first[group], str(group))))
    return ({key: trail for key, trail in trails.items() if key[0] is None or key[0] in kept},
            len(first))


def count(trails: Trails, steps: int, window_us: int,
          by_day: bool = False) -> dict[Hashable, list[StepCount]]:
    """The step counts of each group (None: the whole) of the trails of its
    entrants, each with at least one step bit; `by_day`: also of each day
    (YYYY-MM-DD) of the whole's first steps."""

    def paths() -> Iterator[tuple[Hashable, list[int]]]:
        for (group, _), trail in trails.items():
            trail.sort()
            yield group, path(trail, steps, window_us)

    return tally(paths(), steps, by_day)


def tally(paths: Iterable[tuple[Hashable, list[int]]], steps: int,
          by_day: bool = False) -> dict[Hashable, list[StepCount]]:
    """The step counts of each group from the counted paths (the times of the
    steps reached) of its entrants; `by_day`: also of each day of the whole's
    first steps."""
    reached: dict[Hashable, list[list[int]]] = defaultdict(lambda: [[] for _ in range(steps)])
    for group, times in paths:
        keys = [group, day(times[0])] if by_day and group is None and times else [group]
        for key in keys:
            for i, time in enumerate(times):
                reached[key][i].append(time - times[i - 1] if i else 0)
    return {key: [StepCount(len(gaps), statistics.median(gaps) if gaps and i else None)
                  for i, gaps in enumerate(per_step)]
            for key, per_step in reached.items()}


def day(time_us: int) -> str:
    """The UTC day (YYYY-MM-DD) of a time in microseconds."""
    return (datetime.date(1970, 1, 1)
            + datetime.timedelta(days=time_us // US_PER_DAY)).isoformat()
