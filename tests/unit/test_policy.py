"""The shared call policy on its own: the order of its checks, metrics and the
log line; plus the gRPC helpers that keep requests and statuses within bounds."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from footfall.retail.v2 import product_service_pb2, user_event_pb2, user_event_service_pb2
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st

import server.policy as policy_module
from server import wellknown
from server.clock import FixedClock
from server.errors import (
    CallerGone,
    ChosenStatus,
    FootfallError,
    InvalidArgument,
    ResourceExhausted,
)
from server.policy import Policy
from server.policy.auth import Authenticator, Grant, MissingKey, Role
from server.policy.faults import FaultInjector
from server.policy.metrics import Metrics
from server.policy.quota import ByteQuota, WriteQuota
from server.ports import client_address
from server.rpc import DETAILS_BUDGET, MESSAGE_BUDGET, fit_in_trailers
from server.store.group_commit import Job
from server.store.rows import CreatedClientEvent, StepResult

SERVICE = "google.cloud.retail.v2.UserEventService"
WRITE = f"/{SERVICE}/WriteUserEvent"
HEALTH = "/grpc.health.v1.Health/Check"
CATALOG = "projects/shop/locations/global/catalogs/default_catalog"


@dataclass
class Context:
    active: bool = True
    remaining: float | None = None
    metadata: list[tuple[str, str]] = field(default_factory=list)

    def done(self) -> bool:
        return not self.active

    def time_remaining(self) -> float | None:
        return self.remaining


def admit(policy: Policy, *args: Any) -> Any:
    """Policy.admit run to its end."""
    return asyncio.run(policy.admit(*args))


def write_request(parent: str = CATALOG) -> user_event_service_pb2.WriteUserEventRequest:
    return user_event_service_pb2.WriteUserEventRequest(parent=parent)


def keyed(tmp_path: Any) -> Authenticator:
    path = tmp_path / "keys.json"
    path.write_text('{"keys": {"key-1": {"projects": ["shop"], "role": "writer"}}}')
    return Authenticator(str(path))


def test_open_services_and_an_open_server_admit_everything(tmp_path: Any) -> None:
    policy = Policy([SERVICE], keyed(tmp_path))
    assert admit(policy, HEALTH, [], write_request(), Context()).project is None
    assert admit(Policy([SERVICE]), WRITE, [], write_request(), Context()).project is None


def test_keys_come_first_then_faults_then_quota(tmp_path: Any) -> None:
    clock = FixedClock(0)
    policy = Policy([SERVICE], keyed(tmp_path), WriteQuota(1, clock), FaultInjector())
    failing = [("x-api", "x"), ("x-footfall-fail", "UNAVAILABLE;times=1")]
    with pytest.raises(MissingKey):
        admit(policy, WRITE, failing, write_request(), Context())
    keyed_failing = [("x-goog-api-key", "key-1"), *failing]
    with pytest.raises(ChosenStatus) as fault:
        admit(policy, WRITE, keyed_failing, write_request(), Context())
    assert fault.value.code is grpc.StatusCode.UNAVAILABLE
    admitted = admit(policy, WRITE, keyed_failing, write_request(), Context())
    assert (admitted.project, admitted.key_name) == ("shop", "key #1")
    with pytest.raises(ResourceExhausted):
        admit(policy, WRITE, [("x-goog-api-key", "key-1")], write_request(), Context())


def test_quota_without_auth_takes_the_project_from_the_request() -> None:
    policy = Policy([SERVICE], quota=WriteQuota(1, FixedClock(0)))
    admit(policy, WRITE, [], write_request(), Context())
    with pytest.raises(ResourceExhausted):
        admit(policy, WRITE, [], write_request(), Context())
    admit(policy, WRITE, [], write_request("projects/other/locations/l/catalogs/c"), Context())
    admit(policy, WRITE, [], write_request("nonsense"), Context())  # the servicer refuses it


def test_a_name_no_parser_takes_costs_the_quotas_no_bucket(tmp_path: Any) -> None:
    # The servicer refuses such a name; its project kept as a bucket's key held what
    # it holds: 300 writes naming projects of a megabyte each held 430 MB until
    # 10,000 buckets were swept.
    path = tmp_path / "keys.json"
    path.write_text('{"keys": {"key-1": {"projects": ["*"], "role": "writer"}}}')
    writes, size = WriteQuota(60, FixedClock(0)), ByteQuota(10**7, FixedClock(0))
    for auth, metadata in ((None, []), (Authenticator(str(path)), [("x-goog-api-key", "key-1")])):
        policy = Policy([SERVICE], auth, writes, byte_quota=size)
        for project in ("p" * 1_000_000, "p" * 256, "-", "..", "a b", "x\x1b"):
            request = write_request(f"projects/{project}/locations/l/catalogs/c")
            admit(policy, WRITE, metadata, request, Context())
        assert (len(writes), len(size)) == (0, 0)
    admit(policy, WRITE, metadata, write_request(f"projects/{'p' * 255}/locations/l/catalogs/c"),
          Context())  # (the longest a segment may be)
    assert (len(writes), len(size)) == (1, 1)


def test_the_byte_quota_counts_the_request_bytes_of_each_project() -> None:
    request = write_request()
    request.user_event.visitor_id = "v" * 1000
    size = request.ByteSize()
    policy = Policy([SERVICE], quota=WriteQuota(100, FixedClock(0)),
                    byte_quota=ByteQuota(2 * size, FixedClock(0)))
    admit(policy, WRITE, [], request, Context())
    admit(policy, WRITE, [], request, Context())
    with pytest.raises(ResourceExhausted, match="byte quota of project 'shop'"):
        admit(policy, WRITE, [], request, Context())
    request.parent = "projects/other/locations/l/catalogs/c"
    admit(policy, WRITE, [], request, Context())
    admit(policy, HEALTH, [], request, Context())  # not an event write: not counted


def test_a_write_the_byte_quota_refuses_spends_no_write_token() -> None:
    big, small = write_request(), write_request()
    big.user_event.visitor_id = "v" * 1000
    policy = Policy([SERVICE], quota=WriteQuota(10, FixedClock(0)),
                    byte_quota=ByteQuota(500, FixedClock(0)))
    for _ in range(10):
        with pytest.raises(ResourceExhausted, match="more than the byte quota"):
            admit(policy, WRITE, [], big, Context())
    admit(policy, WRITE, [], small, Context())  # the refused ones spent no write token


def test_a_caller_gone_spends_no_quota() -> None:
    policy = Policy([SERVICE], quota=WriteQuota(1, FixedClock(0)))
    with pytest.raises(CallerGone):
        admit(policy, WRITE, [], write_request(), Context(active=False))
    admit(policy, WRITE, [], write_request(), Context())


def test_gone_callers_are_dropped() -> None:
    policy = Policy([SERVICE])
    with pytest.raises(CallerGone) as gone:
        admit(policy, WRITE, [], write_request(), Context(active=False))
    assert gone.value.code is grpc.StatusCode.CANCELLED
    with pytest.raises(CallerGone) as late:
        admit(policy, WRITE, [], write_request(), Context(remaining=0.0))
    assert late.value.code is grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_delay_ends_when_the_deadline_does() -> None:
    policy = Policy([SERVICE], faults_=FaultInjector())
    context = Context(remaining=0.0, metadata=[])
    with pytest.raises(CallerGone):
        admit(policy, WRITE, [("x-footfall-fail", "OK;delay=30")], write_request(), context)


def test_fault_headers_are_ignored_unless_allowed() -> None:
    admit(Policy([SERVICE]), WRITE, [("x-footfall-fail", "UNAVAILABLE")], write_request(),
                            Context())


def test_record_counts_and_logs_by_severity(caplog: pytest.LogCaptureFixture) -> None:
    policy = Policy([SERVICE])
    with caplog.at_level(logging.DEBUG, "footfall.requests"):
        policy.record(WRITE, "grpc", grpc.StatusCode.OK, 0.002)
        policy.record(WRITE, "http", grpc.StatusCode.INVALID_ARGUMENT, 0.001,
                      message='parent: must be "x"')
        policy.record(WRITE, "grpc", grpc.StatusCode.INTERNAL, 0.5)
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels[0] == ("DEBUG", f"call method={WRITE[1:]} transport=grpc code=OK "
                                  "duration_ms=2.0")
    assert levels[1][0] == "INFO" and 'message="parent: must be \\"x\\""' in levels[1][1]
    assert levels[2][0] == "WARNING"
    assert caplog.records[0].call["code"] == "OK"  # type: ignore[attr-defined]
    text = policy.metrics.render()[0].decode()
    assert (f'footfall_requests_total{{code="OK",method="WriteUserEvent",service="{SERVICE}",'
            'transport="grpc"} 1.0') in text


def test_client_events_are_counted_when_stored_not_when_answered() -> None:
    metrics = Metrics()
    method = "/google.cloud.talent.v4.EventService/CreateClientEvent"
    metrics.observe_call(method, "grpc", grpc.StatusCode.OK, 0.001)
    jobs = [Job(fn=lambda conn: None) for _ in range(3)]
    jobs[0].future.set_result(CreatedClientEvent(b"new", True))
    jobs[1].future.set_result(CreatedClientEvent(b"stored before", False))  # a retry
    jobs[2].future.set_exception(RuntimeError("no"))
    metrics.on_commit(jobs)
    assert 'footfall_events_stored_total{kind="client_event"} 1.0' in metrics.render()[0].decode()


def test_commit_hook_counts_batches_and_events() -> None:
    metrics = Metrics()
    rows_job = Job(rows=[object(), object()])  # type: ignore[list-item]
    step_job = Job(fn=lambda conn: None)
    step_job.future.set_result(StepResult(inserted=5))
    failed = Job(fn=lambda conn: None)
    failed.future.set_exception(RuntimeError("no"))
    metrics.on_commit([rows_job, step_job, failed])
    text = metrics.render()[0].decode()
    assert 'footfall_events_stored_total{kind="user_event"} 7.0' in text
    assert "footfall_group_commit_batch_size_sum 2.0" in text  # (not the failed one)
    claim = Job(fn=lambda conn: None)  # the writer's own work: a job claimed, say
    claim.future.set_result(None)
    metrics.on_commit([claim])
    assert "footfall_group_commit_batch_size_count 1.0" in metrics.render()[0].decode()


def test_jobs_are_counted_by_how_they_end() -> None:
    metrics = Metrics()

    @dataclass
    class JobContext:
        store: Any
        record: Any
        last_try: bool = False

    def raising(exc: BaseException) -> Any:
        def job(context: Any) -> None:
            raise exc
        return job

    for exc in (InvalidArgument.field("f", "bad"), RuntimeError("bug")):
        with pytest.raises(type(exc)):
            metrics.observe_job("import", raising(exc))(JobContext(None, None))
    # a crash on the last try ends the operation (INTERNAL): failed, not retried
    with pytest.raises(RuntimeError):
        metrics.observe_job("import", raising(RuntimeError("bug")))(JobContext(None, None, True))
    text = metrics.render()[0].decode()
    assert 'footfall_operations_total{kind="import",state="failed"} 2.0' in text
    assert 'footfall_operations_total{kind="import",state="crashed"} 1.0' in text
    assert 'footfall_operations_running{kind="import"} 0.0' in text


# -- gRPC bounds -------------------------------------------------------------------------


def test_huge_statuses_fit_in_trailers() -> None:
    bad = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field="f" * 500, description="é" * 900)
        for _ in range(50)])
    detail = any_pb2.Any()
    detail.Pack(bad)
    status = status_pb2.Status(code=3, message="ü" * 5000, details=[detail])
    fitted = fit_in_trailers(status)
    assert fitted.code == 3 and fitted.message.endswith("...")
    assert len(fitted.message.encode()) * 3 <= MESSAGE_BUDGET * 2
    assert sum(d.ByteSize() for d in fitted.details) <= DETAILS_BUDGET
    kept = error_details_pb2.BadRequest()
    assert fitted.details[0].Unpack(kept) and 0 < len(kept.field_violations) < 50
    small = status_pb2.Status(code=3, message="short")
    assert fit_in_trailers(small) is small


def test_out_of_range_times_are_named() -> None:
    event = user_event_pb2.UserEvent(event_type="detail-page-view", visitor_id="v")
    event.event_time.seconds = 253_402_300_800
    event.product_details.add().product.ttl.seconds = -1
    event.product_details[0].product.ttl.nanos = 5
    event.product_details.add().product.publish_time.nanos = -1
    request = user_event_service_pb2.WriteUserEventRequest(parent=CATALOG, user_event=event)
    with pytest.raises(InvalidArgument) as caught:
        wellknown.check(request)
    assert [v.field for v in caught.value.violations] == [
        "user_event.event_time", "user_event.product_details[0].product.ttl",
        "user_event.product_details[1].product.publish_time"]
    event.event_time.seconds = 253_402_300_799
    event.ClearField("product_details")
    wellknown.check(user_event_service_pb2.WriteUserEventRequest(user_event=event))


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**31), 2**31 - 1))
def test_a_checked_timestamp_always_renders_as_json(seconds: int, nanos: int) -> None:
    event = user_event_pb2.UserEvent()
    event.event_time.seconds, event.event_time.nanos = seconds, nanos
    try:
        wellknown.check(event)
    except FootfallError:
        return
    event.event_time.ToJsonString()  # raises for what check let through



def test_a_field_mask_path_proto3_json_cannot_carry_is_named() -> None:
    """Over gRPC a client may send `priceInfo`: the refusal named json_format's
    internals ("Fail to print FieldMask to Json string") and no path."""
    request = product_service_pb2.UpdateProductRequest(
        update_mask={"paths": ["title", "priceInfo", "a__b", "Title.Price"]})
    with pytest.raises(InvalidArgument) as caught:
        wellknown.check(request)
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("update_mask.paths[1]", "must be snake_case, as field mask paths are (proto3 JSON "
                                 "cannot carry it), got 'priceInfo'; did you mean 'price_info'?"),
        ("update_mask.paths[2]", "must be snake_case, as field mask paths are (proto3 JSON "
                                 "cannot carry it), got 'a__b'"),
        ("update_mask.paths[3]", "must be snake_case, as field mask paths are (proto3 JSON "
                                 "cannot carry it), got 'Title.Price'; did you mean "
                                 "'title.price'?")]
    wellknown.check(product_service_pb2.UpdateProductRequest(
        update_mask={"paths": ["title", "price_info.price"]}))


@pytest.mark.parametrize(("peer", "counted_as"), [
    ("ipv4:203.0.113.7:50123", "203.0.113.7"),
    # a dual-stack listener sees IPv4 clients so: each is its own address, not one /64
    ("ipv6:[::ffff:203.0.113.7]:50123", "203.0.113.7"),
    ("ipv6:[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"),
    ("ipv6:[2001:db8:1:2:bbbb::9]:443", "2001:db8:1:2::/64"),
    ("ipv6:[fe80::1%eth0]:443", "fe80::/64"),
    ("unix:/tmp/footfall.sock", "unix"),
])
def test_streams_without_a_key_are_counted_by_client_address(peer: str, counted_as: str) -> None:
    assert client_address(peer) == counted_as


@pytest.mark.parametrize(("listen", "connect", "counted_as"), [
    ("[::1]:0", "[::1]", "::/64"),
    ("[::]:0", "127.0.0.1", "127.0.0.1"),  # dual stack: an IPv4 client's own address
])
def test_the_peer_grpc_gives_is_counted_by_its_client_address(
        listen: str, connect: str, counted_as: str) -> None:
    """grpc says an IPv6 peer percent-encoded, `ipv6:%5B::1%5D:54664`, not as the
    cases above have it: read as it came, each IPv6 address was one of its own, so
    a client of a /64 opened 16 keyless streams (and was paced) per address of it,
    not per /64."""
    peers: list[str] = []

    class Health(health_pb2_grpc.HealthServicer):
        async def Check(self, request: Any, context: Any) -> Any:
            peers.append(context.peer())
            return health_pb2.HealthCheckResponse()

    async def ask() -> None:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
        port = server.add_insecure_port(listen)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"{connect}:{port}") as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                timeout=10)
        finally:
            await server.stop(0)

    asyncio.run(ask())
    assert [client_address(peer) for peer in peers] == [counted_as], peers


def test_refusals_without_a_key_wait_past_an_address_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst and a rate a second of an address answered at once; past them each
    waits, at most WAITING_PER_ADDRESS of one address and `most_waiting` in all at
    once. The rest are refused at once RESOURCE_EXHAUSTED, never answered as if
    they had waited: a client with 600 gRPC calls in flight had the 344 past the
    bound answered at once, 2,230 a second, as if it had no budget (and its health
    checks served so)."""
    from server import policy as policy_module

    monkeypatch.setattr(policy_module, "KEYLESS_REFUSAL_DELAY", 0.05)
    monkeypatch.setattr(policy_module, "WAITING_PER_ADDRESS", 3)
    clock = FixedClock(0)
    pace = policy_module.KeylessRefusals(most_waiting=4, clock=clock)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(policy_module.KEYLESS_REFUSALS_BURST):
            assert not await pace.refused("1.2.3.4")
        began = loop.time()
        assert await pace.refused("1.2.3.4")  # past: waited
        assert loop.time() - began >= 0.05
        assert not await pace.refused("5.6.7.8")  # another address's budget is its own
        clock.advance(1 / policy_module.KEYLESS_REFUSALS_PER_SECOND)
        assert not await pace.refused("1.2.3.4")  # a second's rate refilled one
        waiting = [asyncio.ensure_future(pace.refused("1.2.3.4")) for _ in range(3)]
        await asyncio.sleep(0)
        assert pace.waiting == 3
        began = loop.time()
        with pytest.raises(ResourceExhausted, match="3 calls without an API key waiting"
                           ) as refused:  # a fourth of the address: refused at once
            await pace.refused("1.2.3.4")
        assert loop.time() - began < 0.05 and refused.value.retry_after == 0.05
        for _ in range(policy_module.KEYLESS_REFUSALS_BURST):
            await pace.refused("5.6.7.8")
        more = [asyncio.ensure_future(pace.refused("5.6.7.8")) for _ in range(2)]
        await asyncio.sleep(0)
        assert pace.waiting == 4  # the most in all: the other refused at once
        results = await asyncio.gather(*waiting, *more, return_exceptions=True)
        assert results[:4] == [True] * 4 and isinstance(results[4], ResourceExhausted)
        assert "4 calls without an API key are waiting" in str(results[4])
        assert pace.waiting == 0

    asyncio.run(run())


