"""The page tokens of ListProducts, ListOperations and the insights tables against
server subprocesses: signed with the store's key as the console's are, so a token
one server gave goes on at another on the same store (one SQLite file, or one
PostgreSQL database), the official clients' pagers walk every page, and a token
whose body was changed, or one in the unsigned form of an earlier Footfall, is
refused INVALID_ARGUMENT naming page_token. A token of another question is
refused as before. Imports nothing of ours."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.api_core import exceptions
from google.longrunning import operations_pb2

from .console import Console
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    finish,
    product_client,
    retail_client,
    sqlite_url,
)

PROJECT = "projects/footfall-interop"
CATALOG = f"{PROJECT}/locations/global/catalogs/list-tokens"
BRANCH = f"{CATALOG}/branches/0"
PRODUCT_IDS = [f"SKU-{i}" for i in range(5)]
INSIGHTS = "footfall.insights.v1.InsightsService"
CHANGED = ("page_token: is not a page token this server issued (it was changed, or made up; "
           "or it is of another store, or of a memory:// server since restarted: start "
           "from the first page)")


@pytest.fixture(params=["sqlite", "postgres"])
def two_servers(request: pytest.FixtureRequest, server_factory: Callable[..., ServerProcess],
                tmp_path: Path) -> tuple[ServerProcess, ServerProcess]:
    """Two servers on one store, the first given PRODUCT_IDS in BRANCH, a view of
    each in CATALOG, and three purges (dry runs) of CATALOG done."""
    if request.param == "postgres":
        store = request.getfixturevalue("postgres_databases").create("list_tokens")
    else:
        store = sqlite_url(tmp_path / "shared.db")
    one, two = server_factory(store=store), server_factory(store=store)
    with product_client(one.address) as products:
        for product_id in PRODUCT_IDS:
            products.create_product(parent=BRANCH, product_id=product_id, product={
                "title": product_id, "categories": ["Tents"]}, timeout=RPC_DEADLINE)
    with retail_client(one.address) as retail:
        for product_id in PRODUCT_IDS:
            retail.write_user_event(request={"parent": CATALOG, "user_event": {
                "event_type": "detail-page-view", "visitor_id": "v",
                "product_details": [{"product": {"id": product_id}}]}}, timeout=RPC_DEADLINE)
        for _ in range(3):
            finish(retail.purge_user_events(request={
                "parent": CATALOG, "filter": 'eventType = "purchase-complete"', "force": False},
                timeout=RPC_DEADLINE))
    return one, two


def changed(token: str, change: Callable[[bytes], bytes]) -> str:
    """`token` with its body changed by `change`, written back in the same form, as a
    caller could (a signed token keeps its tag; an unsigned one its padding)."""
    text, dot, tag = token.partition(".")
    body = change(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    written = base64.urlsafe_b64encode(body).decode()
    if dot or not text.endswith("="):
        written = written.rstrip("=")
    return written + dot + tag


def refusal(call: Callable[[], object]) -> str:
    """The INVALID_ARGUMENT message of `call`, over the official client or raw gRPC."""
    with pytest.raises((exceptions.InvalidArgument, grpc.RpcError)) as caught:
        call()
    error = caught.value
    if isinstance(error, grpc.RpcError):
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        return str(error.details())
    assert isinstance(error, exceptions.InvalidArgument)
    return str(error.message)


def test_list_products_tokens_go_on_across_servers_and_cannot_be_changed(
        two_servers: tuple[ServerProcess, ServerProcess]) -> None:
    one, two = two_servers
    with product_client(one.address) as first, product_client(two.address) as second:
        # The official pager walks every page of either server.
        pager = second.list_products(request={"parent": BRANCH, "page_size": 2},
                                     timeout=RPC_DEADLINE)
        pages = list(pager.pages)
        assert [[p.id for p in page.products] for page in pages] == [
            PRODUCT_IDS[:2], PRODUCT_IDS[2:4], PRODUCT_IDS[4:]]
        assert [p.id for p in first.list_products(request={"parent": BRANCH, "page_size": 1},
                                                  timeout=RPC_DEADLINE)] == PRODUCT_IDS
        # One server's token, at the other.
        token = first.list_products(request={"parent": BRANCH, "page_size": 2},
                                    timeout=RPC_DEADLINE).next_page_token
        after = second.list_products(request={"parent": BRANCH, "page_size": 2,
                                              "page_token": token}, timeout=RPC_DEADLINE)
        assert [p.id for p in after] == PRODUCT_IDS[2:]

        def listed(page_token: str, **more: object) -> Callable[[], object]:
            return lambda: second.list_products(request={
                "parent": BRANCH, "page_size": 2, "page_token": page_token, **more},
                timeout=RPC_DEADLINE).products

        # A token whose product was changed: the list would have gone on after SKU-3.
        assert refusal(listed(changed(token, lambda b: b.replace(b"SKU-1", b"SKU-3")))) \
            == CHANGED
        # ... one of an earlier Footfall (unsigned JSON), and one of another filter.
        fingerprint = json.loads(base64.urlsafe_b64decode(
            token.partition(".")[0] + "==="))[1]
        earlier = base64.urlsafe_b64encode(json.dumps(["SKU-1", fingerprint],
                                                      separators=(",", ":")).encode())
        said = refusal(listed(earlier.decode().rstrip("=")))
        assert said.startswith("page_token: ") and "start from the first page" in said
        assert refusal(listed(token, filter='type = "PRIMARY"')) == (
            "page_token: was issued for a different parent, filter or read_mask; those must "
            "not change while paging")


def test_list_operations_tokens_go_on_across_servers_and_cannot_be_changed(
        two_servers: tuple[ServerProcess, ServerProcess]) -> None:
    one, two = two_servers
    with retail_client(one.address) as first, retail_client(two.address) as second:
        every = [op.name for op in first.list_operations(operations_pb2.ListOperationsRequest(
            name=CATALOG), timeout=RPC_DEADLINE).operations]
        assert len(every) == 3
        # Page by page, each from the other server (api_core's operations client takes
        # no page size: it reads one page of 100 here).
        walked, token = [], ""
        for turn in range(4):
            page = (first, second)[turn % 2].list_operations(
                operations_pb2.ListOperationsRequest(name=CATALOG, page_size=1,
                                                     page_token=token), timeout=RPC_DEADLINE)
            walked += [op.name for op in page.operations]
            token = page.next_page_token
            if not token:
                break
        assert walked == every and not token
        assert [op.name for op in second.transport.operations_client.list_operations(
            CATALOG, "")] == every
        page = first.list_operations(operations_pb2.ListOperationsRequest(
            name=CATALOG, page_size=1), timeout=RPC_DEADLINE)
        rest = second.list_operations(operations_pb2.ListOperationsRequest(
            name=CATALOG, page_size=5, page_token=page.next_page_token), timeout=RPC_DEADLINE)
        assert [op.name for op in rest.operations] == every[1:]

        def listed(page_token: str, **more: object) -> Callable[[], object]:
            return lambda: second.list_operations(operations_pb2.ListOperationsRequest(
                name=CATALOG, page_token=page_token, **more), timeout=RPC_DEADLINE)

        # Moved on a microsecond: the list would have skipped the operation it names.
        def later(body: bytes) -> bytes:
            created, _, rest_of_it = body.partition(b":")
            return str(int(created) + 1).encode() + b":" + rest_of_it

        token = page.next_page_token
        assert refusal(listed(changed(token, later))) == CHANGED
        text = token.partition(".")[0]
        body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        said = refusal(listed(base64.urlsafe_b64encode(body).decode()))
        assert said.startswith("page_token: ") and "start from the first page" in said
        assert refusal(listed(token, filter="done=false")).startswith(
            "page_token: is a page token of another list")


def test_insights_table_tokens_go_on_across_servers_and_cannot_be_changed(
        two_servers: tuple[ServerProcess, ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    first, second = (Console(channels(server), service=INSIGHTS) for server in two_servers)
    question = {"parent": CATALOG, "orderBy": "product_id", "pageSize": 2}
    page = first.call("ListProductStats", **question)
    ids = [row["productId"] for row in page["products"]]
    while "nextPageToken" in page:
        page = second.call("ListProductStats", **question, pageToken=page["nextPageToken"])
        ids += [row["productId"] for row in page["products"]]
    assert ids == PRODUCT_IDS

    token = first.call("ListProductStats", **question)["nextPageToken"]

    def listed(page_token: str, **more: object) -> Callable[[], object]:
        return lambda: second.call("ListProductStats", **{**question, **more},
                                   pageToken=page_token)

    # Moved on to the last row: the list would have skipped two.
    assert refusal(listed(changed(token, lambda b: b"4" + b[1:]))) == CHANGED
    end, _, fingerprint = base64.urlsafe_b64decode(
        token.partition(".")[0] + "===").partition(b".")
    assert end == b"2" and int(fingerprint) >= 0  # (as an earlier one held it too)
    earlier = base64.urlsafe_b64encode(b"2." + fingerprint).decode()
    said = refusal(listed(earlier))
    assert said.startswith("page_token: ") and "start from the first page" in said
    assert refusal(listed(token, orderBy="views")) == (
        "page_token: is not a page token of this list")
    # ... and the jobs' table takes none of the products'.
    assert refusal(lambda: second.call("ListJobStats", parent=f"{PROJECT}/tenants/t",
                                       pageToken=token)) == (
        "page_token: is not a page token of this list")
