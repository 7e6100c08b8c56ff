"""A store whose event scans each last two leases, for the jobs that must keep
their lease while one batch's read runs (rejoin and export: a selective scope or
filter passes over millions of rows in one read)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from server.clock import FixedClock
from server.store import Store


def scans_past_the_lease(store: Store, monkeypatch: pytest.MonkeyPatch, clock: FixedClock,
                         name: str, lease_us: int, position: Callable[[dict[str, Any]], int]
                         ) -> None:
    """Makes each `store.scan_user_events` of operation `name`'s job move `clock` on by
    two leases while it runs, half a lease at a time, each time waiting for the job
    to renew and checking that no other worker could take the operation over; and,
    before the scan is made, that the stored checkpoint's `position` (how far the
    job got, 0 before its first step) is where the scan starts."""
    renewed = threading.Event()
    run_step, scan = store.run_step, store.scan_user_events

    def noted(*args: Any) -> Any:
        result = run_step(*args)
        renewed.set()
        return result

    def slowly(query: Any, limit: int, after_id: int = 0, max_bytes: int | None = None) -> Any:
        assert query.joined is False
        for _ in range(4):
            renewed.clear()
            clock.advance(lease_us / 2e6)
            renewed.wait(2.0)
            assert store.claim_operation("w2", clock.now_ns() // 1000, lease_us,
                                         lambda _: False) is None, "the lease ran out"
        held = store.get_operation(name)
        assert held is not None
        assert position(json.loads(held.checkpoint) if held.checkpoint else {}) == after_id
        return scan(query, limit, after_id, max_bytes)

    monkeypatch.setattr(store, "run_step", noted)
    monkeypatch.setattr(store, "scan_user_events", slowly)
