"""Import throughput: Footfall's ImportUserEvents beside a json_format baseline.

The baseline reads the same files, converts each line with `json_format.Parse`,
and inserts rows in batches of 1,000 into a SQLite table of the same shape, one
durable commit per batch: what a straightforward importer would do.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import grpc
from footfall.retail.v2 import import_config_pb2, user_event_pb2, user_event_service_pb2_grpc
from google.protobuf import json_format

from bench.common import (
    PARENT,
    footfall,
    postgres_available,
    postgres_database,
    summary,
    wait_done,
)
from bench.data import temp_dir, write_files
from server.store import EventRow
from server.store.migrations import MIGRATIONS, statement_for


def baseline(files: list[Path], db: Path) -> float:
    """events/s of parse-with-json_format + batched durable inserts."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for _, _, statements in MIGRATIONS:
        for statement in statements:
            if callable(statement):  # fills what an older store held: nothing here
                continue
            sql = statement_for(statement, "sqlite")
            if sql is not None:
                conn.execute(sql)
    conn.execute("INSERT INTO catalogs (name) VALUES (?)", (PARENT,))
    insert = ("INSERT OR IGNORE INTO user_events (catalog_id, event_type, visitor_id, user_id, "
              "event_time_us, event_time_ns, joined, dedup_key, event, source, received_us, "
              "transport) "
              "VALUES ((SELECT id FROM catalogs WHERE name = ?),?,?,?,?,?,?,?,?,?,?,?)")
    count = 0
    start = time.perf_counter()
    rows = []
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                event = json_format.Parse(line, user_event_pb2.UserEvent())
                rows.append(EventRow.from_event(PARENT, event, True).as_params())
                if len(rows) == 1000:
                    conn.execute("BEGIN")
                    conn.executemany(insert, rows)
                    conn.execute("COMMIT")
                    count += len(rows)
                    rows = []
    if rows:
        conn.execute("BEGIN")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")
        count += len(rows)
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed


def footfall_import(total: int, files: int = 4, store: str | None = None) -> dict[str, float]:
    """events/s of ImportUserEvents from gs:// files into a fresh store (SQLite unless
    `store` names one), CPU per event and the peak RSS of the server and its import
    workers."""
    with footfall(store) as server:
        folder = server.workdir / "gcs" / "bench" / "events"
        write_files(folder, total, files)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
            request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
            request.input_config.gcs_source.input_uris.append("gs://bench/events/*.json")
            rss_before = server.peak_rss_kib()
            cpu_before = server.cpu_seconds()
            start = time.perf_counter()
            op = wait_done(channel, retail.ImportUserEvents(request))
            elapsed = time.perf_counter() - start
            cpu = server.cpu_seconds() - cpu_before
            peak_rss = server.peak_rss_kib()
        meta = import_config_pb2.ImportMetadata()
        op.metadata.Unpack(meta)
        if meta.success_count != total or op.HasField("error"):
            raise RuntimeError(f"import stored {meta.success_count} of {total}: {op.error}")
        return {"per_second": total / elapsed, "seconds": elapsed,
                "cpu_us_per_event": cpu / total * 1e6, "peak_rss_mib": peak_rss / 1024,
                "rss_before_mib": rss_before / 1024}


def run(total: int = 1_000_000, small: int = 10_000, reps: int = 3) -> dict[str, Any]:
    """Footfall vs baseline events/s at `total` events (`reps` times each), and the
    peak RSS of an import of `total` against one of `small`."""
    folder = temp_dir("footfall-bench-import-")
    try:
        files = write_files(folder / "events", total)
        base = [baseline(files, folder / f"baseline-{k}.db") for k in range(reps)]
        for db in folder.glob("baseline-*"):
            db.unlink()
        ours = [footfall_import(total) for _ in range(reps)]
        tiny = [footfall_import(small) for _ in range(reps)]
        on_postgres = []
        if postgres_available():
            for _ in range(reps):
                with postgres_database() as url:
                    on_postgres.append(footfall_import(total, store=url))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base_rate = summary(base)
    our_rate = summary([r["per_second"] for r in ours])
    big_rss = summary([r["peak_rss_mib"] for r in ours])
    small_rss = summary([r["peak_rss_mib"] for r in tiny])
    pg = summary([r["per_second"] for r in on_postgres]) if on_postgres else None
    return {
        "footfall_cpu_us_per_event": summary([r["cpu_us_per_event"] for r in ours]),
        "postgres_per_second": pg,
        "postgres_to_sqlite": pg["median"] / our_rate["median"] if pg else None,
        "events": total,
        "baseline_per_second": base_rate,
        "footfall_per_second": our_rate,
        "ratio": our_rate["median"] / base_rate["median"],
        "peak_rss_mib": {str(total): big_rss, str(small): small_rss},
        "rss_ratio": big_rss["median"] / small_rss["median"],
    }
