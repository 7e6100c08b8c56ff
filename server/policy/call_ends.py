"""What is counted for a gRPC call until grpc lets it go, given back then without
leaving the call in a reference cycle.

grpc.aio runs a call (its method lookup, its handler, the sending of its answer
and status) in one task, and runs the callbacks of the call's
`context.add_done_callback` when that task is done. The callbacks are kept as
`functools.partial(callback, context)` in a list of the call's state, which the
context refers to, and nothing clears the list afterwards: every call given one
left its state, its context, the partial and the callback in a cycle (11 objects
collected a call, 5 without: tests/integration/test_call_cycles.py), which only a
young collection frees. At 16 callers of durable writes those collections held
the loop 0.5-11 ms each, every call in flight with them (bench/ANALYSIS.md, "The
tail of a durable write").

A callback added to that task itself (the task the handler runs in) runs at the
same moment, after the same callbacks: grpc's are one done-callback of it. A done
task lets go of its callbacks, and the callback here keeps nothing of the call:
no cycle is left. The handler must not have been moved to a task of its own
(asyncio.wait_for, gather and create_task make one): the callback would then run
when the handler returns, before the answer is taken
(tests/interop/test_grpc_unread_answers.py holds that it does not).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def at_call_end(callback: Callable[[Any], object]) -> None:
    """Run `callback` (given the call's task) once grpc lets the call go: it has
    ended, answered and its status sent, failed or cancelled. Called in the call's
    handler (or what grpc runs before it: the method lookup)."""
    task = asyncio.current_task()
    assert task is not None, "not in a gRPC call's task"
    task.add_done_callback(callback)
