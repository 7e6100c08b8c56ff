"""Make a store as an older Footfall release wrote it, for test_old_stores.py.

    .venv/bin/python tests/interop/old_stores/make_store.py REV

checks REV out in a temporary git worktree, runs that revision's `footfall serve`
(its code, this virtualenv's packages: the releases named in test_old_stores.py
serve with them) on a new SQLite file, fills it through the official clients and
REST with what every release since the first HTTP gateway (055eccd) takes: events
of every type, some joined to products (stored unlike received), REST writes, pixels,
refused writes, talent client events, an import with bad lines, a purge, a rejoin,
a products import. It records what that release answered (GetOperation's bytes,
its CLI's listing of the events) beside what was sent, stops the server (SIGTERM)
and writes REV.db.gz and REV.json here. Nothing here runs at test time.

    ... make_store.py REV postgresql://postgres@127.0.0.1:5432/postgres

does the same on a PostgreSQL database of its own (made on that server and dropped),
written out by pg_dump as INSERT statements: REV.pg.sql.gz and REV.pg.json.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from google.api_core import exceptions
from google.cloud import retail_v2, talent_v4
from google.longrunning import operations_pb2, operations_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.interop.support import product_client, retail_client, talent_client  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CATALOG = "projects/p/locations/global/catalogs/default_catalog"
OTHER = "projects/p/locations/global/catalogs/other"
BRANCH = f"{CATALOG}/branches/default_branch"
TENANT = "projects/p/tenants/t1"
READY = re.compile(r"Footfall serving gRPC on 127\.0\.0\.1:(\d+) ")
HTTP_READY = re.compile(r"Footfall serving HTTP on 127\.0\.0\.1:(\d+)")

# The events as sent: every type Google knows, joined (p1, p2, p3 exist) and not
# (p-missing), with nanoseconds and without
SENT: list[dict[str, Any]] = [
    {"eventType": "home-page-view", "visitorId": "v1",
     "eventTime": "2024-05-29T16:26:41.123456789Z",
     "userInfo": {"userId": "u1", "ipAddress": "10.0.0.1", "userAgent": "ua"}},
    {"eventType": "detail-page-view", "visitorId": "v1", "eventTime": "2024-05-29T16:26:42Z",
     "productDetails": [{"product": {"id": "p1"}}]},
    {"eventType": "detail-page-view", "visitorId": "v2", "eventTime": "2024-05-29T16:26:43.5Z",
     "productDetails": [{"product": {"id": "p-missing"}}]},
    {"eventType": "add-to-cart", "visitorId": "v1", "eventTime": "2024-05-29T16:26:44Z",
     "productDetails": [{"product": {"id": "p1"}, "quantity": 2}], "cartId": "c1"},
    {"eventType": "remove-from-cart", "visitorId": "v1", "eventTime": "2024-05-29T16:26:45Z",
     "productDetails": [{"product": {"id": "p1"}, "quantity": 1}]},
    {"eventType": "shopping-cart-page-view", "visitorId": "v1", "eventTime": "2024-05-29T16:26:46Z",
     "productDetails": [{"product": {"id": "p1"}, "quantity": 1}], "cartId": "c1"},
    {"eventType": "search", "visitorId": "v2", "eventTime": "2024-05-29T16:26:47Z",
     "searchQuery": "red shoes", "pageCategories": ["Shoes"]},
    {"eventType": "category-page-view", "visitorId": "v2", "eventTime": "2024-05-29T16:26:48Z",
     "pageCategories": ["Shoes > Boots"]},
    {"eventType": "purchase-complete", "visitorId": "v1", "eventTime": "2024-05-29T16:26:49Z",
     "productDetails": [{"product": {"id": "p1"}, "quantity": 1},
                        {"product": {"id": "p2"}, "quantity": 3}],
     "purchaseTransaction": {"id": "t1", "revenue": 42.0, "currencyCode": "EUR"}},
    {"eventType": "home-page-view", "visitorId": "v3", "eventTime": "2024-05-29T16:26:50Z",
     "attributes": {"k": {"text": ["x"]}}, "sessionId": "s1", "uri": "https://shop/x",
     "referrerUri": "https://ref/"},
    {"eventType": "detail-page-view", "visitorId": "purge-me", "eventTime": "2024-05-29T16:26:51Z",
     "productDetails": [{"product": {"id": "p2"}}]},
    {"eventType": "home-page-view", "visitorId": "purge-me", "eventTime": "2024-05-29T16:26:52Z"},
]
REST_SENT = [
    {"eventType": "detail-page-view", "visitorId": "rest1", "eventTime": "2024-05-29T17:00:00.5Z",
     "productDetails": [{"product": {"id": "p2"}, "quantity": 1}]},
    {"eventType": "home-page-view", "visitorId": "rest2", "eventTime": "2024-05-29T17:00:01Z"},
]
PIXELS = [
    {"eventType": "home-page-view", "visitorId": "pix1", "eventTime": "2024-05-29T18:00:00Z"},
    {"eventType": "detail-page-view", "visitorId": "pix2", "eventTime": "2024-05-29T18:00:01Z",
     "productDetails": [{"product": {"id": "p3"}}]},
]
IMPORTED = [{"eventType": "home-page-view", "visitorId": f"imp{i}",
             "eventTime": f"2024-05-30T00:00:{i:02d}Z"} for i in range(20)]
CLIENT_EVENTS = [{"requestId": f"r{i}", "eventId": f"e{i}", "createTime": f"2024-05-29T16:26:4{i}Z",
                  "jobEvent": {"type": kind, "jobs": [f"{TENANT}/jobs/j{i % 2}"]}}
                 for i, kind in enumerate(["IMPRESSION", "VIEW", "APPLICATION_START",
                                           "APPLICATION_FINISH"])]


class OldServer:
    def __init__(self, tree: Path, store: str, gcs: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
        env["PYTHONPATH"] = f"{tree}{os.pathsep}{tree / 'generated'}"
        self.env, self.tree = env, tree
        self.log = log
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", "0",
                 "--http-port", "-1", "--store", store, "--gcs-root", str(gcs)],
                cwd=tree, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while not READY.search(text := self.log.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"{tree} did not start:\n{text}")
            time.sleep(0.1)
        self.address = f"127.0.0.1:{READY.findall(text)[-1]}"
        self.http = f"127.0.0.1:{HTTP_READY.findall(text)[-1]}"

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "server", *args], cwd=self.tree,
                              env=self.env, capture_output=True, text=True, check=True).stdout

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        if self.proc.wait(timeout=30) != 0:
            raise RuntimeError(f"the old server stopped with {self.proc.returncode}")


def rest(server: OldServer, method: str, path: str, body: Any = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{server.http}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "footfall-old-store"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def finished(channel: grpc.Channel, name: str) -> operations_pb2.Operation:
    stub = operations_pb2_grpc.OperationsStub(channel)
    deadline = time.monotonic() + 60
    while not (got := stub.GetOperation(operations_pb2.GetOperationRequest(name=name))).done:
        if time.monotonic() > deadline:
            raise TimeoutError(name)
        time.sleep(0.1)
    return got


def write(events: retail_v2.UserEventServiceClient, parent: str, event: dict[str, Any]) -> None:
    events.write_user_event(request={"parent": parent, "user_event": retail_v2.UserEvent.from_json(
        json.dumps(event))})


def fill(server: OldServer, gcs: Path) -> dict[str, str]:
    """Writes everything; returns the operations' names by what they did."""
    events = retail_client(server.address)
    products = product_client(server.address)
    talent = talent_client(server.address)
    for pid, category in (("p1", "Shoes"), ("p2", "Hats"), ("p3", "Shoes > Boots")):
        products.create_product(parent=BRANCH, product_id=pid, product=retail_v2.Product(
            title=f"Product {pid}", categories=[category], type_=retail_v2.Product.Type.PRIMARY,
            price_info=retail_v2.PriceInfo(price=10.5, currency_code="EUR")))
    for sent in [*SENT, SENT[0]]:  # the last one again: a duplicate
        write(events, CATALOG, sent)
    write(events, OTHER, {"eventType": "home-page-view", "visitorId": "o1",
                          "eventTime": "2024-05-29T16:26:41Z"})
    try:
        write(events, CATALOG, {"eventType": "detail-page-view", "visitorId": "refused",
                                "eventTime": "2024-05-29T16:26:41Z"})
        raise RuntimeError("a detail-page-view without products was taken")
    except exceptions.InvalidArgument:
        pass
    for sent in REST_SENT:
        assert rest(server, "POST", f"/v2/{CATALOG}/userEvents:write", sent) == 200
    assert rest(server, "POST", f"/v2/{CATALOG}/userEvents:write", {"eventType": "search"}) == 400
    for sent in PIXELS:
        query = urllib.parse.urlencode({"userEvent": json.dumps(sent)})
        assert rest(server, "GET", f"/v2/{CATALOG}/userEvents:collect?{query}") == 200
    for sent in CLIENT_EVENTS:
        talent.create_client_event(parent=TENANT, client_event=talent_v4.ClientEvent.from_json(
            json.dumps(sent)))
    lines = [json.dumps(e) for e in IMPORTED]
    lines[5:5] = ["{not json", json.dumps({"eventType": "home-page-view", "visitorId": "x"})]
    (gcs / "old-bucket").mkdir(parents=True)
    (gcs / "old-bucket" / "events.json").write_text("\n".join(lines) + "\n")
    (gcs / "old-bucket" / "products.json").write_text("".join(
        json.dumps({"id": f"ip{i}", "title": f"Imported {i}", "categories": ["Imp"]}) + "\n"
        for i in range(5)) + "{bad\n")
    names = {}
    names["import"] = events.import_user_events(request={
        "parent": CATALOG, "input_config": {"gcs_source": {"input_uris": [
            "gs://old-bucket/events.json"]}},
        "errors_config": {"gcs_prefix": "gs://old-bucket/errors"}}).operation.name
    finished(events.transport.grpc_channel, names["import"])
    names["purge"] = events.purge_user_events(request={
        "parent": CATALOG, "filter": 'visitorId = "purge-me"', "force": True}).operation.name
    finished(events.transport.grpc_channel, names["purge"])
    names["rejoin"] = events.rejoin_user_events(request={
        "parent": CATALOG, "user_event_rejoin_scope": "UNJOINED_EVENTS"}).operation.name
    names["import-products"] = products.import_products(request={
        "parent": BRANCH, "input_config": {"gcs_source": {"input_uris": [
            "gs://old-bucket/products.json"]}},
        "errors_config": {"gcs_prefix": "gs://old-bucket/product-errors"}}).operation.name
    for name in names.values():
        finished(events.transport.grpc_channel, name)
    return names


