"""`footfall copy`: a SQLite store moved to PostgreSQL (and back) keeps everything the
official clients wrote and the console shows, row for row with its ids, and a new
event after the move gets an id no event had, so that a watch that follows ids goes
on; a target that holds anything is refused, and left as it was."""

from __future__ import annotations

import datetime
import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2, talent_v4

from .console import rest
from .support import (
    CLI_DEADLINE,
    RPC_DEADLINE,
    ServerProcess,
    communicate_while_working,
    finish,
    product_client,
    retail_client,
    run_while_working,
    running_server,
    sqlite_url,
    talent_client,
    wait_until,
)

PROJECT = "projects/moving"
CATALOG = f"{PROJECT}/locations/global/catalogs/default_catalog"
BRANCH = f"{CATALOG}/branches/0"
TENANT = f"{PROJECT}/tenants/jobs"
# The tests that copy hundreds of MB (large_events): 5-25 s here, over the suite's 60 s
# at a load of 10-15. Each copy is waited for while it works (communicate_while_working),
# failing once it does nothing for a minute; this is the backstop.
LARGE_COPY_BACKSTOP = 600


def copy(store: str, dest: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    return run_while_working([sys.executable, "-m", "server", "copy", "--store", store, dest],
                             "the copy", cwd=cwd, env=env)


# `python -c _DEFAULT_SIGINT command...`: SIGINT back to its default, then exec.
_DEFAULT_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execv(sys.argv[1], sys.argv[1:])")


def copying_events(store: str, postgres: str, cwd: Path) -> subprocess.Popen[str]:
    """`footfall copy` of `store` into `postgres` started, once it copies the events."""
    import psycopg

    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    # Through a launcher that gives SIGINT its default back: a test run started where
    # SIGINT is ignored (under `time`, `nohup`, a non-interactive shell's `&`) passes
    # that on to its children, and a copy that ignores Ctrl-C just finishes.
    copying = subprocess.Popen([sys.executable, "-c", _DEFAULT_SIGINT, sys.executable, "-m",
                                "server", "copy", "--store", store, postgres], cwd=cwd,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        with psycopg.connect(postgres, autocommit=True) as db:
            wait_until(lambda: db.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND "
                "query LIKE 'COPY user_events %'").fetchone(), "the copy of the events",
                deadline=CLI_DEADLINE)
    except BaseException:
        copying.kill()
        copying.communicate()
        raise
    return copying


def record(server: ServerProcess) -> None:
    """What a shop and a job site leave: a product, events that join it (one sent as a
    pixel), a refusal, a client event, and a purge that removed the newest event (so
    the next id is past every id stored)."""
    product_client(server.address).create_product(
        parent=BRANCH, product_id="tent-2p",
        product=retail_v2.Product(title="Tent", categories=["Outdoor"],
                                  price_info=retail_v2.PriceInfo(price=199.0,
                                                                 currency_code="EUR")),
        timeout=RPC_DEADLINE)
    pixel = requests.get(f"http://{server.http_address}/v2/{CATALOG}/userEvents:collect",
                         params={"userEvent": json.dumps({"eventType": "home-page-view",
                                                          "visitorId": "v3"})},
                         timeout=RPC_DEADLINE)
    assert pixel.status_code == 200 and "X-Footfall-Error" not in pixel.headers
    # (a list waits for the pixel's commit: the events written next come after it)
    assert rest(server.http_address, f"{CATALOG}/userEvents").json()["userEvents"]
    events = retail_client(server.address)
    for visitor in ("v1", "v2", "gone"):
        events.write_user_event(request={"parent": CATALOG, "user_event": retail_v2.UserEvent(
            event_type="detail-page-view", visitor_id=visitor,
            product_details=[retail_v2.ProductDetail(product=retail_v2.Product(id="tent-2p"))])},
            timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.InvalidArgument):
        events.write_user_event(request={"parent": CATALOG, "user_event": retail_v2.UserEvent(
            event_type="add-to-cart", visitor_id="v1")}, timeout=RPC_DEADLINE)
    talent_client(server.address).create_client_event(parent=TENANT, client_event=(
        talent_v4.ClientEvent(event_id="e1", create_time=datetime.datetime.now(datetime.UTC),
                              job_event=talent_v4.JobEvent(
                                  type_=talent_v4.JobEvent.JobEventType.VIEW,
                                  jobs=[f"{TENANT}/jobs/j1"]))), timeout=RPC_DEADLINE)
    purged = finish(events.purge_user_events(
        request={"parent": CATALOG, "filter": 'visitorId = "gone"', "force": True},
        timeout=RPC_DEADLINE))
    assert purged.purged_events_count == 1


def seen(server: ServerProcess) -> dict[str, Any]:
    """What the console and the official clients read back."""
    def listed(path: str, **query: Any) -> Any:
        answer = rest(server.http_address, path, **query)
        assert answer.status_code == 200, answer.text
        return answer.json()

    return {
        "events": listed(f"{CATALOG}/userEvents", pageSize=50),
        "rejections": listed(f"{PROJECT}/rejections", pageSize=50),
        "client events": listed(f"{TENANT}/clientEvents", pageSize=50),
        "catalogs": listed(f"{PROJECT}/catalogs"),
        "products": [type(p).to_dict(p) for p in product_client(server.address).list_products(
            parent=BRANCH, timeout=RPC_DEADLINE)],
        "operations": [op.name for op in retail_client(server.address).list_operations(
            {"name": CATALOG}, timeout=RPC_DEADLINE).operations],
    }


def next_id(server: ServerProcess) -> int:
    """The id the store gives the next event written."""
    write_one(server, "after-the-move")
    newest = rest(server.http_address, f"{CATALOG}/userEvents", pageSize=1).json()
    return int(newest["userEvents"][0]["id"])


def write_one(server: ServerProcess, visitor: str) -> None:
    """One home-page-view of `visitor` to CATALOG, through the official client."""
    retail_client(server.address).write_user_event(request={
        "parent": CATALOG, "user_event": retail_v2.UserEvent(event_type="home-page-view",
                                                             visitor_id=visitor)},
        timeout=RPC_DEADLINE)


def test_a_sqlite_store_moves_to_postgresql_and_back_with_everything(
        tmp_path: Path, postgres_databases: Any) -> None:
    sqlite_store = sqlite_url(tmp_path / "shop.db")
    (tmp_path / "pg").mkdir()
    (tmp_path / "back").mkdir()
    with running_server(tmp_path, sqlite_store) as server:
        record(server)
        before = seen(server)
    events = before["events"]["userEvents"]
    assert len(events) == 3 and any(e.get("transport") == "PIXEL" for e in events), events
    assert before["rejections"]["rejections"] and before["client events"]["clientEvents"]
    highest = max(int(e["id"]) for e in events)  # (the purged one was past it)

    postgres = postgres_databases.create("moved")
    moved = copy(sqlite_store, postgres, tmp_path)
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.startswith("copied sqlite:///") and "user_events 3" in moved.stdout, \
        moved.stdout
    with running_server(tmp_path / "pg", postgres) as server:
        assert seen(server) == before
        after = next_id(server)
        # (purged again: the copy back must carry PostgreSQL's next id, past every row)
        assert finish(retail_client(server.address).purge_user_events(
            request={"parent": CATALOG, "filter": 'visitorId = "after-the-move"',
                     "force": True}, timeout=RPC_DEADLINE)).purged_events_count == 1
        on_postgres = seen(server)
    assert after == highest + 2, (after, highest)  # the purged event's id is not given again

    again = copy(sqlite_store, postgres, tmp_path)  # into a store that holds rows
    assert again.returncode == 2 and "holds rows already" in again.stderr, again.stderr

    back = sqlite_url(tmp_path / "back" / "shop.db")
    returned = copy(postgres, back, tmp_path)
    assert returned.returncode == 0, returned.stderr
    with running_server(tmp_path / "back", back) as server:
        assert seen(server) == on_postgres
        assert next_id(server) == after + 1


def test_a_copy_refused_leaves_the_target_as_it_was(tmp_path: Path) -> None:
    source = sqlite_url(tmp_path / "a.db")
    target = sqlite_url(tmp_path / "b.db")
    (tmp_path / "b").mkdir()
    with running_server(tmp_path, source) as server:
        write_one(server, "a")
    with running_server(tmp_path / "b", target) as server:
        write_one(server, "b")
    refused = copy(source, target, tmp_path)
    assert refused.returncode == 2 and "holds rows already (table " in refused.stderr, \
        refused.stderr
    for same in (source, f"sqlite:///{tmp_path}/./a.db"):
        itself = copy(source, same, tmp_path)
        assert itself.returncode == 2 and "both the source and the target" in itself.stderr
    memory = copy("memory://", target, tmp_path)
    assert memory.returncode == 2 and "memory://" in memory.stderr
    with running_server(tmp_path / "b", target) as server:
        listed = rest(server.http_address, f"{CATALOG}/userEvents").json()["userEvents"]
        assert [e["userEvent"]["visitorId"] for e in listed] == ["b"]


def test_a_target_whose_server_only_answered_lists_of_one_page_is_still_empty(
        tmp_path: Path) -> None:
    """The replicas started on the new store before the copy may be asked for lists: a
    list of one page issues no token and writes nothing (each made the key that signs
    page tokens, and the copy refused the store as holding rows, table 'settings')."""
    source = sqlite_url(tmp_path / "a.db")
    target = sqlite_url(tmp_path / "b.db")
    (tmp_path / "b").mkdir()
    with running_server(tmp_path, source) as server:
        write_one(server, "a")
    with running_server(tmp_path / "b", target) as server:
        for path in (f"v2/{BRANCH}/products", f"v2/{CATALOG}/operations",
                     f"insights/v1/{CATALOG}/productStats", f"insights/v1/{TENANT}/jobStats",
                     f"console/v1/{CATALOG}/userEvents", f"console/v1/{TENANT}/clientEvents"):
            answer = requests.get(f"http://{server.http_address}/{path}", timeout=RPC_DEADLINE)
            assert answer.status_code == 200, (path, answer.text)
    copied = copy(source, target, tmp_path)
    assert copied.returncode == 0, copied.stderr


def test_a_copy_that_fails_midway_leaves_the_target_empty(
        tmp_path: Path, postgres_databases: Any) -> None:
    """A row PostgreSQL cannot take (a number past its SMALLINT, which no Footfall
    writes but a SQLite file can hold) fails the copy of the last table, after the
    others went in: none of them stays."""
    import psycopg

    source = sqlite_url(tmp_path / "shop.db")
    with running_server(tmp_path, source) as server:
        record(server)
    with closing(sqlite3.connect(tmp_path / "shop.db")) as db, db:
        assert db.execute("UPDATE user_events SET transport = 70000 "
                          "WHERE visitor_id = 'v2'").rowcount == 1
    postgres = postgres_databases.create("failed")
    failed = copy(source, postgres, tmp_path)
    assert failed.returncode == 1 and failed.stderr.startswith("footfall: cannot copy: "), \
        failed.stderr
    assert "out of range" in failed.stderr and "the target is as it was" in failed.stderr
    with psycopg.connect(postgres) as db:
        for table in ("catalogs", "client_events", "products", "rejections", "user_events"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


# `python -c _PEAK command...`: runs the command; its peak resident memory (bytes) is
# the last line of stderr.
_PEAK = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, file=sys.stderr); "
         "sys.exit(done.returncode)")


