"""What one event may weigh, on every path an event enters (write and pixel over
gRPC and HTTP, talent client events, import lines), and what a flood of
violations costs: the first hundred named, the rest counted, quickly."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from footfall.retail.v2 import (
    import_config_pb2,
    product_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from footfall.talent.v4 import event_pb2, event_service_pb2, event_service_pb2_grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from server import lenient_json, protojson
from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.names import default_branch
from server.policy.envelope import LARGE_REQUEST_BYTES
from server.store import EventQuery

from .http_client import Reply, call, query_value

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
TENANT = "projects/p/tenants/t"
LIMIT = 4096  # --max-event-bytes of the `small` server
# Work that took 120 s (40,000 violations) or would never end (5 million) before
# fails on the calls' own deadline (30 s); how fast it now is, bench/ measures, not
# these tests.
DEADLINE = 30
FLOOD = 40_000  # empty attribute texts: the 1 MB request


@pytest.fixture
def small(settings: Settings, clock: FixedClock, tmp_path: Path) -> Iterator[Running]:
    """A server with a 4 KiB event limit and both transports."""
    running = start(dataclasses.replace(settings, http_port=-1, max_event_bytes=LIMIT,
                                        gcs_root=str(tmp_path / "gcs")), clock)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def default(settings: Settings, clock: FixedClock) -> Iterator[Running]:
    """A server with the default limits (2 MiB events) and both transports."""
    running = start(dataclasses.replace(settings, http_port=-1), clock)
    try:
        yield running
    finally:
        running.stop()


def channel_of(running: Running) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{running.port}")


def event(visitor: str = "v1", padding: int = 0, **fields: Any) -> user_event_pb2.UserEvent:
    """A valid home-page-view; `padding` characters of attribute text make it bigger."""
    found = user_event_pb2.UserEvent(event_type="home-page-view", visitor_id=visitor, **fields)
    for i in range(padding // 200):
        found.attributes[f"pad{i}"].text.append("x" * 200)
    return found


FLAG = "(the server's --max-event-bytes)"


def refusal(event: Any, field: str, limit: int = LIMIT) -> str:
    """How an `event` over `limit` is refused: its size, the bytes of its `field`
    (which holds the most of it) and the limit."""
    size, rest = event.ByteSize(), type(event)()
    rest.CopyFrom(event)
    rest.ClearField(field)
    return f"is {size} bytes ({size - rest.ByteSize()} of them in {field}); at most {limit} {FLAG}"


def bad_request(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = next(status_pb2.Status.FromString(value) for key, value in
                  error.trailing_metadata() if key == "grpc-status-details-bin")  # type: ignore[attr-defined]
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return [(v.field, v.description) for v in bad.field_violations]


def refused(call_it: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call_it()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return caught.value


def stored(running: Running) -> int:
    running.store.flush()  # a pixel is answered before its commit
    return running.store.count_user_events(EventQuery(CATALOG))


def post(running: Running, path: str, body: Any) -> Reply:
    return call(running.http_port, "POST", path, body)


# -- a flood of violations -------------------------------------------------------------


def test_a_flood_of_violations_is_answered_with_the_first_hundred(
        default: Running) -> None:
    flood = event()
    for i in range(FLOOD):
        flood.attributes[f"k{i:05}"].text.append("")
    with channel_of(default) as channel:
        write = user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent
        error = refused(lambda: write(user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=flood), timeout=DEADLINE))
    entries = bad_request(error)
    assert entries[0] == ("user_event.attributes['k00000'].text[0]", "must not be empty")
    assert entries[-1] == ("", f"and {FLOOD - (len(entries) - 1)} more violations")
    shown = error.details().count("must not be empty")  # type: ignore[attr-defined]
    assert error.details().endswith(f"; and {FLOOD - shown} more violations")  # type: ignore[attr-defined]

    body = json_format.MessageToDict(flood)
    reply = post(default, f"/v2/{CATALOG}/userEvents:write", body)
    assert reply.status == 400 and len(reply.body) < 32 * 1024  # was 7.8 MB
    error_json = reply.error()
    assert error_json["message"].endswith(f"; and {FLOOD - 100} more violations")
    violations = error_json["details"][0]["fieldViolations"]
    assert len(violations) == 101
    assert violations[-1] == {"description": f"and {FLOOD - 100} more violations"}
    assert stored(default) == 0


def test_a_10_mib_request_of_violations_is_refused_by_its_size_at_once(
        default: Running) -> None:
    """Five million empty texts: five million violations, but the event is over
    the 2 MiB default first, and that is its one violation."""
    huge = event()
    huge.attributes["a"].text.extend([""] * 5_000_000)
    size = huge.ByteSize()
    assert 10_000_000 < size < default.settings.max_request_bytes
    with channel_of(default) as channel:
        write = user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent
        error = refused(lambda: write(user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=huge), timeout=DEADLINE))
    told = refusal(huge, "attributes", 2097152)
    assert error.details() == f"user_event: {told}"  # type: ignore[attr-defined]
    assert bad_request(error) == [("user_event", told)]
    assert stored(default) == 0


# -- the event size limit on every path --------------------------------------------------


def test_write_over_grpc_and_rest(small: Running) -> None:
    big, fits = event("big", padding=LIMIT), event("fits", padding=LIMIT - 400)
    assert big.ByteSize() > LIMIT >= fits.ByteSize()
    with channel_of(small) as channel:
        write = user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent
        error = refused(lambda: write(user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=big)))
        assert bad_request(error) == [("user_event", refusal(big, "attributes"))]
        assert write(user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=fits)).visitor_id == "fits"
    reply = post(small, f"/v2/{CATALOG}/userEvents:write", json_format.MessageToDict(big))
    assert reply.status == 400
    assert reply.violations() == {"user_event": refusal(big, "attributes")}
    assert stored(small) == 1


def test_the_size_and_a_bad_parent_are_reported_together(small: Running) -> None:
    with channel_of(small) as channel:
        write = user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent
        error = refused(lambda: write(user_event_service_pb2.WriteUserEventRequest(
            parent="nowhere", user_event=event(padding=LIMIT))))
    assert [field for field, _ in bad_request(error)] == ["parent", "user_event"]


def client_event_over_the_limit(created: int) -> event_pb2.ClientEvent:
    """A talent client event whose notes take it past LIMIT, created at `created`."""
    return event_pb2.ClientEvent(
        event_id="e1", create_time=timestamp_pb2.Timestamp(seconds=created),
        job_event=event_pb2.JobEvent(type=1, jobs=[f"{TENANT}/jobs/j1"]),  # type: ignore[arg-type]
        event_notes="n" * LIMIT)


def test_an_event_over_the_limit_is_told_its_size_before_its_times_are_walked(
        small: Running) -> None:
    """Over gRPC an event's times were walked (about 5 us a product) before its size
    was looked at: a writer key's WriteUserEvent of 9 MB, sent gzip-compressed in a few
    kB, took 16 s of the server's CPU to be refused for its size, and 40 of them held
    7 GB. Its size is now its one violation, as over REST, whatever it holds."""
    big = event("big", padding=LIMIT)
    big.event_time.seconds = 10**13  # past year 9999
    big.product_details.add().product.available_time.seconds = -10**13
    client_event = client_event_over_the_limit(created=10**13)  # past year 9999
    with channel_of(small) as channel:
        write = user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent
        error = refused(lambda: write(user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=big)))
        assert bad_request(error) == [("user_event", refusal(big, "attributes"))]
        create = event_service_pb2_grpc.EventServiceStub(channel).CreateClientEvent
        error = refused(lambda: create(event_service_pb2.CreateClientEventRequest(
            parent=TENANT, client_event=client_event)))
        assert bad_request(error) == [("client_event", refusal(client_event, "event_notes"))]
        # within the limit, its times are still told
        small_event = event("fits", event_time=timestamp_pb2.Timestamp(seconds=10**13))
        error = refused(lambda: write(user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=small_event)))
        assert [field for field, _ in bad_request(error)] == ["user_event.event_time"]
    assert stored(small) == 0


def test_pixel_over_grpc_and_http(small: Running) -> None:
    big = json_format.MessageToJson(event("big", padding=LIMIT))
    told = refusal(json_format.Parse(big, user_event_pb2.UserEvent()), "attributes")
    with channel_of(small) as channel:
        collect = user_event_service_pb2_grpc.UserEventServiceStub(channel).CollectUserEvent
        error = refused(lambda: collect(user_event_service_pb2.CollectUserEventRequest(
            parent=CATALOG, user_event=big)))
        assert bad_request(error) == [("user_event", told)]
        error = refused(lambda: collect(user_event_service_pb2.CollectUserEventRequest(
            parent=CATALOG, raw_json=big)))
        assert bad_request(error) == [("raw_json", told)]
    path = f"/v2/{CATALOG}/userEvents:collect?user_event={query_value(json.loads(big))}"
    browser = call(small.http_port, "GET", path)
    assert browser.status == 200 and browser.body.startswith(b"GIF89a")
    # Over HTTP the browser's User-Agent and address are filled in first: a few bytes more.
    reason = browser.headers["X-Footfall-Error"]
    assert reason.startswith("INVALID_ARGUMENT: user_event: is ")
    assert reason.endswith(f" of them in attributes); at most {LIMIT} {FLAG}")
    client = call(small.http_port, "GET", path + "&$alt=json")
    assert client.status == 400
    assert client.violations()["user_event"].endswith(f" in attributes); at most {LIMIT} {FLAG}")
    assert stored(small) == 0


def test_a_collects_event_whose_json_shows_it_too_big_is_refused_unparsed(
        small: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """A collect's event comes as JSON text (user_event, raw_json): one whose JSON
    alone shows it is over the limit is refused so before it is parsed, as a REST
    body's event is (http.body_bounds), in the same words. Parsed, a raw_json of
    200,000 product details (10 MB) took 1.9 s of the server's CPU (now 1.1) to be
    refused for it."""
    parses: list[str] = []

    def counting(name: str, parse: Any) -> Any:
        def counted(*args: Any) -> Any:
            if any(arg is user_event_pb2.UserEvent or isinstance(arg, user_event_pb2.UserEvent)
                   for arg in args):  # (an event's parse: not the request's own)
                parses.append(name)
            return parse(*args)
        return counted

    for module, name in ((lenient_json, "parse_dict"), (protojson, "parse_text"),
                         (protojson, "parse_into")):
        monkeypatch.setattr(module, name, counting(name, getattr(module, name)))
    details = [{"product": {"id": f"p{n:04}"}} for n in range(5_000)]  # 55 KB serialized
    big = json.dumps({"eventType": "detail-page-view", "visitorId": "v",
                      "productDetails": details})
    assert len(big) > LARGE_REQUEST_BYTES  # (smaller, the parse costs little, and is made)
    with channel_of(small) as channel:
        collect = user_event_service_pb2_grpc.UserEventServiceStub(channel).CollectUserEvent
        for field in ("user_event", "raw_json"):
            error = refused(lambda: collect(user_event_service_pb2.CollectUserEventRequest(
                parent=CATALOG, **{field: big})))  # noqa: B023
            [(named, why)] = bad_request(error)
            assert named == field
            assert why.startswith("is at least ") \
                and why.endswith(f" of them in product_details); at most {LIMIT} {FLAG}")
    for field in ("userEvent", "rawJson"):
        reply = post(small, f"/v2/{CATALOG}/userEvents:collect", {field: big})
        assert reply.status == 400
        [(named, why)] = reply.violations().items()
        assert named == ("user_event" if field == "userEvent" else "raw_json")
        assert why.startswith("is at least ") \
            and why.endswith(f" of them in product_details); at most {LIMIT} {FLAG}")
    assert parses == []
    assert stored(small) == 0


def test_talent_client_event(small: Running) -> None:
    client_event = client_event_over_the_limit(created=100)
    with channel_of(small) as channel:
        create = event_service_pb2_grpc.EventServiceStub(channel).CreateClientEvent
        error = refused(lambda: create(event_service_pb2.CreateClientEventRequest(
            parent=TENANT, client_event=client_event)))
        assert bad_request(error) == [("client_event", refusal(client_event, "event_notes"))]
    # over REST, parsed (a small body), or refused by its JSON alone (past 64 KiB)
    reply = post(small, f"/v4/{TENANT}/clientEvents", json_format.MessageToDict(client_event))
    assert reply.violations() == {"client_event": refusal(client_event, "event_notes")}
    huge = json_format.MessageToDict(client_event) | {"eventNotes": "n" * LARGE_REQUEST_BYTES}
    [(named, why)] = post(small, f"/v4/{TENANT}/clientEvents", huge).violations().items()
    assert (named, why) == ("client_event", f"is at least {LARGE_REQUEST_BYTES + 38} bytes "
                            f"(at least {LARGE_REQUEST_BYTES + 2} of them in event_notes); "
                            f"at most {LIMIT} {FLAG}")
    with channel_of(small) as channel:
        create = event_service_pb2_grpc.EventServiceStub(channel).CreateClientEvent
        client_event.event_notes = "short"
        assert create(event_service_pb2.CreateClientEventRequest(
            parent=TENANT, client_event=client_event)).event_id == "e1"


def test_an_event_too_big_once_joined_with_the_catalog_is_stored_not_joined(
        small: Running) -> None:
    """Not refused (which would tell a writer key the product is there, and large):
    stored as received and not joined; one product fewer, it joins (WriteUserEvent
    answers it as sent either way: see test_retail_write)."""
    product = product_pb2.Product(id="sku", title="Tent", categories=["Outdoor"],
                                  description="d" * 3000)
    small.store.create_product(default_branch(CATALOG), "sku", product.SerializeToString())
    viewed = user_event_pb2.UserEvent(event_type="detail-page-view", visitor_id="v")
    viewed.product_details.add().product.id = "sku"
    viewed.product_details.add().product.id = "sku"
    with channel_of(small) as channel:
        write = user_event_service_pb2_grpc.UserEventServiceStub(channel).WriteUserEvent
        answered = write(user_event_service_pb2.WriteUserEventRequest(parent=CATALOG,
                                                                       user_event=viewed))
        assert [d.product.title for d in answered.product_details] == ["", ""]
        del viewed.product_details[1]
        write(user_event_service_pb2.WriteUserEventRequest(parent=CATALOG, user_event=viewed))
    assert stored(small) == 2
    titles = {len(event.product_details): [d.product.title for d in event.product_details]
              for _, payload in small.store.list_user_events(EventQuery(CATALOG), 10)
              for event in [user_event_pb2.UserEvent.FromString(payload)]}
    assert titles == {2: ["", ""], 1: ["Tent"]}
    assert small.store.count_user_events(EventQuery(CATALOG, joined=False)) == 1


def wait(channel: grpc.Channel, operation: operations_pb2.Operation) -> operations_pb2.Operation:
    done = operations_pb2_grpc.OperationsStub(channel).WaitOperation(
        operations_pb2.WaitOperationRequest(name=operation.name,
                                            timeout=duration_pb2.Duration(seconds=30)))
    assert done.done, f"{operation.name} did not finish"
    return done


def test_import_counts_each_oversized_event_as_one_failure(small: Running) -> None:
    timed = {"eventTime": "2024-01-01T00:00:00Z"}
    lines = [json_format.MessageToDict(event(f"line{i}", padding=LIMIT if i == 2 else 0)) | timed
             for i in (1, 2, 3)]
    folder = Path(small.settings.gcs_root) / "bucket"
    folder.mkdir(parents=True)
    (folder / "events.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
    files = import_config_pb2.ImportUserEventsRequest(parent=CATALOG)
    files.input_config.gcs_source.input_uris.append("gs://bucket/events.json")
    inline = import_config_pb2.ImportUserEventsRequest(parent=CATALOG)
    for line in lines:
        json_format.ParseDict(line, inline.input_config.user_event_inline_source.user_events.add())
    told = refusal(inline.input_config.user_event_inline_source.user_events[1], "attributes")
    expected = {"gs://bucket/events.json line 2: user_event": files,
                "input_config.user_event_inline_source.user_events[1]": inline}
    with channel_of(small) as channel:
        retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        for where, request in expected.items():
            done = wait(channel, retail.ImportUserEvents(request))
            assert done.WhichOneof("result") == "response", done
            meta = import_config_pb2.ImportMetadata()
            response = import_config_pb2.ImportUserEventsResponse()
            assert done.metadata.Unpack(meta) and done.response.Unpack(response)
            assert (meta.success_count, meta.failure_count) == (2, 1)
            assert [s.message for s in response.error_samples] == \
                [f"{where}: {told}"]
    assert stored(small) == 2, "the inline import repeats the file's two: skipped as stored"
