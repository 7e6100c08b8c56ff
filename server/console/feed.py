"""Shared watch feeds: one store read per commit for every watch of the same rows.

Every watch of one table and scope (a catalog and filter, a tenant, a project)
shares a `Feed`. Its one reader task reads the rows stored after its position
when this process commits (and every POLL_SECONDS anyway, for what other
replicas store), makes each row into an `Item` once, and hands the items of
each read, as one `Chunk`, to each watch's queue. An item encodes itself once
per form (the gRPC bytes, the JSON of a server-sent event), and a chunk its
items' list once, whatever the number of watches sending it: a watch that keeps
up costs a send per message, nothing per event.

A watch that starts before the feed's position, or falls more than
QUEUE_LIMIT items (or QUEUE_BYTES) behind (its client reads slower than rows are
stored), is not dropped: its queue is let go and it reads the rows it lacks from
the store itself, a page at a time, until it has caught up, then takes the feed's
chunks again (watches catching up from one position share its pages for a moment:
PAGE_CACHE_BYTES). So a slow client costs reads, never unbounded memory, and misses
nothing. The watches of single rows share a budget of messages a second (pace.py)
and one of the loop's time a second for making and sending them (pace.SendCost),
and every read of the store, a feed's or a watch's catching up, a budget of time
a second (pace.Reading, its turns fair between the projects read): past it, feeds
of distinct filters fall behind the rows stored (their positions stay exact) rather
than slow the writes, and catch up later.

Watches are coroutines on the server's loop (their reads go off the loop): an
open watch costs no thread. The watches of a read are woken a few per turn of
the loop, so that the writes answered meanwhile never wait for all their sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Any, NamedTuple, Protocol

from google.protobuf.message import Message

from server.console.pace import FIRST_READ_SECONDS, GRANT, Pace, Reading, SendCost
from server.console.read_trouble import ReadTrouble
from server.console.watch import Caller, Commits
from server.errors import ResourceExhausted, Unavailable
from server.loop import giving_way, long_read_turn, off_loop
from server.store.console import READ_BYTES
from server.store.packed import varint

POLL_SECONDS = 0.5  # how soon a watch sees what another replica stored
QUEUE_LIMIT = 2_000  # items a watch may have waiting before it reads for itself
# ... and bytes (of the rows as stored): events may be of up to --max-event-bytes
# each, so a count alone would let a slow client hold gigabytes.
QUEUE_BYTES = 4 * 1024 * 1024
# Watches woken a turn of the loop when a read is handed out (see `_wake`).
WAKE_SLICE = 10
# A feed of batches reads (and its watches send) at most once every BATCH_SECONDS,
# plus BATCH_SECONDS_PER_WATCH for each of its watches, up to BATCH_SECONDS_MAX:
# a message costs far more than an event in it, and its watches' messages add up.
BATCH_SECONDS = 0.05
BATCH_SECONDS_PER_WATCH = 0.001
BATCH_SECONDS_MAX = 0.2
# ... and wakes its watches, WAKE_SLICE at a time, over this share of that time
# after each read, not in the turns right after it: 200 watches sending in 20
# turns in a row held the loop for about 10 ms five times a second, and the
# writes answered then took 2.6-3.1 times their p99 without watches. An event is
# sent at most BATCH_SECONDS_MAX * (1 + WAKE_SPREAD) = 250 ms after its commit,
# beside the time its read and its send take.
WAKE_SPREAD = 0.25
# The reads of all feeds together, at most (a second): each feed reads at most once
# every feeds / FEED_READS_PER_SECOND seconds. A feed reads at each commit, and each
# distinct filter watched is a feed: without a bound, a reader key opening hundreds
# of watches of distinct filters made a read per watch and commit, and writes waited.
# The feeds waited for (when they handed out their last read, a watch of theirs had
# taken all they had handed it, and did not read by itself: see Feed.waited_for)
# share FEED_READS_PER_SECOND among themselves, each reading at most once every such
# feeds / FEED_READS_PER_SECOND seconds; the others (their watches busy sending, or
# reading by themselves) as many, each at most once every feeds /
# FEED_READS_PER_SECOND seconds, all feeds counted. Counted all alike, 200 feeds of
# watches sending slowly from the first event held a live watch's feed to a read a
# second: its events came 0.56 s (p50) to 1.07 s (p99) after their writes.
FEED_READS_PER_SECOND = 200
# A watch's turn in the budget of sending (--watch-send-ms) is at most this share of
# the budget's second: a turn is taken before it is spent, so the budget ends each
# one as far below nothing as the turn overran, and every watch waits for it to
# refill. Turns of a grant's 50 messages of 1.9 KB of JSON each left it 10-25 ms
# short, and a live watch beside 200 watches catching up waited 0.1-0.3 s (once 0.6)
# for each of its turns: its feed, holding its last event still, read once a second.
SEND_TURNS_PER_SECOND = 50
# ... and together, with the reads of the watches catching up, they take at most
# WATCH_READ_MS milliseconds (of the reading threads' CPU) a second (--watch-read-ms):
# bounded in number alone, the reads of 400 feeds of distinct filters (each selecting
# every event; a filtered read walks its id bucket, about 14 ms a read) took most of
# two cores, and durable writes of 2.3 KB events fell from 1,650/s to 120/s.
WATCH_READ_MS = 200
# The watches of items take together at most WATCH_SEND_MS milliseconds a second of
# the loop to make and send their messages (--watch-send-ms; see pace.SendCost).
WATCH_SEND_MS = 100
# The pages that watches catching up read from the store, kept (the latest, up to
# this many bytes of what they hold: `held_bytes`) for the other watches of the same key at the
# same position: watches held back by their budget of messages (pace.py) fall
# behind together and read the same pages, each of whose items is then made and
# encoded once, not once per watch.
PAGE_CACHE_BYTES = 16 * 1024 * 1024
PAGE_CACHE_SECONDS = 2.0
# What the watches of this process hold at most together: the chunks queued for them
# and of the messages they are sending, each chunk counted once however many watches
# hold it, as what it holds with its encodings (`held_bytes`). Past it, a watch whose
# queue would take a chunk lets its queue go (it reads from the store later), and a
# watch catching up waits before it reads: watches that never read, each of its own
# filter (a feed of its own), held 20 to 85 MB each (a queued read of up to
# READ_BYTES, and a message being sent), and a few hundred of them gigabytes. Counted
# as their rows are stored, 200 such watches over 100,000 events of 160 bytes (a page
# of 1,000 each, with its JSON, 4 KiB an event, and decoded messages) still grew the
# server by 570 MB (server-sent events) and more (batches); now by about 30 MB.
HELD_BYTES = 32 * 1024 * 1024
# ... of which this share (a quarter) is kept for the watches that keep up: a chunk
# goes into a queue that holds some already, and a watch catching up reads a page,
# only while the rest has room (Held.room, Held.room_to_read). Else the pages, and the
# queues growing behind them, of 200 watches from the first event, sent slowly
# (--watch-send-ms), filled the bound: a live watch's chunk of one event found no
# room, and the watch, reading by itself, waited for room among those 200 (its events
# came 4 to 8 s late, some after 15 s).
KEPT_SHARE = 4
# What an item holds beside its row's bytes (measured with tracemalloc: the row read
# and its item, about 430 bytes for a user event (800 while two `partial`s made its
# message and bytes), 650 for a client event, and the names and marks of its JSON,
# about 500), and what its row's bytes, with the encodings made of them, come to (the
# row, its JSON two to three times it, as kept by an item or a chunk; its gRPC bytes
# about once). An event of 160 bytes, counted 1.7 KB, holds 1.2 KB with its JSON.
HELD_PER_ITEM = 1024
HELD_PER_STORED_BYTE = 4


def held_bytes(items: Sequence[Item]) -> int:
    """About what `items` hold, their encodings made (see HELD_PER_ITEM)."""
    return len(items) * HELD_PER_ITEM + HELD_PER_STORED_BYTE * sum(item.size for item in items)
# A watch whose client has taken no message for this long is ended (UNAVAILABLE over
# gRPC: it watches again after the last id it saw, as `footfall ... tail` does), so that
# clients that never read do not keep what their messages hold, nor keep the
# others waiting for room (HELD_BYTES).
SEND_SECONDS = 30.0
SLOW_CLIENT = (f"the watch's client took no message for {SEND_SECONDS:g} s; watch again after "
               f"the last id it saw")


async def close_stream(stream: AsyncIterator[Any]) -> None:
    """End a watch's stream now (its feed lets go of what the watch holds), not
    when the stream is collected; a stream that has ended already is left alone."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def let_slow_client_go(stream: AsyncIterator[Any]) -> None:
    """End a watch's stream now, as one whose client took nothing for SEND_SECONDS:
    its call is counted and logged UNAVAILABLE (watch.admitted's), not as a caller
    that went."""
    throw = getattr(stream, "athrow", None)
    if throw is None:
        await close_stream(stream)
        return
    with contextlib.suppress(Unavailable, StopAsyncIteration):
        await throw(Unavailable(SLOW_CLIENT))


