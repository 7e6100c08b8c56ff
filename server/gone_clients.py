"""grpc's own line for a call whose client went away as its answer was sent: one short
line, within a budget of lines, not an ERROR with a traceback each time.

grpc.aio logs `ExecuteBatchError raised in core by servicer method [M]` at ERROR with a
traceback of 8 lines (about 1 KB) when the batch sending a call's answer fails because
its client's connection is gone, unless it heard of the cancellation first (then it says
nothing: the same event, seen in the other order). Anyone can have it said, no key
needed: one client that made a health check, read no answer and closed its connection,
again and again, had 36 such tracebacks a second written (440 KB in 12 s), each an
ERROR that reads as the server's fault.
"""

from __future__ import annotations

import logging

from server.policy import LineBudget

# Where grpc.aio logs it
GRPC_LOGGER = "grpc._cython.cygrpc"
# Lines of such calls written at most, a window (server.policy.KEYLESS_LINES_SECONDS);
# the rest are counted, and said in one line once the window ends
GONE_LINES = 10


class GoneClients(logging.Filter):
    """On grpc's logger: its ExecuteBatchError lines as one INFO line each, without
    the traceback, GONE_LINES a window at most; its other lines as they are."""

    def __init__(self) -> None:
        super().__init__()
        self._lines = LineBudget(GONE_LINES, "lines of calls whose client went away as "
                                 "their answer was sent", counted="")

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[0] if record.exc_info else None
        if error is None or error.__name__ != "ExecuteBatchError":
            return True
        logger = logging.getLogger(record.name)
        if not logger.isEnabledFor(logging.INFO) or not self._lines.take():
            return False
        method = record.getMessage().rpartition("[")[2].rstrip("]")
        record.msg, record.args = "call ended: its client went away as its answer was " \
            "sent (%s)", (method,)
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.exc_info, record.exc_text = None, None
        return True


def quiet_gone_clients() -> None:
    """GoneClients on grpc's logger, once however many servers a process starts."""
    logger = logging.getLogger(GRPC_LOGGER)
    if not any(isinstance(each, GoneClients) for each in logger.filters):
        logger.addFilter(GoneClients())
