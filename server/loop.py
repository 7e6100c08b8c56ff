"""The one asyncio loop that serves both transports, and the way off it.

gRPC (grpc.aio) and the HTTP gateway (aiohttp) run on one loop on one thread
("footfall-loop"), calling the same async servicers. Nothing blocking runs on
it: event writes await the group-commit writer (which answers a whole batch at
once); every other blocking store call goes through `off_loop`, to the loop's
small pool of threads (--workers), but reads that may take minutes (insights),
which go through `long_read`, to threads of their own.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable, Iterator
from typing import Any, TypeVar

import uvloop

from server.errors import Cancelled

T = TypeVar("T")

START_TIMEOUT = 30.0


# Set, in the context a pool thread runs `off_loop`'s work in, once the coroutine
# that awaits it is cancelled (its caller went, or its deadline passed).
_ABANDONED: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "footfall_abandoned", default=None)


# Reads that may take seconds to minutes (insights, which read a whole catalog or
# range; a count that decodes every event its filter's other terms select) run on
# threads of their own: on the loop's pool, ten ComputeTotals of one reader key
# over 300k events held all of its threads, and a one-event page of ListUserEvents
# (5 ms alone) waited 24 s behind them, as did every product call and operation.
# Those past these threads wait in line, as coroutines, within their deadlines.
_LONG_READERS = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="footfall-long-read")
# How many of those threads the reads of one share (a project) may hold at once:
# six counts of one reader key, each decoding a 200k-event catalog, made another
# project's count wait 16 s and its writes fall from about 830/s to 9/s.
LONG_READS_PER_SHARE = 2
# A page of the console's lists (up to 1,000 events or 3 MiB) holds a thread, and the
# interpreter's one lock, for up to a second: 16 pages at once of one reader key, on
# the loop's pool, took another project's durable writes from 50 a second to 4-24 (the
# longest 17 s; two at once kept them at 50). Pages run on threads of their own, as
# long reads do, LONG_READS_PER_SHARE of one share's at once.
_PAGE_READERS = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="footfall-page-read")


class _Share:
    """The turns of one share's long reads on one loop: LONG_READS_PER_SHARE at once."""

    __slots__ = ("free", "waiting")

    def __init__(self) -> None:
        self.free = LONG_READS_PER_SHARE
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()


# (loop, threads, share) -> its turns; dropped when no call holds or awaits one. By
# loop: two servers of one process (tests) share no turn.
_Key = tuple[asyncio.AbstractEventLoop, concurrent.futures.Executor, Hashable]
_SHARES: dict[_Key, _Share] = {}


async def off_loop(fn: Callable[..., T], /, *args: Any) -> T:
    """`fn(*args)`, run on the loop's pool: how a coroutine calls the store (or
    anything else that blocks). It runs in a copy of the caller's context, as
    asyncio.to_thread does, so context variables (the retail API version an
    operation is named for) reach it. Cancelled, it goes on in its thread, but
    work of many reads stops at the next (`stop_if_abandoned`)."""
    context, gone = _abandonable()
    try:
        return await asyncio.get_running_loop().run_in_executor(None, context.run, fn, *args)
    except asyncio.CancelledError:
        gone.set()
        raise


async def long_read(fn: Callable[..., T], /, *args: Any, share: Hashable) -> T:
    """As `off_loop`, on the long reads' own threads (see _LONG_READERS), at most
    LONG_READS_PER_SHARE at a time of those of `share` (the project read): the
    others wait in line, as coroutines."""
    async with long_read_turn(share) as run:
        return await run(fn, *args)


async def page_read(fn: Callable[..., T], /, *args: Any, share: Hashable) -> T:
    """As `long_read`, on the pages' own threads (see _PAGE_READERS): a page of a
    list, which may hold a thread for a second."""
    async with long_read_turn(share, _PAGE_READERS) as run:
        return await run(fn, *args)


def threads_of(run: Callable[..., Awaitable[Any]]) -> concurrent.futures.Executor | None:
    """The threads `run` reads on, taken in turns by share, if it is `long_read` or
    `page_read` (None: another way of running a read), for `long_read_turn`."""
    if run is long_read:
        return _LONG_READERS
    if run is page_read:
        return _PAGE_READERS
    return None