def fitted(text: bytes) -> bytes:
    """`text` in a buffer of its own length: orjson's answer keeps the buffer it was
    written in (4 KiB at least), and kept, the JSON of an event of 476 bytes held 4 KiB
    (https://github.com/ijl/orjson/issues/483; an answer sent and let go may stay)."""
    return bytes(memoryview(text))


class Item:
    """One row as every watch sends it: each encoding of it made once, on first use,
    from its message made for the occasion and let go. Kept, the decoded message of
    a row of 160 bytes held about 2.9 KB (an event of 150,000 products tens of
    megabytes beside its 4 MB of JSON) for as long as any watch held the item (see
    Held); made again, it costs each form of JSON a decoding (a few microseconds for
    a row of hundreds of bytes), beside the encoding's own tens."""

    __slots__ = ("id", "size", "_make", "_encode", "_wire", "_json", "_entry")

    def __init__(self, row_id: int, make: Callable[[], Message] | None, size: int = 0,
                 encode: Callable[[], bytes] | None = None) -> None:
        self.id = row_id
        self.size = size  # about what it holds: the bytes of its row as stored
        self._make = make  # (None: a subclass's `message` makes it from its row)
        # the message's bytes made without the message, when its row allows
        self._encode = encode
        self._wire: bytes | None = None
        self._json: dict[Any, bytes] = {}
        self._entry: bytes | None = None

    def message(self) -> Message:
        """Its message, made now from its row (not kept: its encodings are)."""
        assert self._make is not None
        return self._make()

    def wire(self) -> bytes:
        """The message serialized (what a gRPC stream sends)."""
        if self._wire is None:
            self._wire = self._serialized()
        return self._wire

    def _serialized(self) -> bytes:
        """The message serialized, made now: from its row when it can be."""
        return self._encode() if self._encode is not None else self.message().SerializeToString()

    def json(self, form: Hashable, encode: Callable[[Message], bytes],
             keep: bool = True) -> bytes:
        """`encode(message)`, made once per `form` (the JSON options of a stream);
        made afresh each time when not `keep` (a chunk keeps its items' JSON joined)."""
        text = self._json.get(form)
        if text is None:
            text = fitted(encode(self.message()))
            if keep:
                self._json[form] = text
        return text

    def json_parts(self, form: Hashable, encode: Callable[[Message], bytes]) -> list[bytes]:
        """`json` as parts that every watch shares (see Batch.json_parts)."""
        return [self.json(form, encode)]

    def entry(self, keep: bool = True) -> bytes:
        """The message as field 1 of another (an element of a batch's list); made
        afresh each time when not `keep` (a chunk keeps the joined bytes of its
        items: each item keeping its own two copies as well held the rows thrice
        over)."""
        if self._entry is not None:
            return self._entry
        wire = self._wire if self._wire is not None else self._serialized()
        entry = b"\x0a" + varint(len(wire)) + wire
        if keep:
            self._wire, self._entry = wire, entry
        return entry


