"""Deadlines for a PostgreSQL that hangs rather than goes away.

A database whose processes are stopped (SIGSTOP, a VM paused) or behind a network
that drops packets keeps its TCP connections open and answers nothing: a statement
sent to it waits for as long as the freeze lasts, and a write's caller with it.
Nothing else ends that wait: statement_timeout is kept by the frozen server itself,
keepalives and tcp_user_timeout by the kernel, which still acknowledges for a stopped
process; and a deadline on the statement's length alone would kill a purge's long
step or a write that waits its turn behind another replica's.

So the length of a statement says nothing alone. A `HangWatch` thread looks at the
statements in flight: once one has waited `after` seconds, it asks whether the
database answers at all (`probe`: `SELECT 1` on a connection of its own, within a
deadline of its own, `select_one`). If it does, the statement is only long, and goes
on. If it does not, every statement in flight since before the probe has its
connection cut (the socket shut down: the driver wakes up to "server closed the
connection unexpectedly"), and the store goes on as if the database were away.
"""

from __future__ import annotations

import itertools
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25  # how often the watch looks at what is in flight


def select_one(conn: psycopg.Connection[Any], seconds: float) -> None:
    """`SELECT 1` on `conn` (idle, in autocommit), answered within `seconds`:
    TimeoutError if it is not (the connection is then unusable: close it),
    psycopg.OperationalError if the connection fails. psycopg's own `execute` waits
    without a deadline, so the query is sent and waited for through libpq's
    nonblocking calls."""
    deadline = time.monotonic() + seconds
    with conn.lock:
        pgconn = conn.pgconn
        pgconn.send_query(b"SELECT 1")
        fd = pgconn.socket
        ready = True
        while ready and pgconn.flush():  # (1 while some of the query is still to be sent)
            ready = _wait(fd, select.POLLOUT, deadline)
        while ready:
            pgconn.consume_input()
            if not pgconn.is_busy():
                break
            ready = _wait(fd, select.POLLIN, deadline)
        if not ready:
            raise TimeoutError(f"no answer to SELECT 1 within {seconds:g} s")
        failed = None
        while (result := pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.TUPLES_OK:
                failed = result.error_message
        if failed is not None:
            raise psycopg.OperationalError(f"SELECT 1 failed: {failed.decode(errors='replace')}")


def _wait(fd: int, events: int, deadline: float) -> bool:
    """Whether `fd` is ready for `events` (or failed) by `deadline` (time.monotonic())."""
    poll = select.poll()  # (not select.select: a busy server's descriptors pass 1024)
    poll.register(fd, events | select.POLLERR | select.POLLHUP)
    remaining = deadline - time.monotonic()
    return remaining > 0 and bool(poll.poll(remaining * 1000))


def socket_of(conn: psycopg.Connection[Any]) -> socket.socket | None:
    """A socket of `conn`'s own for HangWatch to cut: a duplicate descriptor (libpq
    may close its own meanwhile, and the number be given to another connection, which
    must never be the one cut); None for a connection already lost. The caller closes
    it."""
    try:
        return socket.socket(fileno=os.dup(conn.pgconn.socket))
    except (psycopg.Error, OSError):
        return None


class HangWatch:
    """Cuts the connections of the statements a hung database keeps waiting (see the
    module doc). `hangs(since)`: whether the database hangs (answers nothing within the
    probe's deadlines; one that refuses a connection or answers an error does not), as
    found by a probe ended after `since` (time.monotonic()): one made then, unless
    another (the health check's) has just ended; the store notes the answer for
    itself. `hung()`: whether the store's last probe found it so; the watch then
    probes again every `after` seconds until it answers (the store sends it nothing
    meanwhile, so no statement in flight would show it)."""

    def __init__(self, hangs: Callable[[float], bool], hung: Callable[[], bool], *,
                 after: float, name: str = "footfall-hang-watch",
                 tick: float = TICK_SECONDS) -> None:
        self._hangs = hangs
        self._hung = hung
        self._after = after
        self._tick = tick
        self._lock = threading.Lock()
        # statements in flight: when each began, and a socket of its connection (a
        # duplicate descriptor: libpq may close its own meanwhile, and the number be
        # given to another connection, which must never be the one cut)
        self._flying: dict[int, tuple[float, socket.socket]] = {}
        self._ids = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @contextmanager
    def watching(self, conn: psycopg.Connection[Any],
                 kept: socket.socket | None = None) -> Iterator[None]:
        """While the block runs, its statements on `conn` are cut if the database
        is found hung (they raise psycopg.OperationalError, `conn` broken). `kept`:
        `conn`'s socket_of, which the caller keeps as long as it uses `conn` and
        closes with it (the writer's: a duplicate made and closed at every block
        was some 20 us of the writer's CPU a write)."""
        sock = kept if kept is not None else socket_of(conn)
        if sock is None:  # (a connection already lost: its statements fail by themselves)
            yield
            return
        key = next(self._ids)
        with self._lock:
            self._flying[key] = (time.monotonic(), sock)
        try:
            yield
        finally:
            with self._lock:
                del self._flying[key]
            if kept is None:
                sock.close()

    def close(self) -> None:
        self._stop.set()
        # (a probe under way ends within its deadline)
        self._thread.join()

    def _run(self) -> None:
        probed = 0.0
        while not self._stop.wait(self._tick):
            now = time.monotonic()
            with self._lock:
                oldest = min((began for began, _ in self._flying.values()), default=now)
            if now - probed < self._after or not (now - oldest >= self._after or self._hung()):
                continue
            probed = now
            try:
                if self._hangs(now) and not self._stop.is_set():
                    self._cut(began_before=now)
            except Exception:  # a probe that breaks must not end the watch
                log.exception("PostgreSQL probe failed")

    def _cut(self, began_before: float) -> None:
        """Cut the connections of the statements in flight that began by `began_before`."""
        cut = 0
        with self._lock:
            for began, sock in self._flying.values():
                if began <= began_before:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                        cut += 1
                    except OSError:
                        pass  # (closed by the other side meanwhile: nothing waits on it)
        if cut:
            log.error("PostgreSQL does not answer: %d statements in flight given up "
                      "(their connections cut)", cut)
