"""The console's page tokens against server subprocesses: a token one server gave
goes on at another on the same store (two servers on one SQLite file, or on one
PostgreSQL database), and a token whose position was changed, or one written in
the unsigned form of an earlier Footfall, is refused INVALID_ARGUMENT naming
page_token, over gRPC and REST. Imports nothing of ours."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
import requests

from .console import Console, rest
from .support import ServerProcess, retail_client, sqlite_url

PROJECT = "projects/footfall-interop"
CATALOG = f"{PROJECT}/locations/global/catalogs/tokens"
OTHER_CATALOG = f"{CATALOG}-other"
VISITORS = ["v0", "v1", "v2"]


@pytest.fixture(params=["sqlite", "postgres"])
def two_servers(request: pytest.FixtureRequest, server_factory: Callable[..., ServerProcess],
                tmp_path: Path) -> tuple[ServerProcess, ServerProcess]:
    """Two servers on one store, with VISITORS' events written to the first in
    CATALOG (latest first: v2, v1, v0) and one in OTHER_CATALOG."""
    if request.param == "postgres":
        store = request.getfixturevalue("postgres_databases").create("tokens")
    else:
        store = sqlite_url(tmp_path / "shared.db")
    one, two = server_factory(store=store), server_factory(store=store)
    with retail_client(one.address) as client:
        for second, visitor in enumerate(VISITORS):
            client.write_user_event(request={"parent": CATALOG, "user_event": {
                "event_type": "home-page-view", "visitor_id": visitor,
                "event_time": f"2024-05-20T14:03:0{second}Z"}})
        client.write_user_event(request={"parent": OTHER_CATALOG, "user_event": {
            "event_type": "home-page-view", "visitor_id": "elsewhere"}})
    return one, two


def visitors(page: dict[str, object]) -> list[str]:
    return [e["userEvent"]["visitorId"] for e in page.get("userEvents", [])]  # type: ignore


def moved(token: str) -> str:
    """`token` with the event id of its position one more, as a caller could write
    it: its text decoded, changed and encoded again in the same form."""
    text, dot, tag = token.partition(".")
    body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    time, event_id, *rest_of_it = body.split(b".")
    body = b".".join([time, str(int(event_id) + 1).encode(), *rest_of_it])
    if not dot:  # (unpadded, as the signed form writes it, and so the only way it reads)
        return base64.urlsafe_b64encode(body).decode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=") + dot + tag


def refused_over_grpc(console: Console, token: str) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        console.call("ListUserEvents", parent=CATALOG, pageSize=1, pageToken=token)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    return caught.value.details()


def refused_over_rest(server: ServerProcess, token: str) -> str:
    answer: requests.Response = rest(server.http_address, f"{CATALOG}/userEvents",
                                     pageSize=1, pageToken=token)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    message: str = answer.json()["error"]["message"]
    return message


def test_a_token_of_one_server_goes_on_at_another_on_the_same_store(
        two_servers: tuple[ServerProcess, ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    one, two = two_servers
    first = Console(channels(one)).call("ListUserEvents", parent=CATALOG, pageSize=1)
    assert visitors(first) == ["v2"]
    second = Console(channels(two)).call("ListUserEvents", parent=CATALOG, pageSize=1,
                                         pageToken=first["nextPageToken"])
    assert visitors(second) == ["v1"]
    third = rest(one.http_address, f"{CATALOG}/userEvents", pageSize=1,
                 pageToken=second["nextPageToken"])
    assert third.status_code == 200, third.text
    assert visitors(third.json()) == ["v0"]
    # ... and the catalogs' list, whose token carries a name
    catalogs = Console(channels(two)).call("ListCatalogs", parent=PROJECT, pageSize=1,
                                           view="DATA_SET_VIEW_BASIC")
    assert catalogs["catalogs"] == [{"name": CATALOG}]
    assert Console(channels(one)).call("ListCatalogs", parent=PROJECT, pageSize=1,
                                       view="DATA_SET_VIEW_BASIC",
                                       pageToken=catalogs["nextPageToken"]) == {
        "catalogs": [{"name": OTHER_CATALOG}]}


def test_a_changed_token_is_refused_naming_page_token(
        two_servers: tuple[ServerProcess, ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    # A token's check value was a CRC anyone could compute: a caller wrote a token
    # for whatever position it liked.
    one, two = two_servers
    token = Console(channels(one)).call("ListUserEvents", parent=CATALOG,
                                        pageSize=1)["nextPageToken"]
    forged = moved(token)
    for server in (one, two):
        assert refused_over_grpc(Console(channels(server)), forged) == \
            ("page_token: is not a page token this server issued (it was changed, or made up; or "
             "it is of another store, or of a memory:// server since restarted: start from "
             "the first page)")
        assert refused_over_rest(server, forged).startswith("page_token: is not a page token")
    catalogs = Console(channels(one)).call("ListCatalogs", parent=PROJECT, pageSize=1)
    text, dot, tag = catalogs["nextPageToken"].partition(".")
    body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).replace(b"catalogs:",
                                                                          b"tenants:")
    with pytest.raises(grpc.RpcError) as caught:
        Console(channels(two)).call("ListCatalogs", parent=PROJECT,
                                    pageToken=base64.urlsafe_b64encode(body).decode().rstrip(
                                        "=") + dot + tag)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("page_token: ")


def test_a_token_of_an_earlier_footfall_says_to_start_from_the_first_page(
        two_servers: tuple[ServerProcess, ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    one, _ = two_servers
    earlier = base64.urlsafe_b64encode(b"1716213787000000.2.12345").decode()
    for said in (refused_over_grpc(Console(channels(one)), earlier),
                 refused_over_rest(one, earlier)):
        assert said.startswith("page_token: ") and "start from the first page" in said
