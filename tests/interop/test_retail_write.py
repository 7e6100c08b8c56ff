"""WriteUserEvent through the official retail clients: sync, async, api_endpoint."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import retail_v2
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceGrpcTransport,
    UserEventServiceRestTransport,
)

from .examples import ALL_EVENTS, CUSTOM_EVENTS, GOOGLE_EVENTS, as_json, example, user_event
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    count_events,
    endpoint_retail_client,
    list_events,
    retail_async_client,
)

CLOCK_SLACK_NS = 2_000_000_000  # client and server read the same clock; allow for steps


def write(client: Any, parent: str, event: retail_v2.UserEvent,
          **request: Any) -> retail_v2.UserEvent:
    return client.write_user_event(
        request=retail_v2.WriteUserEventRequest(parent=parent, user_event=event, **request),
        timeout=RPC_DEADLINE)


def timed(event_type: str, i: int = 0) -> dict[str, Any]:
    """The example of `event_type` with an event_time of its own (so each is distinct)."""
    return example(event_type, eventTime=f"2024-05-20T14:{i // 60:02d}:{i % 60:02d}.123456789Z")


@pytest.mark.parametrize("event_type", [*GOOGLE_EVENTS, *CUSTOM_EVENTS])
def test_write_answers_the_event_plus_a_server_set_time(
        retail: retail_v2.UserEventServiceClient, catalog: str, event_type: str) -> None:
    sent = user_event(example(event_type))
    before = time.time_ns()
    got = write(retail, catalog, sent)
    after = time.time_ns()

    stamped = got.event_time.timestamp_pb().ToNanoseconds()
    assert before - CLOCK_SLACK_NS <= stamped <= after + CLOCK_SLACK_NS
    answered = as_json(got)
    del answered["eventTime"]
    assert answered == as_json(sent)


def test_a_given_event_time_is_kept_to_the_nanosecond(
        retail: retail_v2.UserEventServiceClient, catalog: str) -> None:
    sent = user_event(timed("detail-page-view"))
    got = write(retail, catalog, sent)
    assert as_json(got) == as_json(sent)
    assert as_json(got)["eventTime"] == "2024-05-20T14:00:00.123456789Z"


def test_events_are_stored_exactly_as_sent(retail: retail_v2.UserEventServiceClient,
                                           catalog: str, server: ServerProcess) -> None:
    sent = [as_json(user_event(timed(kind, i))) for i, kind in enumerate(ALL_EVENTS)]
    for event in sent:
        write(retail, catalog, user_event(event))
    assert list_events(server.store, catalog, server.workdir) == sent


@pytest.mark.parametrize("event_type", ["home-page-view", "purchase-complete", "signup"])
def test_write_async_is_accepted_and_answers_the_event(
        retail: retail_v2.UserEventServiceClient, catalog: str, event_type: str) -> None:
    sent = user_event(timed(event_type))
    got = write(retail, catalog, sent, write_async=True)
    assert as_json(got) == as_json(sent)


@pytest.mark.parametrize("write_async", [False, True])
def test_the_answer_is_the_event_as_sent_not_the_catalogs_product(
        retail: retail_v2.UserEventServiceClient, products: retail_v2.ProductServiceClient,
        catalog: str, branch: str, server: ServerProcess, write_async: bool) -> None:
    """The event is stored joined with the catalog, but answered as sent: the
    product's title, cost and attributes are the catalog's, which a writer key may
    not read (a writer key in a page is public)."""
    products.create_product(parent=branch, product_id="SKU-SECRET", product=retail_v2.Product(
        title="Unreleased Phone X", categories=["Phones"],
        price_info={"currency_code": "USD", "price": 999.0, "cost": 412.5},
        attributes={"supplier": retail_v2.CustomAttribute(text=["ACME internal"])}),
        timeout=RPC_DEADLINE)
    sent = user_event(example("detail-page-view", sessionId="s-answer",
                              eventTime="2024-05-20T10:00:00Z",
                              productDetails=[{"product": {"id": "SKU-SECRET"}}]))
    got = write(retail, catalog, sent, write_async=write_async)
    assert as_json(got) == as_json(sent)
    assert got.product_details[0].product.title == ""

    def stored() -> dict[str, Any]:
        return {e["sessionId"]: e for e in list_events(server.store, catalog,
                                                       server.workdir)}.get("s-answer", {})
    deadline = time.monotonic() + 5  # (write_async answers before the commit)
    while not stored() and time.monotonic() < deadline:
        time.sleep(0.05)
    product = stored()["productDetails"][0]["product"]
    assert (product["title"], product["priceInfo"]["cost"]) == ("Unreleased Phone X", 412.5)


def test_write_async_still_validates(retail: retail_v2.UserEventServiceClient, catalog: str,
                                     server: ServerProcess) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        write(retail, catalog, user_event(example("purchase-complete", purchaseTransaction=None)),
              write_async=True)
    assert_names_fields(refused.value, ["user_event.purchase_transaction"])
    assert count_events(server.store, catalog, server.workdir) == 0


def test_async_client_writes_every_type_concurrently(server: ServerProcess, catalog: str,
                                                     run: Any) -> None:
    sent = [user_event(timed(kind, i)) for i, kind in enumerate(ALL_EVENTS)]

    async def scenario() -> list[retail_v2.UserEvent]:
        async with retail_async_client(server.address) as client:
            return list(await asyncio.gather(*(
                client.write_user_event(request={"parent": catalog, "user_event": event},
                                        timeout=RPC_DEADLINE)
                for event in sent)))

    got = run(scenario())
    assert [as_json(e) for e in got] == [as_json(e) for e in sent]
    assert count_events(server.store, catalog, server.workdir) == len(sent)


def test_async_client_write_async_and_a_refusal(server: ServerProcess, catalog: str,
                                                run: Any) -> None:
    async def scenario() -> tuple[retail_v2.UserEvent, BaseException]:
        async with retail_async_client(server.address) as client:
            accepted = await client.write_user_event(
                request={"parent": catalog, "user_event": user_event(timed("login")),
                         "write_async": True}, timeout=RPC_DEADLINE)
            with pytest.raises(exceptions.InvalidArgument) as refused:
                await client.write_user_event(
                    request={"parent": catalog,
                             "user_event": user_event(example("add-to-cart", visitorId=None))},
                    timeout=RPC_DEADLINE)
            return accepted, refused.value

    accepted, refusal = run(scenario())
    assert accepted.event_type == "login"
    assert_names_fields(refusal, ["user_event.visitor_id"])


def test_api_endpoint_with_anonymous_credentials(server: ServerProcess, catalog: str) -> None:
    """`client_options={"api_endpoint": ...}` + AnonymousCredentials. The stock
    transport insists on TLS (the handshake fails against a plaintext port), so the
    insecure channel comes from a `channel=` factory; the endpoint is the client's."""
    with endpoint_retail_client(server.address, AnonymousCredentials()) as client:
        assert client.api_endpoint == server.address
        got = write(client, catalog, user_event(timed("home-page-view")))
    assert got.event_type == "home-page-view"