def copy_held(store: str, dest: str, cwd: Path) -> int:
    """Copy (it must succeed); the most memory its process held, in bytes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    done = run_while_working([sys.executable, "-c", _PEAK, sys.executable, "-m", "server",
                              "copy", "--store", store, dest], "the copy", cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.splitlines()[-1])


@pytest.mark.timeout(LARGE_COPY_BACKSTOP)
def test_a_copy_of_large_events_holds_a_few_at_a_time(
        tmp_path: Path, postgres_databases: Any) -> None:
    """200 events of 2 MB each (an event may take 2 MiB, and as much again as received):
    read 5,000 rows at a time, the copy held them all, 400 MB, and more from PostgreSQL
    (its bytes came as hex)."""
    source = large_events(tmp_path, 200)
    postgres = postgres_databases.create("large")
    back = sqlite_url(tmp_path / "back.db")
    held = {"from SQLite": copy_held(source, postgres, tmp_path),
            "from PostgreSQL": copy_held(postgres, back, tmp_path)}
    assert all(peak < 300 * 2**20 for peak in held.values()), held
    with closing(sqlite3.connect(tmp_path / "back.db")) as db:
        assert db.execute("SELECT count(*), sum(length(source)) FROM user_events").fetchone() \
            == (201, 200 * 2_000_000)


def test_a_postgresql_store_beside_another_applications_tables_is_copied_alone(
        tmp_path: Path, postgres_databases: Any) -> None:
    """A database that holds another application's table beside a Footfall store: the
    copy takes the store's tables (it was refused: "the target has no table
    'customers'"), and leaves the other table out."""
    import psycopg

    postgres = postgres_databases.create("shared")
    with running_server(tmp_path, postgres) as server:
        record(server)
        before = seen(server)
    with psycopg.connect(postgres, autocommit=True) as db:
        db.execute("CREATE TABLE customers (id BIGINT PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customers VALUES (1, 'Ann')")
    (tmp_path / "back").mkdir()
    back = sqlite_url(tmp_path / "back" / "shop.db")
    moved = copy(postgres, back, tmp_path)
    assert moved.returncode == 0, moved.stderr
    assert "customers" not in moved.stdout, moved.stdout
    with running_server(tmp_path / "back", back) as server:
        assert seen(server) == before


