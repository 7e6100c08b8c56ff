"""A logger's messages captured in a test (a handler on the logger, at INFO)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator


class Lines(logging.Handler):
    """The messages of one logger, and a way to wait for one."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        self._arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._arrived:
            self.messages.append(record.getMessage())
            self._arrived.notify_all()

    def wait_for(self, wanted: Callable[[str], bool]) -> str:
        with self._arrived:
            assert self._arrived.wait_for(lambda: any(map(wanted, self.messages)), timeout=30)
            return next(m for m in self.messages if wanted(m))


def lines_of(name: str) -> Iterator[Lines]:
    """The messages of logger `name` while the caller (a fixture) yields, at INFO."""
    logger = logging.getLogger(name)
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
