"""Keeping refused requests, so a person can see why an event was refused: every
refused write, pixel and client event, every refused call that would change the
store's events or products (a product write, an import, purge or rejoin refused
when called: from the call envelope) and every failed import line, of events and
of products (from the import job), as console.v1 Rejections in the store, where
every replica sees them, within a count and an age.

Never a key or an auth header: a Rejection holds the key's name from the auth
file and the request message, and keys travel only in metadata (the pixel's
`?key=` is a query parameter, not a field of the request).

A request is kept as its bytes, and its JSON (Rejection.request_json) is made
when the refusal is read (`shown`): in a flood nearly every refusal is trimmed
unread, and rendering JSON cost more than all the rest of keeping one.

Refusals alike (the same call, key, answer and request bytes) gathered for one
write of the store are kept as one row that counts the others (Rejection.repeats,
last_time): a flood of one bad request costs the writer a row a tenth of a second,
not a row per try, and shows as one line that says how often, not thousands of
the same.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import grpc
import orjson
from footfall.console.v1 import console_pb2
from google.protobuf import any_pb2, json_format, unknown_fields
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from server.clock import Clock
from server.console import origin
from server.errors import (
    MAX_REPORTED_VIOLATIONS,
    FieldViolation,
    FootfallError,
    InvalidArgument,
    Unauthenticated,
)
from server.names import DEFAULT_TENANT_ID, is_project_id
from server.operations.summary import unpacked
from server.periodic import Periodic
from server.policy.auth import RESOURCE_FIELDS, WRITER_METHODS, NotYourProject, project_of
from server.store.base import Store
from server.store.console import RejectionRow
from server.store.packed import timestamp, varint

log = logging.getLogger(__name__)

_RETAIL_VERSIONS = ("v2", "v2beta", "v2alpha")
# The calls that change what the store holds besides the event writes (an admin's:
# no public key floods them), each refused when called; a refused GetProduct,
# ListProducts or export changes nothing, and is not kept.
STORE_WRITE_METHODS = frozenset({
    *(f"/google.cloud.retail.{version}.ProductService/{rpc}" for version in _RETAIL_VERSIONS
      for rpc in ("CreateProduct", "UpdateProduct", "DeleteProduct", "ImportProducts",
                  "PurgeProducts", "SetInventory", "AddFulfillmentPlaces",
                  "RemoveFulfillmentPlaces", "AddLocalInventories", "RemoveLocalInventories")),
    *(f"/google.cloud.retail.{version}.UserEventService/{rpc}" for version in _RETAIL_VERSIONS
      for rpc in ("ImportUserEvents", "PurgeUserEvents", "RejoinUserEvents")),
})
# The refusals kept: event writes (what a writer key may call), and the other writes.
KEPT_METHODS = WRITER_METHODS | STORE_WRITE_METHODS
IMPORT_METHOD = "/google.cloud.retail.v2.UserEventService/ImportUserEvents"
IMPORT_PRODUCTS_METHOD = "/google.cloud.retail.v2.ProductService/ImportProducts"
REQUEST_JSON_CHARS = 4096  # a few KB of each refused request
# How often the refusals past their age are forgotten when no new refusal comes
# (each refusal kept forgets them too).
FORGET_SECONDS = 600.0
RENDERED_BYTES = 64 * 1024  # larger requests are not rendered as JSON at all (a flood's cost)
# Requests up to this size are kept as bytes (their JSON made when read); larger
# ones as their JSON cut to REQUEST_JSON_CHARS at once, so that a row stays small.
KEPT_REQUEST_BYTES = 4096
# The stored Rejection's field holding the request (a google.protobuf.Any) until
# it is read: a number the contract does not use (a reader of the raw row sees an
# unknown field).
REQUEST_FIELD = 1000
_REQUEST_TAG = varint(REQUEST_FIELD << 3 | 2)  # length-delimited
_FIELDS = console_pb2.Rejection.DESCRIPTOR.fields_by_name
_TIME_TAG = varint(_FIELDS["time"].number << 3 | 2)
_REPEATS_TAG = varint(_FIELDS["repeats"].number << 3)  # a varint
_LAST_TIME_TAG = varint(_FIELDS["last_time"].number << 3 | 2)
_ANY_PREFIX = "type.googleapis.com/"
_TYPE_URLS: dict[Any, bytes] = {}  # a request type's Any.type_url field, made once
ALIKE_KINDS = 256  # kinds of refusal whose common part is kept made (see Rejections._alike_part)
# ... and their bytes, about (the part made, and the message and violations of the
# kind's key: each up to ~100 KB of 4-byte characters, 256 of which held 50 MB).
ALIKE_BYTES = 4 * 1024 * 1024
KEPT_VIOLATIONS = 20
# A refusal's message, and its field violations together, are kept to about this many
# characters (the message still ending with the count of the violations it leaves
# out): an answer names up to 100 violations of up to 2,000 characters each (a
# description may quote what was sent), and 120 products of a currency code of 1,000
# characters each made a kept row of 128 KB (500 KB of 4-byte characters), 2,000 of
# which one project's writer key may keep, and 256 kinds of which were held in memory.
# An answer of 100 violations of ordinary length is kept whole (100 missing product ids:
# 5,500 characters; 100 attributes of the wrong type: 9,600): cut at 4,096, the console
# showed 72 of 100 missing ids.
KEPT_TEXT_CHARS = 12_288
GATHERED_LIMIT = 10_000  # refusals waiting for the writer, at most
# ... and their bytes (the rows gathered, and those a job of the writer took and has not
# committed), at most: a refusal is kept as a row of up to ~150 KB (its message and
# violations of 12,288 characters each, 4 bytes each), and 10,000 of them waited while
# the store was locked, twice over (gathered, and taken by a job tried again): a flood
# of 1 MiB writes refused for their 250 currency codes grew a server from 71 MiB to
# 570 MiB in 150 s, on its way to gigabytes. Ordinary refusals are a few hundred bytes:
# GATHERED_LIMIT of them fit.
GATHERED_BYTES = 16 * 1024 * 1024
# `gs://b/f.json line 4: ` before an import failure's violations
_LINE = re.compile(r"^\S+ line \d+: ")
_VIOLATION = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.+)$", re.S)
# A "key" member of a body that could not be read, as its text: no request field is
# named key, so only an API key can stand there (a pixel's POST given the key of its
# ?key= in its body as well), and a refusal never keeps a key.
_KEY_MEMBER = re.compile(rb'("key"\s*:\s*)"(?:[^"\\]|\\.)*"')
KEY_MASK = "(not kept: an API key)"
KEY_NOT_KEPT = b'"%s"' % KEY_MASK.encode()
# A status code's number, by the code: an enum's hash is a call of Python, and a
# refusal's `alike` was hashed three times.
_CODE_NUMBERS = {code: code.value[0] for code in grpc.StatusCode}
_LENGTHS = [varint(n) for n in range(0x80)]
_CALLS: dict[tuple[str, str], int] = {}  # origin.of_call(transport, method), made once
# A RejectionRow made as the tuple it is, without the call of Python its class's
# __new__ is.
_row = functools.partial(tuple.__new__, RejectionRow)


def _violations(error: FootfallError, key: str = ""
                ) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """The first KEPT_VIOLATIONS field violations of `error`, as many as fit in
    KEPT_TEXT_CHARS (at least one), `key` masked in them."""
    for detail in error.details():
        if isinstance(detail, error_details_pb2.BadRequest):
            kept: list[error_details_pb2.BadRequest.FieldViolation] = []
            chars = 0
            for violation in detail.field_violations[:KEPT_VIOLATIONS]:
                chars += len(violation.field) + len(violation.description)
                if kept and chars > KEPT_TEXT_CHARS:
                    break
                kept.append(violation)
            for violation in kept if key else ():
                violation.field = violation.field.replace(key, KEY_MASK)
                violation.description = violation.description.replace(key, KEY_MASK)
            return kept
    return []


def _key_masked(error: FootfallError, key: str) -> FootfallError:
    """`error` with `key` masked in the violations it names, before each is clipped to
    MAX_REPORTED_CHARS (as the error is made, its message too): masked after, a key
    across the clip of a description quoting what was sent was kept in part, where no
    mask found it. Itself when none of those it names holds the key."""
    if not key or not isinstance(error, InvalidArgument):
        return error
    named = error.violations[:MAX_REPORTED_VIOLATIONS]
    if not any(key in v.field or key in v.description for v in named):
        return error
    # (those without the key as they are: the markers of violations not listed are
    # told by what they are)
    masked = [v if key not in v.field and key not in v.description else
              FieldViolation(v.field.replace(key, KEY_MASK), v.description.replace(key, KEY_MASK))
              for v in named]
    return InvalidArgument(masked + error.violations[MAX_REPORTED_VIOLATIONS:])


def _message(error: FootfallError, key: str = "") -> tuple[str, bool]:
    """The message of `error` as kept, `key` masked in it (before it is cut: a key
    across the cut was kept in part, where no mask found it), and whether it was cut:
    to about KEPT_TEXT_CHARS (an INVALID_ARGUMENT's at a violation, ending with the
    count of those left out)."""
    message = error.message.replace(key, KEY_MASK) if key else error.message
    if len(message) <= KEPT_TEXT_CHARS:
        return message, False
    if isinstance(error, InvalidArgument):  # (cut between violations, masked after)
        shorter = error.shorter_message(KEPT_TEXT_CHARS)
        return (shorter.replace(key, KEY_MASK) if key else shorter), True
    return message[:KEPT_TEXT_CHARS - 3] + "...", True


@dataclass(frozen=True)
class UnreadBody:
    """A request whose HTTP body could not be read into it (an unknown field, a bad
    time): `bare`, as its URL path names it, and the `body` as sent, which its refusal
    keeps beside it (under `field`, the JSON name of the request field the body
    fills; "" when the body is the whole request): kept without it, the console
    showed `{"parent": ...}` and marked its violation on the `{`."""

    bare: Message
    body: bytes
    field: str

    def json(self) -> tuple[str, bool]:
        """The request's JSON with the body as sent in it, cut to REQUEST_JSON_CHARS
        (a body that is not JSON as text; one too long to read here, its start as it
        came, in its place); whether cut."""
        head, cut = _request_json(self.bare)
        document = orjson.loads(head) if head and not cut else {}
        body = _KEY_MEMBER.sub(rb"\1" + KEY_NOT_KEPT, self.body)
        value: Any = body[:REQUEST_JSON_CHARS].decode("utf-8", "replace")
        if len(body) > REQUEST_JSON_CHARS:
            # Too long to read here: its start as sent, in its place (a body that is the
            # whole request, alone), cut as the whole is said to be (written as a JSON
            # string, its every quote escaped, the console showed `"clientEvent":
            # "{\"eventId\": ...`, as if a text had been sent).
            opened = orjson.dumps({**document, self.field: 0}).decode()[:-2] \
                if self.field else ""
            return (opened + value)[:REQUEST_JSON_CHARS], True
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # not JSON: kept as the text it is
        if self.field:
            document[self.field] = value
        elif isinstance(value, dict):
            document = {**value, **document}
        else:
            document["body"] = value
        try:
            text = orjson.dumps(document).decode()
        except orjson.JSONEncodeError:  # (nested deeper than orjson writes)
            text = orjson.dumps({**document, self.field or "body": body[
                :REQUEST_JSON_CHARS].decode("utf-8", "replace")}).decode()
        return text[:REQUEST_JSON_CHARS], cut or len(text) > REQUEST_JSON_CHARS


def _request_json(request: Any, whole: bool = False) -> tuple[str, bool]:
    """The request as proto3 JSON, cut to REQUEST_JSON_CHARS (not if `whole`);
    whether it was cut."""
    if not isinstance(request, Message):
        return "", request is not None  # bytes that never decoded
    if request.ByteSize() > RENDERED_BYTES:
        return "", True
    try:
        text = json_format.MessageToJson(request, indent=None)
    except (json_format.SerializeToJsonError, ValueError):
        # What proto3 JSON cannot write (a FieldMask path with an upper-case letter, a
        # client may send one): kept without its JSON, as one too large is. (It raised
        # out of the refusal, answering UNKNOWN, or out of every read of the list.)
        return "", True
    if whole:
        return text, False
    return text[:REQUEST_JSON_CHARS], len(text) > REQUEST_JSON_CHARS


# The longest parent kept as given: longer than any valid name (names.MAX_SEGMENT), so
# only one refused for its length is cut, and a refusal stays a few KB however long
# the parent it was sent (a megabyte each made a page of refusals pass every
# client's message limit).
KEPT_PARENT_CHARS = 2_000


def _project(parent: str) -> str:
    """The project a refusal of `parent` is kept under: "" (none) for what is no
    project id (a segment of kilobytes: the project column is indexed, and
    PostgreSQL's index rows take 2,704 bytes at most)."""
    project = project_of(parent) or ""
    return project if is_project_id(project) else ""


# Talent v4beta1 takes a project alone (projects/P) for its default tenant, whose
# events are kept under projects/P/tenants/DEFAULT_TENANT_ID: so are its refusals,
# listed with the tenant's (its page showed none of them; Rejection.parent stays as
# sent).
_DEFAULT_TENANT_METHOD = "/google.cloud.talent.v4beta1.EventService/CreateClientEvent"


# What a product call names below its catalog (a branch, a product, an inventory):
# its refusal is listed with the catalog's, as the console's feed narrows them.
_UNDER_CATALOG = re.compile(r"^(projects/[^/]+/locations/[^/]+/catalogs/[^/]+)/branches/.")


def kept_under(method: str, parent: str) -> str:
    """The parent a refusal of a call to `method` that named `parent` is listed by:
    `parent`; the default tenant of a project alone named to talent v4beta1; the
    catalog of what a call other than an event write names under a catalog (a
    branch, a product: an event write naming one is refused for it, and listed as
    sent)."""
    if method == _DEFAULT_TENANT_METHOD and parent.startswith("projects/") \
            and parent.count("/") == 1 and is_project_id(parent[len("projects/"):]):
        return f"{parent}/tenants/{DEFAULT_TENANT_ID}"
    if method in STORE_WRITE_METHODS:
        under = _UNDER_CATALOG.match(parent)
        if under is not None:
            return under[1]
    return parent


# The methods whose refusals `kept_under` may list by another parent than they name.
_LISTED_ELSEWHERE = STORE_WRITE_METHODS | {_DEFAULT_TENANT_METHOD}


def _parent_text(parent: str) -> str:
    """`parent` as kept: cut past KEPT_PARENT_CHARS."""
    return parent if len(parent) <= KEPT_PARENT_CHARS else parent[:KEPT_PARENT_CHARS] + "..."


def _parent(request: Any) -> str:
    """The resource the request names: its `parent`, else (a product's call) the name
    of what it acts on (`product.name`, `inventory.name`, `name`, `product`); whole
    (see _parent_text)."""
    parent = ""
    for path in RESOURCE_FIELDS:
        value: Any = request
        for name in path:
            value = getattr(value, name, "")
        if isinstance(value, str) and value:
            parent = value
            break
    return parent


class Rejections:
    """Writes refusals to `store` without waiting for them (a refusal is never
    held up, nor failed, by keeping it), keeping the last `keep_count` and
    those of the last `keep_seconds` (none when `keep_count` is 0).

    Refusals are gathered, and one job of the store's writer takes all those
    gathered when it runs: a flood of refusals costs the writer one insert (and
    one trim) every ALONG_SECONDS, not one per refusal nor per group commit.
    That job rides along with a commit of other writes (or makes its own when
    there is none), so the accepted writes never wait behind a commit made for
    refusals alone.
    At most GATHERED_LIMIT wait, and GATHERED_BYTES of them (with those a job
    has taken and not yet committed), however many `keep_count` keeps: should the
    store be away that long, the oldest gathered are let go (the newest, while a
    job holds all the room), counted in `skipped` (/metrics:
    footfall_rejections_not_kept), said in the log when the first is let go, and
    how many once the store takes the others."""

    def __init__(self, store: Store, clock: Clock, keep_count: int, keep_seconds: float,
                 keep_per_project: int | None = None) -> None:
        self._store = store
        self._clock = clock
        self._keep_count = keep_count
        self._keep_per_project = keep_per_project
        self._keep_us = int(keep_seconds * 1_000_000)
        self._lock = threading.Lock()
        self._gathered: list[RejectionRow] = []
        # The refusals of `_gathered` that others alike may join: (alike, request
        # bytes) -> [its index in `_gathered`, repeats, the last one's time in ns].
        self._repeats: dict[tuple[Any, bytes | None], list[int]] = {}
        # ... and of rows whose key was let go as older ones were (see _let_go_oldest),
        # by index. (The indexes count the rows let go from the front of `_gathered`
        # since it was taken, `_dropped`: the row's is its index less that.)
        self._unkeyed: deque[list[int]] = deque()
        self._dropped = 0
        self._last: Future[Any] | None = None  # of the newest job keeping refusals
        # A job is queued that will take what is gathered (until it runs, or fails
        # before it could: then the next refusal, or a reader, queues another).
        self._queued = False
        self.skipped = 0  # refusals let go unwritten: too many waited, or the store refused them
        self._let_go = 0  # of those, the ones not yet said in the log
        self._gathered_bytes = 0  # of the payloads of `_gathered`
        self._taken_bytes = 0  # of the rows jobs took and have not committed (or failed)
        self._forgetting: Periodic | None = None
        self._trim: Future[Any] | None = None  # of the last job `imported` queued
        # What refusals alike share, made once (see `_alike_part`): in a flood most are.
        self._alike: dict[tuple[Any, ...], tuple[str, bytes]] = {}
        self._alike_bytes = 0

    def start(self, every_seconds: float = FORGET_SECONDS) -> None:
        """Forget the refusals past their age or count now (so that a start with
        `keep_count` 0 forgets those kept before), then every `every_seconds`: a
        trim comes with each refusal kept, and none when none comes."""
        self._forgetting = Periodic(lambda: self.forget_old().result(), every_seconds,
                                    "footfall-refusals-forget", "forgetting old refusals")
        self._forgetting.start(first_on_thread=True)

    def stop(self) -> None:
        if self._forgetting is not None:
            self._forgetting.stop(10)

    def forget_old(self) -> Future[Any]:
        """The store's job forgetting the refusals past `keep_seconds` or the counts."""
        return self._store.add_rejections([], self._keep_count, self._clock.now_ns() // 1000
                                          - self._keep_us, self._keep_per_project)

    def refused(self, method: str, transport: str, request: Any, error: FootfallError,
                key_name: str | None, key: str = "") -> None:
        """Keep the refusal of a call to `method` on `transport` ("grpc", "http"),
        if it is an event write by a caller the server knows, in a project its key
        may use: without a valid key (UNAUTHENTICATED) anyone could flood out the
        refusals of real clients, and make the server write for each try; with a key
        of another project (a writer key is public in a shop's pages) anyone could
        flood out a project's refusals from outside it. Those are counted in
        /metrics only. `key`, the caller's key, is masked wherever the request holds
        it (a body that is not JSON, a string field: a refusal never keeps a key)."""
        if method not in KEPT_METHODS or not self._keep_count \
                or isinstance(error, (Unauthenticated, NotYourProject)):
            return
        # (a message first: isinstance of one against another class looks its
        # `__class__` up as it would a field, a few times the cost of the check)
        is_message = isinstance(request, Message)
        unread = not is_message and isinstance(request, UnreadBody)
        target = request.bare if unread else request
        parent = getattr(target, "parent", None)  # (RESOURCE_FIELDS' first: most requests')
        if not parent or not isinstance(parent, str):
            parent = _parent(target)
        if key:
            error = _key_masked(error, key)
        data = request.SerializeToString() if is_message else request.body if unread else None
        # (the message as kept: a whole one of 100 long violations, held as the key
        # of each of ALIKE_KINDS, held 180 MB after 250 such refusals)
        # (the key masked wherever the request's text stands, not in its JSON alone:
        # in what the answer quotes of it too, `ip_address: ... got 'KEY'`)
        message = error.message
        cut = False
        if key or len(message) > KEPT_TEXT_CHARS:
            message, cut = _message(error, key)
        # ... which, cut, names fewer violations than are kept: the kept ones tell such
        # refusals apart too (else one past the message's cut was the first refusal's
        # in every refusal alike that followed)
        told = tuple((v.field, v.description) for v in _violations(error, key)) if cut else ()
        if key:
            if key in parent or (data is not None and key.encode() in data):
                request, data = _KeyMasked(request, key), None  # (kept as its JSON, masked)
            parent = parent.replace(key, KEY_MASK)
        if len(parent) > KEPT_PARENT_CHARS:  # (cut once masked: a key across the cut was
            parent = _parent_text(parent)  # kept in part)
        call = _CALLS.get((transport, method))
        if call is None:  # (of a few: KEPT_METHODS on each transport)
            call = _CALLS[transport, method] = origin.of_call(transport, method)
        alike = (call, method, parent, key_name or "", _CODE_NUMBERS[error.code], message, told)
        now_ns = self._clock.now_ns()
        # Alike requests are found by their bytes, of those kept as bytes only: a
        # large one (kept as its JSON, cut) would hold its megabytes while it waits.
        same = (alike, data) if data is not None and len(data) <= KEPT_REQUEST_BYTES else None
        with self._lock:
            repeated = self._repeats.get(same) if same is not None else None
            if repeated is not None:  # one alike waits still: it counts this one
                repeated[1] += 1
                repeated[2] = now_ns
                stranded, self._queued = not self._queued, True
        if repeated is not None:
            if stranded:  # its job failed before taking it: another takes them
                self._queue()
            return
        found = self._alike.get(alike)
        project, common = found if found is not None else self._alike_part(alike, error, key)
        # (in a flood of refusals no two alike each makes its row, on the busy loop,
        # where each call of Python costs about a microsecond: the steps that need
        # none are written out here and above; they were a third of the calls)
        self._keep(_row((project, parent if method not in _LISTED_ELSEWHERE
                         else kept_under(method, parent), now_ns // 1000,
                         common + _time(now_ns) + _request(request, data), origin.now_us())),
                   same)

    def import_rows(self, operation: str, failures: Sequence[str],
                    method: str = IMPORT_METHOD, parent: str = "") -> list[RejectionRow]:
        """The refusals to keep for the failed lines (their messages) of a batch of the
        import `operation`, a call to `method` that named `parent` (as sent; the
        operation's own parent when not given): its step inserts them as it commits the
        batch (Step.rejections), so that a crash keeps them exactly when it keeps the
        batch. No rows when keeping is off. Then `imported` trims."""
        if not failures or not self._keep_count:
            return []
        # Listed by the operation's parent, as the server named it (a catalog; a
        # products' branch, `default_branch` as 0: by its catalog).
        under = operation.rpartition("/operations/")[0]
        project = _project(under)
        listed = kept_under(method, under)
        now_ns = self._clock.now_ns()
        return [RejectionRow(project, listed, now_ns // 1000, console_pb2.Rejection(
            transport=origin.IMPORT, method=method,  # type: ignore[arg-type]
            parent=_parent_text(parent or under), operation=operation, code=3,
            message=_import_message(failure),
            field_violations=_import_violations(failure),
        ).SerializeToString() + _time(now_ns)) for failure in failures]

    def imported(self, operation: str) -> None:
        """A batch's step of the import `operation` kept import_rows: forget those past
        the counts and age, as keeping a refusal does (of its project alone past
        keep_per_project: every project's, after each batch, cost some 30 ms of the writer
        beside 1,000 projects' refusals on PostgreSQL); one such job at a time (a fast
        import's batches do not queue one each)."""
        if not self._keep_count:  # (none kept: nothing to trim)
            return
        with self._lock:
            if self._trim is not None and not self._trim.done():
                return
            try:
                self._trim = self._store.add_rejections(
                    [], self._keep_count, self._clock.now_ns() // 1000 - self._keep_us,
                    self._keep_per_project,
                    projects=[_project(operation.rpartition("/operations/")[0])])
            except Exception:  # a store that is closing or away: the next one trims
                log.warning("could not forget old refusals", exc_info=True)

    def _alike_part(self, alike: tuple[Any, ...], error: FootfallError, key: str = ""
                    ) -> tuple[str, bytes]:
        """The project of the parent, and the fields of the Rejection that every
        refusal `alike` has (all but its time and request) serialized, its field
        violations with `key` masked: made for the first, looked up for the others.
        Alike: the same call (transport, method, parent), key name and answer (code
        and message: the message names its field violations; a message cut, those
        kept too)."""
        found = self._alike.get(alike)
        if found is None:
            if len(self._alike) >= ALIKE_KINDS or self._alike_bytes > ALIKE_BYTES:
                self._alike.clear()
                self._alike_bytes = 0
            transport, method, parent, key_name, _, message, _ = alike
            violations = _violations(error, key)
            found = self._alike[alike] = (_project(parent), console_pb2.Rejection(
                transport=transport,  # type: ignore[arg-type]
                method=method, parent=parent, key_name=key_name, code=error.code.value[0],
                message=message, field_violations=violations).SerializeToString())
            # (the key holds the message and violations again, as text)
            self._alike_bytes += 2 * len(found[1])
        return found

    def _keep(self, row: RejectionRow, same: tuple[Any, bytes | None] | None = None) -> None:
        """Gather `row` for the writer; a refusal `same` as later ones may count it."""
        with self._lock:
            first = not self._queued  # else the writer's queued job takes these too
            self._queued = True
            if same is not None:
                self._repeats[same] = [self._dropped + len(self._gathered), 0, 0]
            self._gathered.append(row)
            self._gathered_bytes += len(row.payload)
            # (not keep_count, if more: with a --rejections-keep of millions a store
            # away for long had millions of refusals held in memory)
            room = GATHERED_BYTES - self._taken_bytes
            first_let_go = False
            if len(self._gathered) > GATHERED_LIMIT or self._gathered_bytes > room:
                first_let_go = self._let_go_oldest(room)  # the store is away, or far behind
        if first_let_go:
            # (said at once: a store away for good never takes the rest, whose count
            # `_take` says; the metric counts each)
            log.warning("refused requests are being let go unkept: the store has not taken "
                        "them, and more than %d of them, or %d MiB, waited "
                        "(footfall_rejections_not_kept counts them)",
                        GATHERED_LIMIT, GATHERED_BYTES // 1024 // 1024)
        if first:
            self._queue()

    def _let_go_oldest(self, room: int) -> bool:
        """Let the oldest gathered go, so that GATHERED_LIMIT at most are left, of
        `room` bytes at most, counted (with the lock held); whether they are the
        first let go since the log last said how many were."""
        count, size = 0, self._gathered_bytes
        while count < len(self._gathered) and (
                len(self._gathered) - count > GATHERED_LIMIT or size > room):
            size -= len(self._gathered[count].payload)
            count += 1
        del self._gathered[:count]
        self._gathered_bytes = size
        self._dropped += count
        # The repeats a row let go counted are let go with it; those of the rows left
        # stay, unkeyed: their next alike is a row of its own again (a key holds its
        # refusal's message and request, as large as the row: kept, the keys of the
        # rows left held as much again as GATHERED_BYTES). Cleared with the keys, the
        # repeats of the rows left were lost, counted nowhere.
        self._unkeyed.extend(counted for counted in self._repeats.values() if counted[1])
        self._repeats.clear()
        let_go = count
        while self._unkeyed and self._unkeyed[0][0] < self._dropped:
            let_go += self._unkeyed.popleft()[1]
        first = not self._let_go
        self.skipped += let_go
        self._let_go += let_go
        return first

    def _queue(self) -> None:
        """Queue the job that takes what is gathered."""
        now_us = self._clock.now_ns() // 1000
        taken = [0, 0]  # the bytes the job takes, and its rows, until it ends
        try:
            kept = self._store.add_rejections(functools.partial(self._take, taken),
                                              self._keep_count, now_us - self._keep_us,
                                              self._keep_per_project)
        except Exception:  # a store that is closing or away: the refusal still answers
            lost = self._take(taken)
            with self._lock:
                self._taken_bytes -= taken[0]
                self.skipped += taken[1]
            log.warning("could not keep %d refusals", len(lost), exc_info=True)
            return
        kept.add_done_callback(functools.partial(self._done, taken))
        self._last = kept

    def _done(self, taken: list[int], kept: Future[Any]) -> None:
        """A job ended: the `taken` bytes no longer wait. One that failed before it
        took the refusals gathered (the store busy or away at its BEGIN) leaves them
        waiting: the next refusal, or a reader (`waiting`), queues another; one
        that failed after (the store refused the insert) lost those it took: counted
        in `skipped`."""
        failed = kept.exception()
        with self._lock:
            self._taken_bytes -= taken[0]
            lost = taken[1] if failed is not None else 0
            self.skipped += lost
            taken[0] = taken[1] = 0
        if failed is not None:
            log.warning("could not keep refusals (%d taken, lost): %s", lost, failed)
            with self._lock:
                if self._gathered:
                    self._queued = False

    def waiting(self) -> bool:
        """Whether refusals made here are not yet committed (gathered, or in a
        commit still to come)."""
        with self._lock:
            if self._gathered:
                stranded, self._queued = not self._queued, True
            else:
                return self._last is not None and not self._last.done()
        if stranded:  # their job failed: another, so that the reader's flush keeps them
            self._queue()
        return True

    def _take(self, taken: list[int]) -> list[RejectionRow]:
        """The refusals gathered (on the writer, in its transaction), each with the
        count of the repeats it stands for; their bytes added to `taken`, and to
        what waits until the job ends (`_done`)."""
        with self._lock:
            rows, self._gathered = self._gathered, []
            taken[0] += self._gathered_bytes
            self._taken_bytes += self._gathered_bytes
            self._gathered_bytes = 0
            repeats = [*self._repeats.values(), *self._unkeyed]
            self._repeats, dropped = {}, self._dropped
            self._unkeyed.clear()
            self._dropped = 0
            # (the refusals they stand for, lost with them should the job fail)
            taken[1] += len(rows) + sum(repeated for _, repeated, _ in repeats)
            self._queued = False
            let_go, self._let_go = self._let_go, 0
        if let_go:
            log.warning("%d refused requests were not kept: the store could not take them for "
                        "so long that more than %d of them, or %d MiB, waited (only the "
                        "latest wait)", let_go, GATHERED_LIMIT, GATHERED_BYTES // 1024 // 1024)
        for index, count, last_ns in repeats:
            if count:
                row = rows[index - dropped]
                rows[index - dropped] = row._replace(
                    payload=row.payload + _repeated(count, last_ns))
        return rows


# A kept Rejection is made of parts, each a serialized message of its own: parsing
# them as one merges them (the way protobuf reads concatenated messages).
def _stamp(ns: int) -> bytes:
    """A google.protobuf.Timestamp of `ns` (since the epoch, not before it)
    serialized: seconds (field 1) and nanos (field 2), each left out when 0."""
    return timestamp(*divmod(ns, 1_000_000_000))


def _time(ns: int, tag: bytes = _TIME_TAG) -> bytes:
    """A Rejection's Timestamp field `tag` (its `time` unless told), `ns`."""
    stamp = timestamp(*divmod(ns, 1_000_000_000))  # (as _stamp: one call less a refusal)
    return tag + _LENGTHS[len(stamp)] + stamp  # (up to 16 bytes: a varint of one)


def _repeated(count: int, last_ns: int) -> bytes:
    """A Rejection's `repeats` (`count`) and `last_time` (`last_ns`) fields."""
    return _REPEATS_TAG + varint(count) + _time(last_ns, _LAST_TIME_TAG)


@dataclass(frozen=True)
class _KeyMasked:
    """A request (a message or an UnreadBody) that holds the caller's `key`: kept as
    its JSON with the key masked wherever it stands."""

    request: Any
    key: str

    def json(self) -> tuple[str, bool]:
        """As UnreadBody.json: the key masked before the text is cut (a key that the
        cut would split is masked all the same)."""
        if isinstance(self.request, UnreadBody):
            body = self.request.body.replace(self.key.encode(), KEY_MASK.encode())
            return replace(self.request, body=body).json()
        text, cut = _request_json(self.request, whole=True)
        text = text.replace(self.key, KEY_MASK)
        return text[:REQUEST_JSON_CHARS], cut or len(text) > REQUEST_JSON_CHARS


def _request(request: Any, data: bytes | None) -> bytes:
    """The request of a Rejection as kept (`data`: it serialized, if a message):
    itself as the field REQUEST_FIELD when it is small enough, else its JSON
    (cut) now."""
    if data is not None and len(data) <= KEPT_REQUEST_BYTES and isinstance(request, Message):
        # (a message asked first: see Rejections.refused)
        # a google.protobuf.Any: type_url (field 1), value (field 2)
        type_url = _TYPE_URLS.get(request.DESCRIPTOR)
        if type_url is None:
            url = (_ANY_PREFIX + request.DESCRIPTOR.full_name).encode()
            type_url = _TYPE_URLS[request.DESCRIPTOR] = b"\x0a" + varint(len(url)) + url
        # (their lengths, of 2 bytes at most here, written out: a call of `varint`
        # for each cost a tenth of keeping a refusal)
        size = len(data)
        wrapped = type_url + b"\x12" + (_LENGTHS[size] if size < 0x80 else bytes(
            (size & 0x7F | 0x80, size >> 7))) + data
        size = len(wrapped)
        return _REQUEST_TAG + (_LENGTHS[size] if size < 0x80 else bytes(
            (size & 0x7F | 0x80, size >> 7)) if size < 0x4000 else varint(size)) + wrapped
    if isinstance(request, (UnreadBody, _KeyMasked)):
        text, cut = request.json()
        return console_pb2.Rejection(request_json=text, request_truncated=cut
                                     ).SerializeToString()
    text, cut = _request_json(request)
    return console_pb2.Rejection(request_json=text, request_truncated=cut).SerializeToString()


def shown(row_id: int, payload: bytes) -> console_pb2.Rejection:
    """The Rejection kept as `payload` (see `_request`) with its id, and the JSON
    of its request made now if it was kept as itself."""
    rejection = console_pb2.Rejection.FromString(payload)
    rejection.id = row_id
    unknown = unknown_fields.UnknownFieldSet(rejection)
    for field in (unknown[i] for i in range(len(unknown))):
        if field.field_number == REQUEST_FIELD:
            request = unpacked(any_pb2.Any.FromString(field.data))
            rejection.request_json, rejection.request_truncated = \
                _request_json(request) if request is not None else ("", True)
    rejection.DiscardUnknownFields()
    return rejection


# What ends an import failure's message cut (at a violation) to about KEPT_TEXT_CHARS.
IMPORT_CUT = "; and more (the message is cut)"


def _import_message(failure: str) -> str:
    """An import failure's message as kept: cut at a violation to about KEPT_TEXT_CHARS,
    as a refused call's is. (Kept whole, a line of 100 violations quoting 1,000
    characters each was a row of 100,000 characters, 400 KB of 4-byte ones, and a batch
    of 1,000 such lines held as many while its step ran.)"""
    if len(failure) <= KEPT_TEXT_CHARS:
        return failure
    room = KEPT_TEXT_CHARS - len(IMPORT_CUT)
    cut = failure.rfind("; ", 0, room)
    return (failure[:cut] if cut > 0 else failure[:room]) + IMPORT_CUT


def _import_violations(failure: str) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """The field violations an import failure's message names (see
    bulk_import.failure_message: `where: field: why; field: why`), the first
    KEPT_VIOLATIONS as many as fit in KEPT_TEXT_CHARS (at least one), as a refused
    call's are."""
    found: list[error_details_pb2.BadRequest.FieldViolation] = []
    chars = 0
    for part in _LINE.sub("", failure, count=1).split("; ")[:KEPT_VIOLATIONS]:
        match = _VIOLATION.match(part)
        if match:
            chars += len(match[1]) + len(match[2])
            if found and chars > KEPT_TEXT_CHARS:
                break
            found.append(error_details_pb2.BadRequest.FieldViolation(
                field=match[1], description=match[2]))
    return found