def test_a_target_is_read_before_it_is_changed(tmp_path: Path, postgres_databases: Any) -> None:
    """Opening a store migrates it: a target that holds rows, of an older version (the
    arguments swapped: the shop's store named as DEST), was migrated, then refused.
    It is now refused as it was. A database whose other application has a table of a
    name Footfall uses fails the copy with a line, not a traceback, and gets nothing."""
    import psycopg

    source = sqlite_url(tmp_path / "new.db")
    (tmp_path / "old").mkdir()
    with running_server(tmp_path, source) as server:
        record(server)
    with running_server(tmp_path / "old", sqlite_url(tmp_path / "old" / "shop.db")) as server:
        record(server)
    with closing(sqlite3.connect(tmp_path / "old" / "shop.db")) as db, db:
        # (as a store of the version before the last migration is)
        newest = db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        db.execute("DELETE FROM schema_migrations WHERE version = ?", (newest,))
    refused = copy(source, sqlite_url(tmp_path / "old" / "shop.db"), tmp_path)
    assert refused.returncode == 2 and "holds rows already" in refused.stderr, refused.stderr
    with closing(sqlite3.connect(tmp_path / "old" / "shop.db")) as db:
        assert db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] < newest

    other = postgres_databases.create("other")
    with psycopg.connect(other, autocommit=True) as db:
        db.execute("CREATE TABLE products (sku TEXT PRIMARY KEY, price NUMERIC)")
    failed = copy(source, other, tmp_path)
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.startswith("footfall: cannot copy: cannot make Footfall's tables in "
                                    "the target: DuplicateTable: relation \"products\" already "
                                    "exists"), failed.stderr
    with psycopg.connect(other) as db:
        assert db.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)