def test_fetches_of_files_without_a_key_have_a_budget_of_their_own() -> None:
    """A page's files and preflights neither spend nor are delayed by the budget of
    the address's refusals (a person opening the console fetches some 30 files),
    and past their own burst and rate they are paced too."""
    from server import policy as policy_module

    clock = FixedClock(0)
    pace = policy_module.KeylessRefusals(clock=clock)
    for _ in range(policy_module.KEYLESS_REFUSALS_BURST):
        assert not pace.past("1.2.3.4")
    assert pace.past("1.2.3.4")
    for _ in range(policy_module.KEYLESS_FILES_BURST):
        assert not pace.past_files("1.2.3.4")
    assert pace.past_files("1.2.3.4")
    clock.advance(1 / policy_module.KEYLESS_FILES_PER_SECOND)
    assert not pace.past_files("1.2.3.4") and pace.past_files("1.2.3.4")
    assert not pace.past_files("5.6.7.8")


def test_the_64s_of_one_48_share_budgets_of_16_64s(monkeypatch: pytest.MonkeyPatch) -> None:
    """An IPv6 client's budgets are its /64's, and a provider's customer has a /48 of
    them (65,536): its /64s share budgets of SITE_BUDGETS /64s' as well, and the waits
    of one /64's. A key's budget (a writer key's by /64) and IPv4 addresses are apart."""
    clock = FixedClock(1_714_564_800 * 10**9)
    pace = policy_module.KeylessRefusals(clock=clock)
    burst, sites = policy_module.KEYLESS_REFUSALS_BURST, policy_module.SITE_BUDGETS
    for n in range(sites):
        for _ in range(burst):
            assert not pace.past(f"2001:db8:5:{n:x}::/64")
    assert pace.past("2001:db8:5:ff::/64")  # (a /64 of it never seen: its site's spent)
    assert not pace.past("2001:db8:6::/64")  # another /48
    assert not pace.past(f"key ab from 2001:db8:5:{sites:x}::/64")
    files = policy_module.KEYLESS_FILES_BURST
    for n in range(sites):
        for _ in range(files):
            assert not pace.past_files(f"2001:db8:5:{n:x}::/64")
    assert pace.past_files("2001:db8:5:ff::/64") and not pace.past_files("2001:db8:6::/64")
    assert policy_module.site_of("2001:db8:5:ff::/64") == "2001:db8:5::/48"
    assert policy_module.site_of("203.0.113.7") is None

    async def waits() -> None:
        waiting = [asyncio.ensure_future(pace.wait(f"2001:db8:7:{n:x}::/64"))
                   for n in range(policy_module.WAITING_PER_ADDRESS)]
        await asyncio.sleep(0)
        with pytest.raises(ResourceExhausted, match="client network has 256 calls"):
            await pace.wait("2001:db8:7:ffff::/64")
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)

    monkeypatch.setattr(policy_module, "KEYLESS_REFUSAL_DELAY", 0.05)
    asyncio.run(waits())


