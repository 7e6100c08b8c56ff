"""The CLI over the console API: `events`, `rejections`, `talent-events` and
`catalogs` against a running server (as a user runs them: a subprocess), the
same lines read from the store itself, `tail` following until Ctrl-C and across
a restart, and the keys each needs."""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from footfall.console.v1 import console_pb2
from footfall.insights.v1 import insights_pb2, insights_pb2_grpc
from footfall.retail.v2 import (
    product_pb2,
    product_service_pb2,
    product_service_pb2_grpc,
    user_event_pb2,
    user_event_service_pb2,
)
from footfall.talent.v4 import event_pb2, event_service_pb2, event_service_pb2_grpc
from google.protobuf import json_format

from server.app import Running, start
from server.cli_args import server_address
from server.config import Settings
from server.insights import totals
from server.insights.funnel_request import COMPANY_NOTE
from server.insights.tables import PRICE_NOTE
from server.store import ClientEventRow, EventRow, open_store

from . import http_client
from .cli import CATALOG, footfall
from .test_cli_server import address
from .test_server import retail

TENANT = "projects/p/tenants/t"
ADMIN, READER, WRITER = (f"cli-{role}-key-0123456789abcdef" for role in
                         ("admin", "reader", "writer"))
LINE_SECONDS = 30.0  # how long a tail may take to print what it was sent


def keys_file(folder: Path) -> Path:
    path = folder / "keys.json"
    path.write_text(json.dumps({"keys": {key: {"projects": ["p"], "role": role, "name": role}
                                         for key, role in ((ADMIN, "admin"), (READER, "reader"),
                                                           (WRITER, "writer"))}}))
    return path


def settings(folder: Path, store: str, port: int = 0) -> Settings:
    return Settings(host="127.0.0.1", port=port, http_port=-1, store=store, grace_seconds=5,
                    auth_file=str(keys_file(folder)))


def write(running: Running, body: dict[str, object], key: str = WRITER) -> None:
    with grpc.insecure_channel(address(running)) as channel:
        retail(channel).WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=json_format.ParseDict(body, user_event_pb2.UserEvent())),
            metadata=(("x-goog-api-key", key),))


def record_shop(running: Running) -> None:
    """Events of three kinds over gRPC, one by pixel, two refused, two client events."""
    write(running, {"eventType": "home-page-view", "visitorId": "a", "sessionId": "s1",
                    "eventTime": "2024-01-01T00:00:00Z"})
    write(running, {"eventType": "purchase-complete", "visitorId": "b",
                    "userInfo": {"userId": "u7"}, "eventTime": "2024-01-02T00:00:00Z",
                    "productDetails": [{"product": {"id": "sku-1"}, "quantity": 2}],
                    "purchaseTransaction": {"revenue": 25.5, "currencyCode": "EUR"}})
    write(running, {"eventType": "search", "visitorId": "c", "searchQuery": "red shoes",
                    "eventTime": "2024-01-03T00:00:00Z"})
    pixel = http_client.call(running.http_port, "GET", f"/v2/{CATALOG}/userEvents:collect?"
                             f"key={WRITER}&userEvent=" + http_client.query_value(
                                 {"eventType": "home-page-view", "visitorId": "d",
                                  "eventTime": "2024-01-04T00:00:00Z"}))
    assert pixel.status == 200 and "X-Footfall-Error" not in pixel.headers
    with pytest.raises(grpc.RpcError):
        write(running, {"eventType": "home-page-view", "visitorId": ""})
    with pytest.raises(grpc.RpcError):
        write(running, {"eventType": "search", "visitorId": "e"})
    with grpc.insecure_channel(address(running)) as channel:
        talent = event_service_pb2_grpc.EventServiceStub(channel)
        for n, kind in ((1, "VIEW"), (2, "APPLICATION_START")):
            talent.CreateClientEvent(event_service_pb2.CreateClientEventRequest(
                parent=TENANT, client_event=json_format.ParseDict(
                    {"eventId": f"e{n}", "requestId": "r1", "createTime": "2024-05-01T00:00:00Z",
                     "jobEvent": {"type": kind, "jobs": [f"{TENANT}/jobs/j{n}"]}},
                    event_pb2.ClientEvent())), metadata=(("x-goog-api-key", WRITER),))
    running.store.flush()  # refusals are kept after the answer


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A SQLite server that needs keys, holding the shop's history."""
    folder = tmp_path_factory.mktemp("shop")
    running = start(settings(folder, f"sqlite:///{folder}/events.db"))
    try:
        record_shop(running)
        yield running
    finally:
        running.stop()


def read(running: Running, *args: str, key: str = READER,
         cwd: Path) -> subprocess.CompletedProcess[str]:
    """`footfall ARGS --server` with `key` in FOOTFALL_KEY."""
    return footfall(*args, "--server", address(running), cwd=cwd, env={"FOOTFALL_KEY": key})


EVENT_LINES = [
    "2024-01-04T00:00:00Z  home-page-view       visitor=d  [pixel]",
    '2024-01-03T00:00:00Z  search               visitor=c search="red shoes"  [grpc]',
    "2024-01-02T00:00:00Z  purchase-complete    visitor=b user=u7 products=sku-1×2 "
    "revenue=25.5EUR not-joined  [grpc]",
    "2024-01-01T00:00:00Z  home-page-view       visitor=a session=s1  [grpc]",
]


def test_events_list_from_the_server_as_from_the_store(shop: Running, tmp_path: Path) -> None:
    served = read(shop, "events", "list", "--parent", CATALOG, cwd=tmp_path)
    assert (served.returncode, served.stderr) == (0, "")
    assert served.stdout.splitlines() == EVENT_LINES
    stored = footfall("events", "list", "--parent", CATALOG, "--store", shop.settings.store,
                      cwd=tmp_path)
    assert (stored.returncode, stored.stdout) == (0, served.stdout)
    as_json = read(shop, "events", "list", "--parent", CATALOG, "--json", "--limit", "2",
                   cwd=tmp_path)
    events = [json_format.Parse(line, console_pb2.StoredUserEvent())
              for line in as_json.stdout.splitlines()]
    assert [(e.user_event.visitor_id, e.transport) for e in events] == [
        ("d", console_pb2.PIXEL), ("c", console_pb2.GRPC)]
    assert events[0].catalog == CATALOG and events[0].receive_time.seconds > 0
    assert json.loads(as_json.stdout.splitlines()[1])["userEvent"]["searchQuery"] == "red shoes"


def test_a_line_an_output_cannot_encode_is_escaped(shop: Running, tmp_path: Path) -> None:
    """`sku-1×2` (and the insights' `–`) on an output that cannot encode them (ASCII
    here; latin-1 has × but not –) ended the command in a UnicodeEncodeError
    traceback, exit 1."""
    ascii_out = {"FOOTFALL_KEY": READER, "PYTHONIOENCODING": "ascii"}
    out = footfall("events", "list", "--parent", CATALOG, "--server", address(shop),
                   cwd=tmp_path, env=ascii_out)
    assert (out.returncode, out.stderr) == (0, "")
    assert "products=sku-1\\xd72 " in out.stdout, out.stdout
    rates = footfall("insights", "jobs", "--parent", TENANT, "--server", address(shop),
                     cwd=tmp_path, env=ascii_out)
    assert rates.returncode == 0 and "viewRate=\\u2013 " in rates.stdout, rates


