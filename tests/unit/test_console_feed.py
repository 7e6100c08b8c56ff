"""Shared watch feeds (server/console/feed.py) over real stores: memory, a SQLite
file and PostgreSQL (when FOOTFALL_TEST_POSTGRES_DSN is set)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gc
import json
import sys
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import pytest
from footfall.console.v1 import console_pb2
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format, wrappers_pb2

from server.console import feed, queries, sources
from server.console.feed import Chunk, Item, Page, Watches
from server.console.watch import Commits
from server.errors import InvalidArgument, ResourceExhausted
from server.http import transcode
from server.loop import LONG_READS_PER_SHARE, long_read
from server.store import ClientEventRow, EventRow, Store, packed
from server.store import console as store_console
from server.store.rows import EventQuery

from . import test_store
from .test_store import CATALOG, row

store_url, stores, store = test_store.store_url, test_store.stores, test_store.store
T = TypeVar("T")


class Caller:
    """What a watch asks of its caller: still there, no deadline."""

    def __init__(self) -> None:
        self.gone = False

    def done(self) -> bool:
        return self.gone

    def time_remaining(self) -> float | None:
        return None


class Counted(sources.UserEvents):
    """The user events of the catalog, counting the reads made of them."""

    reads: list[int]

    def read(self, after: int) -> Page:
        self.reads.append(after)
        return super().read(after)


def source(store: Store, text: str = "") -> Counted:
    counted = Counted(store, queries.parse_filter(text, CATALOG), text)
    object.__setattr__(counted, "reads", [])
    return counted


def visitor_of(item: Item) -> str:
    return str(item.message().user_event.visitor_id)  # type: ignore[attr-defined]


async def write(store: Store, *visitors: str) -> None:
    """One commit per visitor (as separate callers would)."""
    for name in visitors:
        await asyncio.to_thread(store.write_user_events, [row(name)])


def items_of(batch: feed.Batch) -> list[Item]:
    return [item for chunk in batch.chunks for item in chunk.items]


async def take(stream: AsyncIterator[Item], count: int) -> list[Item]:
    return [await asyncio.wait_for(anext(stream), 5) for _ in range(count)]


def run(store: Store, body: Callable[[Watches], Awaitable[T]], limit: int = 100,
        poll: float = feed.POLL_SECONDS, messages_per_second: int = 0) -> T:
    async def main() -> T:
        commits = Commits()
        store.on_commit(commits.on_commit)
        try:
            return await body(Watches(commits, limit, poll, messages_per_second))
        finally:
            store.on_commit(None)
            commits.close()

    return asyncio.run(main())


def test_watches_of_one_catalog_share_each_read_and_each_encoding(store: Store) -> None:
    async def body(watches: Watches) -> None:
        read = source(store)
        streams = [watches.items(read.key, read, 0, Caller()) for _ in range(20)]
        # each stream starts at its first anext: all are open before the writes
        firsts = [asyncio.ensure_future(anext(s)) for s in streams]
        await asyncio.sleep(0.05)
        await write(store, "a", "b", "c")
        got = [[await asyncio.wait_for(f, 5), *await take(s, 2)]
               for f, s in zip(firsts, streams, strict=True)]
        assert watches.feeds == 1
        assert [visitor_of(i) for i in got[0]] == ["a", "b", "c"]
        for items in got[1:]:  # the very same items, so the same bytes
            assert all(mine is theirs for mine, theirs in zip(items, got[0], strict=True))
        assert got[5][1].wire() is got[17][1].wire()
        # 3 commits, 20 watches: a read per commit or so, not one per watch and commit
        assert len(read.reads) < 20
        for stream in streams:
            await stream.aclose()
        assert watches.open == 0 and watches.feeds == 0

    run(store, body)


def test_watches_of_single_rows_past_their_budget_fall_behind_and_miss_nothing(
        store: Store) -> None:
    async def body(watches: Watches) -> None:
        read = source(store)
        streams = [watches.items(read.key, read, 0, Caller()) for _ in range(3)]
        firsts = [asyncio.ensure_future(anext(s)) for s in streams]
        await asyncio.sleep(0.05)
        names = [f"v{i:03d}" for i in range(120)]
        await asyncio.to_thread(store.write_user_events, [row(name) for name in names])
        got = [[await asyncio.wait_for(f, 5), *await take(s, len(names) - 1)]
               for f, s in zip(firsts, streams, strict=True)]
        for items in got:  # every row, in order, to every watch
            assert [visitor_of(i) for i in items] == names
        # 360 messages against 50 unspent and 400 a second: watches waited their turn
        assert watches.pace.waits > 0
        batches = watches.batches(read.key, read, 0, Caller(), "userEvents")
        waits = watches.pace.waits
        assert [visitor_of(i) for i in items_of(await anext(batches))] == names
        assert watches.pace.waits == waits  # a watch of batches is not counted
        for stream in [*streams, batches]:
            await stream.aclose()

    run(store, body, messages_per_second=400)


def test_watches_catching_up_from_one_position_share_its_pages(store: Store) -> None:
    async def body(watches: Watches) -> None:
        names = [f"old-{i:02d}" for i in range(30)]
        await asyncio.to_thread(store.write_user_events, [row(name) for name in names])
        read = source(store)
        live = watches.items(read.key, read, store.last_id("user_events"), Caller())
        first = asyncio.ensure_future(anext(live))  # the feed starts after the old rows
        await asyncio.sleep(0.05)
        past = [watches.items(read.key, read, 0, Caller()) for _ in range(3)]
        for stream in past:
            assert [visitor_of(i) for i in await take(stream, 30)] == names
        assert read.reads.count(0) == 1  # the page after 0: read once, for all three
        await write(store, "new")
        assert visitor_of(await asyncio.wait_for(first, 5)) == "new"
        for stream in past:  # then each takes the feed's chunks again
            assert [visitor_of(i) for i in await take(stream, 1)] == ["new"]
        for stream in [live, *past]:
            await stream.aclose()

    run(store, body)


def test_a_watch_from_the_past_catches_up_then_shares_the_feed(store: Store) -> None:
    async def body(watches: Watches) -> None:
        await write(store, "old-1", "old-2")
        read = source(store)
        now = store.last_id("user_events")
        recent = watches.items(read.key, read, now, Caller())
        first = asyncio.ensure_future(anext(recent))
        await asyncio.sleep(0.05)
        await write(store, "new-1")
        assert visitor_of(await asyncio.wait_for(first, 5)) == "new-1"
        past = watches.items(read.key, read, 0, Caller())
        assert [visitor_of(i) for i in await take(past, 3)] == ["old-1", "old-2", "new-1"]
        await write(store, "new-2")
        [mine], [theirs] = await take(recent, 1), await take(past, 1)
        assert visitor_of(mine) == "new-2" and mine is theirs
        await recent.aclose()
        await past.aclose()

    run(store, body)


class Intervals(sources.UserEvents):
    """The user events of the catalog, noting the switch interval each read ran under."""

    seen: list[float]

    def read(self, after: int) -> Page:
        self.seen.append(sys.getswitchinterval())
        return super().read(after)


def test_reads_of_feeds_and_of_watches_catching_up_give_way_to_the_loop(store: Store) -> None:
    """While a read makes its rows into items (milliseconds holding the interpreter's
    lock), the loop waiting for the lock gets it after loop.GIVING_WAY_SECONDS, not after
    Python's 5 ms; the interval is Python's again once no read runs."""
    usual = sys.getswitchinterval()  # (Python's: 5 ms)

    async def body(watches: Watches) -> None:
        await write(store, "old-1", "old-2")
        read = Intervals(store, queries.parse_filter("", CATALOG), "")
        object.__setattr__(read, "seen", [])
        live = watches.batches(read.key, read, store.last_id("user_events"), Caller(),
                               "userEvents")
        first = asyncio.ensure_future(anext(live))
        await asyncio.sleep(0.05)
        await write(store, "new-1")
        assert [visitor_of(i) for i in items_of(await asyncio.wait_for(first, 5))] == ["new-1"]
        feeds_reads = len(read.seen)
        past = watches.batches(read.key, read, 0, Caller(), "userEvents")  # (catches up)
        assert [visitor_of(i) for i in items_of(await asyncio.wait_for(anext(past), 5))] \
            == ["old-1", "old-2", "new-1"]
        assert feeds_reads and len(read.seen) > feeds_reads
        assert all(interval < usual for interval in read.seen), read.seen
        assert sys.getswitchinterval() == usual
        await live.aclose()
        await past.aclose()

    run(store, body)


def test_a_first_watch_from_the_past_does_not_hold_back_the_live_ones(
        store: Store, monkeypatch: Any) -> None:
    """The feed a watch from the past makes starts at the last row: that watch reads
    the history by itself, as fast as it takes it, while the live watches that
    come meanwhile get each new row at once. (The feed began where its first watch
    did, and read the whole history before a live watch saw anything new.)"""
    monkeypatch.setattr(queries, "MAX_PAGE", 10)

    async def body(watches: Watches) -> None:
        await asyncio.to_thread(store.write_user_events, [row(f"old-{n}") for n in range(50)])
        read = source(store)
        last = store.last_id("user_events")
        past = watches.items(read.key, read, 0, Caller())
        [first] = await take(past, 1)  # it reads no further yet
        assert visitor_of(first) == "old-0"
        live = watches.items(read.key, read, last, Caller())
        coming = asyncio.ensure_future(anext(live))
        await asyncio.sleep(0.05)
        await write(store, "new")
        assert visitor_of(await asyncio.wait_for(coming, 5)) == "new"
        # nothing read past the history's first page: the feed began at the last row
        assert [after for after in read.reads if 0 < after < last] == []
        assert [visitor_of(i) for i in await take(past, 50)] == \
            [f"old-{n}" for n in range(1, 50)] + ["new"]
        await live.aclose()
        await past.aclose()

    run(store, body)


async def two_watches(store: Store, watches: Watches) -> tuple[AsyncIterator[Item], ...]:
    """Two watches of the catalog (to be a fast and a slow one), each past a first event."""
    read = source(store)
    both = tuple(watches.items(read.key, read, 0, Caller()) for _ in range(2))
    await write(store, "v0")
    for watch in both:
        await take(watch, 1)
    return both


def test_a_slow_watch_reads_for_itself_and_misses_nothing(store: Store,
                                                          monkeypatch: Any) -> None:
    monkeypatch.setattr(feed, "QUEUE_LIMIT", 3)

    async def body(watches: Watches) -> None:
        fast, slow = await two_watches(store, watches)
        longest = 0
        for n in range(1, 11):  # the slow watch reads nothing meanwhile
            await write(store, f"v{n}")
            await take(fast, 1)
            [queues] = [f.queues for f in watches._feeds.values()]
            longest = max(longest, *(q.count for q in queues))
        assert longest <= 3  # what waits for a slow watch is bounded
        got = [visitor_of(i) for i in await take(slow, 10)]
        assert got == [f"v{n}" for n in range(1, 11)]
        await write(store, "v11")  # and it is back on the feed
        assert visitor_of((await take(slow, 1))[0]) == "v11"
        assert visitor_of((await take(fast, 1))[0]) == "v11"
        await fast.aclose()
        await slow.aclose()

    run(store, body)


def test_what_waits_for_a_slow_watch_is_bounded_in_bytes_too(store: Store) -> None:
    # Events may be large (up to --max-event-bytes): a count of items alone would let
    # a client that reads nothing make the server hold gigabytes.
    big = "x" * 200_000  # a 200 kB event: the count of 2,000 would allow 400 MB

    async def body(watches: Watches) -> None:
        fast, slow = await two_watches(store, watches)
        longest = 0
        for n in range(1, 41):  # 8 MB in all; the slow watch reads nothing meanwhile
            await asyncio.to_thread(store.write_user_events, [row(f"v{n}", uri=big[:4000],
                                                                  pageCategories=[big])])
            await take(fast, 1)
            [queues] = [f.queues for f in watches._feeds.values()]
            longest = max(longest, *(q.bytes for q in queues))
        assert longest <= feed.QUEUE_BYTES
        got = [visitor_of(i) for i in await take(slow, 40)]  # and it misses nothing
        assert got == [f"v{n}" for n in range(1, 41)]
        await fast.aclose()
        await slow.aclose()

    run(store, body)


def test_a_feed_keeps_no_read_of_its_own_while_it_waits(store: Store,
                                                        monkeypatch: Any) -> None:
    # Each feed kept its last read (a chunk, and its bytes) while it waited for the
    # next, whether or not a queue took it: 200 watches of batches, each of a filter of
    # its own, whose clients read nothing held 160 MB of rows and as much of their
    # bytes beside HELD_BYTES (the server went from 73 MB to 670 MB).
    monkeypatch.setattr(feed, "FEED_READS_PER_SECOND", 2.5)  # 5 feeds: a read each 2 s

    async def body(watches: Watches) -> None:
        reads = [source(store, f'visitorId = "v-{n}"') for n in range(5)]
        streams = [watches.batches(read.key, read, 0, Caller(), "userEvents")
                   for read in reads]
        firsts = [asyncio.ensure_future(anext(s)) for s in streams]
        await asyncio.sleep(0.05)
        await write(store, *(f"v-{n}" for n in range(5)))
        await asyncio.wait_for(asyncio.gather(*firsts), 10)  # then none reads again
        watches.held.limit = 0  # the watches hold all they may: no queue takes a read
        await asyncio.to_thread(store.write_user_events,
                                [row(f"v-{n}", uri="https://a.test/2") for n in range(5)])
        queues = [queue for f in watches._feeds.values() for queue in f.queues]
        for _ in range(500):  # each feed reads what came, and its watch lets it go
            if all(queue.behind for queue in queues):
                break
            await asyncio.sleep(0.02)
        # (and each feed waits 2 s before its next read)
        assert all(queue.behind for queue in queues)
        gc.collect()
        # every chunk alive is held by a watch (its queue, or its message being sent)
        unheld = [chunk for chunk in gc.get_objects()
                  if isinstance(chunk, Chunk) and chunk.items and not chunk.holders]
        assert not unheld, [len(chunk.items) for chunk in unheld]
        assert watches.held.bytes == sum(chunk.held for f in firsts
                                         for chunk in f.result().chunks)
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
        assert watches.held.bytes == 0

    run(store, body)


def test_a_chunk_held_is_counted_as_what_it_holds(store: Store) -> None:
    # Counted as its rows are stored (160 bytes each), a page of 1,000 rows held about
    # ten times that with their JSON, and 200 watches of filters of their own whose
    # clients read nothing grew the server by 570 MB where HELD_BYTES is 32 MiB.
    store.write_user_events([row(f"v-{n}", uri=f"https://a.test/{n}", userInfo={
        "userAgent": "Mozilla/5.0 (X11; Linux)"}, attributes={"a": {"text": [f"c{n % 7}"]}})
        for n in range(1_000)])
    encode = partial(transcode.response_json, output=transcode.Output(pretty=False))
    encodings: dict[str, Callable[[Chunk], object]] = {
        "rows": lambda chunk: None,
        "server-sent events": lambda chunk: [item.json(False, encode) for item in chunk.items],
        "gRPC": lambda chunk: [item.wire() for item in chunk.items],
        "batch of server-sent events": lambda chunk: chunk.json(False, encode),
        "gRPC batch": lambda chunk: chunk.wire()}
    for name, made in encodings.items():
        gc.collect()
        tracemalloc.start()
        try:
            chunk = Chunk(source(store).read(0).items)
            made(chunk)
            gc.collect()
            holds, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        held = feed.Held(feed.HELD_BYTES)
        held.hold(chunk)
        # counted as at least what it holds, and not many times over
        assert holds <= held.bytes < 3 * holds, (name, holds, held.bytes, chunk.size)
        held.release(chunk)
        assert held.bytes == 0


def test_a_quarter_of_the_bound_held_is_kept_for_the_watches_that_keep_up() -> None:
    # Filled by the pages (and the queues behind them) of 200 watches from the first
    # event, sent slowly, the bound had no room for a live watch's chunk of one event:
    # it read by itself, waiting for room among them, and its events came 4-8 s late.
    held = feed.Held(4 * feed.READ_BYTES)
    held.bytes = 2 * feed.READ_BYTES  # (three quarters of the bound, less a read)
    assert held.room_to_read()
    held.bytes += 1
    assert not held.room_to_read()  # a page would be in the quarter kept
    live, slow = feed._Queue(Caller(), held), feed._Queue(Caller(), held)
    slow.push(Chunk([Item(1, lambda: None, 100)]))
    held.bytes = 3 * feed.READ_BYTES
    slow.push(Chunk([Item(2, lambda: None, 100)]))
    assert slow.behind  # a queue holding events already: its watch reads by itself
    live.push(Chunk([Item(2, lambda: None, 100)]))
    assert not live.behind and live.count == 1  # an empty one takes it


def test_an_item_keeps_its_encodings_not_its_message() -> None:
    # Decoded, an event of 150,000 products held tens of megabytes beside its JSON, in
    # each feed (each filter) that sent it: fifteen watches took the server to 2.7 GB;
    # and an event of 160 bytes about 2.9 KB, for as long as a watch held its item.
    made: list[int] = []

    def make(n: int) -> console_pb2.StoredUserEvent:
        made.append(n)
        return console_pb2.StoredUserEvent(id=n, catalog=CATALOG)

    def encode(message: Any) -> bytes:
        return json_format.MessageToJson(message, indent=None).encode()

    item = Item(1, lambda: make(1), 100)
    for form in ("a", "a", "b"):
        item.json(form, encode)
    item.wire()
    assert item.message().id == item.id
    # made for each encoding (two JSON forms, its bytes, the message asked for);
    # each encoding made once
    assert made == [1, 1, 1, 1], made
    assert item.json("a", lambda _: b"not again") == encode(make(1))


def test_a_feed_filtered_on_decoded_events_keeps_no_message(store: Store) -> None:
    # A filter by product decodes each row to check it: each such feed kept its own
    # decoded copy of an event of 150,000 products (60 MB) while its chunk was held.
    products = [{"product": {"id": f"p{k}"}} for k in range(8_000)]
    store.write_user_events([row("large", productDetails=products),
                             row("small", productDetails=products[:1])])
    [large, small] = source(store, 'productId = "p0"').read(0).items
    for item, name in ((large, "large"), (small, "small")):
        assert item.message() is not item.message()  # (made again when asked)
        assert item.message().user_event.visitor_id == name
    assert source(store, 'productId = "p7999"').read(0).items[0].id == large.id


def test_the_json_kept_of_items_and_chunks_is_no_larger_than_it_is(store: Store) -> None:
    # orjson's answer keeps the buffer it was written in: kept by an item, the JSON of
    # an event of 476 bytes held 4 KiB (200 watches of filters of their own, whose
    # clients read nothing, grew the server by 350-500 MB); and a chunk's JSON kept
    # its items' JSON as well as its own.
    store.write_user_events([row(f"v-{n}", uri=f"https://a.test/{n}/{'p' * 500}")
                             for n in range(300)])  # (JSON of about 800 bytes each)
    encode = partial(transcode.response_json, output=transcode.Output(pretty=False))
    for batched in (False, True):
        items = source(store).read(0).items
        gc.collect()
        tracemalloc.start()
        try:
            if batched:
                text = Chunk(items).json(False, encode)
                made = len(text)
            else:
                made = sum(len(item.json(False, encode)) for item in items)
            gc.collect()
            kept, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert kept < made * 1.5, (batched, kept, made)



def test_a_filtered_watch_has_a_feed_of_its_own(store: Store) -> None:
    async def body(watches: Watches) -> None:
        every, searches = source(store), source(store, 'eventType = "search"')
        all_events = watches.items(every.key, every, 0, Caller())
        only = watches.items(searches.key, searches, 0, Caller())
        await write(store, "a")
        await asyncio.to_thread(store.write_user_events,
                                [row("s", event_type="search", searchQuery="x")])
        assert [visitor_of(i) for i in await take(all_events, 2)] == ["a", "s"]
        assert [visitor_of(i) for i in await take(only, 1)] == ["s"]
        assert watches.feeds == 2
        await all_events.aclose()
        await only.aclose()

    run(store, body)


def test_the_pace_of_batches_grows_with_their_watches() -> None:
    assert feed.batch_seconds(1) == feed.BATCH_SECONDS
    assert feed.batch_seconds(200) == 0.2
    assert feed.batch_seconds(10_000) == feed.BATCH_SECONDS_MAX


def test_no_more_watches_than_the_limit(store: Store) -> None:
    async def body(watches: Watches) -> None:
        read = source(store)
        one, two = (watches.items(read.key, read, 0, Caller()) for _ in range(2))
        waiting = [asyncio.ensure_future(anext(s)) for s in (one, two)]
        await asyncio.sleep(0.05)
        with pytest.raises(ResourceExhausted, match="--max-watches"):
            watches.items(read.key, read, 0, Caller())
        waiting[0].cancel()  # its client goes
        await asyncio.gather(waiting[0], return_exceptions=True)
        await one.aclose()
        assert watches.open == 1
        unstarted = watches.items(read.key, read, 0, Caller())
        del unstarted  # dropped before it sent anything: its place is free again
        gc.collect()
        three = watches.items(read.key, read, 0, Caller())
        await write(store, "a")
        assert visitor_of(await asyncio.wait_for(waiting[1], 5)) == "a"
        assert visitor_of((await take(three, 1))[0]) == "a"
        await two.aclose()
        await three.aclose()
        assert watches.open == 0 and watches.feeds == 0

    run(store, body, limit=2)


def test_batches_hold_what_came_since_the_last_at_most_so_often(store: Store,
                                                                monkeypatch: Any) -> None:
    monkeypatch.setattr(feed, "BATCH_SECONDS", 0.3)
    monkeypatch.setattr(feed, "BATCH_SECONDS_MAX", 0.3)

    async def body(watches: Watches) -> None:
        read = source(store)
        lists = watches.batches(read.key, read, 0, Caller(), "userEvents")
        first = asyncio.ensure_future(anext(lists))
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        await write(store, "a")
        assert [visitor_of(i) for i in items_of(await asyncio.wait_for(first, 5))] == ["a"]
        sent_at = loop.time()
        await write(store, *(f"v{n}" for n in range(8)))
        got: list[Item] = []
        while len(got) < 8:
            got += items_of(await asyncio.wait_for(anext(lists), 5))
            assert loop.time() - sent_at >= 0.29  # none sooner than `every` after the last
            sent_at = loop.time()
        assert [visitor_of(i) for i in got] == [f"v{n}" for n in range(8)]
        assert len(read.reads) <= 6  # a read a batch (plus the empty ones that end them)
        await lists.aclose()

    run(store, body)


def test_watches_of_batches_at_one_position_send_the_same_bytes(store: Store) -> None:
    async def body(watches: Watches) -> None:
        read = source(store)
        streams = [watches.batches(read.key, read, 0, Caller(), "userEvents") for _ in range(20)]
        firsts = [asyncio.ensure_future(anext(s)) for s in streams]
        await asyncio.sleep(0.05)
        await asyncio.to_thread(store.write_user_events, [row(v) for v in ("a", "b", "c")])
        sent = [(await asyncio.wait_for(f, 5)).wire() for f in firsts]
        assert all(wire is sent[0] for wire in sent)  # encoded once, for all 20
        batch = console_pb2.UserEventBatch.FromString(sent[0])
        assert [e.user_event.visitor_id for e in batch.user_events] == ["a", "b", "c"]
        assert [e.id for e in batch.user_events] == sorted(e.id for e in batch.user_events)
        for stream in streams:
            await stream.aclose()

    run(store, body)


def test_a_batchs_bytes_are_its_rows_messages_serialized(store: Store) -> None:
    """A feed of batches makes its chunk's bytes from the rows' bytes (unpacked,
    not decoded): byte for byte the UserEventBatch of the rows' messages serialized
    (deterministically, as the store keeps an event: a map in its sorted order),
    whatever the rows hold and however they were stored."""
    user = {"userId": "u-1", "ipAddress": "203.0.113.7", "userAgent": "Mozilla/5.0"}
    enriched = json_format.ParseDict({"eventType": "detail-page-view", "visitorId": "e",
                                      "eventTime": "2024-01-01T00:00:01Z", "userInfo": user,
                                      "productDetails": [{"product": {"id": "p", "title": "T"}}]},
                                     user_event_pb2.UserEvent())
    received = row("e", "detail-page-view", "2024-01-01T00:00:01Z", userInfo=user,
                   productDetails=[{"product": {"id": "p"}}]).payload
    whole, older = row("f", userInfo=user), row("g", userInfo=user)
    time_end = next(end for number, _, _, _, end in packed.fields(older.payload) if number == 3)
    rows = [
        row("a"),  # packed
        row("b", userInfo=user, sessionId="s"),  # packed, and kept without its user id
        row("c", "search", "2024-01-01T00:00:00.123456789Z", searchQuery="shoes",
            attributes={k: {"text": [k * 3]} for k in "bdac"}),  # a map of several entries
        row("d\0", userInfo=user),  # NUL: stored whole
        EventRow.from_event(CATALOG, enriched, joined=True, received=received),  # a copy kept
        dataclasses.replace(whole, packed=whole.payload),  # as before migration 8
        # as migration 8 stored it, its user id kept
        dataclasses.replace(older, packed=packed.PACKED + older.payload[time_end:]),
        row("h", "x" * 200, "1960-06-01T00:00:00.5Z", joined=False, uri="é" * 100),
        row("", "", catalog=CATALOG),  # no visitor, no type
    ]
    store.write_user_events(rows)
    items = source(store).read(0).items
    messages = [queries.stored_user_event(r)
                for r in store.user_events_after(EventQuery(CATALOG), 0, 100)]
    assert len(items) == len(messages) == len(rows)
    assert Chunk(items).wire() == console_pb2.UserEventBatch(
        user_events=messages).SerializeToString(deterministic=True)
    assert [item.wire() for item in items] == \
        [m.SerializeToString(deterministic=True) for m in messages]
    assert [item.message() for item in items] == messages


def test_a_batch_of_several_chunks_is_one_list(store: Store) -> None:
    """What a watch that fell behind sends: its chunks' bytes joined as they are,
    and their JSON in one list."""
    store.write_user_events([row(v) for v in ("a", "b", "c")])
    items = source(store).read(0).items
    batch = feed.Batch([Chunk(items[:1]), Chunk(items[1:])], "userEvents")
    decoded = console_pb2.UserEventBatch.FromString(batch.wire())
    assert [e.user_event.visitor_id for e in decoded.user_events] == ["a", "b", "c"]
    text = batch.json("form", lambda m: json_format.MessageToJson(m, indent=None).encode())
    assert [e["userEvent"]["visitorId"] for e in json.loads(text)["userEvents"]] \
        == ["a", "b", "c"]
    assert Chunk(items).after(items[0].id).items == items[1:]  # type: ignore[union-attr]
    assert Chunk(items).after(items[-1].id) is None


def test_watches_are_woken_a_few_a_turn_and_each_gets_everything_in_order(
        store: Store, monkeypatch: Any) -> None:
    monkeypatch.setattr(feed, "WAKE_SLICE", 3)
    writes = [[f"w{n}-{k}" for k in range(n + 1)] for n in range(6)]  # a commit each

    async def body(watches: Watches) -> None:
        read = source(store)
        turn = 0

        async def count_turns() -> None:
            nonlocal turn
            while True:
                turn += 1
                await asyncio.sleep(0)  # one turn of the loop

        async def consume(stream: AsyncIterator[list[Chunk]],
                          got: list[Item], turns: list[int]) -> None:
            async for chunks in stream:
                turns.append(turn)
                got += items_of(chunks)
                if len(got) == sum(map(len, writes)):
                    return

        streams = [watches.batches(read.key, read, 0, Caller(), "userEvents") for _ in range(12)]
        got: list[list[Item]] = [[] for _ in streams]
        turns: list[list[int]] = [[] for _ in streams]
        consumers = [asyncio.ensure_future(consume(s, g, t))
                     for s, g, t in zip(streams, got, turns, strict=True)]
        await asyncio.sleep(0.05)  # every watch waits
        ticker = asyncio.ensure_future(count_turns())
        for names in writes:
            await asyncio.to_thread(store.write_user_events, [row(v) for v in names])
        await asyncio.wait_for(asyncio.gather(*consumers), 10)
        ticker.cancel()
        # the first read went out over four turns (3 watches each), not in one
        assert len({t[0] for t in turns}) == 4
        expected = [name for names in writes for name in names]
        for items in got:  # each watch: every event once, in the order stored
            assert [visitor_of(i) for i in items] == expected
            assert [i.id for i in items] == sorted({i.id for i in items})
        for stream in streams:
            await stream.aclose()

    run(store, body)


def test_watches_of_batches_are_woken_over_a_share_of_their_pace(store: Store,
                                                                 monkeypatch: Any) -> None:
    """The watches of a feed of batches send after a read over WAKE_SPREAD of the
    feed's pace, not in the turns right after it (the writes answered meanwhile
    met 200 sends in a row)."""
    monkeypatch.setattr(feed, "BATCH_SECONDS", 0.2)
    monkeypatch.setattr(feed, "BATCH_SECONDS_MAX", 0.2)
    spread = 0.05  # a quarter of the pace (WAKE_SPREAD)

    async def body(watches: Watches) -> None:
        read = source(store)
        streams = [watches.batches(read.key, read, 0, Caller(), "userEvents")
                   for _ in range(4 * feed.WAKE_SLICE)]
        loop = asyncio.get_running_loop()
        sent_at: list[float] = []

        async def first(stream: AsyncIterator[Any]) -> None:
            await anext(stream)
            sent_at.append(loop.time())

        firsts = [asyncio.ensure_future(first(s)) for s in streams]
        await asyncio.sleep(0.05)  # every watch waits
        await write(store, "a")
        await asyncio.wait_for(asyncio.gather(*firsts), 10)
        # four slices: the first at once, the last `spread` later
        assert spread * 0.9 <= max(sent_at) - min(sent_at) < 1.0
        for stream in streams:
            await stream.aclose()

    run(store, body)


def test_pages_and_watches_of_large_events_go_on_past_each_read_bound(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Reads stop at READ_BYTES (here 3 or 4 events of 3 KB): a list and a watch
    # read on, and see every event once.
    monkeypatch.setattr(store_console, "READ_BYTES", 10_000)
    store.write_user_events([row(f"v{n:02}", uri="u" * 3_000) for n in range(25)])
    events = queries.parse_filter("", CATALOG)
    listed, token = [], ""
    while True:
        page = queries.list_user_events(store, events, 10, token)
        listed += [e.user_event.visitor_id for e in page.user_events]
        if not (token := page.next_page_token):
            break
    assert sorted(listed) == [f"v{n:02}" for n in range(25)] and len(listed) == 25
    assert source(store).read(0).full  # the first read stopped short of all 25: more follow

    async def body(watches: Watches) -> None:
        read = source(store)
        stream = watches.items(read.key, read, 0, Caller())
        got = await take(stream, 25)
        assert [visitor_of(i) for i in got] == [f"v{n:02}" for n in range(25)]
        await stream.aclose()

    run(store, body)


def test_a_filtered_watch_reads_on_from_the_rows_it_did_not_select(store: Store) -> None:
    # A filter no new row matches: each read starts after the last row stored when
    # the previous one began, not again from where the watch began (which read every
    # row stored since, at each commit).
    async def body(watches: Watches) -> None:
        read = source(store, 'eventType = "search"')
        stream = watches.items(read.key, read, 0, Caller())
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)
        for name in "abcd":
            before = len(read.reads)
            await write(store, name)
            for _ in range(250):  # the feed reads after the commit
                if len(read.reads) > before:
                    break
                await asyncio.sleep(0.02)
        # the read after the last commit began where the one before it ended (the
        # last row stored then), not at 0 where the watch began
        assert read.reads[-1] >= store.last_id("user_events") - 1, str(read.reads)
        await asyncio.to_thread(store.write_user_events, [row("e", event_type="search",
                                                              search_query="tent")])
        assert visitor_of(await asyncio.wait_for(first, 5)) == "e"
        await stream.aclose()

    run(store, body)


@pytest.mark.parametrize("text", [b"99999999999999999999999", b"1.99999999999999999999999",
                                  b"1_0", b" 7", b"7 ", b"+7", b"", b"1.2.3",
                                  b"9223372036854775808"])
def test_a_forged_page_token_is_invalid_argument_naming_it(store: Store, text: bytes) -> None:
    token = base64.urlsafe_b64encode(text).decode() or "=="
    events = queries.parse_filter("", CATALOG)
    for read in (lambda: queries.list_user_events(store, events, 10, token),
                 lambda: queries.list_client_events(store, "projects/p/tenants/t", 10, token),
                 lambda: queries.list_rejections(store, queries.RejectionScope(None), 10, token)):
        with pytest.raises(InvalidArgument) as refused:
            read()
        assert [v.field for v in refused.value.violations] == ["page_token"]


def test_a_page_token_goes_on_only_with_the_question_it_came_with(store: Store) -> None:
    # A token of one catalog or filter went on, at its position, in another (AIP-158).
    other = CATALOG.replace("default_catalog", "other")
    store.write_user_events([row(f"v{n}", time=f"2024-01-01T00:00:{n:02}Z") for n in range(3)]
                            + [row("o", catalog=other)])
    store.create_client_event(ClientEventRow("projects/p/tenants/t", "e1", 1, b""))
    store.create_client_event(ClientEventRow("projects/p/tenants/t", "e2", 2, b""))
    everything = queries.parse_filter("", CATALOG)
    first = queries.list_user_events(store, everything, 1, "")
    assert first.next_page_token
    assert [e.user_event.visitor_id for e in queries.list_user_events(
        store, everything, 10, first.next_page_token).user_events] == ["v1", "v0"]
    tenant = queries.list_client_events(store, "projects/p/tenants/t", 1, "")
    for read in (lambda: queries.list_user_events(store, queries.parse_filter("", other), 10,
                                                  first.next_page_token),
                 lambda: queries.list_user_events(store, queries.parse_filter(
                     'visitorId = "v0"', CATALOG), 10, first.next_page_token),
                 lambda: queries.list_client_events(store, "projects/p/tenants/u", 10,
                                                    tenant.next_page_token)):
        with pytest.raises(InvalidArgument) as refused:
            read()
        [violation] = refused.value.violations
        assert violation.field == "page_token" and "another list" in violation.description
    # (a client events' token holds a create time and an id: no refusals' token at all)
    with pytest.raises(InvalidArgument) as refused:
        queries.list_rejections(store, queries.RejectionScope("p"), 10, tenant.next_page_token)
    assert [v.field for v in refused.value.violations] == ["page_token"]


def test_waiting_watches_share_one_timer_and_still_see_their_caller_go(store: Store) -> None:
    """A watch looks at its caller at least once a poll, with one timer for all the
    waits of a poll (not one per wait: a busy watch waits after every message)."""
    async def body(watches: Watches) -> None:
        read = source(store)
        callers = [Caller() for _ in range(20)]
        streams = [watches.items(read.key, read, 0, c) for c in callers]
        waiting = [asyncio.ensure_future(anext(s)) for s in streams]
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        timers = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        assert len(timers) <= 3  # the feed's poll, the watches' shared tick
        for caller in callers:
            caller.gone = True  # nothing wakes them: the tick must
        done, _ = await asyncio.wait(waiting, timeout=5 * 0.2)
        assert len(done) == len(waiting)
        assert all(isinstance(t.exception(), StopAsyncIteration) for t in waiting)
        assert watches.open == 0

    run(store, body, poll=0.2)


def test_the_poll_wakes_only_the_watches_that_have_something_to_look_at(
        store: Store, monkeypatch: Any) -> None:
    """Idle watches stay asleep through the polls (200 of them woken twice a second
    would cost the loop as much as their messages); one whose caller went, or
    that has a deadline, is woken by the next one."""
    woken: list[object] = []
    wake = feed._Queue.wake

    def counted(queue: Any) -> None:
        woken.append(queue.caller)
        wake(queue)

    monkeypatch.setattr(feed._Queue, "wake", counted)

    class Due(Caller):
        def time_remaining(self) -> float | None:
            return 30.0  # longer than a poll: waits with the others, looks again each poll

    async def body(watches: Watches) -> None:
        read = source(store)
        idle = [Caller() for _ in range(10)]
        due, going = Due(), Caller()
        streams = [watches.items(read.key, read, 0, c) for c in (*idle, due, going)]
        pending = [asyncio.ensure_future(anext(s)) for s in streams]
        # Two polls at least, nothing stored: the watch with a deadline was woken by
        # each (counted, not timed: a busy machine may hold the loop past a poll).
        for _ in range(250):
            if woken.count(due) >= 2:
                break
            await asyncio.sleep(0.02)
        assert woken.count(due) >= 2  # (not a promise to it: it looks at its deadline)
        assert not any(caller in woken for caller in idle)
        going.gone = True
        await asyncio.wait([pending[-1]], timeout=5)  # woken by a poll: nothing else wakes it
        assert [task.done() for task in pending] == [False] * (len(pending) - 1) + [True]
        assert isinstance(pending[-1].exception(), StopAsyncIteration)
        for task in pending[:-1]:
            task.cancel()
        await asyncio.gather(*pending[:-1], return_exceptions=True)

    run(store, body, poll=0.1)


def test_the_feeds_waited_for_are_counted_as_each_flips(store: Store) -> None:
    # The feeds waited for share FEED_READS_PER_SECOND: each reads at most once every
    # (their count) / FEED_READS_PER_SECOND seconds. A count kept for a while, made as
    # the first of many new feeds handed out its first read, let them all read at the
    # pace of one (CI: 188 reads of 40 feeds in 0.29 s, where at most 167 were asked).
    async def body(watches: Watches) -> None:
        reads = [source(store, f'eventTime > "2000-01-01T00:00:{k:02d}Z"') for k in range(40)]
        streams = [watches.items(read.key, read, 0, Caller()) for read in reads]
        firsts = [asyncio.ensure_future(anext(s)) for s in streams]
        for _ in range(500):
            if watches.feeds == 40:
                break
            await asyncio.sleep(0.01)
        assert watches.feeds == 40
        await write(store, "v0")
        for first in firsts:  # each handed out a read its watch waited for
            await asyncio.wait_for(first, 5)
        assert watches._read_spacing(True) == 40 / feed.FEED_READS_PER_SECOND
        for stream in streams[:30]:  # their feeds end, and are no longer counted
            await stream.aclose()
        assert watches.feeds == 10
        assert watches._read_spacing(True) == 10 / feed.FEED_READS_PER_SECOND
        for stream in streams[30:]:
            await stream.aclose()
        assert watches._read_spacing(True) == 1 / feed.FEED_READS_PER_SECOND

    run(store, body)


def test_many_feeds_share_a_bound_on_their_reads_and_miss_nothing(store: Store) -> None:
    # A reader key may watch hundreds of distinct filters: a feed each, which read at
    # every commit, so writes waited for reads. Together they read at most
    # FEED_READS_PER_SECOND (plus each feed's first read), and each sees every event.
    async def body(watches: Watches) -> None:
        reads = [source(store, f'eventTime > "2000-01-01T00:00:{k:02d}Z"') for k in range(40)]
        streams = [watches.items(read.key, read, 0, Caller()) for read in reads]
        firsts = [asyncio.ensure_future(anext(s)) for s in streams]
        for _ in range(500):  # each feed starts after a read of the last id, off the loop
            if watches.feeds == 40:
                break
            await asyncio.sleep(0.01)
        assert watches.feeds == 40
        started = asyncio.get_running_loop().time()
        await write(store, *[f"v{i}" for i in range(60)])  # 60 commits
        got = [[await asyncio.wait_for(f, 5), *await take(s, 59)]
               for f, s in zip(firsts, streams, strict=True)]
        elapsed = asyncio.get_running_loop().time() - started
        assert all(len(items) == 60 for items in got)
        total = sum(len(read.reads) for read in reads)
        # FEED_READS_PER_SECOND is 200 (with room for a busy machine); unbounded, 3,000
        assert total <= 80 + 300 * elapsed, (total, elapsed)
        for stream in streams:
            await stream.aclose()

    run(store, body)


def test_a_watch_waiting_for_its_projects_turn_holds_no_room(store: Store) -> None:
    """Room for a read was taken before the long reads' turn: four watches by session
    waiting in line behind their project's insights filled the bound, and every other
    watch stopped (a live event of another project came after 6.5 s, not 0.04)."""
    async def body(watches: Watches) -> None:
        await write(store, "v-1")
        project = sources.project_of(CATALOG)
        release = asyncio.Event()
        loop = asyncio.get_running_loop()
        # the project's two turns, held (its insights)
        held = [asyncio.ensure_future(long_read(
            lambda: asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10),
            share=project)) for _ in range(LONG_READS_PER_SHARE)]
        read = source(store, 'sessionId = "s-1"')
        assert read.decoding == project
        streams = [watches.items(read.key, read, 0, Caller()) for _ in range(4)]
        pending = [asyncio.ensure_future(anext(s)) for s in streams]
        await asyncio.sleep(0.3)  # each is in line for the turn
        assert watches.held.bytes == 0, watches.held.bytes
        assert 0 not in read.reads  # (no catch-up read; the live feed reads after 1)
        release.set()
        await asyncio.gather(*held)
        for _ in range(500):  # in their turn, they read
            if 0 in read.reads:
                break
            await asyncio.sleep(0.02)
        assert 0 in read.reads
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
        assert watches.held.bytes == 0

    run(store, body)


async def went_back(watches: Watches, position: int) -> feed.Feed:
    """The one feed, once it has gone back to `position` (a reset deleted the newest
    rows of the table) and its watch has taken everything queued."""
    [fed] = watches._feeds.values()
    while fed.position != position or any(q.chunks for q in fed.queues):
        await asyncio.sleep(0.01)
    return fed


async def let_fall_behind(watches: Watches, fed: feed.Feed, store: Store, visitor: str) -> None:
    """Write `visitor` while the watches may hold nothing: the feed's read of it lets
    the watch's queue go (it reads it from the store itself once there is room again)."""
    limit, watches.held.limit = watches.held.limit, 0
    last = fed.position
    await write(store, visitor)
    while fed.position == last:
        await asyncio.sleep(0.01)
    watches.held.limit = limit