def test_a_password_given_as_a_parameter_is_never_printed(
        tmp_path: Path, postgres_databases: Any) -> None:
    """libpq reads a password in the URL's `password=` parameter as well as before the
    host: the line that says what was copied printed that one as it was given."""
    source = sqlite_url(tmp_path / "shop.db")
    with running_server(tmp_path, source) as server:
        record(server)
    # (the tests' server trusts local connections: any password passes)
    postgres = postgres_databases.create("password") + "?password=hunter2"
    moved = copy(source, postgres, tmp_path)
    assert moved.returncode == 0, moved.stderr
    assert "?password=***:" in moved.stdout, moved.stdout
    itself = copy(postgres, postgres, tmp_path)
    assert itself.returncode == 2 and "both the source and the target" in itself.stderr
    assert "hunter2" not in moved.stdout + moved.stderr + itself.stdout + itself.stderr


def large_events(tmp_path: Path, count: int) -> str:
    """A SQLite store of `count` events of 2 MB each (copies of one written, each with
    2 MB as received: the copy reads rows as bytes, never decodes them); its URL."""
    source = sqlite_url(tmp_path / "shop.db")
    with running_server(tmp_path, source) as server:
        write_one(server, "v")
    with closing(sqlite3.connect(tmp_path / "shop.db")) as db, db:
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO user_events (catalog_id, event_type, visitor_id, user_id, "
            "event_time_us, event_time_ns, joined, dedup_key, event, source, received_us, "
            "transport) SELECT catalog_id, event_type, 'big' || i, user_id, event_time_us + i, "
            "event_time_ns, joined, dedup_key, event, zeroblob(2000000), received_us, transport "
            "FROM user_events, n", (count,))
    return source


