"""What the console's watches read: the rows of one table and scope, made into
feed items (see `feed`). Each `key` names what its source reads, so that the
watches of one catalog and filter, one tenant or one project share a feed."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from functools import partial

from google.protobuf.message import Message

from server.console import queries, rejections
from server.console.client_filter import ClientEventFilter
from server.console.feed import Item, Page
from server.policy.auth import project_of
from server.store import Store
from server.store.console import StoredEvent, may_continue


class _UserEventItem(Item):
    """The item of a stored user event: its message and bytes made from its row
    when first used, by its methods rather than by makers of its own (two `partial`s
    a row: 0.63-0.70 µs to make an item, now 0.43-0.47, and 375 bytes more held)."""

    __slots__ = ("_row",)

    def __init__(self, row: StoredEvent) -> None:
        super().__init__(row.id, None, len(row.payload) + len(row.source or b""))
        self._row = row

    def message(self) -> Message:
        return queries.stored_user_event(self._row)

    def _serialized(self) -> bytes:
        return queries.stored_user_event_wire(self._row)


@dataclass(frozen=True)
class UserEvents:
    """The user events of a catalog that a console filter selects."""

    store: Store
    events: queries.EventFilter
    filter_text: str

    @property
    def key(self) -> Hashable:
        return ("user_events", self.events.query.catalog, self.filter_text.strip())

    @property
    def decoding(self) -> Hashable | None:
        """Whose reads these are, when each decodes every row it reads (a filter by
        session or product: see feed.Watches._catch_up); None when the store selects."""
        return project_of(self.events.query.catalog) if self.events.on_events else None

    def read(self, after: int) -> Page:
        rows = self.store.user_events_after(self.events.query, after, queries.MAX_PAGE)
        if not rows:
            return Page(after, [], False)
        full = may_continue(rows, queries.MAX_PAGE)
        if not self.events.on_events:  # each message is made once, when first sent
            return Page(rows[-1].id, [_UserEventItem(r) for r in rows], full)
        # the terms checked on the decoded events: decoded here, off the loop, and let
        # go (an item keeps its row, not the message: see feed.Item)
        items: list[Item] = []
        for r in rows:
            if not self.events.may_select(r.payload):  # (not decoded: see may_select)
                continue
            if self.events.selects(queries.stored_user_event(r).user_event):
                items.append(_UserEventItem(r))
        return Page(rows[-1].id, items, full)

    def last(self) -> int:
        return self.store.last_id("user_events")


@dataclass(frozen=True)
class ClientEvents:
    """The client events of a tenant that a console filter selects."""

    store: Store
    tenant: str
    events: ClientEventFilter | None = None  # (None: all of them)
    filter_text: str = ""

    @property
    def key(self) -> Hashable:
        return ("client_events", self.tenant, self.filter_text.strip())

    @property
    def decoding(self) -> Hashable | None:
        """Whose reads these are when they decode the rows they read (see
        UserEvents.decoding)."""
        return project_of(self.tenant) if self.events is not None and self.events.on_events \
            else None

    def read(self, after: int) -> Page:
        events = self.events or ClientEventFilter(self.tenant)
        rows = self.store.client_events_after(events.query, after, queries.MAX_PAGE)
        return Page(rows[-1].id if rows else after,
                    [Item(r.id, partial(queries.stored_client_event, r), len(r.payload))
                     for r in rows if events.selects_row(r)],
                    may_continue(rows, queries.MAX_PAGE))

    def last(self) -> int:
        return self.store.last_id("client_events")


@dataclass(frozen=True)
class Rejections:
    """The refusals kept of a scope (a project or every one, a parent or any)."""

    store: Store
    scope: queries.RejectionScope

    @property
    def key(self) -> Hashable:
        return ("rejections", *self.scope)

    def read(self, after: int) -> Page:
        rows = self.store.rejections_after(self.scope.project, after, queries.MAX_PAGE,
                                           self.scope.parent)
        return Page(rows[-1].id if rows else after,
                    [Item(r.id, partial(rejections.shown, *r), len(r.payload)) for r in rows],
                    len(rows) == queries.MAX_PAGE)

    def last(self) -> int:
        return self.store.last_id("rejections")