def test_a_watch_past_a_reset_that_falls_behind_sends_nothing_twice(store: Store) -> None:
    # A reset of another catalog deleted the newest rows of the table: the feed went
    # back, and the watch took that as "every id may come again" (its position -1):
    # falling behind later, it read from the store from the first row on, and sent
    # again every event of its catalog.
    async def body(watches: Watches) -> None:
        read = source(store)
        watch = watches.items(read.key, read, 0, Caller())
        await write(store, "v1", "v2")
        assert [visitor_of(i) for i in await take(watch, 2)] == ["v1", "v2"]
        await asyncio.to_thread(store.write_user_events, [row("o1", catalog=CATALOG + "x")])
        [fed] = watches._feeds.values()
        while fed.position < 3:
            await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(anext(watch))
        await asyncio.to_thread(store.reset_catalog, CATALOG + "x")
        fed = await went_back(watches, 2)
        await let_fall_behind(watches, fed, store, "v4")
        assert visitor_of(await asyncio.wait_for(waiting, 5)) == "v4"
        await watch.aclose()

    run(store, body, poll=0.05)


class Reusing:
    """A table whose ids come again once its newest rows are deleted (as SQLite's
    did before AUTOINCREMENT): what a feed must still follow exactly."""

    key = "reusing"

    def add(self, name: str) -> None:
        self.rows[self.last() + 1] = name

    def __init__(self, page: int = 1_000) -> None:
        self.rows: dict[int, str] = {}
        self.page = page

    def read(self, after: int) -> Page:
        ids = sorted(i for i in self.rows if i > after)[:self.page]
        return Page(ids[-1] if ids else after,
                    [self._item(i) for i in ids],
                    len(ids) == self.page)

    def _item(self, i: int) -> Item:
        make = partial(wrappers_pb2.StringValue, value=self.rows[i])
        return Item(i, make, make().ByteSize())

    def last(self) -> int:
        return max(self.rows, default=0)