def test_products_list_from_the_server_as_from_the_store(shop: Running,
                                                         tmp_path: Path) -> None:
    branch = f"{CATALOG}/branches/1"  # (the events' branch, 0, keeps no product)
    with grpc.insecure_channel(address(shop)) as channel:
        products = product_service_pb2_grpc.ProductServiceStub(channel)
        for product_id, product in (
                ("sku-9", {"title": "Blue\nsocks", "categories": ["Socks"],
                           "priceInfo": {"price": 4, "currencyCode": "EUR"}}),
                ("sku-9-m", {"type": "VARIANT", "primaryProductId": "sku-9", "title": "M"}),
                ("box", {"type": "COLLECTION", "title": "Box", "categories": ["A > B", "C"],
                         "collectionMemberIds": ["sku-9"], "availability": "PREORDER"})):
            products.CreateProduct(product_service_pb2.CreateProductRequest(
                parent=branch, product_id=product_id,
                product=json_format.ParseDict(product, product_pb2.Product())),
                metadata=(("x-goog-api-key", ADMIN),))
    lines = ['box  COLLECTION title="Box" availability=PREORDER categories="A > B | C" members=1',
             'sku-9  PRIMARY    title="Blue\\nsocks" price=4EUR categories="Socks"',
             'sku-9-m  VARIANT    title="M" primary=sku-9']
    served = read(shop, "products", "list", "--parent", branch, cwd=tmp_path)
    assert (served.returncode, served.stdout.splitlines(), served.stderr) == (0, lines, "")
    stored = footfall("products", "list", "--parent", branch, "--store", shop.settings.store,
                      cwd=tmp_path)
    assert (stored.returncode, stored.stdout) == (0, served.stdout), stored.stderr
    for where in (["--store", shop.settings.store], ["--server", address(shop)]):
        variants = footfall("products", "list", "--parent", branch, "--filter",
                            'primary_product_id = "sku-9"', "--json", *where, cwd=tmp_path,
                            env={"FOOTFALL_KEY": READER})
        assert [json.loads(line)["id"] for line in variants.stdout.splitlines()] == ["sku-9-m"]
        first = footfall("products", "list", "--parent", branch, "--limit", "1", *where,
                         cwd=tmp_path, env={"FOOTFALL_KEY": READER})
        assert (first.stdout.splitlines(), first.stderr) == (lines[:1], (
            "footfall: only 1 shown; more are stored (raise --limit; 0 shows all)\n"))
        # a catalog is its default branch, which holds none here
        none = footfall("products", "list", "--parent", CATALOG, *where, cwd=tmp_path,
                        env={"FOOTFALL_KEY": READER})
        assert (none.returncode, none.stdout, none.stderr) == (
            0, "", f"footfall: no product in {CATALOG}/branches/default_branch\n")
        missing = footfall("products", "list", "--parent", branch, "--filter",
                           'collection_product_id = "nope"', *where, cwd=tmp_path,
                           env={"FOOTFALL_KEY": READER})
        assert missing.returncode == 2 and "NOT_FOUND" not in missing.stdout
        assert f"{branch}/products/nope' not found" in missing.stderr, missing.stderr


@pytest.mark.parametrize(("text", "visitors"), [
    ("", "abcd"),
    ('eventType = "home-page-view"', "ad"),
    ("transport = PIXEL", "d"),
    ("transport = pixel", "d"),  # as `footfall events list` writes it: [pixel]
    ('sessionId = "s1"', "a"),  # read on the decoded events
    ('productId = "sku-1" eventTime > "2024-01-01T12:00:00Z"', "b"),
])
def test_events_filter_and_count_with_a_reader_key(shop: Running, tmp_path: Path, text: str,
                                                   visitors: str) -> None:
    listed = read(shop, "events", "list", "--parent", CATALOG, "--filter", text, "--json",
                  cwd=tmp_path)
    assert sorted(json.loads(line)["userEvent"]["visitorId"]
                  for line in listed.stdout.splitlines()) == list(visitors)
    counted = read(shop, "events", "count", "--parent", CATALOG, "--filter", text, cwd=tmp_path)
    assert (counted.returncode, counted.stdout) == (0, f"{len(visitors)}\n"), counted.stderr
    stored = footfall("events", "count", "--parent", CATALOG, "--filter", text, "--store",
                      shop.settings.store, cwd=tmp_path)
    assert stored.stdout == counted.stdout


def test_a_catalog_without_events_counts_zero(shop: Running, tmp_path: Path) -> None:
    other = CATALOG.replace("default_catalog", "other")
    for out in (read(shop, "events", "count", "--parent", other, cwd=tmp_path),
                footfall("events", "count", "--parent", other, "--store", shop.settings.store,
                         cwd=tmp_path)):
        # (stdout the count alone; a mistyped catalog is told where the names are)
        assert (out.returncode, out.stdout, out.stderr) == (
            0, "0\n", f"footfall: no event in {other} (`footfall catalogs` lists those that "
                       f"hold events; `footfall rejections list --parent {other}`, the "
                       "requests refused that named it)\n")


@pytest.mark.parametrize(("command", "said"), [
    (["events", "list", "--parent", CATALOG.replace("default_catalog", "default")],
     "footfall: no event in projects/p/locations/global/catalogs/default (`footfall catalogs` "
     "lists those that hold events; `footfall rejections list --parent "
     "projects/p/locations/global/catalogs/default`, the requests refused that named it)\n"),
    (["events", "list", "--parent", CATALOG, "--filter", 'visitorId = "nobody"'],
     f"footfall: no event of {CATALOG} matches --filter\n"),
    (["talent-events", "list", "--parent", "projects/p/tenants/none"],
     "footfall: no client event in projects/p/tenants/none (`footfall catalogs` lists the "
     "tenants that hold them; `footfall rejections list --parent projects/p/tenants/none`, "
     "the requests refused that named it)\n"),
])
def test_a_list_of_nothing_says_so_on_stderr(shop: Running, tmp_path: Path,
                                             command: list[str], said: str) -> None:
    # A mistyped catalog printed nothing at all, as an empty one does.
    for out in (read(shop, *command, cwd=tmp_path),
                footfall(*command, "--store", shop.settings.store, cwd=tmp_path)):
        assert (out.returncode, out.stdout, out.stderr) == (0, "", said)
    # (the keys here may read project p only)
    none = footfall("catalogs", "--parent", "projects/none", "--store", shop.settings.store,
                    cwd=tmp_path)
    assert (none.returncode, none.stdout, none.stderr) == (
        0, "", "footfall: no catalog or tenant holds events in projects/none\n")


