"""The one call envelope both transports use: the key before the request is
decoded, refusals returned as domain errors, every outcome recorded once; the
HTTP codes that differ from a status's own; the stores' commit listener."""

from __future__ import annotations

import asyncio
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from footfall.retail.v2 import user_event_service_pb2

from server.clock import FixedClock
from server.errors import (
    BodyTooSlow,
    ChosenStatus,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    RequestTooLarge,
    ResourceExhausted,
)
from server.http.crosssite import HostCheck
from server.http.errors import http_status_of
from server.policy import Policy
from server.policy.auth import Authenticator, MissingKey
from server.policy.envelope import (
    LARGE_REQUEST_BYTES,
    LARGE_REQUEST_ELEMENTS,
    Envelope,
    json_large,
    many_elements,
)
from server.policy.large import MAX_WAITING_PER_KEY, MAX_WAITING_PER_WRITER_KEY, LargeBytes
from server.store import open_store
from server.store.group_commit import Job

from .test_store import row

SERVICE = "google.cloud.retail.v2.UserEventService"
WRITE = f"/{SERVICE}/WriteUserEvent"
CATALOG = "projects/shop/locations/global/catalogs/default_catalog"
KEY = [("x-goog-api-key", "key-1")]


@dataclass
class Context:
    """What a servicer context tells the envelope: alive, no deadline, and the
    status a servicer may have set (grpc keeps its details as bytes)."""

    set_code: grpc.StatusCode | None = None
    set_details: bytes | None = None

    def done(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def code(self) -> grpc.StatusCode | None:
        return self.set_code

    def details(self) -> bytes | None:
        return self.set_details


def request() -> user_event_service_pb2.WriteUserEventRequest:
    return user_event_service_pb2.WriteUserEventRequest(parent=CATALOG)


def run(envelope: Envelope, *args: Any) -> Any:
    """Envelope.run run to its end."""
    return asyncio.run(envelope.run(*args))


async def echo(message: Any, context: Any) -> Any:
    return message


async def ok(message: Any, context: Any) -> str:
    return "ok"


@pytest.fixture
def keyed(tmp_path: Path) -> Envelope:
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": {"key-1": {"projects": ["shop"], "role": "writer"}}}')
    return Envelope(Policy([SERVICE], Authenticator(str(keys))), "http")


def calls(envelope: Envelope, code: str, transport: str = "http") -> float:
    value = envelope.policy.metrics.registry.get_sample_value(
        "footfall_requests_total", {"service": SERVICE, "method": "WriteUserEvent",
                                    "transport": transport, "code": code})
    return value or 0.0


def test_the_key_is_checked_before_the_request_is_decoded(keyed: Envelope) -> None:
    decoded: list[bytes] = []

    def decode(raw: bytes) -> Any:
        decoded.append(raw)
        return request()

    refusal = run(keyed, WRITE, [], b"\xff not a request", decode, Context(), echo)
    assert isinstance(refusal, MissingKey) and decoded == []
    answer = run(keyed, WRITE, KEY, b"raw", decode, Context(), ok)
    assert answer == "ok" and decoded == [b"raw"]
    assert (calls(keyed, "UNAUTHENTICATED"), calls(keyed, "OK")) == (1, 1)


def test_a_screened_call_is_not_asked_for_its_key_again(keyed: Envelope) -> None:
    grant = keyed.screen(WRITE, KEY)
    assert grant is not None
    # The metadata no longer carries the key (as after an HTTP body was read): the grant holds.
    answer = run(keyed, WRITE, [], b"", lambda raw: request(), Context(), ok, grant)
    assert answer == "ok"
    with pytest.raises(MissingKey):
        keyed.screen(WRITE, [])


def test_refusals_are_returned_and_recorded_once() -> None:
    envelope = Envelope(Policy([SERVICE]), "grpc")

    async def refuse(message: Any, context: Any) -> Any:
        raise InvalidArgument.field("user_event.visitor_id", "is required")

    refusal = run(envelope, WRITE, [], b"", lambda raw: request(), Context(), refuse)
    assert isinstance(refusal, InvalidArgument)
    assert calls(envelope, "INVALID_ARGUMENT", "grpc") == 1


def test_a_status_the_servicer_set_is_the_answer() -> None:
    """The generated base classes set UNIMPLEMENTED and raise NotImplementedError."""
    envelope = Envelope(Policy([SERVICE]), "grpc")

    async def unimplemented(message: Any, context: Any) -> Any:
        raise NotImplementedError("Method not implemented!")

    context = Context(grpc.StatusCode.UNIMPLEMENTED, b"Method not implemented!")
    refusal = run(envelope, WRITE, [], b"", lambda raw: request(), context, unimplemented)
    assert isinstance(refusal, ChosenStatus)
    assert (refusal.code, refusal.message) == (grpc.StatusCode.UNIMPLEMENTED,
                                               "Method not implemented!")
    assert calls(envelope, "UNIMPLEMENTED", "grpc") == 1


def test_a_bug_is_internal_with_its_traceback_in_the_log(
        caplog: pytest.LogCaptureFixture) -> None:
    envelope = Envelope(Policy([SERVICE]), "http")

    async def bug(message: Any, context: Any) -> Any:
        raise KeyError("oops")

    with caplog.at_level(logging.INFO):
        refusal = run(envelope, WRITE, [], b"", lambda raw: request(), Context(), bug)
    assert isinstance(refusal, Internal) and refusal.code is grpc.StatusCode.INTERNAL
    assert "see the server log" in refusal.message and "oops" not in refusal.message
    failed = [r for r in caplog.records if r.getMessage() == f"{WRITE} failed"]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert calls(envelope, "INTERNAL") == 1


def test_refusals_met_before_run_are_recorded_too() -> None:
    envelope = Envelope(Policy([SERVICE]), "http")
    too_large = RequestTooLarge("the request body is larger than 10 bytes")
    assert envelope.refuse(WRITE, too_large, 0.0) is too_large
    try:
        raise ConnectionResetError("the client hung up mid-body")
    except ConnectionResetError as exc:
        assert isinstance(envelope.refuse(WRITE, exc, 0.0), Internal)
    assert (calls(envelope, "RESOURCE_EXHAUSTED"), calls(envelope, "INTERNAL")) == (1, 1)


def test_http_codes_that_are_not_the_status_codes_own() -> None:
    assert http_status_of(RequestTooLarge("too large")) == 413
    assert http_status_of(ResourceExhausted("quota")) == 429
    assert http_status_of(BodyTooSlow("slow")) == 408
    assert http_status_of(DeadlineExceeded("late")) == 504
    assert http_status_of(HostCheck.refusal("evil.example")) == 421
    assert http_status_of(ChosenStatus(grpc.StatusCode.UNAVAILABLE, "injected")) == 503


@pytest.fixture(params=["memory", "file", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    url = {"memory": "memory://", "file": f"sqlite:///{tmp_path}/events.db"}.get(
        request.param) or request.getfixturevalue("postgres_url")
    opened = open_store(url)
    yield opened
    opened.close()
    if request.param == "postgres":
        request.getfixturevalue("postgres_databases").empty(url)


def test_every_store_tells_its_commit_listener_each_batch(store: Any) -> None:
    batches: list[list[Job]] = []
    store.on_commit(batches.append)
    store.write_user_events([row("a"), row("b")])
    store.flush()  # the listener runs on the writer thread once the writer has its answer
    assert sum(len(job.rows or ()) for batch in batches for job in batch) == 2


LARGE = b"x" * 1_000_000  # expected to cost a second (policy.large), before it is made


async def two_large_at_once(envelope: Envelope, metadata: Any,
                            first_decode: Callable[[bytes], Any] | None = None
                            ) -> tuple[list[str], list[Any]]:
    """Two large writes sent at once: which were decoded while the first's call was
    still running, and both answers."""
    decoded: list[str] = []
    held = asyncio.Event()
    release = asyncio.Event()

    def decode(name: str) -> Callable[[bytes], Any]:
        def decoded_as(raw: bytes) -> Any:
            decoded.append(name)
            return request()
        return decoded_as

    async def first_call(message: Any, context: Any) -> str:
        held.set()
        await release.wait()
        return "ok"

    first = asyncio.create_task(envelope.run(WRITE, metadata, LARGE, first_decode or decode("1"),
                                             Context(), first_call, large=True))
    await asyncio.wait_for(held.wait(), 5) if first_decode is None else await first
    second = asyncio.create_task(envelope.run(WRITE, metadata, LARGE, decode("2"), Context(),
                                              ok, large=True))
    for _ in range(10_000):  # until the second is decoded, or waits for its turn
        if "2" in decoded or envelope.policy.large_requests.waiting:
            break
        await asyncio.sleep(0.001)
    during = list(decoded)
    release.set()
    return during, [await first, await second]


def test_one_keys_large_requests_take_turns(keyed: Envelope) -> None:
    # A page's writer key sent four 9 MB bodies of 400,000 product details at once:
    # 6 s of CPU each, decoded side by side, and another project's writes fell from
    # about 350/s to 8/s. Its second waits for the first's turn to end.
    during, answers = asyncio.run(two_large_at_once(keyed, KEY))
    assert during == ["1"]
    assert answers == ["ok", "ok"]


def test_a_key_with_too_many_large_requests_waiting_is_answered_at_once(
        keyed: Envelope) -> None:
    # Each waits holding its whole message (over gRPC, a call's slot too): a public
    # writer key sending many at once made the server keep them all.
    async def body() -> list[Any]:
        held, release = asyncio.Event(), asyncio.Event()

        async def first_call(message: Any, context: Any) -> str:
            held.set()
            await release.wait()
            return "ok"

        def sent(call: Callable[..., Any]) -> asyncio.Task[Any]:
            return asyncio.create_task(keyed.run(WRITE, KEY, LARGE, lambda raw: request(),
                                                 Context(), call, large=True))

        first = sent(first_call)
        await asyncio.wait_for(held.wait(), 5)
        waiting = [sent(ok) for _ in range(MAX_WAITING_PER_KEY)]
        for _ in range(10_000):
            if keyed.policy.large_requests.waiting == MAX_WAITING_PER_KEY:
                break
            await asyncio.sleep(0.001)
        one_more = await asyncio.wait_for(sent(ok), 5)  # answered at once, not waiting
        release.set()
        return [one_more, await first, *[await asyncio.wait_for(w, 30) for w in waiting]]

    answers = asyncio.run(body())
    assert isinstance(answers[0], ResourceExhausted) and answers[0].retry_after == 1.0
    assert "large requests (over 64 KiB or 250 elements) of this key already wait" \
        in answers[0].message
    assert answers[1:] == ["ok"] * (1 + MAX_WAITING_PER_KEY)


def many_products(count: int) -> user_event_service_pb2.WriteUserEventRequest:
    many = request()
    for i in range(count):
        many.user_event.product_details.add().product.id = f"p{i}"
    return many


async def four_at_once(envelope: Envelope, raw: bytes) -> tuple[int, list[Any]]:
    """Four writes of `raw` (not large by their bytes) sent at once: how many calls
    ran before the first ended, and the four answers."""
    ran = 0
    release = asyncio.Event()

    async def call(message: Any, context: Any) -> str:
        nonlocal ran
        ran += 1
        await release.wait()
        return "ok"

    decode = user_event_service_pb2.WriteUserEventRequest.FromString
    sent = [asyncio.create_task(envelope.run(WRITE, KEY, raw, decode, Context(), call))
            for _ in range(4)]
    for _ in range(10_000):  # until every call runs, or some wait for their turn
        if ran == 4 or (ran and ran + envelope.policy.large_requests.waiting == 4):
            break
        await asyncio.sleep(0.001)
    during = ran
    release.set()
    return during, [await asyncio.wait_for(task, 30) for task in sent]


def test_a_request_of_many_elements_in_few_bytes_takes_a_turn(keyed: Envelope) -> None:
    # 5,500 products in 59 KB of binary, under 64 KiB, were no large request: 64 ms
    # each to check, join and commit, unpaced, and four at once of a writer key took
    # another project's durable writes from about 860 a second to 5.
    raw = many_products(LARGE_REQUEST_ELEMENTS + 1).SerializeToString()
    assert len(raw) < LARGE_REQUEST_BYTES
    during, answers = asyncio.run(four_at_once(keyed, raw))
    assert during < 4
    assert answers == ["ok"] * 4
    # ... and those of as many as the bound are not paced
    during, answers = asyncio.run(four_at_once(
        keyed, many_products(LARGE_REQUEST_ELEMENTS).SerializeToString()))
    assert during == 4 and answers == ["ok"] * 4


def test_elements_are_counted_in_lists_and_maps_of_messages_at_any_depth() -> None:
    entries = request()
    for i in range(LARGE_REQUEST_ELEMENTS + 1):
        entries.user_event.attributes[f"k{i}"].text.append("v")
    assert many_elements(entries)
    texts = request()
    texts.user_event.experiment_ids.extend(["e"] * (LARGE_REQUEST_ELEMENTS + 1))
    assert many_elements(texts)
    assert not many_elements(many_products(LARGE_REQUEST_ELEMENTS))
    # ... and in JSON text: a CollectUserEvent over gRPC of 2,400 products in 64 KB of
    # event JSON took another project's durable writes from about 250 a second to 16
    products = ",".join(['{"product":{"id":"p"}}'] * (LARGE_REQUEST_ELEMENTS + 2))
    collect = user_event_service_pb2.CollectUserEventRequest(
        parent=CATALOG, user_event='{"productDetails":[' + products + "]}")
    assert many_elements(collect)


def test_a_json_body_of_many_elements_is_large_before_it_is_decoded() -> None:
    products = b",".join([b'{"product":{"id":"p"}}'] * (LARGE_REQUEST_ELEMENTS + 1))
    body = b'{"productDetails":[' + products + b"]}"
    assert len(body) < LARGE_REQUEST_BYTES and json_large(body, "")
    assert not json_large(b'{"eventType":"home-page-view","visitorId":"v"}', "")
    assert json_large(b"{}", "a" * LARGE_REQUEST_BYTES)
    # ... and a pixel's query, whose event's commas a page's encodeURIComponent wrote
    # as %2C: GET pixels of 620 products (16 KiB) were served inline, unpaced, and
    # four at once took another project's durable writes from about 860 a second to 7
    query = "user_event=" + urllib.parse.quote(products.decode())
    assert "%2C" in query and json_large(b"", query)


def test_a_large_request_refused_ends_its_turn(keyed: Envelope) -> None:
    def unreadable(raw: bytes) -> Any:
        raise InvalidArgument.field("user_event", "is not a UserEvent")

    during, answers = asyncio.run(two_large_at_once(keyed, KEY, first_decode=unreadable))
    assert isinstance(answers[0], InvalidArgument)
    assert during == ["2"] and answers[1] == "ok"


def test_large_requests_of_admin_keys_and_with_auth_off_are_not_paced(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": {"key-1": {"projects": ["*"], "role": "admin"}}}')
    for policy in (Policy([SERVICE], Authenticator(str(keys))), Policy([SERVICE])):
        during, answers = asyncio.run(two_large_at_once(Envelope(policy, "grpc"), KEY))
        assert sorted(during) == ["1", "2"] and answers == ["ok", "ok"]


def test_a_large_requests_turn_lasts_while_its_decode_does(keyed: Envelope) -> None:
    # A caller gone (its deadline) while its body was decoded ended the turn, and the
    # decode went on on its thread: a key whose bodies each went so decoded them side
    # by side, on the one interpreter lock, as if there were no turns at all.
    async def body() -> None:
        decoding, go_on = threading.Event(), threading.Event()
        decoded: list[str] = []

        def slow(raw: bytes) -> Any:
            decoding.set()
            go_on.wait(5)
            decoded.append("1")
            return request()

        def fast(raw: bytes) -> Any:
            decoded.append("2")
            return request()

        first = asyncio.create_task(keyed.run(WRITE, KEY, LARGE, slow, Context(), ok,
                                              large=True))
        await asyncio.to_thread(decoding.wait, 5)
        first.cancel()  # (grpc.aio: the caller went, or its deadline passed)
        with pytest.raises(asyncio.CancelledError):
            await first
        second = asyncio.create_task(keyed.run(WRITE, KEY, LARGE, fast, Context(), ok,
                                               large=True))
        for _ in range(5_000):  # until the second is decoded, or waits for its turn
            if decoded or keyed.policy.large_requests.waiting:
                break
            await asyncio.sleep(0.001)
        assert decoded == []
        go_on.set()
        assert await asyncio.wait_for(second, 10) == "ok"
        assert decoded == ["1", "2"]

    asyncio.run(body())


@dataclass
class Late(Context):
    """A caller whose deadline passes once `passed` is set (an HTTP write's: the
    gateway answers DEADLINE_EXCEEDED, and the call goes on)."""

    passed: bool = False

    def time_remaining(self) -> float | None:
        return -1.0 if self.passed else 10.0


def test_a_large_request_whose_caller_is_gone_by_its_turn_is_not_decoded(
        keyed: Envelope) -> None:
    # Its caller's deadline passed while it waited for its turn: its body was decoded
    # all the same (seconds of CPU for a large one), in the turn, only for admission
    # to refuse it as gone.
    async def body() -> None:
        release = asyncio.Event()
        decoded: list[str] = []

        def decode(raw: bytes) -> Any:
            decoded.append("2")
            return request()

        async def held(message: Any, context: Any) -> str:
            await release.wait()
            return "ok"

        first = asyncio.create_task(keyed.run(WRITE, KEY, LARGE, lambda raw: request(),
                                              Context(), held, large=True))
        late = Late()
        second = asyncio.create_task(keyed.run(WRITE, KEY, LARGE, decode, late, ok,
                                               large=True))
        for _ in range(5_000):
            if keyed.policy.large_requests.waiting:
                break
            await asyncio.sleep(0.001)
        late.passed = True
        release.set()
        assert await first == "ok"
        assert isinstance(await asyncio.wait_for(second, 10), DeadlineExceeded)
        assert decoded == []
        # its turn ended (else the next waits for the budget it would hold)
        third = keyed.run(WRITE, KEY, LARGE, lambda raw: request(), Context(), ok, large=True)
        assert await asyncio.wait_for(third, 0.5) == "ok"

    asyncio.run(body())


@dataclass
class From(Context):
    """A gRPC call's context from a client address."""

    address: str = "192.0.2.1"

    def peer(self) -> str:
        return f"ipv4:{self.address}:40000"


def test_a_writer_keys_large_requests_are_paced_by_client_address(keyed: Envelope) -> None:
    # One client of a shop's writer key (public in its pages) sending events of
    # 100,000 attributes: past its address's bytes it waits for them; another address
    # does not, nor does a small call of the same address.
    clock = FixedClock(0)
    waited: list[tuple[str, float]] = []
    sending = [""]

    async def sleep(seconds: float) -> None:
        waited.append((sending[0], seconds))
        clock.advance(seconds)

    keyed.policy.large_bytes = LargeBytes(per_second=1_000_000, burst=1_000_000,
                                          clock=clock, sleep=sleep)

    async def body() -> list[Any]:
        answers = []
        for address in ("192.0.2.1", "192.0.2.1", "198.51.100.7", "192.0.2.1"):
            sending[0] = address
            large = address != "192.0.2.1" or len(answers) < 2
            answers.append(await keyed.run(WRITE, KEY, LARGE if large else b"small",
                                           lambda raw: request(), From(address=address), ok,
                                           large=large))
        return answers

    assert asyncio.run(body()) == ["ok"] * 4
    assert waited == [("192.0.2.1", pytest.approx(1.0))]


def _sent(keyed: Envelope, call: Callable[..., Any], address: str) -> asyncio.Task[Any]:
    """A large write of the writer key from `address`, answered by `call`, as a task."""
    return asyncio.create_task(keyed.run(WRITE, KEY, LARGE, lambda raw: request(),
                                         From(address=address), call, large=True))


async def _one_in_its_turn(keyed: Envelope, release: asyncio.Event) -> asyncio.Task[Any]:
    """A large write from 192.0.2.1 that holds its turn until `release` is set (its
    task, once its call runs): those sent after it wait."""
    held = asyncio.Event()

    async def holding(message: Any, context: Any) -> str:
        held.set()
        await release.wait()
        return "ok"

    first = _sent(keyed, holding, "192.0.2.1")
    await asyncio.wait_for(held.wait(), 5)
    return first


def test_one_address_of_a_writer_key_waiting_does_not_refuse_anothers(keyed: Envelope) -> None:
    # The large requests of a writer key waiting were counted by the key: one client
    # sending 4 large events at once had every other large event of the shop's
    # visitors answered RESOURCE_EXHAUSTED at once.
    keyed.policy.large_bytes = LargeBytes(per_second=1 << 30, burst=1 << 30)

    async def body() -> list[Any]:
        release = asyncio.Event()
        first = await _one_in_its_turn(keyed, release)
        waiting = [_sent(keyed, ok, "192.0.2.1") for _ in range(MAX_WAITING_PER_KEY)]
        for _ in range(10_000):
            if keyed.policy.large_requests.waiting == MAX_WAITING_PER_KEY:
                break
            await asyncio.sleep(0.001)
        one_more = await asyncio.wait_for(_sent(keyed, ok, "192.0.2.1"), 5)
        visitor = _sent(keyed, ok, "198.51.100.7")
        release.set()
        return [one_more, await asyncio.wait_for(visitor, 30), await first,
                *[await asyncio.wait_for(w, 30) for w in waiting]]

    answers = asyncio.run(body())
    assert answers[1:] == ["ok"] * (2 + MAX_WAITING_PER_KEY)
    assert isinstance(answers[0], ResourceExhausted)
    assert "of this key from this client address already wait" in answers[0].message


def test_a_writer_key_waiting_from_many_addresses_is_bounded(keyed: Envelope) -> None:
    # Each waits holding its message: one client of many addresses (an IPv6 /48 holds
    # 65,536 /64s) could have made the server hold 4 of each.
    keyed.policy.large_bytes = LargeBytes(per_second=1 << 30, burst=1 << 30)

    async def body() -> Any:
        release = asyncio.Event()
        first = await _one_in_its_turn(keyed, release)
        waiting = [_sent(keyed, ok, f"192.0.2.{2 + i // MAX_WAITING_PER_KEY}")
                   for i in range(MAX_WAITING_PER_WRITER_KEY)]
        for _ in range(10_000):
            if keyed.policy.large_requests.waiting == MAX_WAITING_PER_WRITER_KEY:
                break
            await asyncio.sleep(0.001)
        one_more = await asyncio.wait_for(_sent(keyed, ok, "198.51.100.7"), 5)
        release.set()
        await first
        for task in waiting:
            await asyncio.wait_for(task, 30)
        return one_more

    refused = asyncio.run(body())
    assert isinstance(refused, ResourceExhausted)
    assert f"{MAX_WAITING_PER_WRITER_KEY} large requests (over 64 KiB or 250 elements) of " \
        f"this key already wait" in refused.message


def test_a_binary_request_of_many_elements_is_paced_by_its_client_address(
        keyed: Envelope) -> None:
    # README: a request of 250 elements or more in fewer than 64 KiB counts as 64 KiB of
    # its address's large bytes. Binary (gRPC) ones are decoded on the loop, not `large`,
    # and only took a turn: one client of a shop's writer key sending 5,500 products in
    # 59 KB each (64 ms of the server's) was never paced by its address.
    clock = FixedClock(0)
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.advance(seconds)

    keyed.policy.large_bytes = LargeBytes(per_second=LARGE_REQUEST_BYTES,
                                          burst=LARGE_REQUEST_BYTES, clock=clock, sleep=sleep)
    raw = many_products(LARGE_REQUEST_ELEMENTS + 1).SerializeToString()
    assert len(raw) < LARGE_REQUEST_BYTES
    decode = user_event_service_pb2.WriteUserEventRequest.FromString

    async def body() -> list[Any]:
        return [await keyed.run(WRITE, KEY, raw, decode, From(), ok) for _ in range(2)]

    assert asyncio.run(body()) == ["ok"] * 2
    assert waited == [pytest.approx(1.0)]  # the second waited for its address's bytes