def test_a_writer_keys_budgets_by_64_share_budgets_by_48() -> None:
    """A writer key's budget of refusals is by client address (refusal_budget), and a
    client of the public key with a /48 has 65,536 /64s: they share budgets of
    SITE_BUDGETS /64s' of the key as well, as a keyless client's do. Another key's,
    the same /48's without a key, and another /48's are apart."""
    clock = FixedClock(1_714_564_800 * 10**9)
    pace = policy_module.KeylessRefusals(clock=clock)
    burst, sites = policy_module.KEYLESS_REFUSALS_BURST, policy_module.SITE_BUDGETS
    writer = Grant(Role.WRITER, frozenset({"shop"}), "w", identity=b"\xab")
    for n in range(sites):
        for _ in range(burst):
            assert not pace.past(policy_module.refusal_budget(writer, f"2001:db8:5:{n:x}::/64"))
    assert pace.past(policy_module.refusal_budget(writer, "2001:db8:5:ff::/64"))
    assert not pace.past(policy_module.refusal_budget(writer, "2001:db8:6::/64"))
    other = Grant(Role.WRITER, frozenset({"shop"}), "v", identity=b"\xcd")
    assert not pace.past(policy_module.refusal_budget(other, "2001:db8:5:ff::/64"))
    assert not pace.past("2001:db8:5:ff::/64")
    assert policy_module.site_of("key ab from 2001:db8:5:ff::/64") == "key ab from 2001:db8:5::/48"
    assert policy_module.site_of("key ab from 203.0.113.7") is None
    assert policy_module.site_of("key ab") is None


