"""How the request being served came (console.v1 Transport), for the rows it stores.

The envelope sets it for each call, the operation runner for each import job; a
row made outside both (a test, a tool) says TRANSPORT_UNSPECIFIED. A context
variable, so it follows a call on its thread or its asyncio task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

# The numbers of footfall.console.v1.Transport (the store keeps them as integers).
UNSPECIFIED, GRPC, REST, PIXEL, IMPORT = range(5)
PIXEL_METHODS = frozenset(f"/google.cloud.retail.{version}.UserEventService/CollectUserEvent"
                          for version in ("v2", "v2beta", "v2alpha"))

_transport: ContextVar[int] = ContextVar("footfall_transport", default=UNSPECIFIED)


def of_call(transport: str, method: str) -> int:
    """The Transport of a call on `transport` ("grpc" or "http") to `method`."""
    if transport == "grpc":
        return GRPC
    return PIXEL if method in PIXEL_METHODS else REST


def set_transport(value: int) -> None:
    _transport.set(value)


def transport() -> int:
    """The Transport of the request being served."""
    return _transport.get()


def now_us() -> int:
    """Wall-clock microseconds: when a row was received."""
    return time.time_ns() // 1000


def as_import(job: Callable[[T], None]) -> Callable[[T], None]:
    """`job` (an operation runner's job), whose rows say IMPORT."""
    def run(context: T) -> None:
        token = _transport.set(IMPORT)
        try:
            job(context)
        finally:
            _transport.reset(token)

    return run
