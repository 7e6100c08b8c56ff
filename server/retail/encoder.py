"""The deterministic encoding of a large event, made in a process of its own.

An event's stored bytes are its deterministic serialization (the dedup key hashes
them): for a map, upb sorts its entries first, in one C call that holds the
interpreter's lock throughout, on whichever thread makes it (100,000 attributes:
30-100 ms, against 3-4 ms unsorted), and the loop, which serves every call, waits
for it. Here the unsorted encoding (one pass) goes to a worker process, which
decodes it and encodes it sorted: the same bytes, made on another interpreter. The
unsorted encoding is the message's answer too (what grpc, or the JSON of a large REST
answer, would make of it again on the loop).

The worker is spawned (never forked from a process with gRPC threads) at the first
large event, ignores Ctrl-C, and exits by itself once the server is gone. Should it
die, the encoding is made here, and the next one starts another.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from server.retail.line_pool import worker_setup

log = logging.getLogger(__name__)

_lock = threading.Lock()
_executor: ProcessPoolExecutor | None = None
# Set by the last server's `close`, until an `open`: a large event written meanwhile (a
# call its grace left running) is encoded here; it started a worker nobody closed.
_closed = False
_servers = 0  # started and not yet stopped, in this process (tests start several)


def _sorted(kind: Any, unsorted: bytes) -> bytes:
    """In the worker: `unsorted` (a serialized `kind`) encoded deterministically."""
    return kind.FromString(unsorted).SerializeToString(deterministic=True)


def _ready() -> ProcessPoolExecutor | None:
    global _executor
    with _lock:
        if _closed:
            return None
        if _executor is None:
            _executor = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"),
                initializer=worker_setup, initargs=(os.getpid(),))
        return _executor


def encodings(message: Any) -> tuple[bytes, bytes]:
    """`message.SerializeToString()`, and its deterministic serialization made by the
    worker process (blocking: call it off the loop)."""
    unsorted = message.SerializeToString()
    executor = _ready()
    if executor is None:
        return unsorted, message.SerializeToString(deterministic=True)
    try:
        return unsorted, executor.submit(_sorted, type(message), unsorted).result()
    except BrokenProcessPool:
        global _executor
        with _lock:
            if _executor is executor:
                _executor = None
        log.warning("the encoding process died; another starts for the next large event")
    except RuntimeError:  # (closed meanwhile: the server stops)
        pass
    return unsorted, message.SerializeToString(deterministic=True)


def deterministic(message: Any) -> bytes:
    """`message.SerializeToString(deterministic=True)`, made as `encodings` makes it."""
    return encodings(message)[1]


def open() -> None:  # noqa: A001  # (the module's, as close)
    """A server starts: the next large event may start a worker."""
    global _closed, _servers
    with _lock:
        _closed, _servers = False, _servers + 1


def close() -> None:
    """A server stops: the last one stops the worker, if started, and large events
    are encoded here until the next `open`."""
    global _executor, _closed, _servers
    with _lock:
        _servers = max(0, _servers - 1)
        if _servers:
            return
        executor, _executor, _closed = _executor, None, True
    if executor is not None:
        executor.shutdown(wait=True, cancel_futures=True)
