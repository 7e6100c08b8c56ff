"""A store written by an older Footfall release, upgraded by this one, loses nothing.

Each store under old_stores/ (a SQLite file, and a PostgreSQL database as pg_dump wrote
it) was made by that release's own `footfall serve`, filled through the official
clients and REST (old_stores/make_store.py, which also recorded what it answered).
This server starts on a copy of it and must show the same: GetOperation's bytes,
every event, the client events; it must also still recognise an
event the old release stored when it comes again, purge and import over old rows, and
start a second time without migrating anything. Its insights over the upgraded
stores answer as over the newest one, whose release rolled the events up as they came.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.cloud import retail_v2
from google.longrunning import operations_pb2, operations_pb2_grpc

from .support import (
    ServerProcess,
    _cli,
    count_client_events,
    count_events,
    finish,
    put_gcs,
    retail_client,
    sqlite_url,
)

OLD_STORES = Path(__file__).parent / "old_stores"
RELEASES = sorted(p.name.removesuffix(".db.gz") for p in OLD_STORES.glob("*.db.gz"))
# (the same releases on PostgreSQL: their databases as pg_dump wrote them)
PG_RELEASES = sorted(p.name.removesuffix(".pg.sql.gz") for p in OLD_STORES.glob("*.pg.sql.gz"))
CATALOG = "projects/p/locations/global/catalogs/default_catalog"
TENANT = "projects/p/tenants/t1"
# make_store.py's: a REST call's or pixel's event keeps its caller's agent (and address)
USER_AGENT = "footfall-old-store"


def http(server: ServerProcess, path: str, body: bytes | None = None) -> int:
    """The status of a GET (a POST of JSON `body`) to the server's HTTP port."""
    request = urllib.request.Request(f"http://{server.http_address}{path}", data=body,
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


def canonical(events: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(e, sort_keys=True) for e in events)


@pytest.mark.parametrize(("release", "engine"), [(r, "sqlite") for r in RELEASES]
                         + [(r, "postgresql") for r in PG_RELEASES])
def test_a_store_of_an_older_release_upgrades_and_keeps_everything(
        release: str, engine: str, tmp_path: Path, request: pytest.FixtureRequest,
        server_factory: Callable[..., ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    if engine == "sqlite":
        made = json.loads((OLD_STORES / f"{release}.json").read_text())
        db = tmp_path / "old.db"
        db.write_bytes(gzip.decompress((OLD_STORES / f"{release}.db.gz").read_bytes()))
        store = sqlite_url(db)
    else:
        made = json.loads((OLD_STORES / f"{release}.pg.json").read_text())
        store = request.getfixturevalue("postgres_databases").create("old_store")
        with psycopg.connect(store, autocommit=True) as db:
            db.execute(gzip.decompress(
                (OLD_STORES / f"{release}.pg.sql.gz").read_bytes()).decode())
    server = server_factory("--gcs-root", str(tmp_path / "gcs"), store=store)
    applied = [int(n) for n in re.findall(r"applied migration (\d+)", server.log_text())]
    assert applied and min(applied) > made["migrations"]

    operations = operations_pb2_grpc.OperationsStub(channels(server))
    for what, name in made["names"].items():
        got = operations.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=10)
        assert base64.b64encode(got.SerializeToString(deterministic=True)).decode() \
            == made["operations"][what], what

    for parent, events in made["events"].items():
        listed = [json.loads(line)["userEvent"] for line in _cli(
            "events", "list", "--parent", parent, "--store", store, "--json", "--limit", "0",
            cwd=tmp_path).splitlines()]
        assert canonical(listed) == canonical(events), parent
    assert count_client_events(store, TENANT, tmp_path) == len(made["client_events"])

    # every event sent again as it first came: each one a duplicate of an old row
    stored = count_events(store, CATALOG, tmp_path)
    client = retail_client(server.address)
    for sent in made["sent"]:
        if sent["visitorId"] != "purge-me":  # (purged: it would come back)
            client.write_user_event(request={"parent": CATALOG, "user_event":
                                             retail_v2.UserEvent.from_json(json.dumps(sent))},
                                    timeout=10)
    for sent in made["rest"]:
        assert http(server, f"/v2/{CATALOG}/userEvents:write", json.dumps(sent).encode()) == 200
    for sent in made["pixels"]:  # (a pixel's event holds the browser's address and agent)
        query = urllib.parse.urlencode({"userEvent": json.dumps(sent)})
        assert http(server, f"/v2/{CATALOG}/userEvents:collect?{query}") == 200
    assert count_events(store, CATALOG, tmp_path) == stored

    purged = finish(client.purge_user_events(request={
        "parent": CATALOG, "filter": 'visitorId = "v1"', "force": True}))
    assert purged.purged_events_count == 6
    put_gcs(tmp_path / "gcs", "gs://new-bucket/events.json",
            [json.dumps(made["sent"][0]), '{"eventType":"home-page-view","visitorId":"new",'
             '"eventTime":"2024-06-01T00:00:00Z"}'])
    finish(client.import_user_events(request={"parent": CATALOG, "input_config": {
        "gcs_source": {"input_uris": ["gs://new-bucket/events.json"]}}}))
    assert count_events(store, CATALOG, tmp_path) == stored - 6 + 2
    server.stop()

    again = server_factory("--gcs-root", str(tmp_path / "gcs"), store=store)
    assert "applied migration" not in again.log_text()


def test_insights_over_upgraded_stores_answer_as_over_one_that_rolled_up_live(
        tmp_path: Path, server_factory: Callable[..., ServerProcess]) -> None:
    # The same events in each store; migration 9 rolled up those of the releases
    # before it, the last release (after it) as they came.
    assert [made_at(r) for r in RELEASES] and max(made_at(r) for r in RELEASES) >= 9
    answers = {}
    for release in RELEASES:
        db = tmp_path / f"{release}.db"
        db.write_bytes(gzip.decompress((OLD_STORES / f"{release}.db.gz").read_bytes()))
        server = server_factory("--gcs-root", str(tmp_path / "gcs"), store=sqlite_url(db))
        answers[release] = [get(server, path) for path in (
            f"/insights/v1/{CATALOG}:computeTotals", f"/insights/v1/{CATALOG}/productStats",
            f"/insights/v1/{CATALOG}/productStats?startTime=2024-05-29T16:26:42Z"
            "&endTime=2024-05-30T00:00:00Z", f"/insights/v1/{TENANT}/jobStats")]
        server.stop()
    live = answers[max(RELEASES, key=made_at)]
    assert live[1]["products"] and live[3]["jobs"]
    for release, answer in answers.items():
        assert answer == live, release


def made_at(release: str) -> int:
    """The migration level of the store `release` made."""
    return int(json.loads((OLD_STORES / f"{release}.json").read_text())["migrations"])


def get(server: ServerProcess, path: str) -> Any:
    with urllib.request.urlopen(f"http://{server.http_address}{path}", timeout=10) as answer:
        return json.load(answer)
