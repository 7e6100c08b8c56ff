"""A reset is ordered after every pixel answered before it, whichever process or
replica answered the pixel and whichever served the reset: a pixel then a reset,
round after round, leaves nothing; a pixel answered after the reset is kept. (A
pixel is answered once queued, and committed with its own process's next commit:
one answered by another process than the reset's was stored after the reset, 27
rounds of 200 on SQLite, 39 on PostgreSQL.) Imports nothing of ours."""

from __future__ import annotations

import http.client
import json
import sqlite3
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest

from .support import RPC_DEADLINE, ServerProcess

PROJECT = "projects/footfall-interop-reset"
ROUNDS = 200


def catalog_of(project: str, n: int) -> str:
    return f"{project}/locations/global/catalogs/round-{n}"


def call(server: ServerProcess, method: str, path: str, body: bytes | None = None) -> None:
    """`method` `path` on `server`'s HTTP port, on a connection of its own (the
    kernel hands each to one of the processes); asserts 200."""
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                            timeout=RPC_DEADLINE)
    try:
        connection.request(method, path, body=body,
                           headers={"Content-Type": "application/json"} if body else {})
        answer = connection.getresponse()
        text = answer.read()
        assert answer.status == 200, text
        assert answer.getheader("X-Footfall-Error") is None
    finally:
        connection.close()


def pixel(server: ServerProcess, catalog: str, visitor: str) -> None:
    """A browser's pixel (GET :collect) of a home-page-view by `visitor`."""
    event = json.dumps({"eventType": "home-page-view", "visitorId": visitor})
    call(server, "GET", f"/v2/{catalog}/userEvents:collect?userEvent="
                        + urllib.parse.quote(event, safe=""))


def pixels_then_resets(pixels: ServerProcess, resets: ServerProcess) -> None:
    """ROUNDS rounds, each of a catalog of its own: a pixel, a reset (of the catalog,
    or every other round of the project the catalog alone is in), and a pixel
    after it."""
    for n in range(ROUNDS):
        project = PROJECT if n % 2 == 0 else f"{PROJECT}-{n}"
        catalog = catalog_of(project, n)
        pixel(pixels, catalog, "before")
        call(resets, "POST", f"/console/v1/{catalog if n % 2 == 0 else project}:reset", b"{}")
        pixel(pixels, catalog, "after")


def assert_only_the_pixels_after(rows: list[tuple[str, str]]) -> None:
    """`rows` (catalog, visitor) are one pixel after the reset a round."""
    before = sorted(catalog for catalog, visitor in rows if visitor == "before")
    assert before == [], f"{len(before)} of {ROUNDS} rounds kept a pixel sent before the reset"
    assert sorted(catalog for catalog, _ in rows) == sorted(
        catalog_of(PROJECT if n % 2 == 0 else f"{PROJECT}-{n}", n) for n in range(ROUNDS))


STORED = "SELECT c.name, e.visitor_id FROM user_events e JOIN catalogs c ON c.id = e.catalog_id"


def stored_sqlite(path: str) -> list[tuple[str, str]]:
    with sqlite3.connect(path.removeprefix("sqlite:///")) as db:
        return db.execute(STORED).fetchall()


def stored_postgres(url: str) -> list[tuple[str, str]]:
    import psycopg  # here: only the PostgreSQL runs need the driver

    with psycopg.connect(url) as db:
        return db.execute(STORED).fetchall()


@pytest.mark.timeout(120)
def test_a_reset_follows_the_pixels_every_process_answered(
        server_factory: Callable[..., ServerProcess], each_store: str) -> None:
    server = server_factory("--processes", "2", store=each_store)
    pixels_then_resets(server, server)
    assert server.stop() == 0  # (its processes commit what they answered)
    postgres = each_store.startswith("postgresql")
    assert_only_the_pixels_after(stored_postgres(each_store) if postgres
                                 else stored_sqlite(each_store))


@pytest.mark.timeout(120)
def test_a_reset_follows_the_pixels_the_other_replica_answered(
        server_factory: Callable[..., ServerProcess], postgres_databases: Any) -> None:
    store = postgres_databases.create("reset_replicas")
    first, second = server_factory(store=store), server_factory(store=store)
    pixels_then_resets(first, second)
    assert first.stop() == 0 and second.stop() == 0
    assert_only_the_pixels_after(stored_postgres(store))
