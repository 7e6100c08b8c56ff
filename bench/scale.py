"""Does cost grow with the table? Write throughput and the time to purge a fixed
slice of 10,000 events, with 100k, 1M and 10M events already stored."""

from __future__ import annotations

import os
import shutil
from typing import Any

from bench import write
from bench.common import PARENT, footfall, h2load
from bench.data import BASE_SECONDS, _rfc3339, fill_store, temp_dir
from bench.purge import footfall_purge

SLICE = 10_000


def one(stored: int, write_requests: int) -> dict[str, Any]:
    folder = temp_dir("footfall-bench-scale-")
    try:
        db = folder / "events.db"
        fill_store(f"sqlite:///{db}", PARENT, stored)
        filled = db.stat().st_size  # the store closed: its WAL is checkpointed and gone
        # Write the fill's dirty pages back first: at 10M (about 3 GB) the kernel would
        # otherwise flush them during the measurement, and every commit's fsync waits.
        os.sync()
        frame = write.frame_file()
        with footfall(f"sqlite:///{db}") as server:
            h2load(server.port, write.PATH, frame, 16, 500)
            load = h2load(server.port, write.PATH, frame, 16, write_requests)
            # the oldest SLICE events: a time range at the start of the table
            seconds, purged = footfall_purge(server.port, _rfc3339(BASE_SECONDS + SLICE))
        frame.unlink()
        if purged != min(SLICE, stored):
            raise RuntimeError(f"purged {purged}, expected {SLICE}")
        return {"stored": stored, "write_per_second": load.per_second,
                "write_p99_ms": load.p99_ms, "purge_10k_seconds": seconds,
                "db_mib": db.stat().st_size / 2**20, "bytes_per_event": filled / stored}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(sizes: tuple[int, ...] = (100_000, 1_000_000, 10_000_000),
        write_requests: int = 5_000) -> dict[str, Any]:
    points = [one(n, write_requests) for n in sizes]
    first, last = points[0], points[-1]
    return {"points": points,
            "write_ratio_largest_to_smallest": last["write_per_second"]
            / first["write_per_second"],
            "purge_ratio_largest_to_smallest": last["purge_10k_seconds"]
            / first["purge_10k_seconds"]}
