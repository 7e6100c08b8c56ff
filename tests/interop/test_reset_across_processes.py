"""A reset is ordered after every pixel answered before it, whichever process or
replica answered the pixel and whichever served the reset: a pixel then a reset,
round after round, leaves nothing; a pixel answered after the reset is kept. (A
pixel is answered once queued, and committed with its own process's next commit:
one answered by another process than the reset's was stored after the reset, 27
rounds of 200 on SQLite, 39 on PostgreSQL.) A refusal likewise: one kept by another
process just before the reset is listed no more. Imports nothing of ours."""

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


def call(server: ServerProcess, method: str, path: str, body: bytes | None = None,
         refused: bool = False) -> None:
    """`method` `path` on `server`'s HTTP port, on a connection of its own (the
    kernel hands each to one of the processes); asserts 200, and that it was
    `refused` (a pixel's GIF says why in X-Footfall-Error) or not."""
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port,
                                            timeout=RPC_DEADLINE)
    try:
        connection.request(method, path, body=body,
                           headers={"Content-Type": "application/json"} if body else {})
        answer = connection.getresponse()
        text = answer.read()
        assert answer.status == 200, text
        assert (answer.getheader("X-Footfall-Error") is not None) == refused
    finally:
        connection.close()


def pixel(server: ServerProcess, catalog: str, visitor: str, refused: bool = False) -> None:
    """A browser's pixel (GET :collect) of a home-page-view by `visitor` (`refused`:
    of an event without its type)."""
    event = json.dumps({"visitorId": visitor} if refused else
                       {"eventType": "home-page-view", "visitorId": visitor})
    call(server, "GET", f"/v2/{catalog}/userEvents:collect?userEvent="
                        + urllib.parse.quote(event, safe=""), refused=refused)


def pixels_then_resets(pixels: ServerProcess, resets: ServerProcess,
                       refused: bool = False) -> None:
    """ROUNDS rounds, each of a catalog of its own: a pixel, a reset (of the catalog,
    or every other round of the project the catalog alone is in), and a pixel
    after it; each pixel `refused` or not."""
    for n in range(ROUNDS):
        project = PROJECT if n % 2 == 0 else f"{PROJECT}-{n}"
        catalog = catalog_of(project, n)
        pixel(pixels, catalog, "before", refused)
        call(resets, "POST", f"/console/v1/{catalog if n % 2 == 0 else project}:reset", b"{}")
        pixel(pixels, catalog, "after", refused)


def assert_only_the_pixels_after(rows: list[tuple[str, str]]) -> None:
    """`rows` (catalog, visitor) are one pixel after the reset a round."""
    before = sorted(catalog for catalog, visitor in rows if visitor == "before")
    assert before == [], f"{len(before)} of {ROUNDS} rounds kept a pixel sent before the reset"
    assert sorted(catalog for catalog, _ in rows) == sorted(
        catalog_of(PROJECT if n % 2 == 0 else f"{PROJECT}-{n}", n) for n in range(ROUNDS))


STORED = "SELECT c.name, e.visitor_id FROM user_events e JOIN catalogs c ON c.id = e.catalog_id"
# The refused pixels kept: their catalog, and the request (which holds the visitor id).
KEPT = "SELECT parent, rejection FROM rejections"


def stored(store: str, query: str = STORED) -> list[tuple[Any, ...]]:
    if store.startswith("postgresql"):
        import psycopg  # here: only the PostgreSQL runs need the driver

        with psycopg.connect(store) as db:
            return db.execute(query).fetchall()
    with sqlite3.connect(store.removeprefix("sqlite:///")) as db:
        return db.execute(query).fetchall()


def kept_refusals(store: str) -> list[tuple[str, str]]:
    """(catalog, visitor) of each refused pixel kept in `store`."""
    return [(parent, next(visitor for visitor in ("before", "after")
                          if f'"{visitor}"'.encode() in bytes(rejection)))
            for parent, rejection in stored(store, KEPT)]


@pytest.mark.timeout(120)
def test_a_reset_follows_the_pixels_every_process_answered(
        server_factory: Callable[..., ServerProcess], each_store: str) -> None:
    server = server_factory("--processes", "2", store=each_store)
    pixels_then_resets(server, server)
    assert server.stop() == 0  # (its processes commit what they answered)
    assert_only_the_pixels_after(stored(each_store))


@pytest.mark.timeout(120)
def test_a_reset_follows_the_pixels_the_other_replica_answered(
        server_factory: Callable[..., ServerProcess], postgres_databases: Any) -> None:
    store = postgres_databases.create("reset_replicas")
    first, second = server_factory(store=store), server_factory(store=store)
    pixels_then_resets(first, second)
    assert first.stop() == 0 and second.stop() == 0
    assert_only_the_pixels_after(stored(store))


@pytest.mark.timeout(120)
def test_a_reset_follows_the_refusals_every_process_kept(
        server_factory: Callable[..., ServerProcess], each_store: str) -> None:
    """A refusal is kept up to 0.1 s after it is answered, by its own process: one
    another process answered just before the reset was kept after it, and listed
    among the refusals of the catalog the reset had emptied."""
    server = server_factory("--processes", "2", store=each_store)
    pixels_then_resets(server, server, refused=True)
    assert server.stop() == 0
    assert_only_the_pixels_after(kept_refusals(each_store))


@pytest.mark.timeout(120)
def test_a_reset_follows_the_refusals_the_other_replica_kept(
        server_factory: Callable[..., ServerProcess], postgres_databases: Any) -> None:
    store = postgres_databases.create("reset_refusal_replicas")
    first, second = server_factory(store=store), server_factory(store=store)
    pixels_then_resets(first, second, refused=True)
    assert first.stop() == 0 and second.stop() == 0
    assert_only_the_pixels_after(kept_refusals(store))
