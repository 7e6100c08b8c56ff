"""footfall.console.v1 against a server subprocess: what the official clients
write, the pixel collects, an import reads and talent records is seen through
the console's lists and watches, each refusal with its field, over gRPC (a
client made from reflection) and REST, on SQLite, memory and PostgreSQL; two
replicas see each other's; a writer key reads nothing, a reader key writes
nothing. Imports nothing of ours."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import retail_v2, talent_v4
from google.cloud.retail_v2.services.product_service.transports import (
    ProductServiceGrpcTransport,
)
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceRestTransport,
)

from .console import Console, rest
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    finish,
    put_gcs,
    retail_client,
    talent_client,
    wait_until,
)
from .trust import with_key, write_keys

PROJECT = "projects/footfall-interop"
CATALOG = f"{PROJECT}/locations/global/catalogs/console"
TENANT = f"{PROJECT}/tenants/console"
WRITE = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
COLLECT = "/google.cloud.retail.v2.UserEventService/CollectUserEvent"
IMPORT = "/google.cloud.retail.v2.UserEventService/ImportUserEvents"
CREATE_CLIENT_EVENT = "/google.cloud.talent.v4.EventService/CreateClientEvent"


def write(client: retail_v2.UserEventServiceClient, visitor: str, **options: Any) -> None:
    """WriteUserEvent of a home-page-view by `visitor` to CATALOG."""
    client.write_user_event(retail_v2.WriteUserEventRequest(
        parent=CATALOG, user_event=retail_v2.UserEvent(event_type="home-page-view",
                                                       visitor_id=visitor)), **options)


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def served(request: pytest.FixtureRequest,
           server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    if request.param == "memory":
        return server_factory(store="memory://")
    if request.param == "postgres":
        return server_factory(store=request.getfixturevalue("postgres_databases")
                              .create("console"))
    return server_factory()


def pixel(server: ServerProcess, event: dict[str, Any]) -> requests.Response:
    answer = requests.get(f"http://{server.http_address}/v2/{CATALOG}/userEvents:collect",
                          params={"userEvent": json.dumps(event)}, timeout=RPC_DEADLINE)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/gif"
    return answer


def client_event(event_id: str, tenant: str = TENANT) -> talent_v4.ClientEvent:
    return talent_v4.ClientEvent(
        event_id=event_id, create_time=datetime.datetime.now(datetime.UTC),
        job_event=talent_v4.JobEvent(type_=talent_v4.JobEvent.JobEventType.VIEW,
                                     jobs=[f"{tenant}/jobs/job-1"]))


def rejections_of(console: Console, count: int) -> list[dict[str, Any]]:
    """The project's refusals, newest first, once there are `count` (they are kept
    without the refused call waiting for it)."""
    def listed() -> list[dict[str, Any]] | None:
        found = console.call("ListRejections", parent=PROJECT).get("rejections", [])
        return found if len(found) >= count else None

    return wait_until(listed, f"{count} refusals", deadline=10)


def when(stamp: str) -> datetime.datetime:
    """An RFC 3339 time as proto3 JSON writes it (0, 3, 6 or 9 digits of fraction)."""
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(seconds).replace(tzinfo=datetime.UTC) \
        + datetime.timedelta(microseconds=int((fraction + "000000")[:6]))


def fields_of(rejection: dict[str, Any]) -> list[str]:
    return [v["field"] for v in rejection.get("fieldViolations", [])]


def test_counts_by_session_and_product(served: ServerProcess,
                                      channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    # Counted from the events the store finds holding the ids' bytes, each then
    # decoded: an id inside another ("s-3" in "s-30"), or held by another field (a
    # visitor, a search query), is no match.
    retail = retail_client(served.address)
    sent = [("v0", "s-3", ["sku-1"]), ("v1", "s-30", ["sku-1", "sku-10"]),
            ("s-3", "s-4", ["sku-10"]), ("v3", "s-3", []), ("v4", "", ["sku-é"])]
    for visitor, session, products in sent:
        retail.write_user_event(retail_v2.WriteUserEventRequest(
            parent=CATALOG, user_event=retail_v2.UserEvent(
                event_type="add-to-cart" if products else "search", visitor_id=visitor,
                session_id=session, search_query="" if products else "sku-1",
                product_details=[retail_v2.ProductDetail(product=retail_v2.Product(id=p))
                                 for p in products])), timeout=RPC_DEADLINE)
    console = Console(channels(served))

    def count(text: str) -> int:
        return int(console.call("CountUserEvents", parent=CATALOG, filter=text)
                   .get("count", "0"))

    assert count('sessionId = "s-3"') == 2
    assert count('productId = "sku-1"') == 2
    assert count('productId = "sku-10"') == 2
    assert count('productId = "sku-1" sessionId = "s-3"') == 1
    assert count('productId = "sku-é"') == 1
    assert count('sessionId = "s-5"') == 0
    assert count('sessionId = "s-3" eventType = "search"') == 1


def test_every_way_in_is_seen_and_every_refusal_with_its_field(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    retail = retail_client(served.address)
    write(retail, "by-grpc")
    rest_client = retail_v2.UserEventServiceClient(transport=UserEventServiceRestTransport(
        host=served.http_address, url_scheme="http", credentials=AnonymousCredentials()))
    write(rest_client, "by-rest")
    pixel(served, {"eventType": "home-page-view", "visitorId": "by-pixel"})
    imported = retail.import_user_events(retail_v2.ImportUserEventsRequest(
        parent=CATALOG, input_config=retail_v2.UserEventInputConfig(
            user_event_inline_source=retail_v2.UserEventInlineSource(user_events=[
                retail_v2.UserEvent(event_type="home-page-view", visitor_id="by-import",
                                    event_time=datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)),
                retail_v2.UserEvent(event_type="home-page-view",
                                    event_time=datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)),
            ]))))
    assert finish(imported).error_samples
    talent = talent_client(served.address)
    talent.create_client_event(parent=TENANT, client_event=client_event("event-1"))
    # and one refusal each way
    with pytest.raises(exceptions.InvalidArgument):
        write(retail, "")
    assert "X-Footfall-Error" in pixel(served, {"eventType": "home-page-view"}).headers
    with pytest.raises(exceptions.InvalidArgument):
        talent.create_client_event(parent=TENANT, client_event=client_event(""))

    console = Console(channels(served))
    listed = console.call("ListUserEvents", parent=CATALOG)["userEvents"]
    assert {e["userEvent"]["visitorId"]: e["transport"] for e in listed} == {
        "by-grpc": "GRPC", "by-rest": "REST", "by-pixel": "PIXEL", "by-import": "IMPORT"}
    assert all(e["receiveTime"] and e["joined"] for e in listed)
    over_rest = rest(served.http_address, f"{CATALOG}/userEvents", filter="transport = PIXEL")
    assert [e["userEvent"]["visitorId"] for e in over_rest.json()["userEvents"]] == ["by-pixel"]
    assert console.call("CountUserEvents", parent=CATALOG) == {"count": "4"}
    assert console.call("CountUserEvents", parent=CATALOG,
                        filter='transport = PIXEL visitorId = "by-pixel"') == {"count": "1"}
    counted = rest(served.http_address, f"{CATALOG}/userEvents:count", filter="transport = REST")
    assert counted.json() == {"count": "1"}
    client_events = console.call("ListClientEvents", parent=TENANT)["clientEvents"]
    assert [e["clientEvent"]["eventId"] for e in client_events] == ["event-1"]

    refused = rejections_of(console, 4)
    assert sorted((r["method"], r["transport"], tuple(fields_of(r))) for r in refused) == [
        (COLLECT, "PIXEL", ("user_event.visitor_id",)),
        (IMPORT, "IMPORT", ("input_config.user_event_inline_source.user_events[1].visitor_id",)),
        (WRITE, "GRPC", ("user_event.visitor_id",)),
        (CREATE_CLIENT_EVENT, "GRPC", ("client_event.event_id",)),
    ]
    by_method = {r["method"]: r for r in refused}
    assert by_method[IMPORT]["operation"] == imported.operation.name
    assert by_method[WRITE]["parent"] == CATALOG and by_method[WRITE]["code"] == 3
    assert json.loads(by_method[WRITE]["requestJson"])["parent"] == CATALOG
    over_rest = rest(served.http_address, f"{PROJECT}/rejections").json()["rejections"]
    assert [r["id"] for r in over_rest] == [r["id"] for r in refused]
    # those of one catalog, or one tenant: the requests that named it as their parent
    of_catalog = console.call("ListRejections", parent=CATALOG)["rejections"]
    assert [r["id"] for r in of_catalog] == [r["id"] for r in refused
                                             if r["method"] != CREATE_CLIENT_EVENT]
    assert [r["id"] for r in rest(served.http_address, f"{CATALOG}/rejections")
            .json()["rejections"]] == [r["id"] for r in of_catalog]
    [of_tenant] = rest(served.http_address, f"{TENANT}/rejections").json()["rejections"]
    assert of_tenant["method"] == CREATE_CLIENT_EVENT
    assert console.call("ListRejections", parent=CATALOG + "-other") == {}

    catalogs = console.call("ListCatalogs", parent=PROJECT)
    assert [(c["name"], c["eventCount"]) for c in catalogs["catalogs"]] == [(CATALOG, "4")]
    assert [(t["name"], t["eventCount"]) for t in catalogs["tenants"]] == [(TENANT, "1")]


def test_catalogs_and_tenants_come_a_page_at_a_time(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    """Catalogs by name, then tenants, page_size at a time, over gRPC and REST: a
    writer key can make catalogs without end, and one answer held them all."""
    retail, talent = retail_client(served.address), talent_client(served.address)
    for name in ("c0", "c1", "c2"):
        retail.write_user_event(retail_v2.WriteUserEventRequest(
            parent=f"{PROJECT}/locations/global/catalogs/{name}",
            user_event=retail_v2.UserEvent(event_type="home-page-view", visitor_id="v")))
    for tenant in (f"{PROJECT}/tenants/t0", f"{PROJECT}/tenants/t1"):
        talent.create_client_event(parent=tenant, client_event=client_event("event", tenant))
    console = Console(channels(served))

    def pages(fetch: Callable[[str], dict[str, Any]]) -> list[list[str]]:
        found, token = [], ""
        while True:
            page = fetch(token)
            found.append([s["name"].rsplit("/", 1)[1]
                          for s in page.get("catalogs", []) + page.get("tenants", [])])
            token = page.get("nextPageToken", "")
            if not token:
                return found

    expected = [["c0", "c1"], ["c2", "t0"], ["t1"]]
    assert pages(lambda token: console.call("ListCatalogs", parent=PROJECT, pageSize=2,
                                            pageToken=token)) == expected
    assert pages(lambda token: rest(served.http_address, f"{PROJECT}/catalogs", pageSize=2,
                                    pageToken=token).json()) == expected
    assert pages(lambda token: console.call("ListCatalogs", parent=PROJECT, pageSize=3,
                                            pageToken=token)) == [["c0", "c1", "c2"], ["t0", "t1"]]
    # names alone (what the console's chooser asks every few seconds): nothing counted
    basic = console.call("ListCatalogs", parent=PROJECT, view="DATA_SET_VIEW_BASIC")
    assert basic["catalogs"][0] == {"name": f"{PROJECT}/locations/global/catalogs/c0"}
    over_rest = rest(served.http_address, f"{PROJECT}/catalogs", view="DATA_SET_VIEW_BASIC")
    assert over_rest.json()["tenants"][1] == {"name": f"{PROJECT}/tenants/t1"}
    assert console.call("ListCatalogs", parent=PROJECT)["catalogs"][0]["eventCount"] == "1"
    for fields, field in (({"pageSize": -1}, "page_size"), ({"pageToken": "bm8"}, "page_token")):
        with pytest.raises(grpc.RpcError) as caught:
            console.call("ListCatalogs", parent=PROJECT, **fields)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details().startswith(field)


def test_watches_see_writes_and_refusals(served: ServerProcess,
                                         channels: Callable[[ServerProcess], grpc.Channel]
                                         ) -> None:
    retail = retail_client(served.address)
    write(retail, "before")
    console = Console(channels(served))
    [before] = console.call("ListUserEvents", parent=CATALOG)["userEvents"]
    events = console.watch("WatchUserEvents", parent=CATALOG, afterId=before["id"])
    refusals = console.watch("WatchRejections", parent=PROJECT, afterId=0)
    over_http = requests.get(f"http://{served.http_address}/console/v1/{CATALOG}/userEvents:watch",
                             params={"afterId": before["id"]}, stream=True, timeout=RPC_DEADLINE)
    # the refusals of the catalog alone, over server-sent events
    catalog_refusals = requests.get(
        f"http://{served.http_address}/console/v1/{CATALOG}/rejections:watch",
        params={"afterId": 0}, stream=True, timeout=RPC_DEADLINE)
    try:
        write(retail, "after")
        assert next(events)["userEvent"]["visitorId"] == "after"
        sent = next(line for line in over_http.iter_lines() if line.startswith(b"data: "))
        assert json.loads(sent[6:])["userEvent"]["visitorId"] == "after"
        with pytest.raises(exceptions.InvalidArgument):  # (of the tenant, not the catalog)
            talent_client(served.address).create_client_event(
                parent=TENANT, client_event=client_event(""))
        with pytest.raises(exceptions.InvalidArgument):
            write(retail, "")
        assert [r["method"] for r in (next(refusals), next(refusals))] == [
            CREATE_CLIENT_EVENT, WRITE]
        sent = next(line for line in catalog_refusals.iter_lines()
                    if line.startswith(b"data: "))
        assert json.loads(sent[6:])["method"] == WRITE
    finally:
        events.cancel()
        refusals.cancel()
        over_http.close()
        catalog_refusals.close()


def test_watches_of_single_events_past_their_budget_fall_behind_and_miss_nothing(
        server_factory: Callable[..., ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    # 100 messages a second for all of them (a grant of 50 unspent at the start)
    served = server_factory("--watch-messages", "100")
    retail = retail_client(served.address)
    visitors = [f"paced-{i:03d}" for i in range(60)]
    for visitor in visitors:
        write(retail, visitor)
    console = Console(channels(served))
    watches = [console.watch("WatchUserEvents", parent=CATALOG, afterId=0) for _ in range(2)]
    over_http = requests.get(f"http://{served.http_address}/console/v1/{CATALOG}/userEvents:watch",
                             params={"afterId": 0}, stream=True, timeout=RPC_DEADLINE)
    try:
        for watch in watches:  # every event, in order, however long the wait
            assert [next(watch)["userEvent"]["visitorId"] for _ in visitors] == visitors
        lines = (line for line in over_http.iter_lines() if line.startswith(b"data: "))
        assert [json.loads(next(lines)[6:])["userEvent"]["visitorId"]
                for _ in visitors] == visitors
    finally:
        for watch in watches:
            watch.cancel()
        over_http.close()
    # 180 messages against 50 unspent and 100 a second: the watches waited their turn
    metrics = requests.get(f"http://{served.http_address}/metrics", timeout=RPC_DEADLINE).text
    [waits] = [line for line in metrics.splitlines()
               if line.startswith("footfall_watch_message_waits_total ")]
    assert float(waits.split()[1]) > 0


def test_a_reset_starts_a_catalog_clean(served: ServerProcess,
                                        channels: Callable[[ServerProcess], grpc.Channel]
                                        ) -> None:
    retail = retail_client(served.address)
    write(retail, "v")
    answer = requests.post(f"http://{served.http_address}/console/v1/{CATALOG}:reset",
                           json={}, timeout=RPC_DEADLINE)
    assert answer.json()["deletedEventsCount"] == "1"
    assert "userEvents" not in Console(channels(served)).call("ListUserEvents", parent=CATALOG)
    # the same event may be written again: it is new to the catalog
    write(retail, "v")


def test_a_reset_starts_a_project_clean(served: ServerProcess,
                                        channels: Callable[[ServerProcess], grpc.Channel]
                                        ) -> None:
    """POST /console/v1/projects/P:reset (and ResetProject over gRPC) resets every
    catalog and tenant of P at once, and forgets every refusal its list shows; the
    next project's are left."""
    retail, talent = retail_client(served.address), talent_client(served.address)
    other_catalog = f"{PROJECT}/locations/eu/catalogs/other"
    next_project = "projects/footfall-interop-next/locations/global/catalogs/console"
    console = Console(channels(served))
    for via in ("REST", "gRPC"):
        for parent in (CATALOG, other_catalog, next_project):
            retail.write_user_event(retail_v2.WriteUserEventRequest(
                parent=parent, user_event=retail_v2.UserEvent(
                    event_type="home-page-view", visitor_id="v")), timeout=RPC_DEADLINE)
        talent.create_client_event(talent_v4.CreateClientEventRequest(
            parent=TENANT, client_event=client_event(f"e-{via}")), timeout=RPC_DEADLINE)
        with pytest.raises(exceptions.InvalidArgument):
            write(retail, "")  # a refusal of the catalog
        with pytest.raises(exceptions.InvalidArgument):  # and one of no catalog
            retail.write_user_event(retail_v2.WriteUserEventRequest(
                parent=f"{PROJECT}/locations/global", user_event=retail_v2.UserEvent(
                    event_type="home-page-view", visitor_id="v")), timeout=RPC_DEADLINE)
        rejections_of(console, 2)
        if via == "REST":
            answer = requests.post(f"http://{served.http_address}/console/v1/{PROJECT}:reset",
                                   json={}, timeout=RPC_DEADLINE)
            assert answer.status_code == 200, answer.text
            counts = answer.json()
        else:
            counts = console.call("ResetProject", name=PROJECT)
        # 2 user events and a client event; both refusals
        assert counts == {"deletedEventsCount": "3", "deletedRejectionsCount": "2"}, via
        assert console.call("ListCatalogs", parent=PROJECT) == {}
        assert console.call("ListRejections", parent=PROJECT) == {}
        assert console.call("CountUserEvents", parent=next_project)["count"] == str(
            1 if via == "REST" else 2)


