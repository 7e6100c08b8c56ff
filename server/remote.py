"""What the CLI reads from a running server (`--server HOST:PORT`), through the
public API only, so that any store, `memory://` included, can be inspected.

- Operations: google.longrunning.Operations/ListOperations.
- Counting events: a dry-run PurgeUserEvents (`force=false` deletes nothing and
  answers how many events the filter selects), whose operation is deleted once
  read, so counting leaves nothing behind. It needs a key with the admin role.
- Listing events needs a read RPC that Google's contracts do not have; Footfall's
  console API will add one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import grpc
from footfall.retail.v2 import purge_config_pb2, user_event_service_pb2_grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

CALL_SECONDS = 30.0  # per call; a count waits for its operation in steps of WAIT_SECONDS
WAIT_SECONDS = 10
# What selects every event: a purge filter may not be empty, and every stored
# event has a time (a write without one gets the time it arrived).
EVERY_EVENT = 'eventTime >= "0001-01-01T00:00:00Z"'


class RemoteError(Exception):
    """The server answered with an error status (or could not be reached)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code


class ServerSource:
    """Reads a running server; `key` goes as x-goog-api-key with every call."""

    def __init__(self, address: str, key: str = "") -> None:
        self._channel = grpc.insecure_channel(address)
        self._metadata = (("x-goog-api-key", key),) if key else ()
        self._events = user_event_service_pb2_grpc.UserEventServiceStub(self._channel)
        self._operations = operations_pb2_grpc.OperationsStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def count_events(self, catalog: str, filter_text: str) -> int:
        """How many events of `catalog` the purge filter selects; RemoteError."""
        request = purge_config_pb2.PurgeUserEventsRequest(
            parent=catalog, filter=filter_text.strip() or EVERY_EVENT, force=False)
        op = self._call(self._events.PurgeUserEvents, request)
        try:
            while not op.done:
                op = self._call(self._operations.WaitOperation,
                                operations_pb2.WaitOperationRequest(
                                    name=op.name,
                                    timeout=duration_pb2.Duration(seconds=WAIT_SECONDS)))
        finally:
            with contextlib.suppress(RemoteError):  # a dry run changes nothing; its record may stay
                self._call(self._operations.DeleteOperation,
                           operations_pb2.DeleteOperationRequest(name=op.name))
        if op.HasField("error"):
            raise RemoteError(grpc.StatusCode.UNKNOWN if op.error.code not in _CODES
                              else _CODES[op.error.code], op.error.message)
        response = purge_config_pb2.PurgeUserEventsResponse()
        op.response.Unpack(response)
        return response.purged_events_count

    def operations(self, parent: str, done: bool | None) -> Iterator[operations_pb2.Operation]:
        """The operations under `parent`, oldest first, page by page; RemoteError."""
        request = operations_pb2.ListOperationsRequest(
            name=parent, filter="" if done is None else f"done={str(done).lower()}",
            page_size=1000)
        while True:
            reply = self._call(self._operations.ListOperations, request)
            yield from reply.operations
            if not reply.next_page_token:
                return
            request.page_token = reply.next_page_token

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, metadata=self._metadata, timeout=CALL_SECONDS)
        except grpc.RpcError as exc:
            raise RemoteError(exc.code(), exc.details() or "") from None


_CODES = {code.value[0]: code for code in grpc.StatusCode}