def test_rejections_say_status_message_and_fields(shop: Running, tmp_path: Path) -> None:
    out = read(shop, "rejections", "list", "--parent", "projects/p", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    no_query, no_visitor = out.stdout.splitlines()
    time, method, transport, parent, status = no_visitor.split("  ", 4)
    assert (method, transport, parent) == ("retail.v2.UserEventService/WriteUserEvent",
                                           "[grpc]", CATALOG)
    assert len(time) == len("2024-01-01T00:00:00.000Z") and time.endswith("Z")  # ms
    assert status.startswith("INVALID_ARGUMENT: user_event.visitor_id: ")
    assert status.endswith("  key=writer")
    assert "INVALID_ARGUMENT: user_event.search_query: search events need " in no_query
    as_json = read(shop, "rejections", "list", "--parent", "projects/p", "--json", "--limit",
                   "1", cwd=tmp_path)
    [latest] = [json_format.Parse(line, console_pb2.Rejection())
                for line in as_json.stdout.splitlines()]
    assert [v.field for v in latest.field_violations] == ["user_event.search_query"]
    assert latest.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and latest.id > 0
    stored = footfall("rejections", "list", "--store", shop.settings.store, cwd=tmp_path)
    assert stored.stdout == out.stdout  # projects/-: every project, also those none named
    # those whose request named a catalog (both here), from the server and the file
    for of_catalog in (read(shop, "rejections", "list", "--parent", CATALOG, cwd=tmp_path),
                       footfall("rejections", "list", "--parent", CATALOG, "--store",
                                shop.settings.store, cwd=tmp_path)):
        assert of_catalog.stdout == out.stdout, of_catalog.stderr
    other = CATALOG.replace("default_catalog", "other")
    none = read(shop, "rejections", "list", "--parent", other, cwd=tmp_path)
    assert (none.returncode, none.stdout, none.stderr) == (
        0, "", f"footfall: no refusal kept in {other}\n")
    wrong = read(shop, "rejections", "list", "--parent", "catalogs/x", cwd=tmp_path)
    assert wrong.returncode == 2 and "--parent: must be projects/PROJECT (projects/- for " \
        "every project), a catalog (projects/P/locations/L/catalogs/C) or a tenant " \
        "(projects/P/tenants/T), got 'catalogs/x'" in wrong.stderr, wrong.stderr


@pytest.fixture
def versions(tmp_path: Path) -> Iterator[Running]:
    """A server with keys, a refused write of retail v2 and one of v2beta (over REST)."""
    running = start(settings(tmp_path, f"sqlite:///{tmp_path}/events.db"))
    try:
        for version in ("v2", "v2beta"):
            refused = http_client.call(
                running.http_port, "POST", f"/{version}/{CATALOG}/userEvents:write",
                {"eventType": "home-page-view"}, {"x-goog-api-key": WRITER})
            assert refused.status == 400, refused.body
        running.store.flush()
        yield running
    finally:
        running.stop()


def test_rejections_tell_the_api_versions_apart(versions: Running, tmp_path: Path) -> None:
    out = read(versions, "rejections", "list", "--parent", "projects/p", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [line.split("  ")[1:3] for line in out.stdout.splitlines()] == [
        ["retail.v2beta.UserEventService/WriteUserEvent", "[rest]"],
        ["retail.v2.UserEventService/WriteUserEvent", "[rest]"]]
    as_json = read(versions, "rejections", "list", "--parent", "projects/p", "--json",
                   cwd=tmp_path)
    assert [json.loads(line)["method"] for line in as_json.stdout.splitlines()] == [
        "/google.cloud.retail.v2beta.UserEventService/WriteUserEvent",
        "/google.cloud.retail.v2.UserEventService/WriteUserEvent"]


def test_a_talent_refusal_read_from_the_store_shows_its_request(tmp_path: Path) -> None:
    running = start(settings(tmp_path, f"sqlite:///{tmp_path}/events.db"))
    try:
        refused = http_client.call(running.http_port, "POST", f"/v4/{TENANT}/clientEvents", {
            "eventId": "", "createTime": "2024-05-01T00:00:00Z",
            "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j1"]}},
            {"x-goog-api-key": WRITER})
        assert refused.status == 400, refused.body
        running.store.flush()
        served = read(running, "rejections", "list", "--parent", TENANT, "--json", cwd=tmp_path)
    finally:
        running.stop()
    stored = footfall("rejections", "list", "--parent", TENANT, "--json", "--store",
                      running.settings.store, cwd=tmp_path)
    assert (stored.returncode, stored.stdout) == (0, served.stdout)
    [kept] = [json.loads(line) for line in stored.stdout.splitlines()]
    assert "requestTruncated" not in kept, kept
    assert json.loads(kept["requestJson"])["clientEvent"]["jobEvent"]["type"] == "VIEW"


def test_talent_events_and_catalogs(shop: Running, tmp_path: Path) -> None:
    out = read(shop, "talent-events", "list", "--parent", TENANT, cwd=tmp_path)
    assert out.stdout.splitlines() == [
        "2024-05-01T00:00:00Z  APPLICATION_START    jobs=j2 request=r1 event=e2  [grpc]",
        "2024-05-01T00:00:00Z  VIEW                 jobs=j1 request=r1 event=e1  [grpc]"]
    as_json = read(shop, "talent-events", "list", "--parent", TENANT, "--json", cwd=tmp_path)
    assert [json.loads(line)["clientEvent"]["eventId"]
            for line in as_json.stdout.splitlines()] == ["e2", "e1"]
    catalogs = read(shop, "catalogs", "--parent", "projects/p", cwd=tmp_path)
    assert catalogs.returncode == 0, catalogs.stderr
    catalog, tenant = catalogs.stdout.splitlines()
    assert catalog.startswith(f"{CATALOG}  4 events  last event 2024-01-04T00:00:00Z  "
                              "last received 20")
    assert tenant.startswith(f"{TENANT}  2 client events  last event 2024-05-01T00:00:00Z")
    as_json = read(shop, "catalogs", "--parent", "projects/p", "--json", cwd=tmp_path)
    assert [json.loads(line)["eventCount"] for line in as_json.stdout.splitlines()] == ["4", "2"]
    # a catalog loaded with products before its first event
    loaded = CATALOG.replace("default_catalog", "loaded_first")
    assert shop.store.create_product(f"{loaded}/branches/0", "sku-1", b"")
    catalogs = read(shop, "catalogs", "--parent", "projects/p", cwd=tmp_path)
    assert catalogs.stdout.splitlines()[1] == f"{loaded}  0 events  (products only)"