def test_a_replica_sees_what_the_other_stored(
        server_factory: Callable[..., ServerProcess], postgres_databases: Any,
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    store = postgres_databases.create("console_replicas")
    first, second = server_factory(store=store), server_factory(store=store)
    watched = Console(channels(second))
    events = watched.watch("WatchUserEvents", parent=CATALOG, afterId=0)
    try:
        retail = retail_client(first.address)
        write(retail, "through-first")
        with pytest.raises(exceptions.InvalidArgument):
            write(retail, "")
        # the second replica commits nothing: its watch learns by polling
        assert next(events)["userEvent"]["visitorId"] == "through-first"
    finally:
        events.cancel()
    [refused] = rejections_of(watched, 1)
    assert refused["method"] == WRITE and fields_of(refused) == ["user_event.visitor_id"]


WRITER, READER, ADMIN = "writer-key-5e1f9c", "reader-key-0b7d3a", "admin-key-c2e8f4"
EVERY_PROJECT_READER = "reader-of-every-project-9d41a7"


@pytest.fixture
def secured(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> ServerProcess:
    keys = write_keys(tmp_path / "keys.json", {
        WRITER: ("writer", ["footfall-interop"]), READER: ("reader", ["footfall-interop"]),
        ADMIN: ("admin", ["footfall-interop"]), EVERY_PROJECT_READER: ("reader", ["*"])})
    return server_factory("--auth-file", str(keys))


def test_a_writer_key_reads_nothing(secured: ServerProcess,
                                    channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    console = Console(channels(secured), with_key(WRITER))
    for rpc, fields in (("ListUserEvents", {"parent": CATALOG}),
                        ("CountUserEvents", {"parent": CATALOG}),
                        ("ListRejections", {"parent": PROJECT}),
                        ("ListCatalogs", {"parent": PROJECT})):
        with pytest.raises(grpc.RpcError) as caught:
            console.call(rpc, **fields)
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "needs a reader or admin key" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        next(console.watch("WatchUserEvents", parent=CATALOG))
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert rest(secured.http_address, f"{CATALOG}/userEvents", key=WRITER).status_code == 403
    with pytest.raises(grpc.RpcError) as caught:
        next(Console(channels(secured)).watch("WatchUserEvents", parent=CATALOG))
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_a_reader_key_reads_and_writes_nothing(
        secured: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    retail = retail_client(secured.address)
    write(retail, "v", metadata=with_key(WRITER))
    # Callers without a valid key are not kept: anyone could flood out real refusals.
    for metadata in ((), with_key("not-a-key-of-this-server")):
        with pytest.raises(exceptions.Unauthenticated):
            write(retail, "", metadata=metadata)
    for headers in ({}, {"x-goog-api-key": "not-a-key-of-this-server"}):
        assert requests.post(f"http://{secured.http_address}/v2/{CATALOG}/userEvents:write",
                             data="x", headers={"Content-Type": "application/json", **headers},
                             timeout=RPC_DEADLINE).status_code == 401
    with pytest.raises(exceptions.InvalidArgument):
        write(retail, "", metadata=with_key(WRITER))
    console = Console(channels(secured), with_key(READER))
    assert len(console.call("ListUserEvents", parent=CATALOG)["userEvents"]) == 1
    [refused] = rejections_of(console, 1)
    everywhere = Console(channels(secured), with_key(EVERY_PROJECT_READER))
    assert everywhere.call("ListRejections", parent="projects/-")["rejections"] == [refused]
    assert refused["keyName"] == "writer-0"  # the key's name, never the key
    assert WRITER not in json.dumps(refused)
    assert rest(secured.http_address, f"{CATALOG}/userEvents", key=READER).status_code == 200
    assert rest(secured.http_address, f"{CATALOG}/userEvents:count",
                key=READER).json() == {"count": "1"}
    # every watch, the batches the README points many watchers to included
    for rpc in ("WatchUserEvents", "WatchUserEventBatches"):
        watch = console.watch(rpc, parent=CATALOG, afterId=0)
        try:
            first = next(watch)
            assert first.get("userEvent", first.get("userEvents", [{}])[0].get("userEvent")) \
                ["visitorId"] == "v"
        finally:
            watch.cancel()
    for path in ("userEvents:watch", "userEvents:watchBatches"):
        with requests.get(f"http://{secured.http_address}/console/v1/{CATALOG}/{path}",
                          params={"afterId": 0}, headers={"x-goog-api-key": READER},
                          stream=True, timeout=RPC_DEADLINE) as over_http:
            assert over_http.status_code == 200, over_http.text
            sent = next(line for line in over_http.iter_lines() if line.startswith(b"data: "))
            assert b'"visitorId":"v"' in sent.replace(b" ", b"")
    for denied in (
            lambda: write(retail, "r", metadata=with_key(READER)),
            lambda: retail.purge_user_events(retail_v2.PurgeUserEventsRequest(
                parent=CATALOG, filter='visitorId = "v"', force=True), metadata=with_key(READER))):
        with pytest.raises(exceptions.PermissionDenied):
            denied()
    with pytest.raises(grpc.RpcError) as caught:
        console.call("ResetCatalog", name=CATALOG)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    admin = Console(channels(secured), with_key(ADMIN))
    assert admin.call("ResetCatalog", name=CATALOG)["deletedEventsCount"] == "1"


def test_only_an_admin_key_of_the_project_resets_it(
        secured: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    """As ResetCatalog and ResetTenant: a reader or writer key is refused, and an
    admin key of another project; over gRPC and REST alike."""
    write(retail_client(secured.address), "v", metadata=with_key(WRITER))
    url = f"http://{secured.http_address}/console/v1/{PROJECT}:reset"
    for key, code in ((WRITER, grpc.StatusCode.PERMISSION_DENIED),
                      (READER, grpc.StatusCode.PERMISSION_DENIED),
                      (EVERY_PROJECT_READER, grpc.StatusCode.PERMISSION_DENIED),
                      (None, grpc.StatusCode.UNAUTHENTICATED)):
        console = Console(channels(secured), with_key(key) if key else ())
        with pytest.raises(grpc.RpcError) as caught:
            console.call("ResetProject", name=PROJECT)
        assert caught.value.code() is code, key
        answer = requests.post(url, json={}, timeout=RPC_DEADLINE,
                               headers={"x-goog-api-key": key} if key else {})
        assert answer.status_code == (403 if key else 401), (key, answer.text)
    admin = Console(channels(secured), with_key(ADMIN))
    with pytest.raises(grpc.RpcError) as caught:
        admin.call("ResetProject", name="projects/another")
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    reader = Console(channels(secured), with_key(READER))
    assert reader.call("CountUserEvents", parent=CATALOG) == {"count": "1"}  # (nothing reset)
    answer = requests.post(url, json={}, timeout=RPC_DEADLINE, headers={"x-goog-api-key": ADMIN})
    assert answer.json() == {"deletedEventsCount": "1"}, answer.text
    assert reader.call("CountUserEvents", parent=CATALOG) == {}


BAD_RESET_NAMES = [
    # (RPC, name, what the message says)
    ("ResetProject", "", "must be of the form 'projects/*'"),
    ("ResetProject", "projects/-", "the project must be named"),
    ("ResetProject", f"{PROJECT}/tenants/t", "must be of the form 'projects/*'"),
    ("ResetProject", "projects/ x", "white space"),
    # `-` is every catalog (tenant, location) in a list's parent, no one to reset
    ("ResetCatalog", f"{PROJECT}/locations/global/catalogs/-",
     f"call ResetProject (POST /console/v1/{PROJECT}:reset)"),
    ("ResetCatalog", f"{PROJECT}/locations/-/catalogs/console", "'-' names no catalog"),
    ("ResetTenant", f"{PROJECT}/tenants/-", "'-' names no tenant"),
]


@pytest.mark.parametrize(("rpc", "name", "said"), BAD_RESET_NAMES)
def test_a_reset_of_a_bad_name_is_refused_naming_it(
        rpc: str, name: str, said: str, server: ServerProcess,
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        Console(channels(server)).call(rpc, name=name)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("name: ") and said in caught.value.details(), \
        caught.value.details()


@pytest.mark.parametrize("path", [
    "projects/-:reset", f"{PROJECT}/locations/global/catalogs/-:reset",
    f"{PROJECT}/tenants/-:reset"])
def test_a_reset_of_a_bad_name_is_refused_over_rest(path: str,
                                                     server: ServerProcess) -> None:
    answer = requests.post(f"http://{server.http_address}/console/v1/{path}", json={},
                           timeout=RPC_DEADLINE)
    assert answer.status_code == 400, answer.text
    [bad_request] = [d for d in answer.json()["error"]["details"]
                     if d["@type"].endswith("google.rpc.BadRequest")]
    assert [v["field"] for v in bad_request["fieldViolations"]] == ["name"]


def test_a_key_the_request_holds_is_not_kept_with_its_refusal(
        secured: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    """Only a body's top-level "key" member was masked: the caller's key in a field
    of the request (a page's id, say), in a pixel's event JSON or in a body that is
    not JSON was kept as sent, for every reader of the project to see."""
    retail = retail_client(secured.address)
    with pytest.raises(exceptions.InvalidArgument, match="visitor_id"):
        retail.write_user_event(retail_v2.WriteUserEventRequest(
            parent=CATALOG, user_event=retail_v2.UserEvent(
                event_type="home-page-view", page_view_id=f"page-of-{WRITER}")),
            metadata=with_key(WRITER))
    collect = f"http://{secured.http_address}/v2/{CATALOG}/userEvents:collect"
    answer = requests.get(collect, timeout=RPC_DEADLINE, params={
        "key": WRITER, "userEvent": json.dumps({"eventType": "home-page-view", "key": WRITER})})
    assert "no field named \"key\"" in answer.headers["X-Footfall-Error"]
    answer = requests.post(f"http://{secured.http_address}/v2/{CATALOG}/userEvents:write",
                           data=f"not json {WRITER}", timeout=RPC_DEADLINE,
                           headers={"Content-Type": "application/json",
                                    "x-goog-api-key": WRITER})
    assert answer.status_code == 400
    kept = rejections_of(Console(channels(secured), with_key(READER)), 3)
    assert len(kept) == 3
    for rejection in kept:
        assert WRITER not in json.dumps(rejection), rejection
        assert "(not kept: an API key)" in rejection["requestJson"], rejection
    written, collected, posted = reversed(kept)  # (newest first)
    assert json.loads(written["requestJson"])["userEvent"]["pageViewId"] \
        == "page-of-(not kept: an API key)"
    assert json.loads(json.loads(collected["requestJson"])["userEvent"]) \
        == {"eventType": "home-page-view", "key": "(not kept: an API key)"}
    assert "not json (not kept: an API key)" in posted["requestJson"]


def test_bad_lines_of_an_imported_file_are_kept_with_their_fields(
        server: ServerProcess, retail: retail_v2.UserEventServiceClient, catalog: str,
        gcs_folder: str, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    uri = put_gcs(server.gcs_root, f"{gcs_folder}/events.json", [
        '{"eventType": "home-page-view", "visitorId": "v1", "eventTime": "2024-05-01T00:00:00Z"}',
        "{not json",
        '{"eventType": "home-page-view", "eventTime": "2024-05-01T00:00:00Z"}',
    ])
    operation = retail.import_user_events(request={
        "parent": catalog, "input_config": {"gcs_source": {"input_uris": [uri]}}})
    assert finish(operation).error_samples
    console = Console(channels(server))
    kept = wait_until(lambda: [
        r for r in console.call("ListRejections", parent=PROJECT).get("rejections", [])
        if r.get("operation") == operation.operation.name] or None, "the import's refusals", 10)
    invalid, not_json = kept  # newest first
    assert invalid["message"] == f"{uri} line 3: user_event.visitor_id: is required"
    assert fields_of(invalid) == ["user_event.visitor_id"]
    assert not_json["message"].startswith(f"{uri} line 2: invalid JSON") and not fields_of(not_json)
    assert all(r["transport"] == "IMPORT" and r["parent"] == catalog for r in kept)


def test_a_key_used_on_another_project_fills_no_refusals_there(
        secured: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    # A writer key sits in a shop's pages: whoever copies it must not flood out another
    # project's refusals (nor, with the kept count shared, this project's).
    retail = retail_client(secured.address)
    elsewhere = "projects/someone-else/locations/global/catalogs/default_catalog"
    with pytest.raises(exceptions.PermissionDenied, match="not allowed to use project"):
        retail.write_user_event(retail_v2.WriteUserEventRequest(
            parent=elsewhere, user_event=retail_v2.UserEvent(event_type="home-page-view",
                                                             visitor_id="")),
            metadata=with_key(WRITER))
    answer = requests.get(f"http://{secured.http_address}/v2/{elsewhere}/userEvents:collect",
                          params={"userEvent": "{}", "key": WRITER}, timeout=RPC_DEADLINE)
    assert answer.status_code == 200 and "not allowed to use project" in \
        answer.headers["X-Footfall-Error"]
    # a reader key there too: its project is looked at before its role (it was refused
    # for its role, and the refusal was kept in the other project's list)
    with pytest.raises(exceptions.PermissionDenied, match="not allowed to use project"):
        retail.write_user_event(retail_v2.WriteUserEventRequest(
            parent=elsewhere, user_event=retail_v2.UserEvent(event_type="home-page-view",
                                                             visitor_id="injected")),
            metadata=with_key(READER))
    # after them, a refusal in the key's own project: kept (the role is too weak)
    with pytest.raises(exceptions.PermissionDenied, match="role"):
        write(retail, "r", metadata=with_key(READER))
    everywhere = Console(channels(secured), with_key(EVERY_PROJECT_READER))
    [kept] = wait_until(lambda: everywhere.call("ListRejections", parent="projects/-")
                        .get("rejections"), "the refusal in the key's project", 10)
    # the key was known though the call was not admitted: its name is kept
    assert kept["parent"] == CATALOG and kept["keyName"] == "reader-1"


def test_with_auth_a_call_refused_before_its_key_is_looked_at_is_not_kept(
        secured: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    url = f"http://{secured.http_address}/v2/{CATALOG}/userEvents:write"
    event = {"eventType": "home-page-view", "visitorId": "v"}
    for query in ("?$alt=xml", "?x=%FF"):  # refused before or after the key: no key, no row
        answer = requests.post(url + query, json=event, timeout=RPC_DEADLINE)
        assert answer.status_code in (400, 401)
    assert requests.post(url + "?x=%FF", json=event, timeout=RPC_DEADLINE).status_code == 401
    retail = retail_client(secured.address)
    with pytest.raises(exceptions.InvalidArgument):  # after them, one of a known key
        write(retail, "", metadata=with_key(WRITER))
    everywhere = Console(channels(secured), with_key(EVERY_PROJECT_READER))
    [kept] = wait_until(lambda: everywhere.call("ListRejections", parent="projects/-")
                        .get("rejections"), "the refusal of the known key", 10)
    assert kept["keyName"] == "writer-0"


def test_one_bad_request_sent_again_and_again_is_counted_not_repeated(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    retail = retail_client(served.address)
    rest_client = retail_v2.UserEventServiceClient(transport=UserEventServiceRestTransport(
        host=served.http_address, url_scheme="http", credentials=AnonymousCredentials()))
    tries = {"GRPC": (retail, 30), "REST": (rest_client, 20)}
    for client, times in tries.values():
        for _ in range(times):
            with pytest.raises((exceptions.InvalidArgument, exceptions.BadRequest)):  # gRPC, REST
                write(client, "")  # the very same request each time
    console = Console(channels(served))

    def counted() -> dict[str, int] | None:
        found = console.call("ListRejections", parent=PROJECT).get("rejections", [])
        times: dict[str, int] = {}
        for r in found:
            times[r["transport"]] = times.get(r["transport"], 0) + int(r.get("repeats", 0)) + 1
        return times if times == {way: n for way, (_, n) in tries.items()} else None

    wait_until(counted, "every try counted")
    refused = console.call("ListRejections", parent=PROJECT)["rejections"]
    # tries that came within one gathering of the writer are one row: far fewer rows
    assert len(refused) < 30
    repeated = [r for r in refused if "repeats" in r]
    assert repeated and all(when(r["lastTime"]) > when(r["time"]) for r in repeated)
    assert all(fields_of(r) == ["user_event.visitor_id"] for r in refused)
    over_rest = rest(served.http_address, f"{PROJECT}/rejections").json()["rejections"]
    assert [(r["id"], r.get("repeats")) for r in over_rest] == \
        [(r["id"], r.get("repeats")) for r in refused]


def test_an_event_too_large_once_joined_is_stored_not_joined_and_refused_nowhere(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """Its refusal told a writer key (public in a page) which products the catalog
    holds: the write was refused only when the product named was there, and large.
    Written, collected, imported or rejoined, such an event is stored as received,
    not joined, and nothing is refused or kept as a refusal."""
    served = server_factory("--max-event-bytes", "3000", "--gcs-root", str(tmp_path / "gcs"))
    products = retail_v2.ProductServiceClient(transport=ProductServiceGrpcTransport(
        channel=grpc.insecure_channel(served.address)))
    branch = f"{CATALOG}/branches/default_branch"
    for pid, description in (("fat", "d" * 2950), ("slim", "d")):
        products.create_product(parent=branch, product_id=pid, product=retail_v2.Product(
            title=f"{pid} tent", categories=["Tents"], description=description))
    retail = retail_client(served.address)

    def viewed(visitor: str, pid: str) -> retail_v2.UserEvent:
        return retail_v2.UserEvent(event_type="detail-page-view", visitor_id=visitor,
                                   product_details=[{"product": {"id": pid}}])

    answered = retail.write_user_event(request={"parent": CATALOG,
                                                "user_event": viewed("by-grpc", "fat")})
    assert answered.product_details[0].product.title == ""  # as sent
    retail.write_user_event(request={"parent": CATALOG, "write_async": True,
                                     "user_event": viewed("by-grpc-async", "fat")})
    retail.write_user_event(request={"parent": CATALOG, "user_event": viewed("joins", "slim")})
    answer = pixel(served, {"eventType": "detail-page-view", "visitorId": "by-pixel",
                            "productDetails": [{"product": {"id": "fat"}}]})
    assert "X-Footfall-Error" not in answer.headers
    imported = finish(retail.import_user_events(request={"parent": CATALOG, "input_config": {
        "user_event_inline_source": {"user_events": [retail_v2.UserEvent(
            viewed("by-import", "fat"), event_time=datetime.datetime.now(datetime.UTC))]}}}))
    assert not imported.error_samples
    assert (imported.import_summary.joined_events_count,
            imported.import_summary.unjoined_events_count) == (0, 1)

    def stored() -> dict[str, tuple[bool, str]]:
        listed = rest(served.http_address, f"{CATALOG}/userEvents").json()["userEvents"]
        return {e["userEvent"]["visitorId"]: (
            e.get("joined", False), e["userEvent"]["productDetails"][0]["product"].get("title", ""))
            for e in listed}

    fat_ones = ("by-grpc", "by-grpc-async", "by-pixel", "by-import")
    wait_until(lambda: len(stored()) == 5, "the five events to be stored")
    assert stored() == {**{v: (False, "") for v in fat_ones}, "joins": (True, "slim tent")}
    fat_ones = (*fat_ones, "forger")
    assert rest(served.http_address, f"{PROJECT}/rejections").json() == {}
    assert any("left not joined" in line and "--max-event-bytes (3000)" in line
               and " INFO " in line for line in served.log)
    # its type is the caller's words: quoted, a line break in it forges no log line
    retail.write_user_event(request={"parent": CATALOG, "user_event": retail_v2.UserEvent(
        viewed("forger", "fat"), event_type="odd\n2026-12-03 CRITICAL footfall: forged")})
    wait_until(lambda: any("'odd\\n2026-12-03 CRITICAL footfall: forged'" in line
                           for line in served.log), "the quoted type in the log")
    assert not any(line.startswith("2026-12-03 CRITICAL") for line in served.log)

    # A rejoin leaves them as they were, and leaves "joins" not joined once its
    # product grows past the limit too, as received.
    products.update_product(product={"name": f"{branch}/products/slim",
                                     "description": "d" * 2950},
                            update_mask={"paths": ["description"]})
    rejoined = finish(retail.rejoin_user_events(request={"parent": CATALOG}))
    assert rejoined.rejoined_user_events_count == 0
    assert stored() == {**{v: (False, "") for v in fat_ones}, "joins": (False, "")}
