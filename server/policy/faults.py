"""Fault injection for client developers: a call carrying

    x-footfall-fail: CODE[;after=N][;times=N][;delay=SECONDS][;id=ANYTHING]

fails with the gRPC status CODE (a name: UNAVAILABLE, DEADLINE_EXCEEDED, ...), so
a team can test its retries and error handling against the real client library.
`after=N` lets the first N such calls through; `times=N` fails at most N of them
(then calls pass again); `delay` waits first (with CODE `OK` the call is only
delayed). Counts are kept per RPC and per header value: change the value (e.g.
`;id=run-7`) for a fresh count. Only with `--allow-fault-injection`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import grpc

from server.errors import ChosenStatus, InvalidArgument

HEADER = "x-footfall-fail"
MAX_DELAY_SECONDS = 60.0
MAX_TRACKED = 10_000  # counters kept; the least recently used go first
_CODES = {code.name: code for code in grpc.StatusCode}


@dataclass(frozen=True)
class FaultSpec:
    """A parsed header; `code` None means OK (delay only)."""

    code: grpc.StatusCode | None
    after: int = 0
    times: int | None = None
    delay: float = 0.0


def _bad(why: str) -> InvalidArgument:
    return InvalidArgument.field(HEADER, why)


def _count(name: str, value: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise _bad(f"{name} must be a whole number, got {value[:50]!r}")
    return int(value)


def parse_spec(text: str) -> FaultSpec:
    """The spec in a header value; INVALID_ARGUMENT naming the header otherwise."""
    name, *options = (part.strip() for part in text.split(";"))
    code = _CODES.get(name.upper())
    if code is None:
        raise _bad(f"unknown status code {name[:50]!r}; use a name such as UNAVAILABLE")
    after, times, delay = 0, None, 0.0
    for option in options:
        key, equals, value = (p.strip() for p in option.partition("="))
        if not equals and not key:
            continue
        if key == "after":
            after = _count(key, value)
        elif key == "times":
            times = _count(key, value)
        elif key == "delay":
            try:
                delay = float(value)
            except ValueError:
                raise _bad(f"delay must be seconds, got {value[:50]!r}") from None
            if not 0 <= delay <= MAX_DELAY_SECONDS:
                raise _bad(f"delay must be 0..{MAX_DELAY_SECONDS:g} seconds, got {value!r}")
        elif key != "id":
            raise _bad(f"unknown option {key[:50]!r}; use after=N, times=N, delay=S or id=X")
    return FaultSpec(None if code is grpc.StatusCode.OK else code, after, times, delay)


def injected(code: grpc.StatusCode, header: str) -> ChosenStatus:
    """The failure a client asked for with `header`."""
    return ChosenStatus(code, f"injected failure ({HEADER}: {header[:200]})")


class FaultInjector:
    """Decides, per call, whether a requested fault fires (after/times counting)."""

    def __init__(self, max_tracked: int = MAX_TRACKED) -> None:
        self._seen: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()
        self._max = max_tracked
        self._lock = threading.Lock()

    def fires(self, method: str, header: str, spec: FaultSpec) -> bool:
        """Whether this call (of `method`, carrying `header`) fails; counts it."""
        if spec.code is None:
            return False
        key = (method, header)
        with self._lock:
            calls, failures = self._seen.pop(key, (0, 0))
            fire = calls >= spec.after and (spec.times is None or failures < spec.times)
            self._seen[key] = (calls + 1, failures + int(fire))
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
        return fire
