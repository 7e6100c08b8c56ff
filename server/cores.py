"""The cores a server process runs on (no grpc here: a --processes server process keeps to
one before grpc starts a thread).

Under `--processes N` each server process keeps to one core of those the server may
run on (process i to the i-th) when there are at least N: with more processes than
cores, a core would serve two processes where another served one, and the kernel
spreads connections evenly over the processes, not the cores. Left to float, the
processes' loops and writers moved between the cores, and each hand-over of a
process's GIL between its loop and its writer woke a thread on the other core: 16
callers of durable writes over two processes cost 1.35× the CPU a write of one
process, 0.98× so kept (bench/ANALYSIS.md, "Two server processes"). The worker
processes a server process starts (imports' line workers, the encoder) do work
beside it, and run on all the cores again.
"""

from __future__ import annotations

import os

# The cores this process could run on before it kept to one (None: it never did).
_allowed: frozenset[int] | None = None


def allowed() -> frozenset[int]:
    """The cores this process, and the workers it starts, may run on (those it could
    before it kept to one)."""
    if _allowed is not None:
        return _allowed
    return frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else frozenset(range(os.cpu_count() or 1))


def keep_to(index: int, count: int) -> int | None:
    """Keep this process, the `index`-th of `count`, to the `index`-th of its cores: the
    calling thread, and every thread and process it starts after. Call it before any
    other thread starts. The core, or None where there is only one, fewer than `count`,
    or no way to say (not Linux)."""
    global _allowed
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or len(cores) < count:
        return None
    _allowed = frozenset(cores)
    core = cores[index]
    os.sched_setaffinity(0, {core})
    return core


def spread(cores: frozenset[int]) -> None:
    """In a worker process a server process started: run on `cores` again (its
    `allowed()`), not on the one core the server process keeps to."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