class Chunk:
    """The items of one read (or a part of them), in id order, as every watch at
    that position sends them: their list as a UserEventBatch is encoded once
    (field 1 once per item, so the chunks of a message are joined as they are),
    whatever the number of watches sending it."""

    __slots__ = ("items", "size", "held", "holders", "_wire", "_json")

    def __init__(self, items: Sequence[Item]) -> None:
        self.items = items
        self.size = sum(item.size for item in items)  # its rows as stored
        self.held = held_bytes(items)  # what it holds, its encodings made (see Held)
        self.holders = 0  # the queues and sends holding it (see Held)
        self._wire: bytes | None = None
        self._json: dict[Any, bytes] = {}

    def after(self, sent: int) -> Chunk | None:
        """The part of this chunk after the row `sent` (itself when that is all
        of it, as it is unless a watch caught up from the store); None if none."""
        if self.items[0].id > sent:
            return self
        if self.items[-1].id <= sent:
            return None
        return Chunk([item for item in self.items if item.id > sent])

    def wire(self) -> bytes:
        """The items as the elements of a message's field 1."""
        if self._wire is None:
            self._wire = b"".join(item.entry(keep=False) for item in self.items)
        return self._wire

    def json(self, form: Hashable, encode: Callable[[Message], bytes]) -> bytes:
        """The items' JSON, comma-separated (the inside of a JSON list)."""
        text = self._json.get(form)
        if text is None:
            text = self._json[form] = b",".join(item.json(form, encode, keep=False)
                                                for item in self.items)
        return text


class Batch:
    """Chunks sent as one message whose field 1 lists their items (UserEventBatch):
    one chunk (a watch keeping up) sends the chunk's own bytes."""

    __slots__ = ("chunks", "_json_name")

    def __init__(self, chunks: Sequence[Chunk], json_name: str) -> None:
        self.chunks = chunks
        self._json_name = json_name.encode()

    @property
    def size(self) -> int:
        return sum(chunk.size for chunk in self.chunks)

    def wire(self) -> bytes:
        if len(self.chunks) == 1:
            return self.chunks[0].wire()
        return b"".join(chunk.wire() for chunk in self.chunks)

    def json(self, form: Hashable, encode: Callable[[Message], bytes]) -> bytes:
        return b"".join(self.json_parts(form, encode))

    def json_parts(self, form: Hashable, encode: Callable[[Message], bytes]) -> list[bytes]:
        """The message's JSON as parts to send one after the other: its chunks' own
        JSON, which every watch shares, between the few bytes around them (joined, a
        batch of large events was a copy per watch, held while it was sent)."""
        parts = [b'{"%s":[' % self._json_name]
        for chunk in self.chunks:
            parts += (chunk.json(form, encode), b",")
        parts[-1] = b"]}" if self.chunks else parts[-1] + b"]}"
        return parts


class Held:
    """The bytes the chunks the watches of this process hold (queued or being sent,
    each counted once) hold with their encodings (Chunk.held); at most `limit` are
    taken on."""

    __slots__ = ("bytes", "limit")

    def __init__(self, limit: int) -> None:
        self.bytes = 0
        self.limit = limit

    @property
    def full(self) -> bool:
        return self.bytes >= self.limit

    def room(self, chunk: Chunk, kept: bool = True) -> bool:
        """Whether `chunk` may be held (it is already, or it fits), in the share kept
        for the watches that keep up too when `kept`."""
        return chunk.holders > 0 or self.bytes + chunk.held <= self._bound(kept)

    def room_to_read(self) -> bool:
        """Whether a watch catching up may read a page (of up to READ_BYTES) now,
        outside the share kept for the watches that keep up."""
        return self.bytes + READ_BYTES <= self._bound(False)

    def _bound(self, kept: bool) -> int:
        return self.limit if kept else self.limit - self.limit // KEPT_SHARE

    def hold(self, chunk: Chunk) -> None:
        if chunk.holders == 0:
            self.bytes += chunk.held
        chunk.holders += 1

    def release(self, chunk: Chunk) -> None:
        chunk.holders -= 1
        if chunk.holders == 0:
            self.bytes -= chunk.held


class Page(NamedTuple):
    """What a source read: the id of the last row read (the position it started
    from when there was none), the items of the rows the watch selects, in id
    order, and whether the page was full (more may follow at once)."""

    position: int
    items: list[Item]
    full: bool


class Source(Protocol):
    """What a feed reads (both blocking: called off the loop)."""

    def read(self, after: int) -> Page:
        """A page of the rows stored after the position `after`."""

    def last(self) -> int:
        """The id of the last row of the table; 0 when it is empty."""


class _Restart(Chunk):
    """Queued in place of a chunk when the feed's position went back to `position`
    (the newest rows were deleted): what a watch sent up to there stands, and the
    rows after it are new. A watch goes back to it at most (to -1, one that fell
    behind later read every row again): no store gives an id twice (AUTOINCREMENT,
    identities), but a watch asked for the rows after an id past the last gets the
    new ones, and, were ids given again, one skips none of them."""

    __slots__ = ("position",)

    def __init__(self, position: int) -> None:
        super().__init__(())
        self.position = position


