"""The operation sweep's log line counts in words."""

from __future__ import annotations

from typing import Any, cast

import pytest

from server.clock import FixedClock
from server.operations.sweep import OperationSweep
from server.store import Store


class Forgets:
    """A store whose every sweep deletes `deleted` operations."""

    def __init__(self, deleted: int) -> None:
        self.deleted = deleted

    def forget_operations(self, before_us: int) -> int:
        return self.deleted


@pytest.mark.parametrize(("deleted", "days", "said"), [
    (1, 1, "deleted 1 operation that ended more than 1 day ago"),  # (was "operation(s)",
    (2, 30, "deleted 2 operations that ended more than 30 days ago"),  # "1 days")
])
def test_the_sweep_says_what_it_deleted(deleted: int, days: int, said: str,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="server.operations.sweep")
    store: Any = Forgets(deleted)
    assert OperationSweep(cast(Store, store), FixedClock(0), days).sweep() == deleted
    assert caplog.messages == [said]
