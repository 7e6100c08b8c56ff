"""footfall.insights.v1 against a server subprocess: the official clients write
a shop's and a job site's events; the funnel, the product and job tables and
the totals answered over gRPC (a client made from reflection), REST and the
CLI agree with each other and with the numbers worked out by hand, on SQLite,
memory and PostgreSQL. A reader key may ask; a writer key may not. Imports
nothing of ours."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import grpc
import pytest
import requests
from google.cloud import retail_v2, talent_v4, talent_v4beta1
from google.cloud.talent_v4beta1.services.event_service.transports import (
    EventServiceGrpcTransport as V4beta1Transport,
)

from . import test_console
from .console import Console
from .support import CLI_DEADLINE, RPC_DEADLINE, ServerProcess, retail_client, talent_client
from .test_console import READER, WRITER
from .trust import with_key

# The console's servers: on SQLite, memory and PostgreSQL; with writer, reader and admin keys.
served, secured = test_console.served, test_console.secured

SERVICE = "footfall.insights.v1.InsightsService"
PROJECT = "projects/footfall-interop"
CATALOG = f"{PROJECT}/locations/global/catalogs/shop"
TENANT = f"{PROJECT}/tenants/jobs"
JOB1, JOB2 = f"{TENANT}/jobs/j1", f"{TENANT}/jobs/j2"
T = datetime.datetime(2024, 3, 1, 10, tzinfo=datetime.UTC)
TYPE = talent_v4.JobEvent.JobEventType


def at(seconds: int) -> datetime.datetime:
    return T + datetime.timedelta(seconds=seconds)


def product(product_id: str, price: float, currency: str,
            quantity: int | None = None) -> retail_v2.ProductDetail:
    return retail_v2.ProductDetail(
        product=retail_v2.Product(id=product_id, price_info=retail_v2.PriceInfo(
            price=price, currency_code=currency)), quantity=quantity)


P1, P2 = product("p1", 10, "USD"), product("p2", 5, "EUR")
# visitor, seconds after T, type, and the rest of the event
SHOP = [
    ("v1", 0, "home-page-view", {}),
    ("v1", 60, "detail-page-view", {"product_details": [P1]}),
    ("v1", 120, "add-to-cart", {"product_details": [P1]}),
    ("v1", 180, "purchase-complete", {"product_details": [product("p1", 10, "USD", 2)],
                                      "purchase_transaction": retail_v2.PurchaseTransaction(
                                          revenue=20, currency_code="USD")}),
    ("v2", 0, "home-page-view", {}),
    ("v2", 30, "detail-page-view", {"product_details": [P1]}),
    ("v2", 90, "add-to-cart", {"product_details": [P1]}),
    ("v3", 0, "home-page-view", {}),
    ("v3", 600, "detail-page-view", {"product_details": [P2]}),
    ("v3", 700, "purchase-complete", {"product_details": [product("p2", 5, "EUR", 1)],
                                      "purchase_transaction": retail_v2.PurchaseTransaction(
                                          revenue=5, currency_code="EUR")}),
    ("v4", 1000, "search", {"search_query": "boots"}),
    ("v4", 1100, "detail-page-view", {"product_details": [P2]}),
    ("v4", 2000, "search", {"search_query": "boots"}),
    ("v4", 3000, "search", {"search_query": "caps"}),
]
# request, seconds after T, type, jobs
JOBS = [
    ("r1", 0, TYPE.IMPRESSION, [JOB1, JOB2]),
    ("r1", 10, TYPE.VIEW, [JOB1]),
    ("r1", 20, TYPE.APPLICATION_START, [JOB1]),
    ("r1", 30, TYPE.APPLICATION_FINISH, [JOB1]),
    ("r2", 0, TYPE.IMPRESSION, [JOB1]),
    ("r2", 5, TYPE.VIEW, [JOB2]),
]


def record(server: ServerProcess, metadata: Any = ()) -> None:
    """The shop's events (one written twice: stored once) and the job site's."""
    with retail_client(server.address) as retail:
        for visitor, seconds, kind, more in [*SHOP, SHOP[0]]:
            retail.write_user_event(retail_v2.WriteUserEventRequest(
                parent=CATALOG, user_event=retail_v2.UserEvent(
                    event_type=kind, visitor_id=visitor, event_time=at(seconds), **more)),
                metadata=metadata)
    with talent_client(server.address) as talent:
        for n, (request_id, seconds, kind, jobs) in enumerate(JOBS):
            talent.create_client_event(parent=TENANT, client_event=talent_v4.ClientEvent(
                request_id=request_id, event_id=f"e{n}", create_time=at(seconds),
                job_event=talent_v4.JobEvent(type_=kind, jobs=jobs)), metadata=metadata)


def step(event_type: str, entrants: int, previous: float, first: float,
         median: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"step": {"eventType": event_type}}
    for name, value in (("entrants", str(entrants)), ("conversionFromPrevious", previous),
                        ("conversionFromFirst", first), ("medianTimeFromPrevious", median)):
        if value:
            answer[name] = value
    return answer


SHOP_FUNNEL = {"steps": [
    step("home-page-view", 3, 1, 1),
    step("detail-page-view", 3, 1, 1, "60s"),  # 60, 30 and 600 seconds
    step("add-to-cart", 2, 2 / 3, 2 / 3, "60s"),
    step("purchase-complete", 1, 1 / 2, 1 / 3, "60s"),  # v3 bought without a cart
], "eventsRead": "11"}
TALENT_FUNNEL = {"steps": [
    step("IMPRESSION", 2, 1, 1), step("VIEW", 2, 1, 1, "7.500s"),
    step("APPLICATION_START", 1, 1 / 2, 1 / 2, "10s"),
    step("APPLICATION_FINISH", 1, 1, 1 / 2, "10s")], "eventsRead": "6"}
PRODUCTS = [
    {"productId": "p1", "views": "2", "addToCarts": "2", "purchases": "1", "units": "2",
     "revenue": [{"currencyCode": "USD", "amount": 20.0}], "viewToPurchaseRate": 0.5},
    {"productId": "p2", "views": "2", "purchases": "1", "units": "1",
     "revenue": [{"currencyCode": "EUR", "amount": 5.0}], "viewToPurchaseRate": 0.5},
]
TOTALS = {
    "buckets": [{"startTime": "2024-03-01T00:00:00Z", "distinctVisitors": "4", "eventCounts": [
        {"eventType": "add-to-cart", "count": "2"}, {"eventType": "detail-page-view", "count": "4"},
        {"eventType": "home-page-view", "count": "3"},
        {"eventType": "purchase-complete", "count": "2"}, {"eventType": "search", "count": "3"}]}],
    "revenue": [{"day": "2024-03-01", "currencyCode": "EUR", "revenue": 5.0, "purchases": "1"},
                {"day": "2024-03-01", "currencyCode": "USD", "revenue": 20.0, "purchases": "1"}],
    "distinctVisitors": "4",
    "topQueries": [{"query": "boots", "searches": "2", "ledToDetailView": "1"},
                   {"query": "caps", "searches": "1"}],
    "eventsRead": "14"}
JOB_STATS = [
    {"job": JOB1, "impressions": "2", "views": "1", "applicationStarts": "1",
     "applicationFinishes": "1", "viewRate": 0.5, "applicationStartRate": 1.0,
     "applicationFinishRate": 1.0},
    {"job": JOB2, "impressions": "1", "views": "1", "viewRate": 1.0},
]


def rest(server: ServerProcess, method: str, path: str, key: str | None = None,
         **options: Any) -> requests.Response:
    headers = {"x-goog-api-key": key} if key else {}
    return requests.request(method, f"http://{server.http_address}/insights/v1/{path}",
                            headers=headers, timeout=RPC_DEADLINE, **options)


def cli(server: ServerProcess, *args: str) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    proc = subprocess.run([sys.executable, "-m", "server", "insights", *args, "--server",
                           server.address, "--json"], cwd=server.workdir, env=env,
                          capture_output=True, text=True, timeout=CLI_DEADLINE)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_every_way_of_asking_gives_the_numbers_of_the_events(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    record(served)
    insights = Console(channels(served), service=SERVICE)
    table_notes = ["companies are not counted: client events name jobs only, and Footfall "
                   "stores no job records"]
    for answer in (insights.call("RunFunnel", parent=CATALOG),
                   rest(served, "POST", f"{CATALOG}:runFunnel", json={}).json(),
                   *cli(served, "funnel", "--parent", CATALOG)):
        assert answer == SHOP_FUNNEL
    for answer in (insights.call("RunFunnel", parent=TENANT),
                   rest(served, "POST", f"{TENANT}:runFunnel", json={}).json(),
                   *cli(served, "funnel", "--parent", TENANT)):
        assert answer == TALENT_FUNNEL
    products = insights.call("ListProductStats", parent=CATALOG)
    assert products == {"products": PRODUCTS, "eventsRead": "8"}
    assert rest(served, "GET", f"{CATALOG}/productStats").json() == products
    assert cli(served, "products", "--parent", CATALOG) == PRODUCTS
    jobs = insights.call("ListJobStats", parent=TENANT, orderBy="job")
    assert jobs == {"jobs": JOB_STATS, "eventsRead": "6", "notes": table_notes}
    assert rest(served, "GET", f"{TENANT}/jobStats", params={"orderBy": "job"}).json() == jobs
    assert cli(served, "jobs", "--parent", TENANT, "--order-by", "job") == JOB_STATS
    for answer in (insights.call("ComputeTotals", parent=CATALOG),
                   rest(served, "GET", f"{CATALOG}:computeTotals").json(),
                   *cli(served, "totals", "--parent", CATALOG)):
        assert answer == TOTALS


def test_a_job_of_the_default_tenant_is_one_job_whichever_name_its_events_give(
        served: ServerProcess) -> None:
    # A v4beta1 job site names a job projects/P/jobs/J (Google's samples) or by its
    # default tenant's form; the table had two rows for it (the view on one, the
    # application on the other: a 0% start rate), a breakdown two groups, and counted
    # by JOB two entrants, neither of which reached the application.
    short, full = f"{PROJECT}/jobs/legacy", f"{PROJECT}/tenants/default_tenant/jobs/legacy"
    talent = talent_v4beta1.EventServiceClient(transport=V4beta1Transport(
        channel=grpc.insecure_channel(served.address)))
    kinds = talent_v4beta1.JobEvent.JobEventType
    for n, (kind, jobs) in enumerate([(kinds.IMPRESSION, [short, f"{PROJECT}/jobs/other"]),
                                      (kinds.VIEW, [short]),
                                      (kinds.APPLICATION_START, [full]),
                                      (kinds.APPLICATION_FINISH, [short, full])]):
        talent.create_client_event(parent=PROJECT, client_event=talent_v4beta1.ClientEvent(
            request_id="r1", event_id=f"b{n}", create_time=at(10 * n),
            job_event=talent_v4beta1.JobEvent(type_=kind, jobs=jobs)))
    tenant = f"{PROJECT}/tenants/default_tenant"
    jobs = rest(served, "GET", f"{tenant}/jobStats", params={"orderBy": "job"}).json()["jobs"]
    assert jobs == [
        {"job": f"{tenant}/jobs/legacy", "impressions": "1", "views": "1",
         "applicationStarts": "1", "applicationFinishes": "1", "viewRate": 1.0,
         "applicationStartRate": 1.0, "applicationFinishRate": 1.0},
        {"job": f"{tenant}/jobs/other", "impressions": "1"}], jobs
    steps = [{"eventType": t} for t in ("VIEW", "APPLICATION_START", "APPLICATION_FINISH")]
    by_job = rest(served, "POST", f"{tenant}:runFunnel",
                  json={"steps": steps, "breakdown": "BY_ITEM"}).json()
    assert {g["key"]: [s.get("entrants", "0") for s in g["steps"]]
            for g in by_job["groups"]} == {full: ["1", "1", "1"]}, by_job
    counted = rest(served, "POST", f"{tenant}:runFunnel",
                   json={"steps": steps, "countBy": "JOB"}).json()
    assert [s.get("entrants", "0") for s in counted["steps"]] == ["1", "1", "1"], counted
    # the CLI takes the project alone for its default tenant, as `talent-events list`
    # does (it was refused: "must be of the form 'projects/*/tenants/*'")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    proc = subprocess.run([sys.executable, "-m", "server", "insights", "jobs", "--parent",
                           PROJECT, "--server", served.address], env=env, capture_output=True,
                          text=True, timeout=CLI_DEADLINE)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[:2] for line in proc.stdout.splitlines()] == [
        ["legacy", "impressions=1"], ["other", "impressions=1"]], proc.stdout


def test_a_jobs_outcomes_past_its_applications_are_counted(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    # Hires, CVs sent, interviews granted and notifications were counted by no column of
    # the job table (a funnel's step alone counted them), so a job site saw no hire.
    outcomes = [TYPE.NOTIFICATION, TYPE.SENT_CV, TYPE.SENT_CV, TYPE.INTERVIEW_GRANTED,
                TYPE.HIRED, TYPE.VIEW]
    with talent_client(served.address) as talent:
        for n, kind in enumerate(outcomes):
            talent.create_client_event(parent=TENANT, client_event=talent_v4.ClientEvent(
                request_id=f"r{n}", event_id=f"o{n}", create_time=at(n),
                job_event=talent_v4.JobEvent(type_=kind, jobs=[f"{TENANT}/jobs/nurse-3"])))
    expected = [{"job": f"{TENANT}/jobs/nurse-3", "views": "1", "notifications": "1",
                 "sentCvs": "2", "interviewsGranted": "1", "hires": "1"}]
    insights = Console(channels(served), service=SERVICE)
    answer = insights.call("ListJobStats", parent=TENANT, orderBy="hires desc")
    assert answer["jobs"] == expected and answer["eventsRead"] == "6"
    assert rest(served, "GET", f"{TENANT}/jobStats",
                params={"orderBy": "sentCvs desc"}).json()["jobs"] == expected
    assert cli(served, "jobs", "--parent", TENANT, "--order-by", "interviews_granted") == \
        expected


def test_the_cli_says_a_job_by_its_id_and_a_rate_as_a_percentage(served: ServerProcess) -> None:
    # The job table's lines began with projects/.../tenants/.../jobs/ before each id and
    # said viewRate=0.3333333333333333; a breakdown's groups were named in full too.
    with talent_client(served.address) as talent:
        for n, kind in enumerate([TYPE.IMPRESSION] * 3 + [TYPE.VIEW]):
            talent.create_client_event(parent=TENANT, client_event=talent_v4.ClientEvent(
                request_id=f"r{n % 3}", event_id=f"e{n}", create_time=at(n),
                job_event=talent_v4.JobEvent(type_=kind, jobs=[f"{TENANT}/jobs/Pflege-7"])))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}

    def text(*args: str) -> list[str]:
        proc = subprocess.run([sys.executable, "-m", "server", "insights", *args, "--parent",
                               TENANT, "--server", served.address], cwd=served.workdir,
                              env=env, capture_output=True, text=True, timeout=CLI_DEADLINE)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.splitlines()

    assert text("jobs") == [
        "Pflege-7  impressions=3 views=1 applicationStarts=0 applicationFinishes=0 "
        "redirects=0 bookmarks=0 viewRate=33.3% applicationStartRate=0.0% "
        # (no starts to divide by: as the console says it)
        "applicationFinishRate=– notifications=0 sentCvs=0 interviewsGranted=0 hires=0"]
    funnel = text("funnel", "--step", "IMPRESSION", "--step", "VIEW", "--breakdown", "item")
    assert funnel[4:7] == [
        "Pflege-7:", "  IMPRESSION                        3  first step      100.0%",
        "  VIEW                              1       33.3%       33.3%  3 s"], funnel
    # A job whose id holds a comma is asked for quoted, and said so: its step came
    # back as job=x,y, which --step reads as job=x and a condition 'y' (and the
    # refusal of that did not say to quote it).
    with talent_client(served.address) as talent:
        talent.create_client_event(parent=TENANT, client_event=talent_v4.ClientEvent(
            request_id="r9", event_id="e9", create_time=at(9), job_event=talent_v4.JobEvent(
                type_=TYPE.IMPRESSION, jobs=[f"{TENANT}/jobs/x,y"])))
    assert text("funnel", "--step", 'IMPRESSION,job="x,y"')[2] == \
        '  IMPRESSION,job="x,y"              1  first step      100.0%'
    proc = subprocess.run([sys.executable, "-m", "server", "insights", "funnel", "--parent",
                           TENANT, "--step", "IMPRESSION,job=x,y", "--server", served.address],
                          cwd=served.workdir, env=env, capture_output=True, text=True,
                          timeout=CLI_DEADLINE)
    assert proc.returncode == 2 and proc.stderr == (
        "footfall: --step 'IMPRESSION,job=x,y': a condition is FIELD=VALUE, got 'y' (a value "
        'holding a comma is quoted: job="x,y")\n'), proc.stderr


def test_a_funnel_of_steps_with_conditions_by_day_and_by_product(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    record(served)
    insights = Console(channels(served), service=SERVICE)
    asked = {"steps": [{"eventType": "detail-page-view"},
                       {"eventType": "purchase-complete", "productId": "p2"}],
             "breakdown": "BY_ITEM", "startTime": "2024-03-01T10:00:00Z",
             "endTime": "2024-03-01T11:00:00Z"}
    answer = insights.call("RunFunnel", parent=CATALOG, **asked)
    assert [s["entrants"] for s in answer["steps"]] == ["4", "1"]
    assert {g["key"]: [s.get("entrants", "0") for s in g["steps"]]
            for g in answer["groups"]} == {"p1": ["2", "0"], "p2": ["2", "1"]}
    assert rest(served, "POST", f"{CATALOG}:runFunnel", json=asked).json() == answer
    assert cli(served, "funnel", "--parent", CATALOG, "--step", "detail-page-view",
               "--step", "purchase-complete,productId=p2", "--breakdown", "item",
               "--start", "2024-03-01T10:00:00Z", "--end", "2024-03-01T11:00:00Z",
               "--window", "86400s") == [answer]  # the default window, given


def test_a_step_of_no_known_type_that_no_one_reached_is_said(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    # add_to_cart for add-to-cart: the funnel said 0 at that step, and nothing more.
    record(served)
    insights = Console(channels(served), service=SERVICE)
    answer = insights.call("RunFunnel", parent=CATALOG, steps=[
        {"eventType": "detail-page-view"}, {"eventType": "add_to_cart"},
        {"eventType": "zzz"}])
    assert answer["notes"] == [
        "step 2's event type 'add_to_cart' is none of Google's (did you mean 'add-to-cart'?), "
        "and no entrant reached it",
        "step 3's event type 'zzz' is none of Google's, and no entrant reached it"], answer
    # A step typed with a space where its comma goes is refused, not a type of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    proc = subprocess.run([sys.executable, "-m", "server", "insights", "funnel", "--parent",
                           CATALOG, "--step", "detail-page-view",
                           "--step", "add-to-cart productId=p2", "--server", served.address],
                          cwd=served.workdir, env=env, capture_output=True, text=True,
                          timeout=CLI_DEADLINE)
    assert proc.returncode != 0 and proc.stdout == "", proc
    assert "--step 'add-to-cart productId=p2': the event type 'add-to-cart productId=p2' " \
        "holds a space or '='; conditions follow it after commas" in proc.stderr, proc.stderr


def test_bad_questions_are_refused_naming_the_field(
        served: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    insights = Console(channels(served), service=SERVICE)
    with pytest.raises(grpc.RpcError) as caught:
        insights.call("RunFunnel", parent=CATALOG, steps=[{"eventType": ""}],
                      countBy="REQUEST")
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == ("steps[0].event_type: is required; count_by: must be "
                                      "VISITOR or USER or SESSION for a catalog")
    answer = rest(served, "GET", f"{CATALOG}/productStats", params={"orderBy": "revenue"})
    assert answer.status_code == 400
    [violation] = answer.json()["error"]["details"][0]["fieldViolations"]
    assert violation["field"] == "order_by"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    proc = subprocess.run([sys.executable, "-m", "server", "insights", "totals", "--parent",
                           TENANT, "--server", served.address], env=env, capture_output=True,
                          text=True, timeout=CLI_DEADLINE)
    # A job site asking its tenant's totals was told only a catalog's form, as if it had
    # mistyped one; it is told what it may ask instead: by the CLI in its commands, by
    # the API in its RPCs.
    assert proc.returncode == 2 and (
        f"--parent: '{TENANT}' is a talent tenant; totals are a catalog's: a tenant's events "
        "by day are `footfall insights funnel --breakdown day`") in proc.stderr, proc.stderr
    with pytest.raises(grpc.RpcError) as caught:
        insights.call("ComputeTotals", parent=TENANT)
    assert caught.value.details() == (
        "parent: totals are answered for a catalog (projects/*/locations/*/"
        f"catalogs/*), got the talent tenant '{TENANT}': a tenant's events by day are "
        "RunFunnel's with breakdown BY_DAY, and each job's counts ListJobStats' between "
        "start_time and end_time")
    with pytest.raises(grpc.RpcError) as caught:
        insights.call("ComputeTotals", parent=f"{PROJECT}/tenant/jobs")
    assert caught.value.details() == ("parent: must be of the form 'projects/*/locations/*/"
                                      f"catalogs/*', got '{PROJECT}/tenant/jobs'")


def test_a_reader_key_may_ask_and_a_writer_key_may_not(
        secured: ServerProcess, channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    record(secured, with_key(WRITER))
    reader = Console(channels(secured), with_key(READER), service=SERVICE)
    assert reader.call("RunFunnel", parent=CATALOG) == SHOP_FUNNEL
    assert rest(secured, "GET", f"{TENANT}/jobStats", key=READER).status_code == 200
    with pytest.raises(grpc.RpcError) as caught:
        Console(channels(secured), with_key(WRITER), service=SERVICE).call(
            "ComputeTotals", parent=CATALOG)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert rest(secured, "POST", f"{CATALOG}:runFunnel", key=WRITER, json={}).status_code == 403