def test_direct_user_request_fills_the_address_and_user_agent_of_the_call(
        server: ServerProcess, catalog: str, retail: retail_v2.UserEventServiceClient) -> None:
    """Google's UserInfo: "True if the request is made directly from the end user, in
    which case the ip_address and user_agent can be populated from the HTTP request."
    Over REST and gRPC alike; what the event gives itself is kept, and without the
    flag nothing is filled."""
    rest = retail_v2.UserEventServiceClient(transport=UserEventServiceRestTransport(
        host=server.http_address, url_scheme="http", credentials=AnonymousCredentials()))

    def sent(client: Any, label: str, **user_info: Any) -> retail_v2.UserInfo:
        event = user_event(example("home-page-view", sessionId=label, userInfo=user_info))
        return write(client, catalog, event).user_info

    for way, client in (("grpc", retail), ("rest", rest)):
        filled = sent(client, f"{way}-direct", directUserRequest=True)
        assert filled.ip_address == "127.0.0.1"
        # what each client library sends as its User-Agent
        assert filled.user_agent.startswith({"grpc": "grpc-python/",
                                             "rest": "python-requests/"}[way])
        kept = sent(client, f"{way}-own", directUserRequest=True, ipAddress="203.0.113.9",
                    userAgent="Mozilla/5.0 (phone)")
        assert (kept.ip_address, kept.user_agent) == ("203.0.113.9", "Mozilla/5.0 (phone)")
        plain = sent(client, f"{way}-server")
        assert (plain.ip_address, plain.user_agent) == ("", "")
    stored = {e["sessionId"]: e.get("userInfo", {})
              for e in list_events(server.store, catalog, server.workdir)}
    assert stored["rest-direct"]["ipAddress"] == stored["grpc-direct"]["ipAddress"] == \
        "127.0.0.1"
    assert "ipAddress" not in stored["grpc-server"]


def test_direct_user_request_over_grpc_on_ipv6_fills_the_address(
        server_factory: Any) -> None:
    """gRPC writes an IPv6 peer URI-encoded (ipv6:%5B::1%5D:port): the address was left
    empty."""
    served = server_factory("--host", "::1")
    # (the ready lines say the address as `--server` takes it: '::1:PORT' was refused)
    said = served.log_text()
    assert f"Footfall serving gRPC on [::1]:{served.port} " in said, said
    assert f"Footfall serving HTTP on [::1]:{served.http_port} " in said, said
    with grpc.insecure_channel(f"[::1]:{served.port}") as channel:
        client = retail_v2.UserEventServiceClient(
            transport=UserEventServiceGrpcTransport(channel=channel))
        event = user_event(example("home-page-view", userInfo={"directUserRequest": True}))
        assert write(client, "projects/p/locations/global/catalogs/ipv6", event
                     ).user_info.ip_address == "::1"