@contextlib.asynccontextmanager
async def long_read_turn(share: Hashable,
                         threads: concurrent.futures.Executor = _LONG_READERS
                         ) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """A turn among the long reads of `share` on `threads` (waited for in line,
    holding no thread); within it, `run(fn, *args)` runs `fn` as `long_read` does.
    The turn ends with the block, or, if a read it ran was cancelled while its
    thread goes on, once that thread ends: a caller that gives up does not free a
    turn its work still holds (short deadlines again and again took every long-read
    thread)."""
    loop = asyncio.get_running_loop()
    key = (loop, threads, share)
    turns = _SHARES.get(key)
    if turns is None:
        turns = _SHARES[key] = _Share()
    held = False
    running: list[concurrent.futures.Future[Any]] = []
    try:
        if turns.free and not turns.waiting:
            turns.free -= 1
        else:
            waiter = loop.create_future()
            turns.waiting.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # granted as it was cancelled
                    _pass_on(key, turns)
                elif waiter in turns.waiting:  # (else a turn passed on skipped it)
                    turns.waiting.remove(waiter)
                raise
        held = True

        async def run(fn: Callable[..., T], /, *args: Any) -> T:
            context, gone = _abandonable()
            future = threads.submit(context.run, fn, *args)
            running.append(future)
            try:
                return await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                gone.set()
                raise

        yield run
    finally:
        busy = [future for future in running if not future.done()]
        if not held:
            _forget_if_idle(key, turns)
        elif busy:  # (each future's callback runs on its thread: the turn goes on the loop)
            remaining = [len(busy)]

            def one_ended() -> None:  # (on the loop: threads end together)
                remaining[0] -= 1
                if not remaining[0]:
                    _pass_on(key, turns)

            def ended(_: Any) -> None:
                with contextlib.suppress(RuntimeError):  # (the loop closed: no turns)
                    loop.call_soon_threadsafe(one_ended)

            for future in busy:
                future.add_done_callback(ended)
        else:
            _pass_on(key, turns)


def _pass_on(key: _Key, turns: _Share) -> None:
    """A turn of `turns` ends: to the first in line, else free again."""
    while turns.waiting:
        waiter = turns.waiting.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return
    turns.free += 1
    _forget_if_idle(key, turns)


def _forget_if_idle(key: _Key, turns: _Share) -> None:
    if turns.free == LONG_READS_PER_SHARE and not turns.waiting and _SHARES.get(key) is turns:
        del _SHARES[key]


def _abandonable() -> tuple[contextvars.Context, threading.Event]:
    """A copy of the caller's context, as asyncio.to_thread makes, with the event
    `stop_if_abandoned` reads in it."""
    context = contextvars.copy_context()
    gone = threading.Event()
    context.run(_ABANDONED.set, gone)
    return context, gone


def abandoned() -> bool:
    """In work run by `off_loop` or `in_decoder`: whether the coroutine awaiting it
    was cancelled (its caller went, or its deadline passed)."""
    gone = _ABANDONED.get()
    return gone is not None and gone.is_set()


def stop_if_abandoned() -> None:
    """In work run by `off_loop`, between the reads of one call: CANCELLED once
    the coroutine awaiting it was cancelled (see `abandoned`), so that a long scan
    does not hold a pool thread for nobody."""
    if abandoned():
        raise Cancelled("the caller went before the answer was ready")


# Set, in the context a read in a budget of reading time runs in (console.pace.Listing),
# to what waits there for the read's turn once events are written.
_PACED: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "footfall_paced", default=None)


def between_reads() -> None:
    """In work run by `off_loop` (`long_read`, `page_read`), between the reads of one
    call (each page, chunk or window): `stop_if_abandoned`, then, in a read within a
    budget of reading time, the wait for its turn if events are written now and were
    not when it began (see console.pace.Listing). The budget is looked at as the read
    goes, not once at its start: a funnel let go in a quiet spell ran its seconds
    beside the writes that came after."""
    stop_if_abandoned()
    paced = _PACED.get()
    if paced is not None:
        paced()


def set_paced(paced: Callable[[], None]) -> None:
    """In the context of a read run on its thread: `paced()` at each `between_reads`."""
    _PACED.set(paced)


# While a thread makes hundreds of rows into Python objects (a watch feed's read: about
# 600 rows at 15 µs each, 9-13 ms holding the interpreter's lock but for SQLite's own
# steps), a thread waiting for the lock gets it after this long, not after Python's
# 5 ms: the loop, and the writer, waited up to 5 ms at each turn they took during the
# read, and the writes answered then with them (200 WatchUserEventBatches watchers:
# the loop was late by more than 4 ms 0.80 times a read, 0.52 now). Only meanwhile:
# at 1 ms always (sys.setswitchinterval at the start), durable writes took 4-7% more
# server CPU each with no watch open, in two runs, and their p99 with 200 watchers
# open was no better than at 5 ms in one run of two.
GIVING_WAY_SECONDS = 0.001