@pytest.mark.timeout(LARGE_COPY_BACKSTOP)
def test_a_copy_stopped_by_ctrl_c_says_so_and_leaves_the_target_empty(
        tmp_path: Path, postgres_databases: Any) -> None:
    """Ctrl-C while the events go in: one line says nothing was copied (it printed
    nothing, or Python's "Exception ignored in: <generator object ...>" and a traceback
    of a closed database), and a second copy into the target goes in whole."""
    import psycopg

    source = large_events(tmp_path, 100)
    postgres = postgres_databases.create("stopped")
    copying = copying_events(source, postgres, tmp_path)
    try:
        copying.send_signal(signal.SIGINT)
        out, err = communicate_while_working(copying, "the copy stopped")
    finally:
        if copying.poll() is None:
            copying.kill()
            copying.wait()
    assert copying.returncode == 130 and out == "", (out, err)
    assert err == "footfall: stopped: nothing was copied (the target is as it was)\n", err
    with psycopg.connect(postgres) as db:
        assert db.execute("SELECT count(*) FROM user_events").fetchone() == (0,)
    again = copy(source, postgres, tmp_path)
    assert again.returncode == 0 and "user_events 101" in again.stdout, again.stderr


@pytest.mark.timeout(LARGE_COPY_BACKSTOP)
def test_a_server_already_on_the_target_writes_after_the_copy(
        tmp_path: Path, postgres_databases: Any) -> None:
    """The replicas started on the new, empty PostgreSQL store before the copy: an event
    one is sent while the copy writes goes in after the copy, with the next id (it took
    id 1 beside the copy, which then failed on it, saying the target was as it was)."""
    import psycopg

    source = large_events(tmp_path, 100)
    postgres = postgres_databases.create("served")
    (tmp_path / "pg").mkdir()
    with running_server(tmp_path / "pg", postgres) as server:
        copying = copying_events(source, postgres, tmp_path)
        try:
            while True:
                try:
                    retail_client(server.address).write_user_event(request={
                        "parent": "projects/elsewhere/locations/global/catalogs/"
                                  "default_catalog",
                        "user_event": retail_v2.UserEvent(event_type="home-page-view",
                                                          visitor_id="meanwhile")},
                        timeout=CLI_DEADLINE)
                    break
                except exceptions.ServiceUnavailable as refused:
                    # The copy held the writers' turn past the server's lock wait (10 s:
                    # on a loaded machine the copy takes longer), and the write was
                    # refused, to be sent again, as a client does: its id is still the
                    # next after the copy's.
                    assert "waiting for a lock" in str(refused), refused
            out, err = communicate_while_working(copying, "the copy")
        finally:
            if copying.poll() is None:
                copying.kill()
                copying.wait()
    assert copying.returncode == 0 and "user_events 101" in out, err
    with psycopg.connect(postgres) as db:
        ids = db.execute("SELECT visitor_id = 'meanwhile', max(id), count(*) FROM user_events "
                         "GROUP BY 1 ORDER BY 1").fetchall()
    assert ids == [(False, 101, 101), (True, 102, 1)], ids


# `python -c _LIMIT_FILE_SIZE N command...`: RLIMIT_FSIZE N bytes (soft and hard), then exec.
_LIMIT_FILE_SIZE = ("import os, resource, sys; n = int(sys.argv[1]); "
                    "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
                    "os.execv(sys.argv[2], sys.argv[2:])")


