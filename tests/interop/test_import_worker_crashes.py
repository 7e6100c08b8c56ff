"""The worker processes of `footfall serve` (the import's line workers, the large
events' encoder) under crashes, through the official client: a line worker killed
(kill -9) or stopped (SIGSTOP) mid-import is replaced and the import ends with every
line stored and counted once; a server killed with kill -9 leaves none of its workers
running; a SIGTERM while a worker is stopped ends the server promptly, and the import
resumes at the next start (on memory://, the log says it is lost instead); the workers'
start leaves no thread but the one that waits for them taking the server's signals."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from google.cloud import retail_v2

from server.retail.line_pool import WAIT_SECONDS

from .support import (
    RPC_DEADLINE,
    STOP_GRACE,
    ServerProcess,
    count_events,
    event_lines,
    put_gcs,
    retail_client,
    wait_until,
    workers,
)
from .test_heavy_events import heavy, write

CATALOG = "projects/crashes/locations/global/catalogs/default_catalog"
EVENTS = 200_000  # about 20 MB: decoded in worker processes, for seconds
# A worker's end as its server's (polled twice a second), however busy the machine.
GONE_WITHIN = 10.0
# How long the import may take once a stopped worker has been given up on.
HUNG_IMPORT = WAIT_SECONDS + 60.0


def started_import(server: ServerProcess, client: retail_v2.UserEventServiceClient,
                   processes: int) -> str:
    """Start an import of EVENTS events; returns its operation's name once its
    `processes` line workers run and it is not done."""
    uri = put_gcs(server.gcs_root, "gs://crash-bucket/events.json", event_lines(EVENTS))
    operation = client.import_user_events(
        request={"parent": CATALOG, "input_config": {"gcs_source": {"input_uris": [uri]}}},
        timeout=RPC_DEADLINE)
    wait_until(lambda: len(workers(server.proc.pid)) >= processes or None, "the line workers",
               deadline=30)
    name: str = operation.operation.name
    assert not progress(client, name)[0], "the import ended before a worker could be lost"
    return name


def progress(client: retail_v2.UserEventServiceClient, name: str
             ) -> tuple[bool, int, int, str]:
    """Whether the operation is done, its success and failure counts, its error."""
    current = client.get_operation({"name": name}, timeout=RPC_DEADLINE)
    meta = retail_v2.ImportMetadata.deserialize(current.metadata.value)
    return current.done, meta.success_count, meta.failure_count, current.error.message


def ended_import(client: retail_v2.UserEventServiceClient, name: str,
                 deadline: float) -> tuple[bool, int, int, str]:
    wait_until(lambda: progress(client, name)[0] or None, f"{name} done", deadline=deadline,
               interval=0.2)
    return progress(client, name)


def replaced(server: ServerProcess) -> dict[str, float]:
    """footfall_import_workers_replaced_total by reason, from /metrics."""
    text = requests.get(f"http://{server.http_address}/metrics", timeout=RPC_DEADLINE).text
    prefix = "footfall_import_workers_replaced_total{reason=\""
    return {line[len(prefix):].split('"')[0]: float(line.split()[-1])
            for line in text.splitlines() if line.startswith(prefix)}


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not; a stopped process does)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def kill_left(pids: list[int]) -> None:
    for pid in pids:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("sent", "reason"), [(signal.SIGKILL, "died"),
                                               (signal.SIGSTOP, "hung")])
def test_a_line_worker_killed_or_stopped_mid_import_costs_no_line(
        server_factory: Callable[..., ServerProcess], sent: signal.Signals,
        reason: str) -> None:
    # One line worker: whatever it was doing when it stopped, the import waits for it.
    server = server_factory("--import-processes", "1")
    with retail_client(server.address) as client:
        name = started_import(server, client, 1)
        [lost] = workers(server.proc.pid)
        try:
            os.kill(lost, sent)
            done, success, failure, error = ended_import(client, name, HUNG_IMPORT)
            assert not running(lost)  # (a stopped one was killed)
        finally:
            kill_left([lost])
    assert (done, success, failure, error) == (True, EVENTS, 0, "")
    assert count_events(server.store, CATALOG, server.workdir) == EVENTS
    assert replaced(server) == {"died": 0, "hung": 0} | {reason: 1}
    assert "failed (try 1)" not in server.log_text()  # the same try went on


def test_a_server_killed_outright_leaves_no_worker_running(
        server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory("--import-processes", "2")
    with retail_client(server.address) as client:
        write(client, heavy("v-heavy"))  # starts the encoder
        started_import(server, client, 3)
    left = workers(server.proc.pid)
    assert len(left) == 3, left  # two line workers, the encoder
    try:
        server.kill()  # SIGKILL: no teardown of its own
        end = time.monotonic() + GONE_WITHIN
        while any(map(running, left)) and time.monotonic() < end:
            time.sleep(0.05)
        assert not [pid for pid in left if running(pid)]
    finally:
        kill_left(left)


@pytest.mark.timeout(180)
def test_a_server_process_killed_under_processes_leaves_no_worker_running(
        server_factory: Callable[..., ServerProcess]) -> None:
    """Under --processes the server process that starts workers is itself the child of
    the supervisor: its workers end with it, not with the supervisor."""
    server = server_factory("--processes", "2", "--import-processes", "1")
    with retail_client(server.address) as client:
        uri = put_gcs(server.gcs_root, "gs://crash-bucket/events.json", event_lines(EVENTS))
        client.import_user_events(request={"parent": CATALOG, "input_config": {
            "gcs_source": {"input_uris": [uri]}}}, timeout=RPC_DEADLINE)

    def importing() -> tuple[int, list[int]] | None:
        for process in workers(server.proc.pid):  # (the server processes)
            if workers(process):
                return process, workers(process)
        return None

    process, left = wait_until(importing, "a server process's line worker", deadline=30)
    try:
        os.kill(process, signal.SIGKILL)
        end = time.monotonic() + GONE_WITHIN
        while any(map(running, left)) and time.monotonic() < end:
            time.sleep(0.05)
        assert not [pid for pid in left if running(pid)]
    finally:
        kill_left(left)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("stopped", [False, True], ids=["busy", "stopped"])
def test_sigterm_with_a_busy_or_stopped_line_worker_stops_promptly_and_the_import_resumes(
        server_factory: Callable[..., ServerProcess], stopped: bool) -> None:
    server = server_factory("--import-processes", "1")
    with retail_client(server.address) as client:
        name = started_import(server, client, 1)
    left = workers(server.proc.pid)
    try:
        if stopped:
            os.kill(left[0], signal.SIGSTOP)
        started = time.monotonic()
        assert server.stop() == 0, server.log_text()  # (None: killed after STOP_GRACE)
        assert time.monotonic() - started < STOP_GRACE
        assert not [pid for pid in left if running(pid)]
    finally:
        kill_left(left)
    assert f"{name} will resume at the next start" in server.log_text()
    again = server_factory("--import-processes", "2", store=server.store)
    with retail_client(again.address) as client:
        done, success, failure, error = ended_import(client, name, HUNG_IMPORT)
    assert (done, success, failure, error) == (True, EVENTS, 0, "")
    assert count_events(again.store, CATALOG, again.workdir) == EVENTS


def threads_taking(pid: int, signum: int) -> list[int]:
    """The threads of process `pid` that do not block `signum` (a thread in sigwait for
    it does not either, while it waits)."""
    taking = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # (one that ended)
            fields = dict(line.split(":\t", 1) for line in
                          (task / "status").read_text().splitlines() if ":\t" in line)
            if not int(fields["SigBlk"], 16) & (1 << (signum - 1)):
                taking.append(int(task.name))
    return taking


@pytest.mark.timeout(180)
def test_the_workers_start_leaves_sigterm_to_the_thread_that_waits_for_it(
        server_factory: Callable[..., ServerProcess]) -> None:
    """The first executor starts multiprocessing's resource tracker, which unblocks
    SIGINT and SIGTERM in the thread starting it (the job's), and the executor's
    threads started from it inherited that: a SIGTERM the kernel handed to one of them
    ended the server outright, undrained (exit -15, 1 in 10 SIGTERMs sent as the
    workers started). Only the thread in sigwait (the main one) takes it."""
    server = server_factory("--import-processes", "2")
    with retail_client(server.address) as client:
        started_import(server, client, 2)
    assert threads_taking(server.proc.pid, signal.SIGTERM) in ([], [server.proc.pid])
    assert server.stop() == 0, server.log_text()


@pytest.mark.timeout(180)
def test_a_stop_says_a_running_operation_of_a_memory_store_is_lost(
        server_factory: Callable[..., ServerProcess]) -> None:
    """The next start of a memory:// server begins empty: "will resume at the next
    start" was false there."""
    server = server_factory("--import-processes", "1", store="memory://")
    with retail_client(server.address) as client:
        name = started_import(server, client, 1)
    assert server.stop() == 0, server.log_text()
    assert (f"shutting down: {name} stops unfinished and is lost with the memory:// store"
            in server.log_text())
    assert "will resume" not in server.log_text()