def test_catalogs_follows_the_pages(tmp_path: Path) -> None:
    """More data sets than a page holds (1,000): every one is printed, catalogs first."""
    store = open_store(f"sqlite:///{tmp_path}/many.db")
    try:
        store.write_user_events([EventRow.from_event(
            f"projects/p/locations/global/catalogs/c{n:04}",
            user_event_pb2.UserEvent(event_type="home-page-view", visitor_id="v"), joined=True)
            for n in range(1_001)])
        store.create_client_event(ClientEventRow(TENANT, "e1", 1_000, b""))
    finally:
        store.close()
    out = footfall("catalogs", "--parent", "projects/p", "--store",
                   f"sqlite:///{tmp_path}/many.db", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert names == [f"projects/p/locations/global/catalogs/c{n:04}" for n in range(1_001)] \
        + [TENANT]


def test_a_funnel_as_text_names_its_columns_and_each_step_with_its_conditions(
        shop: Running, tmp_path: Path) -> None:
    # The columns were unnamed (which percentage is which?) and a step showed its
    # event type alone, so two steps of one type with different conditions looked alike.
    out = read(shop, "insights", "funnel", "--parent", CATALOG, "--step", "home-page-view",
               "--step", "purchase-complete,productId=sku-1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "  step                                entrants   from prev  from first  "
        "median time from prev",
        "all:",
        "  home-page-view                             2  first step      100.0%",
        "  purchase-complete,productId=sku-1          0        0.0%        0.0%",
        "3 events read",  # of the steps' types: the search is not read
    ]


@pytest.fixture
def visit_then_purchase(tmp_path: Path) -> Iterator[Running]:
    """A server holding one visitor's home-page-view and, 90 minutes later, purchase."""
    running = start(settings(tmp_path, "memory://"))
    try:
        for kind, time in (("home-page-view", "2024-01-01T00:00:00Z"),
                           ("purchase-complete", "2024-01-01T01:30:00Z")):
            write(running, {"eventType": kind, "visitorId": "v", "eventTime": time,
                            **({"productDetails": [{"product": {"id": "sku-1"}, "quantity": 1}],
                                "purchaseTransaction": {"revenue": 1, "currencyCode": "EUR"}}
                               if kind == "purchase-complete" else {})})
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize(("window", "bought"), [
    ("1h", 0), ("2h", 1), ("89m", 0), ("90m", 1), ("5400s", 1), ("5399", 0), ("1d", 1),
    ("0.0625d", 1),  # 90 minutes
])
def test_a_funnel_window_takes_s_m_h_and_d(visit_then_purchase: Running, tmp_path: Path,
                                           window: str, bought: int) -> None:
    # `--window 2h` was refused "not a duration in seconds: '2h'", and 5400 "takes its unit"
    out = read(visit_then_purchase, "insights", "funnel", "--parent", CATALOG, "--step",
               "home-page-view", "--step", "purchase-complete", "--window", window, "--json",
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    steps = json.loads(out.stdout)["steps"]
    assert [int(s.get("entrants", 0)) for s in steps] == [1, bought], out.stdout


def test_a_funnel_rate_of_no_entrants_is_a_dash_as_the_console_shows_it(
        shop: Running, tmp_path: Path) -> None:
    # "0.0%" of a step after one no one reached read as everyone having left there
    out = read(shop, "insights", "funnel", "--parent", CATALOG, "--step", "add-to-cart",
               "--step", "purchase-complete", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[2:4] == [
        "  add-to-cart                       0  first step           –",
        "  purchase-complete                 0           –           –"]


def test_a_funnel_step_of_a_job_is_named_by_its_id_as_it_was_given(
        shop: Running, tmp_path: Path) -> None:
    # `--step APPLICATION_START,job=j2` came back as `job=projects/p/tenants/t/jobs/j2`:
    # not as --step took it nor as `talent-events list` shows the job, and twice as wide.
    out = read(shop, "insights", "funnel", "--parent", TENANT, "--step", "VIEW",
               "--step", "APPLICATION_START,job=j2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.splitlines()[2:4]] == [
        "VIEW", "APPLICATION_START,job=j2"], out.stdout
    # a full name given is the same job, shown the same way
    full = read(shop, "insights", "funnel", "--parent", TENANT, "--step", "VIEW",
                "--step", f"APPLICATION_START,job={TENANT}/jobs/j2", cwd=tmp_path)
    assert full.stdout == out.stdout


def test_a_job_event_type_and_a_value_of_a_choice_are_taken_in_any_case(
        shop: Running, tmp_path: Path) -> None:
    # `--step view` of a tenant was refused 'must be a JobEventType (..., VIEW, ...)'.
    asked = ("insights", "funnel", "--parent", TENANT, "--count-by", "job", "--step",
             "VIEW", "--step", "APPLICATION_START,job=j2", "--breakdown", "day")
    out = read(shop, *asked, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lower = read(shop, "insights", "funnel", "--parent", TENANT, "--count-by", "Job",
                 "--step", "view", "--step", "Application_Start,job=j2", "--breakdown", "DAY",
                 cwd=tmp_path)
    assert (lower.returncode, lower.stdout) == (0, out.stdout), lower.stderr
    # a catalog's type is any text (a custom one too): kept as given
    shop_types = read(shop, "insights", "funnel", "--parent", CATALOG, "--step",
                      "Home-Page-View", "--json", cwd=tmp_path)
    assert json.loads(shop_types.stdout)["steps"][0]["step"]["eventType"] == "Home-Page-View"
    totals = read(shop, "insights", "totals", "--parent", CATALOG, "--granularity", "Hour",
                  cwd=tmp_path)
    assert totals.returncode == 0, totals.stderr


def test_totals_as_text_say_what_they_count(shop: Running, tmp_path: Path) -> None:
    # "EUR 25.50 (1)" left the number unnamed; "1 searches".
    out = read(shop, "insights", "totals", "--parent", CATALOG, "--top-queries", "5",
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "2024-01-02  EUR 25.50 (1 purchase)" in lines, lines
    assert "'red shoes': 1 search, 0 led to a detail view" in lines, lines


def test_table_rows_line_up_and_their_notes_are_said(shop: Running, tmp_path: Path) -> None:
    # A row's fields left at zero came after its others, so each row had its own
    # column order (j1 began `views=1`, j2 `applicationStarts=1`); and the tables'
    # notes were dropped, so a revenue of 0 for unpriced purchases went unexplained.
    jobs = read(shop, "insights", "jobs", "--parent", TENANT, cwd=tmp_path)
    assert jobs.returncode == 0, jobs.stderr
    columns = [[pair.split("=")[0] for pair in line.split("  ", 1)[1].split()]
               for line in jobs.stdout.splitlines()]
    assert columns == [["impressions", "views", "applicationStarts", "applicationFinishes",
                        "redirects", "bookmarks", "viewRate", "applicationStartRate",
                        "applicationFinishRate", "notifications", "sentCvs",
                        "interviewsGranted", "hires"]] * 2
    # A job of the tenant by its id, as `talent-events list` shows it and --step job=
    # takes it, and a rate as a percentage, as the funnel's: the line began with
    # projects/.../tenants/.../jobs/ and said viewRate=0.30303030303030304.
    # A rate of nothing (no impressions, views or starts to divide by) is "–", as the
    # console shows it: viewRate=0.0% of no impressions read as none of them viewed.
    assert jobs.stdout.splitlines() == [
        "j1  impressions=0 views=1 applicationStarts=0 applicationFinishes=0 redirects=0 "
        "bookmarks=0 viewRate=– applicationStartRate=0.0% applicationFinishRate=– "
        "notifications=0 sentCvs=0 interviewsGranted=0 hires=0",
        "j2  impressions=0 views=0 applicationStarts=1 applicationFinishes=0 redirects=0 "
        "bookmarks=0 viewRate=– applicationStartRate=– applicationFinishRate=0.0% "
        "notifications=0 sentCvs=0 interviewsGranted=0 hires=0"]
    assert jobs.stderr == f"footfall: {COMPANY_NOTE}\n"
    products = read(shop, "insights", "products", "--parent", CATALOG, cwd=tmp_path)
    assert products.returncode == 0, products.stderr
    assert products.stdout.splitlines() == [
        "sku-1  views=0 addToCarts=0 purchases=1 units=2 revenue=0 viewToPurchaseRate=–"]
    assert products.stderr == f"footfall: {PRICE_NOTE.format(2)}\n"
    # --json prints rows only on stdout; the notes still go to stderr (they were dropped)
    as_json = read(shop, "insights", "products", "--parent", CATALOG, "--json", cwd=tmp_path)
    assert (as_json.returncode, as_json.stderr) == (0, f"footfall: {PRICE_NOTE.format(2)}\n")
    assert [json.loads(line)["productId"] for line in as_json.stdout.splitlines()] == ["sku-1"]
    # ... each row as the API answers it: a rate of nothing is its 0 (left out in JSON)
    with grpc.insecure_channel(address(shop)) as channel:
        answer = insights_pb2_grpc.InsightsServiceStub(channel).ListProductStats(
            insights_pb2.ListProductStatsRequest(parent=CATALOG),
            metadata=(("x-goog-api-key", READER),))
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        json_format.MessageToDict(row) for row in answer.products]
    assert "viewToPurchaseRate" not in as_json.stdout
    # Cut at --limit, a table says so, as every list does (100 of 1,500 rows read as all).
    for flags in ([], ["--json"]):
        one = read(shop, "insights", "jobs", "--parent", TENANT, "--limit", "1", *flags,
                   cwd=tmp_path)
        assert len(one.stdout.splitlines()) == 1
        assert one.stderr.endswith(
            "footfall: only 1 shown; more are stored (raise --limit; 0 shows all)\n"), one.stderr
    exact = read(shop, "insights", "jobs", "--parent", TENANT, "--limit", "2", cwd=tmp_path)
    assert (len(exact.stdout.splitlines()), exact.stderr) == (2, f"footfall: {COMPANY_NOTE}\n")


@pytest.mark.parametrize("command", [
    ["funnel"], ["funnel", "--json"], ["totals"], ["products"], ["products", "--json"]])
def test_insights_of_a_mistyped_catalog_say_nothing_was_read(shop: Running, tmp_path: Path,
                                                              command: list[str]) -> None:
    # A zero funnel or an empty table, exit 0 and nothing said: a typo looked like a
    # quiet catalog.
    mistyped = CATALOG.replace("default_catalog", "default_catalgo")
    out = read(shop, "insights", *command, "--parent", mistyped, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    which = " of the steps' types" if command[0] == "funnel" else ""
    assert out.stderr == (f"footfall: no event{which} of {mistyped} was read (`footfall "
                          f"catalogs` lists the catalogs and tenants that hold events)\n")
    held = read(shop, "insights", *command, "--parent", CATALOG, cwd=tmp_path)
    assert "was read" not in held.stderr, held.stderr


@pytest.mark.parametrize("command", [["jobs"], ["funnel"]])
def test_insights_of_a_tenant_with_no_client_event_point_to_its_refusals(
        shop: Running, tmp_path: Path, command: list[str]) -> None:
    # A job site whose client sent profile events alone (refused: Footfall stores job
    # events only, and keeps the refusals) was told only that no client event was read.
    tenant = "projects/p/tenants/profiles-only"
    out = read(shop, "insights", *command, "--parent", tenant, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    which = " of the steps' types" if command[0] == "funnel" else ""
    assert out.stderr.endswith(
        f"footfall: no client event{which} of {tenant} was read (`footfall catalogs` lists "
        f"the catalogs and tenants that hold events; `footfall rejections list --parent "
        f"{tenant}` lists the requests refused that named it: profile events, say, which "
        f"Footfall does not store)\n"), out.stderr


def test_a_misspelled_step_condition_is_one_line_naming_the_conditions(
        shop: Running, tmp_path: Path) -> None:
    out = read(shop, "insights", "funnel", "--parent", CATALOG, "--step",
               "detail-page-view,productid=sku-1", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr == ("footfall: --step 'detail-page-view,productid=sku-1': unknown "
                          "condition 'productid'; one of productId, category, "
                          "searchQueryPresent, attributeKey, attributeValue, job\n")
    snake = read(shop, "insights", "funnel", "--parent", CATALOG, "--step",
                 "purchase-complete,product_id=sku-1", cwd=tmp_path)
    assert snake.returncode == 0, snake.stderr


def test_totals_as_text_end_with_their_notes(shop: Running, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(totals, "MAX_EVENT_TYPES", 1)  # the server runs in this process
    out = read(shop, "insights", "totals", "--parent", CATALOG, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == (
        "event counts of the 1 most frequent of 3 event types: 2 events of the others are "
        "left out"), out.stdout


def test_reset_starts_a_catalog_and_a_tenant_clean(tmp_path: Path) -> None:
    # A test suite driven from a shell had no way to start clean but a hand-made
    # POST with the right Content-Type.
    running = start(settings(tmp_path, "memory://"))
    try:
        record_shop(running)
        out = read(running, "reset", "--parent", CATALOG, key=ADMIN, cwd=tmp_path)
        assert (out.returncode, out.stderr) == (0, "")
        assert out.stdout == (f"reset {CATALOG}: deleted 4 events, 0 products, 2 refusals "
                              "and 0 finished operations\n")
        out = read(running, "reset", "--parent", TENANT, key=ADMIN, cwd=tmp_path)
        assert out.stdout == f"reset {TENANT}: deleted 2 client events and 0 refusals\n"
        left = read(running, "catalogs", "--parent", "projects/p", cwd=tmp_path)
        assert (left.returncode, left.stdout) == (0, "")
        refused = read(running, "reset", "--parent", CATALOG, key=READER, cwd=tmp_path)
        assert refused.returncode == 2
        assert refused.stderr.startswith("footfall: the server answered PERMISSION_DENIED: ")
        keyless = footfall("reset", "--parent", CATALOG, "--server", address(running),
                           cwd=tmp_path)
        assert keyless.returncode == 2 and keyless.stderr.endswith(
            "; give an API key with the admin role with --key or FOOTFALL_KEY\n"), \
            keyless.stderr
        wrong = read(running, "reset", "--parent", "projects/p/locations", key=ADMIN,
                     cwd=tmp_path)
        assert (wrong.returncode, wrong.stderr) == (2, (
            "footfall: --parent: must be a catalog (projects/*/locations/*/catalogs/*), a "
            "tenant (projects/*/tenants/*) or a project (projects/*: its every catalog and "
            "tenant), got 'projects/p/locations'\n"))
    finally:
        running.stop()


def test_reset_of_a_project_starts_its_every_catalog_and_tenant_clean(
        tmp_path: Path) -> None:
    running = start(settings(tmp_path, "memory://"))
    try:
        record_shop(running)
        out = read(running, "reset", "--parent", "projects/p", key=ADMIN, cwd=tmp_path)
        assert (out.returncode, out.stderr) == (0, "")
        assert out.stdout == ("reset projects/p: deleted 6 events (user and client events), 0 "
                              "products, 2 refusals and 0 finished operations\n")
        left = read(running, "catalogs", "--parent", "projects/p", cwd=tmp_path)
        assert (left.returncode, left.stdout) == (0, "")
        refused = read(running, "reset", "--parent", "projects/p", key=READER, cwd=tmp_path)
        assert refused.returncode == 2
        assert refused.stderr.startswith("footfall: the server answered PERMISSION_DENIED: ")
        wrong = read(running, "reset", "--parent", "projects/-", key=ADMIN, cwd=tmp_path)
        # (a project's name wrong in itself is told its own reason, not the forms)
        assert (wrong.returncode, wrong.stderr) == (2, (
            "footfall: --parent: the project must be named ('-' stands for every project "
            "only where a read allows it), in 'projects/-' (of the form 'projects/*')\n"))
        # A wildcard catalog or tenant is told the CLI's way to reset them all, not the
        # REST route the server's refusal names
        for every in ("projects/p/locations/global/catalogs/-", "projects/p/tenants/-"):
            kind = "catalog" if "/catalogs/" in every else "tenant"
            wild = read(running, "reset", "--parent", every, key=ADMIN, cwd=tmp_path)
            assert (wild.returncode, wild.stderr) == (2, (
                f"footfall: --parent: '-' names no {kind} ({every}): a reset takes no "
                "wildcard; --parent projects/p resets every catalog and tenant of the "
                "project\n"))
        other = read(running, "reset", "--parent", "shop", key=ADMIN, cwd=tmp_path)
        assert (other.returncode, other.stderr) == (2, (
            "footfall: --parent: must be a catalog (projects/*/locations/*/catalogs/*), a "
            "tenant (projects/*/tenants/*) or a project (projects/*: its every catalog and "
            "tenant), got 'shop'\n"))
    finally:
        running.stop()


@pytest.mark.parametrize(("command", "said"), [
    (["events", "list", "--parent", CATALOG, "--filter", 'colour = "red"'],
     "footfall: --filter: at character 1: "),
    (["events", "tail", "--parent", CATALOG, "--filter", "joined = maybe"],
     "footfall: --filter: at character 10: expected true or false"),
    # Quoted as every other field's value is: refused, saying how.
    (["events", "list", "--parent", CATALOG, "--filter", 'transport = "pixel"'],
     "footfall: --filter: at character 13: expected one of GRPC, REST, PIXEL, IMPORT, got "
     "'\"pixel\"': write transport = PIXEL\n"),
    (["events", "count", "--parent", CATALOG, "--filter", 'joined = "True"'],
     "footfall: --filter: at character 10: expected true or false, got '\"True\"': write "
     "joined = true\n"),
    (["events", "count", "--parent", "catalogs/x"], "footfall: --parent: must be of the form"),
    (["rejections", "list", "--parent", "projects/p/locations/x"],
     "footfall: --parent: must be projects/PROJECT"),
    (["talent-events", "tail", "--parent", "projects/p/catalogs/x"],
     "footfall: --parent: must be of the form"),
    (["talent-events", "tail", "--parent", CATALOG],
     f"footfall: --parent: {CATALOG!r} is a retail catalog: its user events are `footfall "
     "events tail`\n"),
    (["products", "list", "--parent", "projects/p"],
     "footfall: --parent: must be a branch (projects/*/locations/*/catalogs/*/branches/*) or a "
     "catalog (projects/*/locations/*/catalogs/*), got 'projects/p'\n"),
    (["products", "list", "--parent", f"{CATALOG}/branches/3"],
     "footfall: --parent: branch must be one of 0, 1, 2 or default_branch, got '3'\n"),
    (["products", "list", "--parent", CATALOG, "--filter", 'type = "variant"'],
     "footfall: --filter: type must be one of PRIMARY, VARIANT, COLLECTION, got 'variant'\n"),
])
def test_bad_input_is_one_line_naming_the_flag(shop: Running, tmp_path: Path,
                                               command: list[str], said: str) -> None:
    out = read(shop, *command, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(said) and len(out.stderr.splitlines()) == 1, out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize("after", ["99999999999999999999", "-3"])
def test_a_position_out_of_range_is_said_by_argparse(tmp_path: Path, after: str) -> None:
    out = footfall("rejections", "tail", "--server", "127.0.0.1:1", "--after", after,
                   cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"argument --after: must be 0 or a stored row's id, got {after}" in out.stderr


def test_tail_needs_a_server(tmp_path: Path) -> None:
    out = footfall("events", "tail", "--parent", CATALOG, cwd=tmp_path)
    assert out.returncode == 2
    assert "error: the following arguments are required: --server" in out.stderr, out.stderr


@pytest.mark.parametrize(("where", "flags", "said"), [
    ("http", [], "it answers HTTP/1.1, not gRPC: --server takes the gRPC port (the server's "
                 "'Footfall serving gRPC on' line names it; 50051 by default), not the HTTP one"),
    ("grpc", ["--tls"], "it does not serve TLS: leave out --tls and --tls-ca"),
])
def test_a_server_reached_the_wrong_way_says_what_to_change(
        shop: Running, tmp_path: Path, where: str, flags: list[str], said: str) -> None:
    port = shop.http_port if where == "http" else shop.port
    for command in (["catalogs"], ["insights", "totals", "--parent", CATALOG]):
        out = footfall(*command, "--server", f"127.0.0.1:{port}", *flags, cwd=tmp_path,
                       env={"FOOTFALL_KEY": READER})
        assert out.returncode == 1, out.stderr
        assert out.stderr.startswith(f"footfall: cannot reach a server at 127.0.0.1:{port}: "
                                     f"{said} (UNAVAILABLE: "), out.stderr
        assert len(out.stderr.splitlines()) == 1


def test_a_url_is_no_server_address(tmp_path: Path) -> None:
    out = footfall("catalogs", "--server", "http://127.0.0.1:50051", cwd=tmp_path)
    assert out.returncode == 2
    assert ("argument --server: takes HOST:PORT (the server's gRPC port), not a URL: "
            "'http://127.0.0.1:50051'") in out.stderr


@pytest.mark.parametrize("given", ["localhost", "127.0.0.1", "localhost:", "localhost:0",
                                   "localhost:65536", "[::1]", "::1", "::1:65536",
                                   "local host:1"])
def test_a_server_address_names_its_port(tmp_path: Path, given: str) -> None:
    # without one gRPC dialled port 443 and said only UNAVAILABLE
    out = footfall("catalogs", "--server", given, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert ("argument --server: takes HOST:PORT (the server's gRPC port, e.g. "
            f"localhost:50051), got {given!r}") in out.stderr


@pytest.mark.parametrize(("given", "bracketed"), [("::1:50051", "[::1]:50051"),
                                                  ("fe80::1:50051", "[fe80::1]:50051")])
def test_an_ipv6_server_address_is_told_its_brackets(given: str, bracketed: str) -> None:
    """A server on ::1 names itself `::1:50051` in its ready line; copied into
    --server, it was told only the form HOST:PORT."""
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        server_address(given)
    assert str(refused.value) == (f"takes HOST:PORT with an IPv6 address in brackets: "
                                  f"{bracketed}, not {given!r}")
    assert server_address(bracketed) == bracketed


@pytest.mark.parametrize("given", ["localhost:50051", "127.0.0.1:1", "[::1]:50051",
                                   "shop.example:443"])
def test_server_addresses_with_a_port_are_taken(given: str) -> None:
    assert server_address(given) == given


@pytest.mark.parametrize("command", [
    ["events", "list", "--parent", CATALOG], ["events", "count", "--parent", CATALOG],
    ["rejections", "list", "--parent", "projects/p"], ["catalogs", "--parent", "projects/p"],
    ["events", "tail", "--parent", CATALOG], ["products", "list", "--parent", CATALOG],
    # every project, the default: a role too weak was said with "(projects/- is the
    # default: --parent projects/PROJECT names one)", which no project would mend
    ["rejections", "list"], ["catalogs"],
])
def test_keys_a_writer_may_not_read_and_none_is_said(shop: Running, tmp_path: Path,
                                                     command: list[str]) -> None:
    writer = read(shop, *command, key=WRITER, cwd=tmp_path)
    assert writer.returncode == 2
    assert writer.stderr.startswith("footfall: the server answered PERMISSION_DENIED: the API "
                                    "key's role (writer) may not call "), writer.stderr
    assert writer.stderr.endswith("it needs a reader or admin key\n")
    nobody = read(shop, *command, key="", cwd=tmp_path)
    assert nobody.returncode == 2
    assert nobody.stderr.startswith("footfall: the server answered UNAUTHENTICATED: ")
    # (the role of this command: "(admin for operations)" spoke of another one)
    assert nobody.stderr.endswith("give an API key with the reader role with --key or "
                                  "FOOTFALL_KEY\n"), nobody.stderr
    wrong = read(shop, *command, key=READER[::-1], cwd=tmp_path)
    assert wrong.returncode == 2 and "UNAUTHENTICATED" in wrong.stderr
    assert READER[::-1] not in wrong.stderr + wrong.stdout  # a key is never printed
    assert all(len(out.stderr.splitlines()) == 1 for out in (writer, nobody, wrong))


def test_every_project_needs_a_key_granted_every_project(shop: Running,
                                                         tmp_path: Path) -> None:
    out = read(shop, "rejections", "list", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr == ("footfall: the server answered PERMISSION_DENIED: projects/- (every "
                          "project) needs an API key granted every project (\"*\"); name one: "
                          "projects/PROJECT (projects/- is the default: --parent "
                          "projects/PROJECT names one)\n")


def test_an_unreadable_authority_file_is_one_line(tmp_path: Path) -> None:
    out = footfall("catalogs", "--server", "127.0.0.1:1", "--tls-ca", str(tmp_path / "no.pem"),
                   cwd=tmp_path)
    assert (out.returncode, out.stderr) == (
        2, f"footfall: --tls-ca: cannot read {tmp_path}/no.pem: No such file or directory\n")


# -- tail --------------------------------------------------------------------------


# `python -c _INTERRUPTIBLE args...`: `python -m server args...` with SIGINT as Python
# has it by default (KeyboardInterrupt), neither ignored nor blocked.
_INTERRUPTIBLE = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
                  "os.execv(sys.executable, [sys.executable, '-m', 'server', *sys.argv[1:]])")


class Tail:
    """`footfall ... tail` running, its output read line by line."""

    def __init__(self, *args: str, cwd: Path) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
        # Ctrl-C reaches it even when this test runs with SIGINT ignored (started in
        # the background by a shell without job control): a child inherits that, and a
        # CI run started so saw two tails not end at Ctrl-C.
        self.proc = subprocess.Popen([sys.executable, "-c", _INTERRUPTIBLE, *args], cwd=cwd,
                                     env={**clean, "FOOTFALL_KEY": READER},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout = self._lines(self.proc.stdout)
        self.stderr = self._lines(self.proc.stderr)

    @staticmethod
    def _lines(pipe: object) -> queue.SimpleQueue[str]:
        lines: queue.SimpleQueue[str] = queue.SimpleQueue()

        def drain() -> None:
            for line in pipe:  # type: ignore[attr-defined]
                lines.put(line)

        threading.Thread(target=drain, daemon=True).start()
        return lines

    def line(self, lines: queue.SimpleQueue[str] | None = None) -> str:
        try:
            return (lines or self.stdout).get(timeout=LINE_SECONDS)
        except queue.Empty:
            raise AssertionError(f"no line from {self.proc.args}") from None

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C: the exit code and what it said on stderr from then on."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=LINE_SECONDS)
        said = []
        while not self.stderr.empty():
            said.append(self.stderr.get())
        return code, "".join(said)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    started: list[Tail] = []
    yield started
    for tail in started:
        tail.kill()


def test_tail_prints_what_arrives_until_ctrl_c(tmp_path: Path, tails: list[Tail]) -> None:
    """On a memory:// store, which only its server can show."""
    running = start(settings(tmp_path, "memory://"))
    try:
        write(running, {"eventType": "home-page-view", "visitorId": "before"})
        tail = Tail("events", "tail", "--server", address(running), "--parent", CATALOG,
                    "--after", "0", "--filter", 'eventType = "home-page-view"', cwd=tmp_path)
        tails.append(tail)
        assert "visitor=before" in tail.line()  # stored before: --after 0 sends it first
        write(running, {"eventType": "search", "visitorId": "skipped", "searchQuery": "x"})
        write(running, {"eventType": "home-page-view", "visitorId": "after"})
        assert "visitor=after" in tail.line()  # written once it ran; the search filtered out
        with pytest.raises(grpc.RpcError):
            write(running, {"eventType": "home-page-view", "visitorId": "v" * 129})
        running.store.flush()
        rejected = Tail("rejections", "tail", "--server", address(running), "--json",
                        "--parent", "projects/p", "--after", "0", cwd=tmp_path)
        tails.append(rejected)
        assert json.loads(rejected.line())["fieldViolations"][0]["field"] == \
            "user_event.visitor_id"
        with pytest.raises(grpc.RpcError):
            write(running, {"eventType": "search", "visitorId": "v"})
        assert json.loads(rejected.line())["fieldViolations"][0]["field"] == \
            "user_event.search_query"
        for each in (tail, rejected):
            code, said = each.interrupt()
            assert (code, said) == (0, "")
    finally:
        running.stop()


def test_tail_goes_on_after_a_restart(tmp_path: Path, tails: list[Tail]) -> None:
    store = f"sqlite:///{tmp_path}/events.db"
    running = start(settings(tmp_path, store))
    port = running.port
    try:
        write(running, {"eventType": "home-page-view", "visitorId": "first"})
        tail = Tail("events", "tail", "--server", address(running), "--parent", CATALOG,
                    "--after", "0", "--json", cwd=tmp_path)
        tails.append(tail)
        first = json.loads(tail.line())
        assert first["userEvent"]["visitorId"] == "first"
    finally:
        running.stop()
    assert tail.line(tail.stderr) == (
        f"footfall: the server ended the stream; reconnecting, to go on after position "
        f"{first['id']}\n")
    running = start(settings(tmp_path, store, port))
    try:
        assert tail.line(tail.stderr) == f"footfall: reconnected; going on after position " \
                                         f"{first['id']}\n"
        write(running, {"eventType": "home-page-view", "visitorId": "second"})
        second = json.loads(tail.line())
        assert second["userEvent"]["visitorId"] == "second"
    finally:
        running.stop()
    assert f"after position {second['id']}" in tail.line(tail.stderr)
    assert tail.interrupt() == (0, "")  # Ctrl-C while it waits for the server


def test_a_tail_waits_for_a_server_it_never_reached(tmp_path: Path, tails: list[Tail]) -> None:
    """A server that stops before the tail first reaches it (a moment after the command
    starts), or is not started yet, is waited for as one that stops after: the tail
    exited 1, "cannot reach a server", where the README says it waits."""
    store = f"sqlite:///{tmp_path}/events.db"
    running = start(settings(tmp_path, store))
    port = running.port
    running.stop()
    tail = Tail("talent-events", "tail", "--server", f"127.0.0.1:{port}", "--parent", TENANT,
                "--after", "0", cwd=tmp_path)
    tails.append(tail)
    assert tail.line(tail.stderr) == (
        f"footfall: nothing listens at 127.0.0.1:{port} (is the server running, and is that "
        "its gRPC port?); waiting for it, to go on after position 0\n")
    running = start(settings(tmp_path, store, port))
    try:
        assert tail.line(tail.stderr) == "footfall: connected; going on after position 0\n"
        with grpc.insecure_channel(address(running)) as channel:
            event_service_pb2_grpc.EventServiceStub(channel).CreateClientEvent(
                event_service_pb2.CreateClientEventRequest(
                    parent=TENANT, client_event=json_format.ParseDict(
                        {"eventId": "e1", "requestId": "r1", "createTime": "2024-05-01T00:00:00Z",
                         "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j1"]}},
                        event_pb2.ClientEvent())), metadata=(("x-goog-api-key", WRITER),))
        assert "jobs=j1 request=r1 event=e1" in tail.line()
    finally:
        running.stop()
    assert tail.interrupt()[0] == 0


def test_a_tail_of_a_server_it_cannot_talk_to_stops(shop: Running, tmp_path: Path) -> None:
    out = footfall("events", "tail", "--server", f"127.0.0.1:{shop.port}", "--tls",
                   "--parent", CATALOG, cwd=tmp_path, env={"FOOTFALL_KEY": READER})
    assert out.returncode == 1
    assert out.stderr.startswith(f"footfall: cannot reach a server at 127.0.0.1:{shop.port}: it "
                                 "does not serve TLS: leave out --tls and --tls-ca"), out.stderr
    assert len(out.stderr.splitlines()) == 1


@pytest.mark.parametrize("key", ["\u201cq9PdX2mL\u201d", "\u043a\u043b\u044e\u0447", "\tkey"])
def test_a_key_no_header_can_carry_is_a_mistake_in_the_command(shop: Running, tmp_path: Path,
                                                               key: str) -> None:
    """A key copied with typographic quotes (or in another script) was refused by grpc
    before it was sent, and said as the server's INTERNAL error, with grpc's own log
    lines on stderr (exit 1)."""
    for given in ({"env": {"FOOTFALL_KEY": key}}, {"args": ("--key", key)}):
        out = footfall("events", "count", "--server", f"127.0.0.1:{shop.port}", "--parent",
                       CATALOG, *given.get("args", ()), cwd=tmp_path, env=given.get("env"))
        assert out.returncode == 2, out
        assert out.stderr == ("footfall: --key: an API key is printable ASCII (a header "
                              f"carries it); this one holds {key[0]!r} (from --key or "
                              "FOOTFALL_KEY: was it copied with quotes?)\n"), out.stderr
    # a store read sends no key: whatever FOOTFALL_KEY holds is no matter
    read = footfall("events", "count", "--store", f"sqlite:///{tmp_path}/none.db", "--parent",
                    CATALOG, cwd=tmp_path, env={"FOOTFALL_KEY": key})
    assert "--key" not in read.stderr and "no store at" in read.stderr, read.stderr


def test_talent_events_of_a_project_alone_are_its_default_tenants(tmp_path: Path) -> None:
    # A job site that wrote with talent v4beta1 to the project alone (Google's samples)
    # was told `--parent: must be of the form 'projects/*/tenants/*'` for the parent it
    # had written to: a project alone names its default tenant here too.
    running = start(settings(tmp_path, f"sqlite:///{tmp_path}/events.db"))
    try:
        event = {"eventId": "b1", "createTime": "2024-05-01T00:00:00Z",
                 "jobEvent": {"type": "VIEW", "jobs": ["projects/p/jobs/j9"]}}
        answer = http_client.call(running.http_port, "POST", "/v4beta1/projects/p/clientEvents",
                                  {"clientEvent": event}, headers={"x-goog-api-key": WRITER})
        assert answer.status == 200, answer
        for parent in ("projects/p", "projects/p/tenants/default_tenant"):
            listed = read(running, "talent-events", "list", "--parent", parent, cwd=tmp_path)
            assert (listed.returncode, listed.stdout, listed.stderr) == (0, (
                "2024-05-01T00:00:00Z  VIEW                 jobs=j9 event=b1  [rest]\n"),
                ""), listed
    finally:
        running.stop()


def test_talent_events_list_latest_create_time_first(tmp_path: Path) -> None:
    """Issue 13: `talent-events list` gives a tenant's events newest first by their
    create time (it gave them in the order stored: one sent late headed the list),
    of one time the last stored first; over the server and from the store alike."""
    running = start(settings(tmp_path, f"sqlite:///{tmp_path}/events.db"))
    try:
        with grpc.insecure_channel(address(running)) as channel:
            talent = event_service_pb2_grpc.EventServiceStub(channel)
            for event_id, created in (("e1", "10:00"), ("e2", "09:00"), ("e3", "11:00"),
                                      ("e4", "10:00"), ("e5", "08:00")):
                talent.CreateClientEvent(event_service_pb2.CreateClientEventRequest(
                    parent=TENANT, client_event=json_format.ParseDict(
                        {"eventId": event_id, "createTime": f"2024-05-01T{created}:00Z",
                         "jobEvent": {"type": "VIEW", "jobs": [f"{TENANT}/jobs/j"]}},
                        event_pb2.ClientEvent())), metadata=(("x-goog-api-key", WRITER),))
        newest = ["e3", "e4", "e1", "e2", "e5"]
        for listed in (read(running, "talent-events", "list", "--parent", TENANT, "--json",
                            cwd=tmp_path),
                       footfall("talent-events", "list", "--parent", TENANT, "--json",
                                "--store", running.settings.store, cwd=tmp_path)):
            assert listed.returncode == 0, listed.stderr
            assert [json.loads(line)["clientEvent"]["eventId"]
                    for line in listed.stdout.splitlines()] == newest, listed.stdout
        first = read(running, "talent-events", "list", "--parent", TENANT, "--limit", "2",
                     cwd=tmp_path)
        assert [line.split("event=")[1].split()[0] for line in first.stdout.splitlines()] \
            == ["e3", "e4"], first.stdout
    finally:
        running.stop()