def main(rev: str, postgres: str | None = None) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short=7", rev], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.strip()
    named = f"{commit}.pg" if postgres else commit
    with tempfile.TemporaryDirectory() as tmp, made_store(postgres, Path(tmp)) as store:
        tree, gcs = Path(tmp) / "tree", Path(tmp) / "gcs"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), commit],
                       cwd=REPO, check=True)
        try:
            server = OldServer(tree, store, gcs, Path(tmp) / "server.log")
            try:
                names = fill(server, gcs)
                channel = grpc.insecure_channel(server.address)
                operations = {what: base64.b64encode(finished(channel, name).SerializeToString(
                    deterministic=True)).decode() for what, name in names.items()}
            finally:
                server.stop()
            # an older CLI printed the event alone; a later one, with its id around it
            listed = {parent: [json.loads(line).get("userEvent", json.loads(line)) for line in
                               server.cli("events", "list", "--parent", parent, "--store",
                                          store, "--json", "--limit", "1000").splitlines()]
                      for parent in (CATALOG, OTHER)}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                           check=True)
        if postgres:
            import psycopg
            with psycopg.connect(store) as db:
                (migrations,) = db.execute("SELECT max(version) FROM schema_migrations"
                                           ).fetchone() or (0,)
            dump = subprocess.run(["pg_dump", "--inserts", "--no-owner", "--no-privileges",
                                   "--no-comments", f"--dbname={store}"], check=True,
                                  capture_output=True).stdout
            # (without psql's meta-commands, \restrict and \unrestrict since pg_dump
            # 15.14: the test runs the SQL through psycopg)
            sql = b"".join(line for line in dump.splitlines(keepends=True)
                           if not line.startswith(b"\\"))
            (HERE / f"{named}.sql.gz").write_bytes(gzip.compress(sql, mtime=0))
        else:
            with contextlib.closing(sqlite3.connect(store[len("sqlite:///"):])) as db:
                (migrations,) = db.execute("SELECT max(version) FROM schema_migrations").fetchone()
            (HERE / f"{named}.db.gz").write_bytes(gzip.compress(
                Path(store[len("sqlite:///"):]).read_bytes(), mtime=0))
    date = subprocess.run(["git", "log", "-1", "--format=%cs", commit], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout.strip()
    (HERE / f"{named}.json").write_text(json.dumps({
        "commit": commit, "date": date, "migrations": migrations, "operations": operations,
        "names": names, "events": listed, "sent": SENT, "rest": REST_SENT, "pixels": PIXELS,
        "client_events": [e["eventId"] for e in CLIENT_EVENTS]}, indent=1) + "\n")


@contextlib.contextmanager
def made_store(postgres: str | None, tmp: Path) -> Iterator[str]:
    """The URL of a new store: a SQLite file in `tmp`, or a database made on the
    PostgreSQL server `postgres` names (dropped at the end)."""
    if not postgres:
        yield f"sqlite:///{tmp / 'store.db'}"
        return
    import psycopg
    name = f"footfall_old_store_{os.getpid()}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main(*sys.argv[1:3])
