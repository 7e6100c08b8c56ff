"""Import, purge and rejoin as google.longrunning operations, through the official
client: the call answers an Operation, the client polls GetOperation until done,
and the typed response and metadata come back. Kept small: a smoke test per method.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions
from google.api_core.future import polling
from google.cloud import retail_v2

from .examples import example, user_event
from .support import RPC_DEADLINE, ServerProcess, count_events, retail_async_client

# The client's default polling starts at 1s and grows; an emulator is quicker.
QUICK_POLLING = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.25, multiplier=1.5)
OPERATION_DEADLINE = 30.0
Scope = retail_v2.RejoinUserEventsRequest.UserEventRejoinScope


def timed_events(count: int) -> list[retail_v2.UserEvent]:
    return [user_event(example("home-page-view", visitorId=f"imported-{i}",
                               eventTime=f"2024-05-20T14:03:{i:02d}Z")) for i in range(count)]


def inline_import(catalog: str, events: list[retail_v2.UserEvent]) -> dict[str, Any]:
    return {"parent": catalog,
            "input_config": {"user_event_inline_source": {"user_events": events}}}


def finish(operation: Any) -> Any:
    return operation.result(timeout=OPERATION_DEADLINE, polling=QUICK_POLLING)


def test_inline_import_reports_counts_and_error_samples(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    # The last event breaks two rules: an import needs event_time, a detail view products.
    events = [*timed_events(3), user_event(example("detail-page-view", productDetails=None))]
    operation = retail.import_user_events(request=inline_import(catalog, events),
                                          timeout=RPC_DEADLINE)
    assert operation.operation.name.startswith(f"{catalog}/operations/")
    response = finish(operation)

    assert isinstance(response, retail_v2.ImportUserEventsResponse)
    [sample] = response.error_samples
    assert sample.code == 3  # INVALID_ARGUMENT
    assert "user_events[3].event_time" in sample.message
    assert "user_events[3].product_details" in sample.message
    summary = response.import_summary
    assert summary.joined_events_count + summary.unjoined_events_count == 3
    metadata = operation.metadata
    assert isinstance(metadata, retail_v2.ImportMetadata)
    assert (metadata.success_count, metadata.failure_count) == (3, 1)
    assert retail.get_operation({"name": operation.operation.name}).done
    assert count_events(server.store, catalog, server.workdir) == 3


def test_importing_the_same_events_again_stores_them_once(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    events = timed_events(4)
    for _ in range(2):
        finish(retail.import_user_events(request=inline_import(catalog, events),
                                         timeout=RPC_DEADLINE))
    assert count_events(server.store, catalog, server.workdir) == 4


def test_purge_counts_without_force_and_deletes_with_it(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    for event in timed_events(3):
        retail.write_user_event(request={"parent": catalog, "user_event": event},
                                timeout=RPC_DEADLINE)
    purge = {"parent": catalog, "filter": 'visitorId = "imported-1"'}

    dry_run = finish(retail.purge_user_events(request={**purge, "force": False},
                                              timeout=RPC_DEADLINE))
    assert dry_run.purged_events_count == 1
    assert count_events(server.store, catalog, server.workdir) == 3

    done = finish(retail.purge_user_events(request={**purge, "force": True},
                                           timeout=RPC_DEADLINE))
    assert isinstance(done, retail_v2.PurgeUserEventsResponse)
    assert done.purged_events_count == 1
    assert count_events(server.store, catalog, server.workdir) == 2


@pytest.mark.parametrize("purge_filter", ["", "bogus", 'eventTime > "yesterday"'])
def test_purge_refuses_a_bad_filter_at_once(retail: retail_v2.UserEventServiceClient,
                                            catalog: str, purge_filter: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.purge_user_events(request={"parent": catalog, "filter": purge_filter,
                                          "force": True}, timeout=RPC_DEADLINE)
    assert refused.value.message.startswith("filter: ")


def test_rejoin_finishes_with_a_typed_response(retail: retail_v2.UserEventServiceClient,
                                               catalog: str) -> None:
    operation = retail.rejoin_user_events(
        request={"parent": catalog, "user_event_rejoin_scope": Scope.UNJOINED_EVENTS},
        timeout=RPC_DEADLINE)
    assert isinstance(finish(operation), retail_v2.RejoinUserEventsResponse)
    assert isinstance(operation.metadata, retail_v2.RejoinUserEventsMetadata)


def test_async_client_imports(server: ServerProcess, catalog: str, run: Any) -> None:
    async def scenario() -> Any:
        async with retail_async_client(server.address) as client:
            operation = await client.import_user_events(
                request=inline_import(catalog, timed_events(2)), timeout=RPC_DEADLINE)
            # AsyncOperation polls at its own pace (first poll after 1s).
            return await operation.result(timeout=OPERATION_DEADLINE)

    assert not run(scenario()).error_samples
    assert count_events(server.store, catalog, server.workdir) == 2