def test_the_log_lines_left_out_of_a_window_are_counted_when_it_ends(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The count of the calls without a key not logged was said only when the next
    such call came after the window: the last window of a flood, with none after it,
    was never said."""
    monkeypatch.setattr(policy_module, "KEYLESS_LINES", 2)
    monkeypatch.setattr(policy_module, "KEYLESS_LINES_SECONDS", 0.3)
    caplog.set_level(logging.INFO)
    budget = policy_module.LineBudget()
    assert [budget.take() for _ in range(5)] == [True, True, False, False, False]
    time.sleep(0.8)  # (and no call after)
    said = [r.getMessage() for r in caplog.records if "were not logged" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("3 more calls without an API key"), said
    # ... once: the next window begins with nothing left out
    assert budget.take() is True
    time.sleep(0.5)
    assert len([r for r in caplog.records if "were not logged" in r.getMessage()]) == 1


def test_the_lines_of_writer_keys_are_counted_by_client_address(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A writer key is public: one client address's refusals past its lines leave
    out its own, not another address's; those left out are said when the window ends."""
    monkeypatch.setattr(policy_module, "KEYLESS_LINES_SECONDS", 0.3)
    caplog.set_level(logging.INFO)
    budget = policy_module.LineBudget(2, "calls of writer keys", " from one client address")
    assert [budget.take("10.0.0.1") for _ in range(4)] == [True, True, False, False]
    assert [budget.take("2001:db8::/64") for _ in range(3)] == [True, True, False]
    time.sleep(0.8)
    said = [r.getMessage() for r in caplog.records if "were not logged" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("3 more calls of writer keys"), said
    assert "at most 2 lines every 0 s from one client address" in said[0]
    assert budget.take("10.0.0.1") is True  # (a new window)