class _Queue:
    """One watch's chunks waiting to be sent, and its wake-up."""

    __slots__ = ("chunks", "count", "bytes", "waiter", "behind", "went_back", "caller", "held")

    def __init__(self, caller: Caller, held: Held) -> None:
        self.chunks: deque[Chunk] = deque()
        self.count = 0  # the items of `chunks`
        self.bytes = 0  # their sizes
        self.waiter: asyncio.Future[None] | None = None
        self.behind = False  # items were let go: the watch reads from the store
        # the least position its feed went back to while its chunks were let go
        # (None: it did not): where the watch reads from at most (see _Restart)
        self.went_back: int | None = None
        self.caller = caller
        self.held = held

    def push(self, chunk: Chunk) -> None:
        if self.behind:
            if isinstance(chunk, _Restart):
                self._goes_back(chunk.position)
            return
        # (a chunk larger than the bound still goes into an empty queue: a watch that
        # keeps up sends the feed's shared bytes, not a copy read for itself; unless
        # the watches hold all they may)
        if (self.chunks and (self.count + len(chunk.items) > QUEUE_LIMIT
                             or self.bytes + chunk.size > QUEUE_BYTES)) \
                or not self.held.room(chunk, kept=not self.chunks):
            # (this chunk too: a _Restart finds no room once the rows held are past the
            # bound, as the pages of watches catching up may take them)
            for queued in (*self.chunks, chunk):
                if isinstance(queued, _Restart):
                    self._goes_back(queued.position)
            self.let_go()
            self.behind = True
        else:
            self.chunks.append(chunk)
            self.count += len(chunk.items)
            self.bytes += chunk.size
            self.held.hold(chunk)

    def _goes_back(self, position: int) -> None:
        self.went_back = position if self.went_back is None else min(self.went_back, position)

    def let_go(self) -> None:
        """Empty the queue."""
        for chunk in self.chunks:
            self.held.release(chunk)
        self.chunks.clear()
        self.count = self.bytes = 0

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


def _wake(queues: list[_Queue], spread: float = 0.0, start: int = 0) -> None:
    """Wake the watches of `queues` from `start` on, WAKE_SLICE a turn of the loop
    (the writes answered meanwhile wait for a few sends, not for every watch's),
    the last of them `spread` seconds after the first."""
    for queue in queues[start:start + WAKE_SLICE]:
        queue.wake()
    start += WAKE_SLICE
    if start < len(queues):
        loop = asyncio.get_running_loop()
        if spread:
            gap = spread / math.ceil((len(queues) - start) / WAKE_SLICE)
            loop.call_later(gap, _wake, queues, spread - gap, start)
        else:
            loop.call_soon(_wake, queues, 0.0, start)


def batch_seconds(watches: int) -> float:
    """How often at least a feed of batches with `watches` watches reads."""
    return min(BATCH_SECONDS_MAX, max(BATCH_SECONDS, watches * BATCH_SECONDS_PER_WATCH))