def named(items: list[Item]) -> list[str]:
    return [str(item.message().value) for item in items]  # type: ignore[attr-defined]


def run_with_watches(body: Callable[[Watches], Awaitable[None]]) -> None:
    """`body(watches)` on a loop of its own, the Watches (10 at most, a poll of 50 ms)
    closed after it."""

    async def main() -> None:
        commits = Commits()
        try:
            await body(Watches(commits, 10, 0.05))
        finally:
            commits.close()

    asyncio.run(main())


async def watching_two_rows(watches: Watches, table: Reusing) -> tuple[Any, Any]:
    """A watch of `table` that has sent its two rows, a1 and a2, and its feed."""
    table.add("a1")
    table.add("a2")
    watch = watches.items(table.key, table, 0, Caller())
    assert named(await take(watch, 2)) == ["a1", "a2"]
    [fed] = watches._feeds.values()
    return watch, fed


def test_a_watch_behind_when_its_feed_goes_back_loses_no_row() -> None:
    # The feed's word that it went back (its ids start again) came while the watch
    # read for itself, and was dropped: the watch went on from its own position and
    # never sent the rows given the ids it had passed.
    table = Reusing()

    async def body(watches: Watches) -> None:
        watch, fed = await watching_two_rows(watches, table)
        limit, watches.held.limit = watches.held.limit, 0
        table.add("a3")
        while not all(q.behind for q in fed.queues):
            await asyncio.sleep(0.01)
        del table.rows[3], table.rows[2]  # a reset
        while fed.position != 1:
            await asyncio.sleep(0.01)
        watches.held.limit = limit
        table.add("b2")
        table.add("b3")
        assert named(await take(watch, 1)) == ["b2"]
        assert named(await take(watch, 1)) == ["b3"]
        await watch.aclose()

    run_with_watches(body)