class _GivingWay:
    """The threads in `giving_way` now, and the switch interval before the first."""

    lock = threading.Lock()
    threads = 0
    usual = 0.0


@contextlib.contextmanager
def giving_way() -> Iterator[None]:
    """While the block runs (on any thread, several at once), a thread waiting for
    the interpreter's lock asks its holder for it after GIVING_WAY_SECONDS."""
    with _GivingWay.lock:
        if not _GivingWay.threads:
            _GivingWay.usual = sys.getswitchinterval()
            sys.setswitchinterval(GIVING_WAY_SECONDS)
        _GivingWay.threads += 1
    try:
        yield
    finally:
        with _GivingWay.lock:
            _GivingWay.threads -= 1
            if not _GivingWay.threads:
                sys.setswitchinterval(_GivingWay.usual)


# Large HTTP requests are decoded here, not on the loop: a body of a few MB (a
# million-element list) takes the JSON parser a second or more, which would hold
# up every call of both transports. Two threads of their own, so that a burst of
# large bodies never queues the store reads of the pool behind it.
_DECODERS = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="footfall-decode")


# The JSON of the large events that watches send as server-sent events: one thread
# of its own, so that one reader's watches (each filter a feed, each feed encoding its
# events for itself) never queue ahead of the requests being decoded, and hold one
# large encoding's transient objects at a time (fifteen watches of 1.5 MB events
# made other projects' large writes wait 11-17 s, and the server's memory 2.7 GB).
_STREAM_ENCODER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="footfall-encode")


# Set, in the context of a call whose request came large (decoded on a decoder's
# thread, see policy.envelope), so that its servicer does the rest of its work on
# the request's bulk there too, without measuring it again on the loop.
_LARGE_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("footfall_large_call",
                                                                   default=False)


def large_call() -> bool:
    """Whether the request of the call being served came large (see _LARGE_CALL)."""
    return _LARGE_CALL.get()


def set_large_call() -> None:
    """Say, in the context of the call being served, that its request came large."""
    _LARGE_CALL.set(True)


async def in_decoder(fn: Callable[..., T], /, *args: Any,
                     ended: Callable[[], Any] | None = None) -> T:
    """`fn(*args)` (a decode), run on the decoders' threads in a copy of the caller's
    context; the loop serves other calls meanwhile (between the GIL's switches).
    `ended` is called on the loop once `fn` has returned or raised, or is sure never
    to run (cancelled while it waited): not sooner, if the caller goes meanwhile.
    Cancelled, `fn` goes on, but a wait in it may end (`abandoned`: the encoder's)."""
    context, gone = _abandonable()
    loop = asyncio.get_running_loop()
    try:
        # (no future in this frame where none is needed: a refusal's traceback holds the
        # frame, the future its exception: a cycle, the request's bytes kept till the
        # collector ran)
        if ended is None:
            return await loop.run_in_executor(_DECODERS, context.run, fn, *args)
        future = _DECODERS.submit(context.run, fn, *args)

        def done(_: Any) -> None:  # (on the decoder's thread, or here if done already)
            with contextlib.suppress(RuntimeError):  # (the loop closed: nothing to give back)
                loop.call_soon_threadsafe(ended)

        future.add_done_callback(done)
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        gone.set()
        raise


async def in_stream_encoder(fn: Callable[..., T], /, *args: Any) -> T:
    """`fn(*args)` (the JSON of a large message a watch sends), run on the streams'
    encoding thread in a copy of the caller's context (see _STREAM_ENCODER)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_STREAM_ENCODER, context.run, fn,
                                                            *args)


class LoopThread:
    """An event loop running on a daemon thread of its own, with `threads` pool
    threads for `off_loop`.

    The loop is uvloop's (libuv underneath, asyncio's interface): the same calls of
    both transports for less CPU each. In one run of bench.ab, in turns with the
    same server on asyncio's own loop: durable writes 417 -> 338 µs of server CPU
    per call at 16 callers and 334 -> 305 at 64, pixels 163 -> 141 µs; the empty
    grpc.aio and bare aiohttp baselines gain as much (bench/ANALYSIS.md)."""

    def __init__(self, threads: int, name: str = "footfall-loop") -> None:
        self.loop = uvloop.new_event_loop()
        self._pool = concurrent.futures.ThreadPoolExecutor(threads,
                                                           thread_name_prefix="footfall-store")
        self.loop.set_default_executor(self._pool)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = START_TIMEOUT) -> T:
        """Run `coroutine` on the loop and return its result (or raise what it raised)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its pool; what is still scheduled is dropped."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if not self._thread.is_alive():
            self.loop.close()
