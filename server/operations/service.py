"""google.longrunning.Operations over the operations kept in the store.

Any process on the same store answers for any operation: nothing here reads
in-process state. A WaitOperation is woken by this process's runner when an
operation ends here, and reads the store again every WAIT_POLL_SECONDS for those
that end on another replica. A wait is a coroutine and holds no thread; still, at
most `max_waits` calls wait at once: one more is answered at once with the
operation as it is, which the contract allows ("the server may return before the
timeout"). The store is read through `off_loop`.
"""

from __future__ import annotations

import re
import threading
import time

import grpc
import grpc.aio
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import empty_pb2

from server import page_tokens
from server.errors import FieldViolation, InvalidArgument, NotFound
from server.loop import off_loop
from server.names import operations_parent_problem, resolve_default_branch
from server.operations.records import relabel
from server.operations.runner import OperationRunner
from server.operations.wakeups import Wakeups
from server.store import Store
from server.store.rows import OperationRecord

OPERATION = "google.longrunning.Operation"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_WAIT_SECONDS = 600.0
# How often a wait reads the store when nothing here woke it: operations run by
# another replica are seen this late at most.
WAIT_POLL_SECONDS = 0.5
DEFAULT_MAX_WAITS = 64
_DONE_FILTER = re.compile(r"^\s*done\s*[=:]\s*(true|false)\s*$", re.IGNORECASE)


def parse_done_filter(text: str) -> bool | None:
    """`done=true` / `done=false` / empty; INVALID_ARGUMENT naming `filter` otherwise."""
    if not text.strip():
        return None
    match = _DONE_FILTER.match(text)
    if not match:
        raise InvalidArgument.field("filter", f"only 'done=true' or 'done=false' is supported, "
                                              f"got {text[:200]!r}")
    return match[1].lower() == "true"


def _answer(payload: bytes) -> operations_pb2.Operation:
    """A stored operation as clients see it: under its version's type names."""
    return relabel(operations_pb2.Operation.FromString(payload))


def _page_token(key: bytes, record: OperationRecord, question: str) -> str:
    """The token of the page after `record`, signed with the store's `key`."""
    return page_tokens.signed(key, f"{record.create_time_us}:{question}:{record.name}".encode())


_CREATED = re.compile(r"-?[0-9]{1,19}")


def _parse_page_token(key: bytes | None, token: str, question: str) -> tuple[int, str] | None:
    """(create time, name) of the operation a token goes on after; None for none.
    INVALID_ARGUMENT naming page_token for one not signed with `key`, or of another
    question."""
    if not token:
        return None
    body = page_tokens.body_of(key, token)
    try:
        created, _, rest = body.decode().partition(":")
        # (a time of ASCII digits within int64: one past it was an INTERNAL error on
        # SQLite, "Python int too large to convert to SQLite INTEGER")
        if not _CREATED.fullmatch(created) or not -(2**63) <= int(created) < 2**63:
            raise ValueError(created)
        asked, _, name = rest.partition(":")
    except ValueError:  # (of a key that signed something else: UnicodeDecodeError too)
        raise InvalidArgument.field("page_token", "is not a token this server issued") from None
    if asked != question:  # (another list's: see page_tokens)
        raise page_tokens.of_another_list("name")
    return int(created), name


