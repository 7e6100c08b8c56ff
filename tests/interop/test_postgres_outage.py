"""A Footfall server on PostgreSQL whose connection to the database is cut under a
write in flight, through the official clients: the write waits the outage out, as
README ("When PostgreSQL goes away") says a synchronous write does (up to 5 s). And
one whose database hangs (its connections open, nothing answered): it is answered
for as one that is away.

The server reaches PostgreSQL through a TCP proxy of the test's that cuts every
connection as the server sends the write's statement, or holds what it would pass
on, so the database itself never stops (others use it). Needs
FOOTFALL_TEST_POSTGRES_DSN (see tests/conftest.py). Imports nothing of the server's.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import psycopg
import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2, talent_v4
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.pg_proxy import CuttingProxy, proxy_to

from .support import (
    RPC_DEADLINE,
    ServerProcess,
    product_client,
    retail_client,
    talent_client,
    wait_until,
)
from .test_refusals_store_away import kept_sessions, refused_pixel

TENANT = "projects/footfall-interop/tenants/outage"
BRANCH = "projects/footfall-interop/locations/global/catalogs/default_catalog/branches/0"
OUTAGE = 1.5  # seconds the database is away: shorter than the 5 s a write waits
WAITED = 5.0  # README: a synchronous write waits up to 5 s (then hears UNAVAILABLE)
CATALOG = "projects/footfall-interop/locations/global/catalogs/default_catalog"
REFUSED_AWAY = 30


@pytest.fixture
def database(postgres_databases: Any) -> str:
    url: str = postgres_databases.create("outage")
    return url


@pytest.fixture
def proxy(database: str) -> Iterator[CuttingProxy]:
    with proxy_to(database) as running:
        yield running


@pytest.fixture
def server(server_factory: Callable[..., ServerProcess], database: str,
           proxy: CuttingProxy) -> ServerProcess:
    return server_factory(store=proxy.url(database))


def cut_under(call: Callable[[], Any], proxy: CuttingProxy, statement: bytes) -> float:
    """Run `call` (a write through an official client, its retries off), the
    connection cut as the server sends `statement` and restored OUTAGE seconds
    later; how long the call took. It must succeed: what it raises, raises."""
    outcome: list[Any] = []

    def calling() -> None:
        started = time.monotonic()
        try:
            call()
            outcome.append(time.monotonic() - started)
        except Exception as exc:  # (raised below, on the test's thread)
            outcome.append(exc)

    proxy.cut_at = statement
    caller = threading.Thread(target=calling)
    caller.start()
    assert proxy.cut_done.wait(RPC_DEADLINE), f"the write's statement never went out: {outcome}"
    time.sleep(OUTAGE)
    proxy.restore()
    caller.join(RPC_DEADLINE + WAITED)
    [took] = outcome
    if isinstance(took, BaseException):
        raise took
    assert isinstance(took, float)
    return took


def rows(database: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def test_a_client_event_in_flight_when_the_database_goes_away_waits_for_it(
        server: ServerProcess, proxy: CuttingProxy, database: str) -> None:
    """It was answered UNAVAILABLE at once (measured 0.02 s into a 3.6 s restart of
    PostgreSQL), where every write after it waited."""
    client = talent_client(server.address)
    request = talent_v4.CreateClientEventRequest(parent=TENANT, client_event=talent_v4.ClientEvent(
        event_id="in-flight", create_time=datetime.datetime.now(datetime.UTC),
        job_event=talent_v4.JobEvent(type_=talent_v4.JobEvent.JobEventType.VIEW,
                                     jobs=[f"{TENANT}/jobs/job-1"])))
    took = cut_under(lambda: client.create_client_event(request, retry=None, timeout=30),
                     proxy, b"INSERT INTO client_events")
    assert OUTAGE <= took < OUTAGE + WAITED
    assert rows(database, "SELECT count(*) FROM client_events WHERE event_id = 'in-flight'") \
        == [(1,)]


def test_a_product_write_in_flight_when_the_database_goes_away_waits_for_it(
        server: ServerProcess, proxy: CuttingProxy) -> None:
    client = product_client(server.address)
    product = retail_v2.Product(title="in flight", categories=["c"])
    took = cut_under(lambda: client.create_product(
        parent=BRANCH, product_id="in-flight", product=product, retry=None, timeout=30),
        proxy, b"INSERT INTO products")
    assert OUTAGE <= took < OUTAGE + WAITED
    found = client.get_product(name=f"{BRANCH}/products/in-flight", timeout=RPC_DEADLINE)
    assert found.title == "in flight"


def health(server: ServerProcess) -> str:
    with grpc.insecure_channel(server.address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                             timeout=RPC_DEADLINE)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


def writer_of(server: ServerProcess) -> Callable[[str], None]:
    """A durable write of one event of `visitor` through the official client, not
    retried (a test times each answer)."""
    client = retail_client(server.address)

    def write(visitor: str) -> None:
        client.write_user_event(retail_v2.WriteUserEventRequest(
            parent=CATALOG, user_event=retail_v2.UserEvent(
                event_type="home-page-view", visitor_id=visitor,
                event_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))),
            retry=None, timeout=30)
    return write


def test_a_database_that_hangs_is_answered_for_as_one_that_is_away(
        server: ServerProcess, proxy: CuttingProxy, database: str) -> None:
    """A database whose processes are stopped (SIGSTOP) or whose packets are dropped
    keeps the server's connections open and answers nothing: a write waited as long
    as that lasted (measured 12.0 s for a 12 s SIGSTOP of the cluster), then
    succeeded, and health said SERVING throughout. Now, as README says of a database
    that is away: the write hears UNAVAILABLE after its 5 s, a read at once, health
    NOT_SERVING until the database answers again, and the write sent again is stored
    once."""
    write = writer_of(server)

    write("before")
    assert health(server) == "SERVING"
    proxy.hold()
    try:
        started = time.monotonic()
        with pytest.raises(exceptions.ServiceUnavailable):
            write("held")
        assert WAITED <= time.monotonic() - started < WAITED + 1.0
        assert health(server) == "NOT_SERVING"
        started = time.monotonic()
        with pytest.raises(exceptions.ServiceUnavailable):
            product_client(server.address).get_product(
                name=f"{BRANCH}/products/any", retry=None, timeout=RPC_DEADLINE)
        assert time.monotonic() - started < 1.0
    finally:
        proxy.release()
    wait_until(lambda: health(server) == "SERVING" or None, "health SERVING again",
               deadline=RPC_DEADLINE)
    write("held")  # its caller tries again
    assert rows(database, "SELECT visitor_id, count(*) FROM user_events GROUP BY visitor_id "
                "ORDER BY visitor_id") == [("before", 1), ("held", 1)]


def test_a_write_that_comes_late_in_an_outage_waits_its_5_s_and_no_more(
        server: ServerProcess, proxy: CuttingProxy) -> None:
    """A write was answered at its batch's first try after its 5 s were out, and the
    writer's tries are 2 s apart once an outage has lasted a few seconds: writes that
    came 3 to 5 s into it heard UNAVAILABLE after 5.2 to 7.0 s (measured), as their
    5 s ended just after a try or just before one. Now at the end of their 5 s
    (measured 5.00-5.08 s). Writes come every 0.25 s from 3 s to 5 s into the outage,
    across one 2 s gap between tries wherever the tries fall (the first write begins
    the writer's tries: nothing else was in flight at the cut)."""
    write = writer_of(server)

    write("before")  # (the writer's connection is made)
    waited: dict[float, float] = {}

    def write_at(into: float) -> None:
        time.sleep(max(0.0, cut + into - time.monotonic()))
        started = time.monotonic()
        with pytest.raises(exceptions.ServiceUnavailable):
            write(f"late-{into}")
        waited[into] = time.monotonic() - started

    proxy.cut()
    cut = time.monotonic()
    try:
        writers = [threading.Thread(target=write_at, args=(into,))
                   for into in (0.0, *(3.0 + 0.25 * i for i in range(9)))]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(RPC_DEADLINE + WAITED)
    finally:
        proxy.restore()
    assert len(waited) == len(writers), waited  # (a writer that failed raised above)
    late = [f"{into:g} s in: {took:.2f} s" for into, took in sorted(waited.items())
            if not WAITED - 0.1 <= took < WAITED + 0.5]
    assert not late, ", ".join(late)


def test_refusals_made_while_the_database_is_away_are_kept_once_it_is_back(
        server: ServerProcess, proxy: CuttingProxy) -> None:
    """Each refused at once (the database plays no part in a refusal), and kept: they
    wait for the database (see test_refusals_store_away) and are written once it is
    back, none lost to the failed tries meanwhile."""
    proxy.cut()
    with requests.Session() as session:
        for n in range(REFUSED_AWAY):
            refused_pixel(session, server, n)
    wait_until(lambda: health(server) == "NOT_SERVING", "health to see the database away",
               deadline=RPC_DEADLINE)
    proxy.restore()
    expected = [f"s{n}" for n in reversed(range(REFUSED_AWAY))]
    wait_until(lambda: kept_sessions(server) == expected, "the refusals kept",
               deadline=RPC_DEADLINE + WAITED)


def test_refusals_whose_insert_the_cut_rolled_back_are_kept_once_it_is_back(
        server: ServerProcess, proxy: CuttingProxy) -> None:
    """The job that keeps refusals had taken them when the cut rolled its insert
    back: it was answered UNAVAILABLE at once, and they were lost (none listed once
    the database was back). Now it runs again once the database is back, however
    long the outage (here past the 5 s a write waits), and keeps each once."""
    proxy.cut_at = b"INSERT INTO rejections"
    with requests.Session() as session:
        for n in range(REFUSED_AWAY):
            refused_pixel(session, server, n)
    assert proxy.cut_done.wait(RPC_DEADLINE), "the refusals' insert never went out"
    time.sleep(WAITED + 1.0)  # the outage (a write refused meanwhile would be kept too)
    proxy.restore()
    expected = [f"s{n}" for n in reversed(range(REFUSED_AWAY))]
    wait_until(lambda: kept_sessions(server) == expected, "the refusals kept once",
               deadline=RPC_DEADLINE + WAITED)