class Feed:
    """The items of one `source`, read once per commit for every watch on it (a
    feed of `batched` watches at most once every `batch_seconds`, the first read
    after a quiet spell at once)."""

    def __init__(self, source: Source, position: int, commits: Commits,
                 poll: float, batched: bool, spacing: Callable[[bool], float],
                 reading: Reading, party: Hashable = "",
                 trouble: ReadTrouble | None = None) -> None:
        self.source = source
        self.position = position  # the rows up to it are read and handed out
        self._commits = commits
        self._poll = poll
        self._batched = batched
        # the least time between two of its reads, now (given `waited_for`)
        self._spacing = spacing
        # when it handed out its last read, a watch of it had taken all it was handed
        # (and did not read by itself): it reads at the pace of the feeds waited for
        self._waited_for = False
        self.on_waited_for: Callable[[int], None] = lambda change: None  # (Watches counts)
        self._reading = reading  # the time a second all reads share
        self._party = party  # whose turns its reads take there (its project)
        self._cost = FIRST_READ_SECONDS  # what its last read cost (CPU seconds)
        # what its reads met, said with the other feeds' (None: a feed alone says its own)
        self._trouble = trouble or ReadTrouble()
        self.queues: set[_Queue] = set()
        self.task: asyncio.Task[None] | None = None
        # (loop time) when its position last went back: pages kept from before it may
        # hold rows deleted since, that its watches sent (see Watches._kept)
        self.went_back_at = -math.inf

    @property
    def waited_for(self) -> bool:
        return self._waited_for

    @waited_for.setter
    def waited_for(self, value: bool) -> None:
        if value != self._waited_for:
            self._waited_for = value
            self.on_waited_for(1 if value else -1)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.task.add_done_callback(lambda _: self._trouble.ended(self))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pushed_at = read_at = -math.inf
        while self.queues and not self._commits.closed:
            wait = read_at + self._spacing(self.waited_for) - loop.time()
            if wait > 0:  # (what is stored meanwhile comes with the next read)
                await asyncio.sleep(wait)
            read_at = loop.time()
            seen = self._commits.count  # before the read: a commit during it wakes the wait
            # Its turn among all reads, its project's in turn with the others' (none
            # needed when every watch reads by itself): past the budget, what is stored
            # meanwhile waits for the next read.
            budgeted = not _all_behind(self.queues)
            taken = await self._reading.take(self._cost, self._party) if budgeted else 0.0
            cost = 0.0
            try:
                top, position, chunk, full, cost = await off_loop(self._read, self.position,
                                                                  budgeted)
            except Exception as exc:  # (StoreUnavailable, or what no outage explains)
                # Said once for every feed, until a read works (see read_trouble): a
                # traceback each poll, two watches wrote 18 of them (700 lines) into the
                # log of a 9 s outage of PostgreSQL.
                self._trouble.failed(self, exc)
                await asyncio.sleep(self._poll)
                continue
            finally:
                if budgeted:
                    self._reading.spent(taken, cost, self._party)
                    self._cost = cost or self._cost
            self._trouble.worked(self)
            if full < 0 and not _all_behind(self.queues):
                # Skipped for watches that all read by themselves, of which one caught
                # up meanwhile to this position (its `upto`) and takes the feed's
                # chunks from it on: not past rows no one read for it; read again.
                continue
            full = full > 0  # (not read: no more to read at once)
            pushed = chunk is not None
            if chunk is not None:
                self._hand_out(chunk)
                pushed_at = loop.time()
            # Not kept while the feed waits for its next read: the queues that took the
            # chunk hold it (counted in Held); kept here as well, the last read of each
            # feed was held outside the bound (200 watches of filters of their own, whose
            # clients read nothing, held 160 MB of rows and as much of their bytes so).
            chunk = None
            if position != self.position:
                self.position = position
                if full or (pushed and not self._batched):
                    continue
                if pushed:  # the rest comes with the next batch
                    await self._pace(loop, pushed_at)
                    continue
                # none of the rows read was selected: wait for a commit, as after none
            if top < position:  # a reset: go on from the last row stored
                self.position, self.went_back_at = top, loop.time()
                self._hand_out(_Restart(top))
                continue
            await self._commits.wait(seen, self._poll)
            if self._batched:
                await self._pace(loop, pushed_at)

    async def _pace(self, loop: asyncio.AbstractEventLoop, pushed_at: float) -> None:
        """A feed of batches: wait until `batch_seconds` after the last push (what
        is stored meanwhile goes in one read)."""
        wait = pushed_at + batch_seconds(len(self.queues)) - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)

    def _hand_out(self, chunk: Chunk) -> None:
        queues = list(self.queues)
        self.waited_for = any(not (queue.behind or queue.chunks) for queue in queues)
        for queue in queues:
            queue.push(chunk)
        _wake(queues, batch_seconds(len(queues)) * WAKE_SPREAD if self._batched else 0.0)

    @giving_way()  # (hundreds of rows made into items: see loop.giving_way)
    def _read(self, after: int, budgeted: bool) -> tuple[int, int, Chunk | None, int, float]:
        """The last row's id (before the read: a row stored after it is read next
        time), and the page read after `after`: its position, its items as a
        chunk (None if none), whether it was full (-1: not read); and what it cost
        (this thread's CPU, seconds). When every watch of the feed reads from the store by itself
        (they fell behind), or had when its turn was not asked (not `budgeted`),
        nothing is read: the position goes to the last row, for them to catch up to
        (the read was made, and let go, for no one)."""
        began = time.thread_time()
        top = self.source.last()
        if not budgeted or _all_behind(self.queues):  # (full -1: skipped, see _run)
            return top, max(after, top), None, -1, time.thread_time() - began
        position, items, full = self.source.read(after)
        if not items:
            # None of the rows up to `top` is selected: the next read starts from
            # there, not again from `after` (a filter that no new row matches
            # would read every row stored since the watch began, at each commit).
            return (top, position if full else max(position, top), None, full,
                    time.thread_time() - began)
        chunk = Chunk(items)
        if self._batched:  # what its watches send (over gRPC nearly always), made off the loop
            chunk.wire()
        return top, position, chunk, full, time.thread_time() - began


def _timed(read: Callable[[int], Page], after: int) -> tuple[Page, float]:
    """`read(after)`, and what it cost this thread (CPU seconds)."""
    began = time.thread_time()
    with giving_way():  # (a page of hundreds of rows, as a feed's read)
        page = read(after)
    return page, time.thread_time() - began


class _Turn:
    """A watch's turn in the budget of sending (Watches._paced): `taken` (what it
    expected to spend), charged once, when it ends, what it `spent`."""

    __slots__ = ("_budget", "_party", "_taken", "spent", "ended")

    def __init__(self, budget: Reading, party: SendCost, taken: float) -> None:
        self._budget = budget
        self._party = party
        self._taken = taken
        self.spent = 0.0
        self.ended = False

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._budget.spent(self._taken, self.spent, self._party)


def _all_behind(queues: set[_Queue]) -> bool:
    """Whether every watch of a feed reads from the store by itself."""
    return bool(queues) and all(queue.behind for queue in list(queues))


def _unsent(queue: _Queue, sent: int) -> tuple[list[Chunk], int]:
    """The chunks queued (emptying the queue), cut to what follows the row
    `sent`, and the new `sent`: the last row of them. They are held (Held) for
    the caller, who releases them once sent: a chunk sent whole is held by the
    queue's hold, passed on (a hold and a release fewer a message)."""
    held, chunks = queue.held, []
    for chunk in queue.chunks:
        if isinstance(chunk, _Restart):
            sent = min(sent, chunk.position)
            held.release(chunk)
            continue
        part = chunk.after(sent)
        if part is not chunk:
            held.release(chunk)
            if part is None:
                continue
            held.hold(part)
        chunks.append(part)
        sent = part.items[-1].id
    queue.chunks.clear()
    queue.count = queue.bytes = 0
    return chunks, sent