def test_a_watch_past_a_reset_reads_no_page_kept_from_before_it() -> None:
    # Pages read by watches catching up are kept a moment for the others at the same
    # position: one read before a reset still held the rows it deleted, and a watch
    # that had sent them, gone back to where the reset left the table, sent them again.
    table = Reusing(page=2)

    async def body(watches: Watches) -> None:
        for name in ("a1", "a2", "a3", "x4", "x5"):
            table.add(name)
        first = watches.items(table.key, table, 0, Caller())
        assert named(await take(first, 5)) == ["a1", "a2", "a3", "x4", "x5"]
        second = watches.items(table.key, table, 3, Caller())  # reads (and keeps) x4, x5
        assert named(await take(second, 2)) == ["x4", "x5"]
        await second.aclose()
        [fed] = watches._feeds.values()
        waiting = asyncio.ensure_future(anext(first))
        del table.rows[5], table.rows[4]  # a reset
        while fed.position != 3 or any(q.chunks for q in fed.queues):
            await asyncio.sleep(0.01)
        limit, watches.held.limit = watches.held.limit, 0  # the first falls behind
        table.rows[6] = "a6"
        while fed.position != 6:
            await asyncio.sleep(0.01)
        watches.held.limit = limit
        assert named([await asyncio.wait_for(waiting, 5)]) == ["a6"]
        await first.aclose()

    run_with_watches(body)