class OperationsService(operations_pb2_grpc.OperationsServicer):
    def __init__(self, store: Store, runner: OperationRunner | None = None,
                 poll_seconds: float = WAIT_POLL_SECONDS,
                 max_waits: int = DEFAULT_MAX_WAITS) -> None:
        self._store = store
        self._runner = runner
        self._poll = poll_seconds
        self._wakeups = runner.wakeups if runner is not None else Wakeups()
        self._wait_slots = threading.BoundedSemaphore(max_waits)

    def _record(self, name: str) -> OperationRecord:
        if not name:
            raise InvalidArgument.field("name", "is required")
        record = self._store.get_operation(resolve_default_branch(name))
        if record is None:
            raise NotFound(OPERATION, name)
        return record

    async def _read(self, name: str) -> OperationRecord:
        return await off_loop(self._record, name)

    async def GetOperation(self, request: operations_pb2.GetOperationRequest,
                           context: grpc.aio.ServicerContext
                           ) -> operations_pb2.Operation:
        """The operation's latest state. NOT_FOUND for an unknown name."""
        return _answer((await self._read(request.name)).operation)

    async def ListOperations(self, request: operations_pb2.ListOperationsRequest,
                             context: grpc.aio.ServicerContext
                             ) -> operations_pb2.ListOperationsResponse:
        """Operations under `name` (a catalog, location or project), oldest first,
        paged; `filter` may be done=true|false. INVALID_ARGUMENT for a bad name,
        filter, page size or token."""
        violations = []
        problem = operations_parent_problem(request.name)
        if problem is not None:
            violations.append(FieldViolation("name", problem))
        if request.page_size < 0:
            violations.append(FieldViolation("page_size", "must not be negative"))
        if violations:
            raise InvalidArgument(violations)
        done = parse_done_filter(request.filter)
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        parent = resolve_default_branch(request.name).rstrip("/") + "/"
        question = str(page_tokens.question(parent, done))
        operations, next_token = await off_loop(self._page, parent, done, size,
                                                request.page_token, question)
        return operations_pb2.ListOperationsResponse(operations=operations,
                                                     next_page_token=next_token)

    def _page(self, parent: str, done: bool | None, size: int, token: str,
              question: str) -> tuple[list[operations_pb2.Operation], str]:
        """Up to `size` operations after `token`'s, no more than page_tokens.PAGE_BYTES of them
        (at least one), and the token of the page after them, "" when none follows
        (blocking). The store's page token key is written by the first call that
        needs one: a list of one page, or a token refused, writes nothing, so a new
        store stays empty (a copy's target)."""
        after = _parse_page_token(self._store.page_token_key_if_made(), token, question) \
            if token else None
        records = self._store.list_operations(parent, done, size + 1, after)
        page: list[operations_pb2.Operation] = []
        room = page_tokens.PAGE_BYTES
        for record in records[:size]:
            operation = _answer(record.operation)
            weight = operation.ByteSize()
            if page and weight > room:
                break
            page.append(operation)
            room -= weight
        if len(records) == len(page):
            return page, ""
        return page, _page_token(self._store.page_token_key(), records[len(page) - 1], question)

    async def DeleteOperation(self, request: operations_pb2.DeleteOperationRequest,
                              context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        """Forget the operation (a running one stops at its next batch). NOT_FOUND
        for an unknown name."""
        record = await self._read(request.name)
        if not await off_loop(self._store.delete_operation,
                              resolve_default_branch(request.name)):
            raise NotFound(OPERATION, request.name)
        if self._runner is not None and not record.done:
            # (an export's NAME.part: a run holding it now removes it at its next step,
            # but one whose holder is gone never comes again)
            await off_loop(self._runner.deleted, record)
        self._wakeups.wake_all()  # its waiters answer NOT_FOUND now
        return empty_pb2.Empty()

    async def CancelOperation(self, request: operations_pb2.CancelOperationRequest,
                              context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        """Ask the job to stop between batches; it then ends with CANCELLED. A done
        operation is left as it is. NOT_FOUND for an unknown name."""
        await self._read(request.name)
        if await off_loop(self._store.request_cancel,
                          resolve_default_branch(request.name)) is None:
            raise NotFound(OPERATION, request.name)
        if self._runner is not None:
            self._runner.notify()
        return empty_pb2.Empty()

    async def WaitOperation(self, request: operations_pb2.WaitOperationRequest,
                            context: grpc.aio.ServicerContext | None
                            ) -> operations_pb2.Operation:
        """The operation once done, or its state when `timeout` (or the caller's
        deadline, or 10 minutes) runs out, or at once when `max_waits` calls wait
        already. NOT_FOUND for an unknown name. (No `context`: a wait from within
        the process, with no deadline of its own.)"""
        limit = MAX_WAIT_SECONDS
        if request.HasField("timeout"):
            limit = min(limit, request.timeout.ToNanoseconds() / 1e9)
        remaining = context.time_remaining() if context is not None else None
        if remaining is not None:
            limit = min(limit, max(remaining - 0.05, 0.0))
        if not self._wait_slots.acquire(blocking=False):
            return _answer((await self._read(request.name)).operation)
        try:
            return await self._wait(request.name, time.monotonic() + limit, context)
        finally:
            self._wait_slots.release()

    async def _wait(self, name: str, deadline: float,
                    context: grpc.aio.ServicerContext | None) -> operations_pb2.Operation:
        # (A call that ends meanwhile, cancelled or past its deadline, has its task
        # cancelled by grpc, and the wait with it: a callback of the context's to wake
        # it ran only once the call's task was done, after the wait, and left the call
        # in a reference cycle: see server.policy.call_ends.)
        with self._wakeups.waiter() as wake:
            while True:
                wake.clear()  # before the read: a change after it wakes the wait below
                record = await self._read(name)
                left = deadline - time.monotonic()
                if record.done or left <= 0 or self._wakeups.closed or \
                        (context is not None and context.done()):
                    return _answer(record.operation)
                await wake.wait(min(self._poll, left))
