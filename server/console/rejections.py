"""Keeping refused requests, so a person can see why an event was refused: every
refused write, pixel and client event (from the call envelope) and every failed
import line (from the import job), as console.v1 Rejections in the store, where
every replica sees them, within a count and an age.

Never a key or an auth header: a Rejection holds the key's name from the auth
file and the request message, and keys travel only in metadata (the pixel's
`?key=` is a query parameter, not a field of the request).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from footfall.console.v1 import console_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from server.clock import Clock
from server.console import origin
from server.errors import FootfallError, Unauthenticated
from server.policy.auth import WRITER_METHODS, NotYourProject, project_of
from server.store.base import Store
from server.store.console import RejectionRow

log = logging.getLogger(__name__)

# The refusals kept: event writes (what a writer key may call).
KEPT_METHODS = WRITER_METHODS
IMPORT_METHOD = "/google.cloud.retail.v2.UserEventService/ImportUserEvents"
REQUEST_JSON_CHARS = 4096  # a few KB of each refused request
RENDERED_BYTES = 64 * 1024  # larger requests are not rendered as JSON at all (a flood's cost)
KEPT_VIOLATIONS = 20
GATHERED_LIMIT = 10_000  # refusals waiting for the writer, at most
# `gs://b/f.json line 4: ` before an import failure's violations
_LINE = re.compile(r"^\S+ line \d+: ")
_VIOLATION = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.+)$", re.S)


def _violations(error: FootfallError) -> list[error_details_pb2.BadRequest.FieldViolation]:
    for detail in error.details():
        if isinstance(detail, error_details_pb2.BadRequest):
            return list(detail.field_violations[:KEPT_VIOLATIONS])
    return []


def _request_json(request: Any) -> tuple[str, bool]:
    """The request as proto3 JSON, cut to REQUEST_JSON_CHARS; whether it was cut."""
    if not isinstance(request, Message):
        return "", request is not None  # bytes that never decoded
    if request.ByteSize() > RENDERED_BYTES:
        return "", True
    text = json_format.MessageToJson(request, indent=None)
    return text[:REQUEST_JSON_CHARS], len(text) > REQUEST_JSON_CHARS


def _parent(request: Any) -> str:
    parent = getattr(request, "parent", "")
    return parent if isinstance(parent, str) else ""


class Rejections:
    """Writes refusals to `store` without waiting for them (a refusal is never
    held up, nor failed, by keeping it), keeping the last `keep_count` and
    those of the last `keep_seconds` (none when `keep_count` is 0).

    Refusals are gathered, and one job of the store's writer takes all those
    gathered when it runs: a flood of refusals costs the writer one insert (and
    one trim) per group commit, not one per refusal. That job rides along with
    the next commit of other writes (within ALONG_SECONDS one of its own), so
    the accepted writes never wait behind a commit made for refusals alone.
    At most GATHERED_LIMIT (or `keep_count`, if more) wait: should the store be
    away that long, the oldest are let go (and counted in `skipped`)."""

    def __init__(self, store: Store, clock: Clock, keep_count: int, keep_seconds: float) -> None:
        self._store = store
        self._clock = clock
        self._keep_count = keep_count
        self._keep_us = int(keep_seconds * 1_000_000)
        self._lock = threading.Lock()
        self._gathered: list[RejectionRow] = []
        self.skipped = 0  # refusals let go unwritten: too many waited

    def refused(self, method: str, transport: str, request: Any, error: FootfallError,
                key_name: str | None) -> None:
        """Keep the refusal of a call to `method` on `transport` ("grpc", "http"),
        if it is an event write by a caller the server knows, in a project its key
        may use: without a valid key (UNAUTHENTICATED) anyone could flood out the
        refusals of real clients, and make the server write for each try; with a key
        of another project (a writer key is public in a shop's pages) anyone could
        flood out a project's refusals from outside it. Those are counted in
        /metrics only."""
        if method not in KEPT_METHODS or not self._keep_count \
                or isinstance(error, (Unauthenticated, NotYourProject)):
            return
        parent = _parent(request)
        text, cut = _request_json(request)
        self._keep([self._rejection(
            transport=origin.of_call(transport, method), method=method, parent=parent,
            key_name=key_name or "", code=error.code.value[0], message=error.message,
            field_violations=_violations(error), request_json=text, request_truncated=cut)])

    def import_failures(self, operation: str, failures: Sequence[str]) -> None:
        """Keep the failed lines (their messages) of the import `operation`."""
        if not failures or not self._keep_count:
            return
        catalog = operation.rpartition("/operations/")[0]
        self._keep([self._rejection(
            transport=origin.IMPORT, method=IMPORT_METHOD, parent=catalog, operation=operation,
            code=3, message=failure, field_violations=_import_violations(failure))
            for failure in failures])

    def _rejection(self, **fields: Any) -> console_pb2.Rejection:
        rejection = console_pb2.Rejection(**fields)
        rejection.time.FromNanoseconds(self._clock.now_ns())
        return rejection

    def _keep(self, rejections: list[console_pb2.Rejection]) -> None:
        rows = [RejectionRow(project_of(r.parent) or "", r.parent, r.time.ToMicroseconds(),
                             r.SerializeToString()) for r in rejections]
        with self._lock:
            first = not self._gathered  # else the writer's queued job takes these too
            self._gathered.extend(rows)
            limit = max(self._keep_count, GATHERED_LIMIT)
            if len(self._gathered) > limit:  # the store is away, or far behind
                self.skipped += len(self._gathered) - limit
                del self._gathered[:-limit]
        if not first:
            return
        now_us = self._clock.now_ns() // 1000
        try:
            kept = self._store.add_rejections(self._take, self._keep_count,
                                              now_us - self._keep_us)
        except Exception:  # a store that is closing or away: the refusal still answers
            lost = self._take()
            log.warning("could not keep %d refusals", len(lost), exc_info=True)
            return
        kept.add_done_callback(_log_failure)

    def _take(self) -> list[RejectionRow]:
        """The refusals gathered (on the writer, in its transaction)."""
        with self._lock:
            rows, self._gathered = self._gathered, []
        return rows


def _import_violations(failure: str) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """The field violations an import failure's message names (see
    bulk_import.failure_message: `where: field: why; field: why`)."""
    found = []
    for part in _LINE.sub("", failure, count=1).split("; ")[:KEPT_VIOLATIONS]:
        match = _VIOLATION.match(part)
        if match:
            found.append(error_details_pb2.BadRequest.FieldViolation(
                field=match[1], description=match[2]))
    return found


def _log_failure(kept: Future[Any]) -> None:
    if kept.exception() is not None:
        log.warning("could not keep refusals: %s", kept.exception())