def test_a_watch_let_go_by_its_feeds_going_back_loses_no_row() -> None:
    # The word that the feed went back, pushed while the rows held were past the
    # bound (watches catching up hold their pages past it), let the watch's queue go
    # and was itself dropped: the watch went on from its own position and never
    # sent the row given the id it had passed.
    table = Reusing()

    async def body(watches: Watches) -> None:
        watch, fed = await watching_two_rows(watches, table)
        waiting = asyncio.ensure_future(anext(watch))
        limit, watches.held.limit = watches.held.limit, -1  # (held past the bound)
        del table.rows[2]  # a reset
        while fed.position != 1:
            await asyncio.sleep(0.01)
        watches.held.limit = limit
        table.add("b2")
        table.add("b3")
        assert named([await asyncio.wait_for(waiting, 5)]) == ["b2"]
        assert named(await take(watch, 1)) == ["b3"]
        await watch.aclose()

    run_with_watches(body)


class GrpcCall(Caller):
    """A gRPC call's context, as a watch tells one: it says when the call ends."""

    def add_done_callback(self, callback: Any) -> None:
        pass


def test_the_watch_of_a_grpc_call_takes_no_turn_of_the_loops_time(store: Store) -> None:
    # Every write of a gRPC call waits, so each of its messages took a turn of the
    # loop's time of its own, charged nothing: bookkeeping alone (10 watches at 200
    # writes a second: 1,655 -> 1,725-1,860 µs of server CPU a write), and a wait in
    # line behind other watches' turns, past the budget, for nothing.
    async def main() -> None:
        await write(store, "a", "b", "c")
        watches = Watches(Commits(), 10, send_ms=1)
        watches.sending.spent(0.0, 0.5, "other watches")  # the budget's next 500 s spent
        read = source(store)
        call = watches.items(read.key, read, 0, GrpcCall())
        assert [visitor_of(i) for i in await asyncio.wait_for(take(call, 3), 5)] == \
            ["a", "b", "c"]
        assert watches.sending.waits == 0
        await call.aclose()
        # (a server-sent events watch takes its turns: it waits for one)
        sse = watches.items(read.key, read, 0, Caller())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(take(sse, 3), 0.5)
        assert watches.sending.waits == 1
        await sse.aclose()

    asyncio.run(main())
