"""Import, purge and rejoin as long-running operations, through our own stubs."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from footfall.retail.v2 import (
    import_config_pb2,
    product_pb2,
    purge_config_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2, json_format

from server import page_tokens
from server.app import Running, start
from server.clock import FixedClock
from server.config import Settings
from server.names import default_branch
from server.operations.runner import MAX_TRIES, OperationRunner
from server.retail import import_events, purge, rejoin
from server.store import EventQuery, open_store
from server.store.rows import OperationRecord

from . import http_client

PARENT = "projects/p/locations/global/catalogs/default_catalog"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(host="127.0.0.1", port=0, store=f"sqlite:///{tmp_path}/events.db",
                    grace_seconds=5, workers=8, gcs_root=str(tmp_path / "gcs"))


@pytest.fixture
def stubs(channel: grpc.Channel) -> tuple[user_event_service_pb2_grpc.UserEventServiceStub,
                                           operations_pb2_grpc.OperationsStub]:
    return (user_event_service_pb2_grpc.UserEventServiceStub(channel),
            operations_pb2_grpc.OperationsStub(channel))


def event(visitor: str = "v1", event_type: str = "home-page-view", **more: object) -> dict:
    return {"eventType": event_type, "visitorId": visitor, "eventTime": "2024-01-01T00:00:00Z",
            **more}


def wait(ops: operations_pb2_grpc.OperationsStub, op: operations_pb2.Operation
         ) -> operations_pb2.Operation:
    done = ops.WaitOperation(operations_pb2.WaitOperationRequest(
        name=op.name, timeout=duration_pb2.Duration(seconds=30)))
    assert done.done, f"{op.name} did not finish"
    return done


def inline_import(*events: dict) -> import_config_pb2.ImportUserEventsRequest:
    request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
    for body in events:
        json_format.ParseDict(body, request.input_config.user_event_inline_source.user_events.add())
    return request


def test_inline_import_counts_and_skips_duplicates(stubs, running: Running) -> None:
    retail, ops = stubs
    viewed = event("c", "detail-page-view", productDetails=[{"product": {"id": "x"}}])
    request = inline_import(event("a"), event("b"), event("a"), viewed,
                            {"eventType": "home-page-view", "visitorId": "no-time"},
                            event(""))
    op = retail.ImportUserEvents(request)
    assert op.name.startswith(f"{PARENT}/operations/import-user-events-")
    done = wait(ops, op)
    response = import_config_pb2.ImportUserEventsResponse()
    assert done.response.Unpack(response)
    meta = import_config_pb2.ImportMetadata()
    assert done.metadata.Unpack(meta)
    assert (meta.success_count, meta.failure_count) == (4, 2)
    assert response.import_summary.joined_events_count == 2  # a and b; the dup of a is skipped
    assert response.import_summary.unjoined_events_count == 1  # product x is not in the catalog
    samples = [s.message for s in response.error_samples]
    assert samples == [
        "input_config.user_event_inline_source.user_events[4].event_time: is required",
        "input_config.user_event_inline_source.user_events[5].visitor_id: is required"]
    assert running.store.count_user_events(EventQuery(PARENT)) == 3
    again = wait(ops, retail.ImportUserEvents(request))
    assert again.response.Unpack(response)
    assert response.import_summary.joined_events_count == 0


@pytest.mark.parametrize(("mutate", "field", "words"), [
    (lambda r: r.input_config.user_event_inline_source.user_events.extend(
        [user_event_pb2.UserEvent()] * 10_001), "user_events", "gcs_source"),
    (lambda r: (r.errors_config.SetInParent(),
                r.input_config.user_event_inline_source.user_events.add()),
     "errors_config", "gcs_source"),
    (lambda r: r.input_config.big_query_source.SetInParent(), "big_query_source",
     "NEWLINE_DELIMITED_JSON"),
    (lambda r: r.input_config.gcs_source.input_uris.append("gs://bucket/none/*.json"),
     "input_uris[0]", "no file matches"),
    (lambda r: r.input_config.gcs_source.input_uris.append("gs://bucket/../../etc/passwd"),
     "input_uris[0]", ".."),
    (lambda r: r.input_config.gcs_source.input_uris.append("/etc/passwd"), "input_uris[0]",
     "gs://"),
    (lambda r: None, "input_config", "gcs_source"),
])
def test_import_refuses_at_call_time(stubs, mutate, field: str, words: str) -> None:
    retail, _ = stubs
    request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
    mutate(request)
    with pytest.raises(grpc.RpcError) as caught:
        retail.ImportUserEvents(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details() and words in caught.value.details(), \
        caught.value.details()


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def test_file_import_reports_bad_lines_and_writes_an_error_file(
        stubs, running: Running, settings: Settings) -> None:
    retail, ops = stubs
    root = Path(settings.gcs_root)
    write_lines(root / "shop/events/part-1.json",
                [json.dumps(event(f"v{i}")) for i in range(2500)])
    write_lines(root / "shop/events/part-2.json", [
        json.dumps(event("ok")), "{not json", "", json.dumps(event("")), "[1, 2]",
        json.dumps({**event("x"), "unknownField": 1})])
    request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
    request.input_config.gcs_source.input_uris.append("gs://shop/events/*.json")
    request.errors_config.gcs_prefix = "gs://shop/errors"
    done = wait(ops, retail.ImportUserEvents(request))
    response = import_config_pb2.ImportUserEventsResponse()
    assert done.response.Unpack(response)
    meta = import_config_pb2.ImportMetadata()
    done.metadata.Unpack(meta)
    assert (meta.success_count, meta.failure_count) == (2501, 4)
    assert response.import_summary.joined_events_count == 2501
    assert response.errors_config.gcs_prefix == "gs://shop/errors"
    messages = [s.message for s in response.error_samples]
    assert messages[0].startswith("gs://shop/events/part-2.json line 2: invalid JSON")
    assert "gs://shop/events/part-2.json line 4: user_event.visitor_id: is required" in messages
    assert any("line 6" in m and "unknownField" in m for m in messages)
    [error_file] = (root / "shop/errors").iterdir()
    lines = [json.loads(line) for line in error_file.read_text().splitlines()]
    assert [line["code"] for line in lines] == [3, 3, 3, 3]
    assert [line["message"] for line in lines] == messages
    assert running.store.count_user_events(EventQuery(PARENT)) == 2501


def test_purge_dry_run_then_force(stubs, running: Running) -> None:
    retail, ops = stubs
    wait(ops, retail.ImportUserEvents(inline_import(
        *[event(f"v{i}", eventTime=f"2024-01-{1 + i % 28:02d}T00:00:00Z") for i in range(100)],
        event("keep", "search", searchQuery="x"))))
    request = purge_config_pb2.PurgeUserEventsRequest(
        parent=PARENT, filter='eventType = "home-page-view" eventTime >= "2024-01-15T00:00:00Z"')
    response = purge_config_pb2.PurgeUserEventsResponse()
    wait(ops, retail.PurgeUserEvents(request)).response.Unpack(response)
    # days 15..28 of each 28-day cycle: 3 full cycles of 14, then days 15 and 16
    assert response.purged_events_count == 44
    assert running.store.count_user_events(EventQuery(PARENT)) == 101
    request.force = True
    wait(ops, retail.PurgeUserEvents(request)).response.Unpack(response)
    assert response.purged_events_count == 44
    assert running.store.count_user_events(EventQuery(PARENT)) == 57
    request.filter = 'event_time: ["2024-01-01T00:00:00Z", "2024-12-31T23:59:59Z"]'
    wait(ops, retail.PurgeUserEvents(request)).response.Unpack(response)
    assert response.purged_events_count == 57
    assert running.store.count_user_events(EventQuery(PARENT)) == 0


def test_purge_walks_its_range_in_windows_and_batches(stubs, running: Running,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purge, "WINDOW", 7)  # ids a batch walks
    monkeypatch.setattr(purge, "BATCH", 2)  # events it deletes at most
    retail, ops = stubs
    wait(ops, retail.ImportUserEvents(inline_import(
        *[event("rare" if i % 9 == 4 else f"v{i}", eventTime=f"2024-01-{1 + i:02d}T00:00:00Z")
          for i in range(30)])))
    response = purge_config_pb2.PurgeUserEventsResponse()
    request = purge_config_pb2.PurgeUserEventsRequest(
        parent=PARENT, filter='visitorId = "rare"', force=True)
    wait(ops, retail.PurgeUserEvents(request)).response.Unpack(response)
    assert response.purged_events_count == 3  # days 5, 14 and 23, far apart
    assert running.store.count_user_events(EventQuery(PARENT, visitor_ids=("rare",))) == 0
    # a dense time range: every window fills its batch before its end
    request.filter = 'eventTime < "2024-01-12T00:00:00Z"'
    wait(ops, retail.PurgeUserEvents(request)).response.Unpack(response)
    assert response.purged_events_count == 10  # days 1-11 but 5
    assert running.store.count_user_events(EventQuery(PARENT)) == 30 - 3 - 10


@pytest.mark.parametrize(("text", "words"), [
    ("", "is empty"),
    ('eventType = "x" OR visitorId = "y"', "character 17"),
    ('eventTime = "2024-01-01T00:00:00Z"', "character 11"),
    ('eventTime > "yesterday"', "RFC 3339"),
    ('color = "red"', "unknown field 'color'"),
    ("x" * 5001, "at most 5000"),
])
def test_purge_refuses_bad_filters_at_call_time(stubs, text: str, words: str) -> None:
    retail, _ = stubs
    with pytest.raises(grpc.RpcError) as caught:
        retail.PurgeUserEvents(purge_config_pb2.PurgeUserEventsRequest(parent=PARENT,
                                                                       filter=text))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("filter: ") and words in caught.value.details()


def test_rejoin_after_products_are_added(stubs, running: Running) -> None:
    retail, ops = stubs
    viewed = event("v", "detail-page-view",
                   productDetails=[{"product": {"id": "sku-1", "priceInfo": {
                       "price": 5, "currencyCode": "USD"}}}])
    retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
        parent=PARENT, user_event=json_format.ParseDict(viewed, user_event_pb2.UserEvent())))
    scope = user_event_service_pb2.RejoinUserEventsRequest.UserEventRejoinScope
    request = user_event_service_pb2.RejoinUserEventsRequest(
        parent=PARENT, user_event_rejoin_scope=scope.UNJOINED_EVENTS)
    response = user_event_service_pb2.RejoinUserEventsResponse()
    wait(ops, retail.RejoinUserEvents(request)).response.Unpack(response)
    assert response.rejoined_user_events_count == 0

    product = product_pb2.Product(id="sku-1", title="Red shoe", categories=["Shoes"])
    product.price_info.price = 99
    running.store.create_product(default_branch(PARENT), "sku-1", product.SerializeToString())
    wait(ops, retail.RejoinUserEvents(request)).response.Unpack(response)
    assert response.rejoined_user_events_count == 1
    assert running.store.count_user_events(EventQuery(PARENT, joined=True)) == 1
    [(_, payload)] = running.store.list_user_events(EventQuery(PARENT), limit=1)
    stored = user_event_pb2.UserEvent.FromString(payload).product_details[0].product
    assert stored.title == "Red shoe" and list(stored.categories) == ["Shoes"]
    assert stored.price_info.price == 5, "the event's own price is kept"
    # Written again after the catalog has it, the same event is a duplicate, not a new row.
    retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
        parent=PARENT, user_event=json_format.ParseDict(viewed, user_event_pb2.UserEvent())))
    assert running.store.count_user_events(EventQuery(PARENT)) == 1


def test_list_delete_and_get(stubs, clock: FixedClock) -> None:
    retail, ops = stubs
    names = []
    for i in range(3):
        names.append(wait(ops, retail.ImportUserEvents(inline_import(event(f"v{i}")))).name)
        clock.advance(1)  # listed oldest first
    page = ops.ListOperations(operations_pb2.ListOperationsRequest(name=PARENT, page_size=2))
    assert [o.name for o in page.operations] == names[:2] and page.next_page_token
    rest = ops.ListOperations(operations_pb2.ListOperationsRequest(
        name=PARENT, page_size=2, page_token=page.next_page_token))
    assert [o.name for o in rest.operations] == names[2:] and not rest.next_page_token
    # A token goes on only with the name and filter it came with (AIP-158): it went on
    # at its position in another catalog's list, or another filter's.
    for other in (operations_pb2.ListOperationsRequest(name=f"{PARENT}x"),
                  operations_pb2.ListOperationsRequest(name=PARENT, filter="done=true")):
        other.page_token = page.next_page_token
        with pytest.raises(grpc.RpcError) as caught:
            ops.ListOperations(other)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token: is a page token of another list" in caught.value.details()
    assert len(ops.ListOperations(operations_pb2.ListOperationsRequest(
        name="projects/p", filter="done=true")).operations) == 3
    assert not ops.ListOperations(operations_pb2.ListOperationsRequest(
        name=PARENT, filter="done = false")).operations
    ops.DeleteOperation(operations_pb2.DeleteOperationRequest(name=names[0]))
    gone = [(ops.GetOperation, operations_pb2.GetOperationRequest(name=names[0])),
            (ops.DeleteOperation, operations_pb2.DeleteOperationRequest(name=names[0])),
            (ops.CancelOperation, operations_pb2.CancelOperationRequest(name=names[0]))]
    for call, request in gone:
        with pytest.raises(grpc.RpcError) as caught:
            call(request)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        ops.ListOperations(operations_pb2.ListOperationsRequest(name=PARENT, filter="age>1"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # every project's, as the console's reads take `projects/-`: it listed none, OK
    for every in ("projects/-", "projects/-/locations/global"):
        with pytest.raises(grpc.RpcError) as caught:
            ops.ListOperations(operations_pb2.ListOperationsRequest(name=every))
        assert (caught.value.code(), caught.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "name: the project must be named ('-' stands for every project only where a read "
            "allows it), e.g. projects/p/locations/global/catalogs/default_catalog")


def test_cancel_before_the_job_runs_ends_cancelled(settings: Settings) -> None:
    running = start(settings)
    running.runner.stop()  # nobody runs jobs until a new runner starts
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as chan:
            retail = user_event_service_pb2_grpc.UserEventServiceStub(chan)
            ops = operations_pb2_grpc.OperationsStub(chan)
            op = retail.ImportUserEvents(inline_import(event("never")))
            ops.CancelOperation(operations_pb2.CancelOperationRequest(name=op.name))
            runner = OperationRunner(running.store, FixedClock(0), {
                import_events.KIND: import_events.ImportJob(Path(settings.gcs_root), False),
                purge.KIND: purge.run_purge, rejoin.KIND: rejoin.run_rejoin})
            runner.start()
            try:
                done = wait(ops, op)
            finally:
                runner.stop()
            assert done.error.code == grpc.StatusCode.CANCELLED.value[0]
            assert "committed before the cancel are kept" in done.error.message
            assert running.store.count_user_events(EventQuery(PARENT)) == 0
    finally:
        running.stop()


def test_a_file_import_run_by_a_process_of_another_gcs_root_says_so(
        settings: Settings, tmp_path: Path) -> None:
    """Any replica may run a job. One started with another --gcs-root (a folder of its
    own, not the shared one) ended the import INVALID_ARGUMENT `no file matches ...
    under the server's --gcs-root`, as if the file had never been, though the replica
    that took the call had found it; the message now names the root of the process
    that ran it and why the two may differ."""
    write_lines(Path(settings.gcs_root) / "shop" / "e.json", [json.dumps(event("v1"))])
    took = start(settings)
    took.runner.stop()  # busy: the job waits for another replica
    other_root = tmp_path / "elsewhere"
    runner = OperationRunner(took.store, FixedClock(0), {
        import_events.KIND: import_events.ImportJob(other_root, False)})
    try:
        with grpc.insecure_channel(f"127.0.0.1:{took.port}") as chan:
            request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
            request.input_config.gcs_source.input_uris.append("gs://shop/e.json")
            op = user_event_service_pb2_grpc.UserEventServiceStub(chan).ImportUserEvents(
                request)
            runner.start()
            done = wait(operations_pb2_grpc.OperationsStub(chan), op)
    finally:
        runner.stop()
        took.stop()
    assert done.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert done.error.message == (
        "input_config.gcs_source.input_uris[0]: no file matches 'gs://shop/e.json' (under "
        f"--gcs-root {other_root} of the server process that runs the import, though the "
        "call found it: it was moved or removed since, or this process reads another "
        "folder than the one that took the call (every replica needs the same shared "
        "--gcs-root))"), done.error.message


def test_unfinished_jobs_resume_after_a_restart(settings: Settings) -> None:
    first = start(settings)
    first.runner.stop()  # the process "dies" before running the job
    with grpc.insecure_channel(f"127.0.0.1:{first.port}") as chan:
        op = user_event_service_pb2_grpc.UserEventServiceStub(chan).ImportUserEvents(
            inline_import(*[event(f"v{i}") for i in range(1500)]))
    first.stop()
    second = start(settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{second.port}") as chan:
            done = wait(operations_pb2_grpc.OperationsStub(chan), op)
        assert done.HasField("response")
        assert second.store.count_user_events(EventQuery(PARENT)) == 1500
    finally:
        second.stop()


def test_an_operation_ended_for_tries_that_ended_their_process_counts_as_failed(
        settings: Settings, clock: FixedClock) -> None:
    """The runner ends it INTERNAL without running its job: /metrics, which counted
    the runs of jobs alone, did not count it (footfall_operations_total) at all."""
    name = f"{PARENT}/operations/purge-user-events-crashing"
    now_us = clock.now_ns() // 1000
    store = open_store(settings.store)
    try:
        store.create_operation(OperationRecord(
            name, purge.KIND, False, now_us, b"",
            operations_pb2.Operation(name=name).SerializeToString()))
        for i in range(MAX_TRIES):  # each try's process died holding it (its lease ran out)
            assert store.claim_operation(f"gone-host:{i}:x/0", now_us - (20 - 2 * i) * 10**6,
                                         10**6, lambda _holder: False)
    finally:
        store.close()
    running = start(replace(settings, http_port=-1), clock)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as chan:
            done = wait(operations_pb2_grpc.OperationsStub(chan),
                        operations_pb2.Operation(name=name))
        assert done.error.code == grpc.StatusCode.INTERNAL.value[0]
        # (counted just after it is ended: a client quick to read it done may be first)
        failed = 'footfall_operations_total{kind="purge-user-events",state="failed"} 1.0'
        deadline = time.monotonic() + 5
        while failed not in (metrics := http_client.call(
                running.http_port, "GET", "/metrics").body.decode()) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        running.stop()
    assert failed in metrics


DAY = 86_400.0


def test_ended_operations_are_deleted_days_after_they_end_and_running_ones_never(
        settings: Settings, clock: FixedClock) -> None:
    """--operations-keep-days (30): an hourly retention purge made 24 operations a
    day, and none was ever deleted."""
    first = start(settings, clock)
    # One that runs for ever here: of a kind from a newer version, which no worker takes.
    unknown = f"{PARENT}/operations/from-a-newer-version-1"
    first.store.create_operation(OperationRecord(
        unknown, "from-a-newer-version", False, clock.now_ns() // 1000, b"",
        operations_pb2.Operation(name=unknown).SerializeToString()))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{first.port}") as chan:
            retail, ops = (user_event_service_pb2_grpc.UserEventServiceStub(chan),
                           operations_pb2_grpc.OperationsStub(chan))
            old = wait(ops, retail.ImportUserEvents(inline_import(event("v1"))))
            clock.advance(DAY)
            kept = wait(ops, retail.ImportUserEvents(inline_import(event("v2"))))
            clock.advance(29 * DAY)
            assert first.operation_sweep is not None
            assert first.operation_sweep.sweep() == 0  # 30 days, less the lease's 30 s
            clock.advance(settings.lease_seconds + 1)
            assert first.operation_sweep.sweep() == 1
            with pytest.raises(grpc.RpcError) as caught:
                ops.GetOperation(operations_pb2.GetOperationRequest(name=old.name))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            listed = ops.ListOperations(operations_pb2.ListOperationsRequest(name=PARENT))
            assert [o.name for o in listed.operations] == [unknown, kept.name]
    finally:
        first.stop()
    clock.advance(DAY)  # a start sweeps at once
    second = start(settings, clock)
    try:
        assert [r.name for r in second.store.list_operations(PARENT, None, 10)] == [unknown]
    finally:
        second.stop()
    clock.advance(365 * DAY)
    for_ever = start(replace(settings, operations_keep_days=0), clock)
    try:
        assert for_ever.operation_sweep is None
        assert [r.name for r in for_ever.store.list_operations(PARENT, None, 10)] == [unknown]
    finally:
        for_ever.stop()


@pytest.fixture
def channel(running: Running) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as chan:
        yield chan


def product_json(pid: str, **more: object) -> dict:
    return {"id": pid, "title": f"Product {pid}", "categories": ["Shoes"], **more}


def test_a_product_import_line_whose_ttl_ends_past_9999_fails_alone(
        stubs, channel: grpc.Channel) -> None:
    from footfall.retail.v2 import product_service_pb2, product_service_pb2_grpc

    _, ops = stubs
    catalog = product_service_pb2_grpc.ProductServiceStub(channel)
    branch = f"{PARENT}/branches/0"
    request = import_config_pb2.ImportProductsRequest(parent=branch)
    for given in (product_json("sku-1"), product_json("sku-2", ttl="315576000000s")):
        json_format.ParseDict(given, request.input_config.product_inline_source.products.add())
    done = wait(ops, catalog.ImportProducts(request))
    assert done.HasField("response"), done.error
    meta = import_config_pb2.ImportMetadata()
    done.metadata.Unpack(meta)
    assert (meta.success_count, meta.failure_count) == (1, 1)
    response = import_config_pb2.ImportProductsResponse()
    done.response.Unpack(response)
    assert response.error_samples[0].message.startswith(
        "input_config.product_inline_source.products[1].ttl: must end by 9999-12-31T23:59:59Z")
    assert catalog.GetProduct(product_service_pb2.GetProductRequest(
        name=f"{branch}/products/sku-1")).title == "Product sku-1"


def test_product_import_then_events_join(stubs, channel: grpc.Channel, running: Running,
                                         settings: Settings) -> None:
    from footfall.retail.v2 import product_service_pb2, product_service_pb2_grpc

    retail, ops = stubs
    catalog = product_service_pb2_grpc.ProductServiceStub(channel)
    branch = f"{PARENT}/branches/default_branch"
    root = Path(settings.gcs_root)
    write_lines(root / "shop/products.json",
                [json.dumps(product_json(f"sku-{i}")) for i in range(1200)]
                + [json.dumps({"title": "no id"}), json.dumps(product_json("sku-x", title=""))])
    request = import_config_pb2.ImportProductsRequest(parent=branch)
    request.input_config.gcs_source.input_uris.append("gs://shop/products.json")
    done = wait(ops, catalog.ImportProducts(request))
    assert done.name.startswith(f"{PARENT}/branches/0/operations/import-products-")
    meta = import_config_pb2.ImportMetadata()
    done.metadata.Unpack(meta)
    assert (meta.success_count, meta.failure_count) == (1200, 2)
    response = import_config_pb2.ImportProductsResponse()
    done.response.Unpack(response)
    assert [s.message.split(": ")[0] for s in response.error_samples] == [
        "gs://shop/products.json line 1201", "gs://shop/products.json line 1202"]
    assert "product.id: is required" in response.error_samples[0].message
    got = catalog.GetProduct(product_service_pb2.GetProductRequest(
        name=f"{branch}/products/sku-7"))
    assert got.title == "Product sku-7" and got.name == f"{PARENT}/branches/0/products/sku-7"

    # Inline, with a mask: only the title changes.
    patch = import_config_pb2.ImportProductsRequest(parent=branch)
    json_format.ParseDict(product_json("sku-7", title="Renamed", categories=["Hats"]),
                          patch.input_config.product_inline_source.products.add())
    patch.update_mask.paths.append("title")
    wait(ops, catalog.ImportProducts(patch))
    got = catalog.GetProduct(product_service_pb2.GetProductRequest(
        name=f"{branch}/products/sku-7"))
    assert got.title == "Renamed" and list(got.categories) == ["Shoes"]

    retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
        parent=PARENT, user_event=json_format.ParseDict(
            event("v", "detail-page-view", productDetails=[{"product": {"id": "sku-7"}}]),
            user_event_pb2.UserEvent())))
    assert running.store.count_user_events(EventQuery(PARENT, joined=True)) == 1
    [(_, payload)] = running.store.list_user_events(EventQuery(PARENT), 10)
    assert user_event_pb2.UserEvent.FromString(payload).product_details[0].product.title == \
        "Renamed"


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda r: r.input_config.product_inline_source.products.add(id="a"), None),
    (lambda r: (r.input_config.product_inline_source.products.add(id="a"),
                setattr(r, "reconciliation_mode", 2)), "reconciliation_mode: FULL"),
    (lambda r: (r.input_config.product_inline_source.products.add(id="a"),
                r.update_mask.paths.append("no_such_field")), "update_mask"),
    (lambda r: r.input_config.big_query_source.SetInParent(), "big_query_source"),
    (lambda r: setattr(r, "parent", f"{PARENT}/branches/7"), "parent"),
])
def test_product_import_refuses_at_call_time(channel: grpc.Channel, mutate, words) -> None:
    from footfall.retail.v2 import product_service_pb2_grpc

    catalog = product_service_pb2_grpc.ProductServiceStub(channel)
    request = import_config_pb2.ImportProductsRequest(parent=f"{PARENT}/branches/0")
    mutate(request)
    if words is None:
        assert catalog.ImportProducts(request).name
        return
    with pytest.raises(grpc.RpcError) as caught:
        catalog.ImportProducts(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in caught.value.details(), caught.value.details()


def test_branch_alias_names_the_same_operations(channel: grpc.Channel, stubs) -> None:
    from footfall.retail.v2 import product_service_pb2_grpc

    _, ops = stubs
    catalog = product_service_pb2_grpc.ProductServiceStub(channel)
    request = import_config_pb2.ImportProductsRequest(parent=f"{PARENT}/branches/default_branch")
    request.input_config.product_inline_source.products.add(
        id="a", title="A", categories=["Shoes"])
    done = wait(ops, catalog.ImportProducts(request))
    alias = done.name.replace("/branches/0/", "/branches/default_branch/")
    assert ops.GetOperation(operations_pb2.GetOperationRequest(name=alias)).name == done.name
    listed = ops.ListOperations(operations_pb2.ListOperationsRequest(
        name=f"{PARENT}/branches/default_branch"))
    assert [o.name for o in listed.operations] == [done.name]


@pytest.mark.parametrize("created", ["99999999999999999999999999999", "-99999999999999999999",
                                     "\u0661\u0662", "1.5", ""])
def test_a_forged_page_token_is_invalid_argument(stubs, running: Running,
                                                 created: str) -> None:
    # A time past int64 answered INTERNAL on SQLite (and a traceback in the log); one in
    # other digits than ASCII was read as a number. Tokens are signed now: such a token
    # is refused for its signature, and would be for its time if the store's key had
    # signed it.
    _, ops = stubs
    body = f"{created}:x".encode()
    for token, said in ((base64.urlsafe_b64encode(body).decode(),
                         "page_token: is not a page token this server issued (it was changed, "
                         "or made up; or it is of another store, or of a memory:// server "
                         "since restarted: start from the first page)"),
                        (page_tokens.signed(running.store.page_token_key(), body),
                         "page_token: is not a token this server issued")):
        with pytest.raises(grpc.RpcError) as caught:
            ops.ListOperations(operations_pb2.ListOperationsRequest(name=PARENT,
                                                                   page_token=token))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details() == said


@pytest.mark.parametrize("kind", ["events", "products"])
def test_an_imports_batches_are_writes_that_pace_the_consoles_reads(
        stubs, channel: grpc.Channel, running: Running, kind: str) -> None:
    """The console's reads and the insights keep a budget while events are written
    (console.pace.Listing, by Policy.last_write): an import is written too, and a
    flood of readers beside an import alone was read unpaced, the import's thread
    waiting for the interpreter's lock."""
    from footfall.retail.v2 import product_service_pb2_grpc

    retail, ops = stubs
    assert running.policy is not None
    before = time.monotonic()
    assert running.policy.last_write < before  # (nothing written yet)
    if kind == "events":
        op = retail.ImportUserEvents(inline_import(event("a"), event("b")))
    else:
        request = import_config_pb2.ImportProductsRequest(parent=f"{PARENT}/branches/0")
        json_format.ParseDict(product_json("sku-1"),
                              request.input_config.product_inline_source.products.add())
        op = product_service_pb2_grpc.ProductServiceStub(channel).ImportProducts(request)
    done = wait(ops, op)
    assert done.HasField("response"), done.error
    assert running.policy.last_write >= before