class Watches:
    """The open watches of this process and their feeds, keyed by what they read;
    at most `limit` watches at once. The watches of items (a message per row) send
    at most `messages_per_second` messages together (0: no bound; see pace.py), and
    take at most `send_ms` milliseconds a second of the loop to make and send them
    (0: no bound; see pace.SendCost); the feeds and the watches catching up read the
    store at most `read_ms` milliseconds a second together (0: no bound; see
    pace.Reading)."""

    def __init__(self, commits: Commits, limit: int, poll: float = POLL_SECONDS,
                 messages_per_second: int = 0, held_bytes: int = HELD_BYTES,
                 per_project: int | None = None, read_ms: int = WATCH_READ_MS,
                 send_ms: int = WATCH_SEND_MS) -> None:
        self._commits = commits
        self._limit = limit
        # the most one project's watches may take (None: `limit`), so that one
        # project's reader key cannot take every watch of every other project
        self._per_project = limit if per_project is None else per_project
        self._by_project: dict[str, int] = {}  # open watches of each project (some)
        self._poll = poll
        self.pace = Pace(messages_per_second)
        self.reading = Reading(read_ms / 1000)
        self.sending = Reading(send_ms / 1000)
        self.held = Held(held_bytes)
        self.trouble = ReadTrouble()  # what the feeds' reads meet, said once for all
        self._feeds: dict[Hashable, Feed] = {}
        self._waited_for = 0  # the feeds waited for (`_read_spacing`), each told as it flips
        self.open = 0
        self._waiting: set[_Queue] = set()  # watches waiting for a chunk or a poll
        self._tick: asyncio.TimerHandle | None = None
        # (key, position read after) -> the page read there, oldest first
        self._pages: OrderedDict[tuple[Hashable, int], tuple[float, Page]] = OrderedDict()
        self._page_bytes = 0
        self._reset_at = -math.inf  # pages read before it are not used (`forget_pages`)

    def _read_spacing(self, waited_for: bool) -> float:
        """The least time between two reads of a feed: the feeds `waited_for` share
        FEED_READS_PER_SECOND; the others as many, with all the feeds."""
        if not waited_for:
            return len(self._feeds) / FEED_READS_PER_SECOND
        # Counted as each feed flips, not recounted now and then: a count kept for a
        # tenth of a second, made as the first of 40 new feeds handed out its first
        # read, said one feed was waited for, and all 40 read every 5 ms meanwhile.
        return max(1, self._waited_for) / FEED_READS_PER_SECOND

    def _count_waited_for(self, change: int) -> None:
        self._waited_for += change

    @property
    def feeds(self) -> int:
        """How many feeds are reading (one per distinct key watched)."""
        return len(self._feeds)

    def admit(self, project: str = "") -> None:
        """RESOURCE_EXHAUSTED when `limit` watches are open already, or the
        per-project limit of `project`'s (`-`: every project's at once)."""
        if self.open >= self._limit:
            raise ResourceExhausted(f"this server has {self.open} watches open, its limit "
                                    f"(--max-watches); close one, or watch through another "
                                    f"replica", retry_after=1.0)
        if self._by_project.get(project, 0) >= self._per_project:
            raise ResourceExhausted(f"project {project[:100]!r} has {self._per_project} "
                                    f"watches open on this server, the most one project may "
                                    f"(--max-watches-per-project); close one, or watch "
                                    f"through another replica", retry_after=1.0)

    def items(self, key: Hashable, source: Source, after: int, caller: Caller,
              project: str = "") -> AsyncIterator[Item]:
        """The items of the rows stored after the position `after`, then of each
        row stored, for as long as `caller` is there, its deadline (if any) not
        passed, and the server runs. Watches of one `key` (what `source` reads)
        share one feed. RESOURCE_EXHAUSTED past the limit of watches, or of those
        of `project` (raised here, before the stream starts)."""
        return self._open(key, source, after, caller, project)

    def batches(self, key: Hashable, source: Source, after: int, caller: Caller,
                json_name: str, project: str = "") -> AsyncIterator[Batch]:
        """As `items`, in batches (their JSON list named `json_name`): all the
        chunks there are when one is sent, from a feed that reads at most every
        `batch_seconds`. The watches of batches of one key share a feed of their
        own; those at one position send one chunk, the same for all."""
        return self._open(key, source, after, caller, project, json_name)

    def _open(self, key: Hashable, source: Source, after: int, caller: Caller,
              project: str, json_name: str | None = None) -> Any:
        self.admit(project)
        self.open += 1
        self._by_project[project] = self._by_project.get(project, 0) + 1
        # A watch counts until its stream has ended and, for a gRPC call, until grpc
        # ends the call: a call let go (SEND_SECONDS) still holds the message grpc
        # began to send, for as long as its client takes nothing and stays (grpc
        # cannot end it sooner). Counted only while its stream ran, a reader key held
        # any number of such calls.
        call_ends = getattr(caller, "add_done_callback", None)  # (a gRPC call)
        ends = 2 if call_ends is not None else 1
        stream_ended = False

        def ended() -> None:
            nonlocal ends
            ends -= 1
            if not ends:
                self.open -= 1
                left = self._by_project[project] - 1
                if left:
                    self._by_project[project] = left
                else:
                    del self._by_project[project]

        def release() -> None:  # once, whether the stream ran or was dropped unstarted
            nonlocal stream_ended
            if not stream_ended:
                stream_ended = True
                ended()

        stream = self._watch((key, json_name is not None), source, after, caller, release,
                             json_name, project, timed=call_ends is None)
        weakref.finalize(stream, release)  # a stream never iterated runs no `finally`
        if call_ends is not None:
            call_ends(lambda _: ended())
        return stream

    async def _watch(self, key: Hashable, source: Source, after: int, caller: Caller,
                     release: Callable[[], None], json_name: str | None,
                     project: str, timed: bool = True) -> AsyncIterator[Any]:
        """The stream: a Batch of what the feed queued for this watch (or of a page
        it read itself) whenever there is some, or (`json_name` None) each item of
        it. Its reads, and its feed's, take `project`'s turns in the budget of
        reading time (the watches of a feed read one project's rows: its key names
        the catalog, tenant or project read). One generator, not a chain of them: a
        watch of batches wakes for every message it sends, and each layer would cost
        every wake-up. `timed`: its messages take turns of the loop's time to be sent
        (see _paced; not a gRPC call's)."""
        queue = _Queue(caller, self.held)
        sending: list[Chunk] = []  # held while they are sent
        # (a watch of items: its party in `self.sending`; none for a gRPC call, whose
        # every write waits: each message took a turn of its own, charged nothing, at
        # 1,655 -> 1,725-1,860 µs of server CPU a write for 10 watches)
        cost = SendCost() if timed else None
        try:
            feed = self._feeds.get(key)
            if feed is None:
                # A new feed starts at the last row stored: a first watch from the past
                # catches up by itself, as any other does, and does not hold back the
                # live watches that come while it reads the history.
                last = await off_loop(source.last)
                feed = self._feeds.get(key)  # (another watch of the key may have made it)
            if feed is None:
                feed = self._feeds[key] = Feed(source, max(after, last), self._commits,
                                               self._poll, json_name is not None,
                                               self._read_spacing, self.reading, project,
                                               self.trouble)
                feed.on_waited_for = self._count_waited_for
                feed.queues.add(queue)
                feed.start()
            else:
                feed.queues.add(queue)
            # The rows up to `sent` are sent (or were stored before the watch began).
            sent = after
            queue.behind = after < feed.position  # a watch from the past reads up to the feed
            while not caller.done() and not self._commits.closed:
                if queue.behind:
                    queue.behind = False  # the items read from here on are queued
                    if queue.went_back is not None:  # (a _Restart let go)
                        sent, queue.went_back = min(sent, queue.went_back), None
                    upto = feed.position
                    async for page in self._catch_up(key, feed.source, sent, upto, caller,
                                                     project):
                        sent = page[-1].id
                        sending = [Chunk(page)]
                        self.held.hold(sending[0])
                        if json_name is not None:
                            yield Batch(sending, json_name)
                        else:
                            async for item in self._paced(page, cost):
                                yield item
                                del item  # (see below)
                        self._sent(sending)
                        # Held by no name once sent (nor `item`, nor `chunk` below): a
                        # name left bound kept the watch's last page, or item with its
                        # JSON, while it waited, outside HELD_BYTES (100 server-sent
                        # events watches of filters of their own, idle once they had
                        # read ten events of 1 MB, held about 5 MB each).
                        del page
                    sent = max(sent, upto)
                    continue
                if queue.chunks:
                    sending, sent = _unsent(queue, sent)
                    if not sending:
                        continue
                    if json_name is not None:
                        yield Batch(sending, json_name)
                    else:
                        for chunk in sending:
                            async for item in self._paced(chunk.items, cost):
                                yield item
                                del item
                            del chunk
                    self._sent(sending)
                    continue
                remaining = caller.time_remaining()
                if remaining is not None and remaining <= 0:
                    return
                await self._wait(queue, self._poll if remaining is None
                                 else min(self._poll, remaining))
        finally:
            self._sent(sending)
            queue.let_go()
            release()
            self._leave(key, queue)

    def _sent(self, chunks: list[Chunk]) -> None:
        """Release `chunks` (held while sent), emptying the list."""
        for chunk in chunks:
            self.held.release(chunk)
        chunks.clear()

    async def _paced(self, items: Sequence[Item],
                     cost: SendCost | None) -> AsyncIterator[Item]:
        """`items`, as fast as the budgets shared by the watches of items allow: of
        messages (`pace`), and (`cost`, not None) of the loop's time their making and
        sending takes (`sending`, in turns of at most SEND_TURNS_PER_SECOND of its
        second, each watch a party of its own: see pace.SendCost)."""
        if cost is None:
            sent = 0
            while sent < len(items):
                granted = await self.pace.take(len(items) - sent)
                for item in items[sent:sent + granted]:
                    yield item
                sent += granted
            return
        loop = asyncio.get_running_loop()
        sent = 0
        granted = 0  # the messages of the last grant of `pace` not sent yet
        while sent < len(items):
            if not granted:
                # (at most a grant, --watch-messages 0 too: a turn of the time is that long)
                granted = await self.pace.take(min(len(items) - sent, GRANT))
            size = self._turn_size(granted, cost)
            turn = _Turn(self.sending, cost, await self.sending.take(size * cost.each, cost))
            try:
                for item in items[sent:sent + size]:
                    # The loop turns while the client code sends it only if its writing
                    # waits: the turn ends then, its time given back but for what was
                    # spent (else a watch whose client stopped reading held its whole
                    # turn's time for as long as it waited, SEND_SECONDS, and 200 of them
                    # the whole budget).
                    waits = loop.call_soon(turn.end)
                    began = time.thread_time()  # (the loop's CPU: not while others hold the GIL)
                    yield item
                    sent, granted = sent + 1, granted - 1
                    waits.cancel()
                    if turn.ended:
                        break  # (a turn of its own for the rest)
                    turn.spent += cost.measure(time.thread_time() - began)
            finally:
                turn.end()

    def _turn_size(self, granted: int, cost: SendCost) -> int:
        """How many of `granted` messages a watch sends in its next turn of `sending`:
        those that fit in SEND_TURNS_PER_SECOND of the budget's second, at least one;
        all of them when there is no bound (a turn then costs bookkeeping alone)."""
        if self.sending.per_second <= 0:
            return granted
        fit = int(self.sending.per_second / SEND_TURNS_PER_SECOND / max(cost.each, 1e-6))
        return min(granted, max(1, fit))

    def _leave(self, key: Hashable, queue: _Queue) -> None:
        feed = self._feeds.get(key)
        if feed is None:
            return
        feed.queues.discard(queue)
        if not feed.queues:
            del self._feeds[key]
            feed.waited_for = False  # (no longer counted)
            feed.on_waited_for = lambda change: None
            if feed.task is not None:
                feed.task.cancel()

    async def _catch_up(self, key: Hashable, source: Source, after: int, upto: int,
                        caller: Caller, project: str = "") -> AsyncIterator[list[Item]]:
        """Pages of the items of the rows after `after` up to the id `upto`, read
        by this watch (or by another of `key` at the same position, a moment ago)."""
        # A read that decodes every row (a filter by session or product) runs as a long
        # read, in its project's turn: 20 watches of such filters catching up over 200k
        # events (from afterId 1) held the pool every call uses, and took another
        # project's writes from about 360/s to 20/s.
        decoding = getattr(source, "decoding", None)
        expected = FIRST_READ_SECONDS  # what a read costs: its last one's
        while after < upto and not caller.done() and not self._commits.closed:
            page = self._kept(key, after, upto)  # (read a moment ago: no read, no turn)
            if page is None:
                # Its turn among all reads, the feeds' too, its project's in turn with the
                # others' (before the long read's turn and the room below: a read waiting
                # for the budget holds neither).
                taken, cost = await self.reading.take(expected, project), 0.0
                try:
                    async with (long_read_turn(decoding) if decoding is not None
                                else contextlib.nullcontext(off_loop)) as read:
                        # Room for a whole read, kept while it is made (else each watch
                        # catching up could read one past the bound), taken once the turn
                        # is there (a watch waiting in line held it: four filled the
                        # bound, and every other watch stopped); none: wait (a client that
                        # takes nothing is let go after SEND_SECONDS, and its room with it).
                        if self.held.room_to_read():
                            self.held.bytes += READ_BYTES
                            try:
                                page, cost = await self._page(key, source, after, upto, read)
                            finally:
                                self.held.bytes -= READ_BYTES
                finally:
                    self.reading.spent(taken, cost, project)
                    expected = cost or expected
                if page is None:
                    await asyncio.sleep(self._poll)
                    continue
            position, items = page.position, page.items
            part = [item for item in items if item.id <= upto]
            if part:
                yield part
            if len(part) < len(items) or position == after:
                return
            after = position

    def _kept(self, key: Hashable, after: int, upto: int) -> Page | None:
        """The page of `key` after `after` read within PAGE_CACHE_SECONDS, if it is
        what a read now would give a watch catching up to `upto`: it holds every row
        up to its end (full) or up to `upto` (ids are given in the order rows
        commit, so the rows up to its end were all there when it was read; but for
        rows deleted since, as if this read had come first), and it was read after
        the feed last went back (a watch gone back with it had sent the rows the
        reset deleted)."""
        kept = self._pages.get((key, after))
        if kept is None:
            return None
        read_at, page = kept
        fed = self._feeds.get(key)
        if asyncio.get_running_loop().time() - read_at <= PAGE_CACHE_SECONDS \
                and (page.full or page.position >= upto) and read_at > self._reset_at \
                and (fed is None or read_at > fed.went_back_at):
            return page
        return None

    async def _page(self, key: Hashable, source: Source, after: int, upto: int,
                    read: Callable[..., Awaitable[Any]]) -> tuple[Page, float]:
        """The page of `source` after `after`, for a watch catching up to `upto`,
        and what reading it cost (the reading thread's CPU, seconds): kept
        (`_kept`: nothing), or read now and kept."""
        kept = self._kept(key, after, upto)  # (another watch's, read while this one waited)
        if kept is not None:
            return kept, 0.0
        now = asyncio.get_running_loop().time()
        page, cost = await read(_timed, source.read, after)  # (`read`: off_loop, or a long read's)
        if page.full or page.position >= upto:
            self._forget_page((key, after))
            self._pages[key, after] = (now, page)
            self._page_bytes += held_bytes(page.items)
            while self._pages and (self._page_bytes > PAGE_CACHE_BYTES or now - next(
                    iter(self._pages.values()))[0] > PAGE_CACHE_SECONDS):
                self._forget_page(next(iter(self._pages)))
        return page, cost

    def forget_pages(self) -> None:
        """A reset through this process has deleted rows: no page read before now is
        used again (one still being read is kept, but not used). The feed of a
        watch open across the reset learns it went back by itself (`went_back_at`);
        a watch opened after it, with no feed left from before, was given a page
        kept from before the reset and sent the rows it deleted (the console's
        event page, opened again after a reset, found the event still there)."""
        self._reset_at = asyncio.get_running_loop().time()
        self._pages.clear()
        self._page_bytes = 0

    def _forget_page(self, where: tuple[Hashable, int]) -> None:
        kept = self._pages.pop(where, None)
        if kept is not None:
            self._page_bytes -= held_bytes(kept[1].items)

    async def _wait(self, queue: _Queue, seconds: float) -> None:
        """Until `queue` is woken, or `seconds` (a poll, or less when a deadline
        comes first) have passed: the waits of a poll share one timer (`_tick`),
        so that a watch sending a message every read makes no timer for each."""
        loop = asyncio.get_running_loop()
        queue.waiter = loop.create_future()
        try:
            if seconds < self._poll:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.waiter, seconds)
                return
            self._waiting.add(queue)
            if self._tick is None:
                self._tick = loop.call_later(self._poll, self._on_tick)
            await queue.waiter
        finally:
            queue.waiter = None
            self._waiting.discard(queue)

    def _on_tick(self) -> None:
        """A poll after the first of them began to wait, wake the waiting watches
        that have something to look at: their caller gone or with a deadline, or
        the server stopping. The others wait on (for the next tick): nothing has
        changed for them, and 200 idle watches woken twice a second to look would
        cost the loop as much as their messages."""
        self._tick = None
        closed = self._commits.closed
        for queue in list(self._waiting):
            caller = queue.caller
            if closed or caller.done() or caller.time_remaining() is not None:
                self._waiting.discard(queue)
                queue.wake()
        if self._waiting:
            self._tick = asyncio.get_running_loop().call_later(self._poll, self._on_tick)