def test_a_copy_into_a_sqlite_file_that_cannot_grow_says_why(tmp_path: Path) -> None:
    """The target's disk full (here: a file size limit on the copy): SQLite ended the
    transaction itself, the copy's ROLLBACK then failed, and the line said only
    'cannot rollback - no transaction is active'. It says SQLite's error now, and the
    target takes a second copy whole."""
    source = large_events(tmp_path, 30)
    target = sqlite_url(tmp_path / "target.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    limit = 20 * 2**20
    # The limit is set by a launcher that execs the copy, not by a preexec_fn: with
    # gRPC channels open in this process (an earlier test's), gRPC's fork handler
    # could abort the forked child before its exec (see support.ServerProcess).
    full = run_while_working(
        [sys.executable, "-c", _LIMIT_FILE_SIZE, str(limit),
         sys.executable, "-m", "server", "copy", "--store", source, target], "the copy",
        cwd=tmp_path, env=env)
    assert full.returncode == 1, full.stderr
    assert full.stderr.startswith("footfall: cannot copy: OperationalError: "), full.stderr
    assert "cannot rollback" not in full.stderr, full.stderr
    again = copy(source, target, tmp_path)
    assert again.returncode == 0 and "user_events 31" in again.stdout, again.stderr


def test_a_damaged_source_is_named_as_the_store_that_failed(tmp_path: Path) -> None:
    """Pages of the source's events damaged: the line said 'DatabaseError: database disk
    image is malformed', which a copy from one SQLite file to another could mean of
    either; it names the source and the table now."""
    source = large_events(tmp_path, 30)
    path = tmp_path / "shop.db"
    with open(path, "r+b") as file:  # (each page an event's overflow: 4 bytes, the next)
        pages = path.stat().st_size // 4096
        for page in range(pages * 2 // 5, pages * 3 // 5, 10):
            file.seek(page * 4096)
            file.write(b"\xff\xff\xff\xff")
    failed = copy(source, sqlite_url(tmp_path / "target.db"), tmp_path)
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.startswith("footfall: cannot copy: the source's table 'user_events' "
                                    "cannot be read: DatabaseError: "), failed.stderr


def test_a_database_not_made_yet_is_a_mistake_that_says_how_to_make_it(
        tmp_path: Path, postgres_databases: Any) -> None:
    """Footfall makes its tables, not the database: `serve` and `copy` on a database
    not made yet stopped with libpq's `database ... does not exist` alone (and `copy`
    with exit 1, as for an outage, where `serve` says 2, a mistake in what it was
    given)."""
    missing = postgres_databases.create("made").rsplit("/", 1)[0] + "/footfall_never_made"
    source = sqlite_url(tmp_path / "shop.db")
    with running_server(tmp_path, source) as server:
        record(server)
    copied = copy(source, missing, tmp_path)
    assert copied.returncode == 2, copied.stderr
    assert 'database "footfall_never_made" does not exist; create it first' in copied.stderr
    assert "createdb -h 127.0.0.1 " in copied.stderr and " footfall_never_made, or CREATE " \
        "DATABASE \"footfall_never_made\"" in copied.stderr, copied.stderr
    with pytest.raises(RuntimeError, match="server exited with 2 before it was ready") as caught:
        ServerProcess(tmp_path, missing, [])
    assert "create it first" in str(caught.value) and "createdb" in str(caught.value)


def test_the_tables_a_copy_fills_in_postgresql_are_analyzed(
        tmp_path: Path, postgres_databases: Any) -> None:
    """Filled by COPY, the target's tables had no statistics until autovacuum came by
    (never, where it is off): the replicas started on it planned a purge's chunks as if
    the events were a few dozen, and read the whole time index for each."""
    import psycopg

    source = sqlite_url(tmp_path / "shop.db")
    with running_server(tmp_path, source) as server:
        record(server)
    postgres = postgres_databases.create("analyzed")
    moved = copy(source, postgres, tmp_path)
    assert moved.returncode == 0, moved.stderr

    def analyzed() -> bool:  # (a backend reports its statistics as it ends: soon after)
        with psycopg.connect(postgres) as db:
            done = dict(db.execute(
                "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables").fetchall())
        return bool(done["user_events"] and done["products"] and done["client_events"])

    wait_until(analyzed, "the copied tables to be analyzed", deadline=5)
