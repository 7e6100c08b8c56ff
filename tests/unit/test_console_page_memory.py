"""A page of large events holds each of its events decoded once, in the page, and
decodes none it leaves out: measured as how far the process's peak resident
memory (VmHWM, reset through /proc/self/clear_refs) rises while one page is read
through the store and `queries`, against decoding one such event alone. And the
servicer's answer, waiting to be sent, holds the page's bytes, not the page decoded.

(tracemalloc does not see protobuf's decoded messages: upb allocates them itself.)
A page of events of 60,000 products each held the first decoded apart, its copy
appended to the page and the second decoded (to find it did not fit): three
times one decoded event."""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from footfall.console.v1 import console_pb2
from footfall.retail.v2 import user_event_pb2

from server.console import queries
from server.console.service import ConsoleService
from server.loop import LoopThread
from server.store import EventRow, open_store
from server.store.base import Store

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
PRODUCTS = 60_000  # about 1.1 MB serialized, 25 MB decoded
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _libc() -> Any:
    if not sys.platform.startswith("linux") or not _CLEAR_REFS.exists():
        pytest.skip("the peak resident memory is read and reset through Linux's /proc")
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not hasattr(libc, "malloc_trim"):
        pytest.skip("glibc's malloc_trim gives freed memory back before measuring")
    return libc


def _status(field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB$", Path("/proc/self/status").read_text(), re.M)
    assert found is not None
    return int(found[1]) * 1024


def peak_bytes(work: Callable[[], Any]) -> int:
    """How far the process's resident memory rose above where it was while
    `work()` ran (and what it returned was still held)."""
    libc = _libc()
    libc.malloc_trim(0)  # (memory freed before is given back: reused, it would not count)
    _CLEAR_REFS.write_text("5")  # the peak starts again from now
    before = _status("VmRSS")
    kept = work()
    peak = _status("VmHWM") - before
    del kept
    return peak


def held_bytes(work: Callable[[], Any]) -> int:
    """How much more resident memory the process holds while what `work()`
    returned is kept (what it freed given back first)."""
    libc = _libc()
    libc.malloc_trim(0)
    before = _status("VmRSS")
    kept = work()
    libc.malloc_trim(0)
    held = _status("VmRSS") - before
    del kept
    return held


def large_event(n: int) -> user_event_pb2.UserEvent:
    event = user_event_pb2.UserEvent(event_type="detail-page-view", visitor_id=f"v-{n}")
    event.event_time.seconds = 1_700_000_000 + n
    for i in range(PRODUCTS):
        event.product_details.add().product.id = f"sku-{n}-{i:06d}"
    return event


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    """Three events of PRODUCTS products each: event 2 the newest."""
    _libc()
    opened = open_store("memory://")
    opened.write_user_events([EventRow.from_event(CATALOG, large_event(n), joined=True)
                              for n in range(3)])
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def one_decoded(store: Store) -> int:
    """The peak of decoding one of the events alone."""
    wire = large_event(0).SerializeToString()
    return peak_bytes(lambda: user_event_pb2.UserEvent.FromString(wire))


def page(store: Store, filter_text: str = "") -> console_pb2.ListUserEventsResponse:
    return queries.list_user_events(store, queries.parse_filter(filter_text, CATALOG),
                                    queries.DEFAULT_PAGE, "")


def test_a_page_of_a_large_event_holds_it_decoded_once(store: Store, one_decoded: int) -> None:
    answer = page(store)  # (and once unmeasured: what a first read sets up is not the page's)
    assert [e.user_event.visitor_id for e in answer.user_events] == ["v-2"]  # one fills it
    assert len(answer.user_events[0].user_event.product_details) == PRODUCTS
    assert answer.next_page_token
    # the page's own event, not a copy of it, nor the next one (which does not fit)
    assert peak_bytes(lambda: page(store)) < 1.5 * one_decoded


def test_a_filtered_page_decodes_each_event_it_checks_apart_once(store: Store,
                                                                 one_decoded: int) -> None:
    """Checked by productId, each event is decoded to be checked and let go: the
    page holds the one it selects, decoded again, while the next is checked."""
    answer = page(store, 'productId = "sku-1-000007"')
    assert [e.user_event.visitor_id for e in answer.user_events] == ["v-1"]
    assert peak_bytes(lambda: page(store, 'productId = "sku-1-000007"')) < 2.7 * one_decoded


def test_a_large_page_waits_to_be_sent_as_its_bytes(store: Store, one_decoded: int) -> None:
    """30 reads at once of such pages held up to 750 MB of them decoded, waiting for
    the loop to send them (gRPC) or for a thread to write their JSON (REST)."""
    loop = LoopThread(2)
    # (a list of events needs neither the watches nor the policy)
    service = ConsoleService(store, None, None)  # type: ignore[arg-type]
    request = console_pb2.ListUserEventsRequest(parent=CATALOG)
    try:
        answer = loop.run(service.ListUserEvents(request, None), timeout=60)  # type: ignore[arg-type]
        sent = answer if isinstance(answer, bytes) else answer.SerializeToString()
        assert sent == page(store).SerializeToString()
        del answer
        # The least of three: pages are read on a pool of threads of their own
        # (loop.page_read), and one of them new to this process, or whose allocator
        # arena other tests left fragmented, kept up to 11 MB resident that is no
        # part of the answer (once in a CI run); what the answer holds is in each.
        held = min(held_bytes(lambda: loop.run(
            service.ListUserEvents(request, None), timeout=60))  # type: ignore[arg-type]
            for _ in range(3))
        assert held < one_decoded / 4
    finally:
        loop.close()
