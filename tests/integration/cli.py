"""Running `footfall` as a user does (a subprocess), and filling a store to read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
from footfall.retail.v2 import (
    import_config_pb2,
    purge_config_pb2,
    user_event_pb2,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2, json_format

from server.operations import records
from server.store import Store
from server.store.rows import OperationRecord

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
CANCELLED = f"{CATALOG}/operations/purge-user-events-7"


def footfall(*args: str, cwd: Path, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m server ARGS` in `cwd`, with FOOTFALL_* variables only from `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**clean, **(env or {})})


def wait(ops: operations_pb2_grpc.OperationsStub, name: str,
         metadata: tuple[tuple[str, str], ...] = ()) -> operations_pb2.Operation:
    done = ops.WaitOperation(operations_pb2.WaitOperationRequest(
        name=name, timeout=duration_pb2.Duration(seconds=30)), metadata=metadata)
    assert done.done, f"{name} did not finish"
    return done


def event(visitor: str, event_type: str = "home-page-view",
          time: str = "2024-01-01T00:00:00Z") -> user_event_pb2.UserEvent:
    return json_format.ParseDict({"eventType": event_type, "visitorId": visitor,
                                  "eventTime": time}, user_event_pb2.UserEvent())


def record_history(channel: grpc.Channel, store: Store,
                   metadata: tuple[tuple[str, str], ...] = ()) -> None:
    """Three written events (one search), an import of three (one bad), a purge of
    the search and a cancelled purge: every state and kind the listing shows."""
    retail = user_event_service_pb2_grpc.UserEventServiceStub(channel)
    ops = operations_pb2_grpc.OperationsStub(channel)
    for visitor in ("a", "b"):
        retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
            parent=CATALOG, user_event=event(visitor)), metadata=metadata)
    search = event("s", "search")
    search.search_query = "shoes"
    retail.WriteUserEvent(user_event_service_pb2.WriteUserEventRequest(
        parent=CATALOG, user_event=search), metadata=metadata)
    request = import_config_pb2.ImportUserEventsRequest(parent=CATALOG)
    request.input_config.user_event_inline_source.user_events.extend(
        [event("i1"), event("i2"), event("")])  # the last has no visitor: a failure
    wait(ops, retail.ImportUserEvents(request, metadata=metadata).name, metadata)
    wait(ops, retail.PurgeUserEvents(purge_config_pb2.PurgeUserEventsRequest(
        parent=CATALOG, filter='eventType = "search"', force=True), metadata=metadata).name,
        metadata)
    # A purge cancelled before it ran, as the runner would have ended it.
    ended = records.operation(CANCELLED, purge_config_pb2.PurgeMetadata(),
                              error=records.cancelled_status("the purge"))
    store.create_operation(OperationRecord(
        name=CANCELLED, kind="purge-user-events", done=True, create_time_us=1,
        request=b"", operation=ended.SerializeToString()))
