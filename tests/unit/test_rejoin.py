"""RejoinUserEvents as a job: a scan of the scope that passes over many events out of
it (UNJOINED_EVENTS among millions joined) keeps the lease meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2
from google.longrunning import operations_pb2

from server.clock import FixedClock
from server.operations.runner import JobContext
from server.retail import rejoin
from server.store import EventRow, Store, open_store
from server.store.rows import OperationRecord
from tests.unit.leases import scans_past_the_lease

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
NAME = f"{CATALOG}/operations/{rejoin.KIND}-1"
LEASE_US = 30_000  # (a third of it is how long the job waits between looks: 10 ms)


@pytest.fixture
def store() -> Iterator[Store]:
    opened = open_store("memory://")
    yield opened
    opened.close()


def test_a_scan_longer_than_the_lease_keeps_it(store: Store,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """UNJOINED_EVENTS among joined ones: 0.34 s a million events passed over here, so a
    batch's scan outlasts the 30 s of a lease at some 90 million. Under --processes the
    other process took the rejoin over as if its holder had died; the third take-over
    ended it INTERNAL. The renewals record how far it got, not where it began."""
    monkeypatch.setattr(rejoin, "BATCH", 1)
    store.write_user_events([EventRow.from_event(CATALOG, user_event_pb2.UserEvent(
        event_type="home-page-view", visitor_id=f"v{i}", event_time={"seconds": 1_704_067_200}),
        joined=False) for i in range(2)])
    request = user_event_service_pb2.RejoinUserEventsRequest(
        parent=CATALOG, user_event_rejoin_scope=rejoin.Scope.UNJOINED_EVENTS)
    store.create_operation(OperationRecord(
        NAME, rejoin.KIND, False, 0, request.SerializeToString(),
        rejoin.new_operation(NAME, 0).SerializeToString()))
    clock = FixedClock(0)
    record = store.claim_operation("w1", 0, LEASE_US, lambda _: False)
    assert record is not None
    scans_past_the_lease(store, monkeypatch, clock, NAME, LEASE_US,
                         lambda checkpoint: checkpoint.get("last_id", 0))
    rejoin.run_rejoin(JobContext(record, store, clock, "w1", LEASE_US, threading.Event()))

    done = store.get_operation(NAME)
    assert done is not None and done.done
    response = user_event_service_pb2.RejoinUserEventsResponse()
    assert operations_pb2.Operation.FromString(done.operation).response.Unpack(response)
    assert response.rejoined_user_events_count == 2
