"""bench.soak's probe inside the server's processes: put this folder on PYTHONPATH and
set SOAK_PROBE to a folder, and every Python process started so (the server,
the processes of --processes, import and encoder workers: spawned interpreters all)
writes a JSON line every SOAK_PROBE_SECONDS (30) to FOLDER/probe-PID.jsonl:
its asyncio tasks (by coroutine), its live objects by type (gc), its threads by name,
and with SOAK_TRACEMALLOC=FRAMES the lines whose allocations grew most since
the SOAK_TRACEMALLOC_BASE'th sample (3), and with SOAK_MALLOC_TRIM=1 its RSS before and
after a malloc_trim(0) at each sample. No server code is changed: the probe
is a daemon thread started by Python's own `sitecustomize` hook.
"""

from __future__ import annotations

import os
from collections.abc import Callable

_FOLDER = os.environ.get("SOAK_PROBE")


def _probe(folder: str) -> None:
    import asyncio
    import collections
    import gc
    import json
    import sys
    import threading
    import time
    import tracemalloc

    seconds = float(os.environ.get("SOAK_PROBE_SECONDS", "30"))
    frames = int(os.environ.get("SOAK_TRACEMALLOC", "0"))
    base_at = int(os.environ.get("SOAK_TRACEMALLOC_BASE", "3"))
    # (a snapshot holds the interpreter for seconds, tens on a loaded machine: taken
    # at the base and every this many samples after it, the traced total every time)
    every = int(os.environ.get("SOAK_TRACEMALLOC_EVERY", "8"))
    if frames:
        tracemalloc.start(frames)
    path = os.path.join(folder, f"probe-{os.getpid()}.jsonl")
    native = _native()

    def tasks_of(objects: list[object]) -> tuple[int, dict[str, int]]:
        """The asyncio tasks not done, by their coroutine's name (found among the
        objects: uvloop's loop is not, so asyncio.all_tasks cannot be asked)."""
        names: collections.Counter[str] = collections.Counter()
        for task in objects:
            if isinstance(task, asyncio.Task) and not task.done():
                coro = task.get_coro()
                names[getattr(coro, "__qualname__", type(coro).__name__)] += 1
        return sum(names.values()), dict(names.most_common(25))

    def run() -> None:
        base: tracemalloc.Snapshot | None = None
        sample = 0
        while True:
            time.sleep(seconds)
            sample += 1
            started = time.monotonic()
            objects = gc.get_objects()
            types = collections.Counter(type(o).__qualname__ for o in objects)
            task_count, task_names = tasks_of(objects)
            del objects
            record: dict[str, object] = {
                "time": time.time(), "sample": sample, "argv": sys.argv[:3],
                "objects": sum(types.values()), "types": dict(types.most_common(60)),
                "tasks": task_count, "task_names": task_names,
                "threads": dict(collections.Counter(
                    t.name.rstrip("0123456789_-") for t in threading.enumerate())),
                "gc_counts": gc.get_count(),
            }
            if frames:
                record["traced_bytes"] = tracemalloc.get_traced_memory()[0]
            if frames and (sample == base_at or sample > base_at
                           and (sample - base_at) % every == 0):
                snapshot = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)])
                if sample == base_at:
                    base = snapshot
                elif base is not None:
                    record["grown"] = [
                        {"where": str(stat.traceback[0]), "bytes": stat.size_diff,
                         "count": stat.count_diff,
                         "stack": [str(frame) for frame in stat.traceback]}
                        for stat in snapshot.compare_to(base, "traceback")[:15]]
            record.update(native())
            record["probe_seconds"] = round(time.monotonic() - started, 3)
            with open(path, "a") as out:
                out.write(json.dumps(record) + "\n")

    threading.Thread(target=run, name="soak-probe", daemon=True).start()


def _native() -> Callable[[], dict[str, int]]:
    """What the process's native heap holds: glibc's mallinfo2 (in use, and free but
    kept), SQLite's own count of its memory (its page caches, mostly), and Python's
    allocated blocks; the RSS beside them tells what grows where."""
    import ctypes
    import ctypes.util
    import sys

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    trim = os.environ.get("SOAK_MALLOC_TRIM") == "1"
    mallinfo2 = getattr(libc, "mallinfo2", None)
    if mallinfo2 is not None:
        mallinfo2.restype = MallInfo2
    sqlite_used: Callable[[], int] | None = None
    try:
        import _sqlite3  # the library the server's connections use, already loaded

        sqlite = ctypes.CDLL(_sqlite3.__file__)
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
        sqlite_used = sqlite.sqlite3_memory_used
    except (ImportError, OSError, AttributeError):
        pass

    def rss_kib() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    def heaps() -> int:
        """How many malloc arenas (heaps) glibc has made: one per thread that met a
        locked arena, up to 8 a core."""
        import tempfile

        with tempfile.TemporaryFile() as out:
            stream = libc.fdopen(os.dup(out.fileno()), b"w")
            if not stream:
                return -1
            libc.malloc_info(0, ctypes.c_void_p(stream))
            libc.fclose(ctypes.c_void_p(stream))
            out.seek(0)
            return out.read().count(b"<heap nr=")

    libc.fdopen.restype = ctypes.c_void_p

    def read() -> dict[str, int]:
        found = {"python_blocks": sys.getallocatedblocks(), "malloc_heaps": heaps()}
        if mallinfo2 is not None:
            info = mallinfo2()
            found.update(malloc_arena=info.arena, malloc_mmapped=info.hblkhd,
                         malloc_in_use=info.uordblks, malloc_free=info.fordblks)
        if sqlite_used is not None:
            found["sqlite_memory_used"] = sqlite_used()
        if trim:
            found["rss_before_trim_kib"] = rss_kib()
            libc.malloc_trim(0)
            found["rss_after_trim_kib"] = rss_kib()
        return found

    return read


if _FOLDER:
    _probe(_FOLDER)
