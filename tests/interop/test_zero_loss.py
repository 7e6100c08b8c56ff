"""Zero loss: several clients load the server with writes; the server dies (SIGKILL)
or is stopped (SIGTERM) at a random moment; after a restart every acknowledged
event is in the store, counted with the events CLI and matched by visitor id."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from google.api_core import exceptions

from .support import (
    RPC_DEADLINE,
    ServerProcess,
    count_events,
    list_events,
    retail_client,
    wait_until,
)

CATALOG = "projects/footfall-interop/locations/global/catalogs/zero-loss"
CLIENTS = 6
LOAD_SECONDS = (0.4, 1.2)  # the moment of the kill or stop, after the first acks
GIVE_UP_AFTER = 5.0  # seconds a client keeps trying once the server is gone


class Load:
    """CLIENTS threads, each with its own channel, writing distinct events until
    told to stop or the server is gone; `acked` holds the visitor id of every
    event whose write was answered OK."""

    def __init__(self, address: str, write_async: bool) -> None:
        self.acked: list[str] = []
        self.failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(address, n, write_async),
                                          name=f"load-{n}") for n in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=RPC_DEADLINE + GIVE_UP_AFTER)

    def _run(self, address: str, client_id: int, write_async: bool) -> None:
        failed_since: float | None = None
        with retail_client(address) as client:
            for i in range(1_000_000):
                if self._stop.is_set():
                    return
                visitor = f"c{client_id}-{i}"
                try:
                    client.write_user_event(
                        request={"parent": CATALOG, "write_async": write_async,
                                 "user_event": {"event_type": "home-page-view",
                                                "visitor_id": visitor}},
                        timeout=2.0, retry=None)
                except exceptions.GoogleAPICallError:
                    with self._lock:
                        self.failures += 1
                    failed_since = failed_since or time.monotonic()
                    if time.monotonic() - failed_since > GIVE_UP_AFTER:
                        return
                    time.sleep(0.01)
                else:
                    failed_since = None
                    with self._lock:
                        self.acked.append(visitor)

    def count(self) -> int:
        with self._lock:
            return len(self.acked)


def interrupt_under_load(server: ServerProcess, write_async: bool,
                         interrupt: Callable[[ServerProcess], None]) -> list[str]:
    """Load `server`, `interrupt` it at a random moment; the acknowledged visitor ids."""
    with Load(server.address, write_async) as load:
        wait_until(lambda: load.count() >= 100, "the first acknowledged writes", deadline=15)
        time.sleep(random.uniform(*LOAD_SECONDS))  # a random moment under load
        interrupt(server)
    assert load.failures > 0, "the clients never saw the server go"
    return list(load.acked)


def assert_all_stored(acked: list[str], server_factory: Callable[..., ServerProcess],
                      tmp_path: Path) -> None:
    restarted = server_factory()  # same store: opens after the crash and serves
    with retail_client(restarted.address) as client:
        client.write_user_event(request={"parent": CATALOG, "user_event": {
            "event_type": "home-page-view", "visitor_id": "after-restart"}},
            timeout=RPC_DEADLINE)
    assert restarted.stop() == 0
    total = count_events(restarted.store, CATALOG, tmp_path)
    stored = [e["visitorId"] for e in list_events(restarted.store, CATALOG, tmp_path,
                                                  limit=total + 1)]
    assert len(stored) == total == len(set(stored)), "an event was stored twice"
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events were lost, " \
                        f"e.g. {sorted(missing)[:5]}"
    # What is stored beyond the acknowledged: writes committed whose answer was lost.
    assert len(stored) - 1 - len(acked) <= CLIENTS


def test_sigkill_under_synchronous_writes_loses_no_acknowledged_event(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    acked = interrupt_under_load(server_factory(), False, ServerProcess.kill)
    assert_all_stored(acked, server_factory, tmp_path)


def test_sigterm_under_write_async_flushes_every_acknowledged_event(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    def stop(server: ServerProcess) -> None:
        assert server.stop() == 0, server.log_text()

    acked = interrupt_under_load(server_factory(), True, stop)
    assert_all_stored(acked, server_factory, tmp_path)
