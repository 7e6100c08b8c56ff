"""Prometheus metrics, served at /metrics on the HTTP port.

One registry per server (so in-process tests can run several). The stores stay
free of prometheus: they take a commit listener (`Store.on_commit`),
operations are observed by wrapping the runner's jobs.

Under `--processes N` each process writes its values to files in the folder
PROMETHEUS_MULTIPROC_DIR names (prometheus_client's multiprocess mode, chosen
when that library is first imported), and /metrics, whichever process answers,
sums them over all processes; gauges sum the live processes only.

Calls are counted on every call of either transport (tens of thousands a second
of pixels): in one process, in plain integers that a collector turns into the
two families at scrape time (`CallCounts`), not through prometheus_client's
children, which take a lock for each counter and each histogram per call.
Under `--processes` the values must reach the files, so the children count them.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.rpc import code_pb2
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from server.errors import FootfallError
from server.operations.runner import StopRequested
from server.store.rows import CreatedClientEvent, LeaseLost, StepResult

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
REQUESTS = ("footfall_requests", "Calls answered, by RPC, transport and status code.")
LATENCY = ("footfall_request_duration_seconds", "Time to answer a call, by RPC and transport.")
# Said of the values a collector reads from the process answering the scrape: under
# --processes the others' are not in them (the counters and gauges of prometheus_client
# are summed over the processes).
ANSWERING_PROCESS = " Under --processes: of the process that answered this scrape alone."


def split_method(method: str) -> tuple[str, str]:
    """("google.cloud.retail.v2.UserEventService", "WriteUserEvent") for
    "/google.cloud.retail.v2.UserEventService/WriteUserEvent"."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


class Metrics:
    """The server's metrics and the ways to feed them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.shared = "PROMETHEUS_MULTIPROC_DIR" in os.environ  # --processes
        if self.shared:
            # What /metrics shows: every process's files summed. The metrics below
            # are then registered only to be created (their values go to the files).
            self._exposed = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._exposed)
        else:
            self._exposed = self.registry
            ProcessCollector(registry=self.registry)  # one process's CPU and memory
        self._calls: CallCounts | None = None
        if self.shared:
            self.requests = Counter(*REQUESTS, ["service", "method", "transport", "code"],
                                    registry=self.registry)
            self.latency = Histogram(*LATENCY, ["service", "method", "transport"],
                                     buckets=LATENCY_BUCKETS, registry=self.registry)
        else:
            self._calls = CallCounts()
            self.registry.register(self._calls)
        self.events = Counter(
            "footfall_events_stored",
            "Events committed: user_event (writes, collects and imports; an exact duplicate "
            "write counts though it is stored once) and client_event (talent: those stored).",
            ["kind"], registry=self.registry)
        self.refused_after_answers = Counter(
            "footfall_events_refused_after_answer",
            "Events answered as accepted before their commit (pixels) that the commit then "
            "refused (a catalog product that cannot be decoded, a failure of its row): kept "
            "as rejections, by RPC, transport and status code.",
            ["service", "method", "transport", "code"], registry=self.registry)
        self.calls_refused_over_share = Counter(
            "footfall_calls_refused_over_share",
            "gRPC calls refused RESOURCE_EXHAUSTED before their request was read: their caller "
            "(a key, else a client address) held its share of --max-concurrent-rpcs already. "
            "They are not in footfall_requests.",
            registry=self.registry)
        self.calls_paced = Counter(
            "footfall_calls_paced",
            "Calls (gRPC, REST, pixels) that waited for their time before their request was "
            "read: their key is paced (calls_per_second in the keys file) and they came "
            "early. Those given up while they waited too.",
            registry=self.registry)
        self.calls_refused_over_pace = Counter(
            "footfall_calls_refused_over_pace",
            "Calls (gRPC, REST, pixels) refused RESOURCE_EXHAUSTED, after waiting as long, "
            "whose time was more than 2 s off or past their deadline: their key is paced "
            "(calls_per_second in the keys file). Over gRPC they are not in "
            "footfall_requests; over HTTP they are.",
            registry=self.registry)
        self.batch_size = Histogram(
            "footfall_group_commit_batch_size",
            "Event writes (calls, pixels, import steps) committed together in one transaction; "
            "transactions without any (a job claimed, refusals kept) are not counted.",
            buckets=BATCH_BUCKETS, registry=self.registry)
        self.operations = Counter(
            "footfall_operations",
            "Long-running operation runs (under --processes, of all the processes), by "
            "kind and how they ended: "
            "succeeded, failed, cancelled, paused (shutdown, database away or handed over; "
            "it resumes) or crashed (retried; on its last try, failed).", ["kind", "state"],
            registry=self.registry)
        self.operations_running = Gauge(
            "footfall_operations_running",
            "Operations running now (under --processes, in all the processes).",
            ["kind"], registry=self.registry, multiprocess_mode="livesum")
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._lock = threading.Lock()
        # added to the help of what only the answering process's values make up
        self._alone = ANSWERING_PROCESS if self.shared else ""

    # -- requests ----------------------------------------------------------

    def observe_call(self, method: str, transport: str, code: grpc.StatusCode,
                     seconds: float) -> None:
        """Count one answered call (on the loop's thread, or any under --processes)."""
        if self._calls is not None:
            self._calls.observe(method, transport, code, seconds)
        else:
            self._observe_shared(method, transport, code, seconds)

    def _observe_shared(self, method: str, transport: str, code: grpc.StatusCode,
                        seconds: float) -> None:
        key = (method, transport, code.name)
        children = self._children.get(key)
        if children is None:  # labels() is slow-ish: resolve each combination once
            service, name = split_method(method)
            with self._lock:
                children = (self.requests.labels(service, name, transport, code.name),
                            self.latency.labels(service, name, transport))
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def refused_after_answer(self, method: str, transport: str, code: grpc.StatusCode) -> None:
        """Count an event answered before its commit and refused at it (any thread)."""
        service, name = split_method(method)
        self.refused_after_answers.labels(service, name, transport, code.name).inc()

    # -- the store's group commit --------------------------------------------

    def on_commit(self, jobs: Sequence[Any]) -> None:
        """GroupCommitter hook: one committed batch of `jobs`. Its size is the jobs
        that wrote events (calls, pixels, import steps): the writer's other work (a
        job claimed or its lease renewed, refusals kept, products) is no write a
        caller waits for, and counted would show an idle server's second-by-second
        look for jobs as batches of one. The client events the batch stored are
        counted here too, as user events are: counted as their calls were answered
        OK, one whose caller had gone before its commit was stored uncounted, and an
        identical retry (answered with the event stored before) counted again."""
        writes = stored = clients = 0
        for job in jobs:
            if job.rows is not None:
                writes += 1
                stored += len(job.rows)
            elif job.future.done() and job.future.exception() is None:
                result = job.future.result()
                if isinstance(result, StepResult):
                    writes += 1
                    stored += result.inserted
                elif isinstance(result, CreatedClientEvent) and result.is_new:
                    clients += 1
        if writes:
            self.batch_size.observe(writes)
        if stored:
            self.events.labels("user_event").inc(stored)
        if clients:
            self.events.labels("client_event").inc(clients)

    def watch_uncommitted(self, store: Any) -> None:
        """Show `store`'s acknowledged events not yet committed (under --processes,
        those of the process answering the scrape)."""
        self._exposed.register(_Uncommitted(store, self._alone))

    def watch_serving(self, serving: Callable[[], bool]) -> None:
        """Show what the health check says (`serving()`), 1 SERVING or 0 NOT_SERVING:
        a scrape is answered while the database is away or the disk is full, so that
        `up` alone read 1 throughout (under --processes, the answering process's)."""
        self._exposed.register(_Serving(serving, self._alone))

    def watch_encoder(self, replaced: dict[str, int]) -> None:
        """Show the large events' encoding processes given up on (server.retail.encoder's
        `replaced`: this process's, under --processes)."""
        self._exposed.register(_Replaced(
            replaced, "footfall_encoder_workers_replaced",
            "Processes encoding large events given up on, by reason: died (ended, or "
            "killed by someone else), hung (owed an encoding past its allowance; killed). "
            "The event is encoded in the server; the next large event starts another."
            + self._alone))

    def watch_import_workers(self, replaced: dict[str, int]) -> None:
        """Show the sets of import worker processes given up on (server.retail.line_pool's
        LinePool.replaced: this process's, under --processes)."""
        self._exposed.register(_Replaced(
            replaced, "footfall_import_workers_replaced",
            "Sets of processes decoding the lines of imports given up on, by reason: died "
            "(one ended, or was killed by someone else), hung (one owed a chunk of lines "
            "past its allowance); killed, others decode their chunks again." + self._alone))

    def watch_rejections(self, rejections: Any) -> None:
        """Show the refusals let go unkept (server.console.rejections' `skipped`: this
        process's, under --processes)."""
        self._exposed.register(_NotKept(rejections, self._alone))

    def watch_pace(self, pace: Any) -> None:
        """Show how often the console's watches of single rows waited for their
        shared budget of messages (console/pace.py; this process's, under --processes)."""
        self._exposed.register(_Waits(
            self._alone, pace, "footfall_watch_message_waits",
            "Times a console watch of single rows (WatchUserEvents and the like) waited "
            "for its turn in --watch-messages: each time, it fell behind the rows "
            "stored rather than slow the writes.",
            "footfall_watches_waiting_for_messages",
            "Console watches of single rows waiting for --watch-messages now."))

    def watch_reading(self, reading: Any) -> None:
        """Show how often the reads of the console's watches waited for their shared
        budget of reading time (console/pace.py's Reading; this process's)."""
        self._exposed.register(_Waits(
            self._alone, reading, "footfall_watch_read_waits",
            "Reads of the store by the console's watches (a feed's, after a commit, or a "
            "watch's catching up) that waited for their turn in --watch-read-ms: each "
            "time, a feed fell behind the rows stored rather than slow the writes.",
            "footfall_watch_reads_waiting",
            "Reads of the console's watches waiting for their turn in --watch-read-ms now."))

    def list_reading(self, reading: Any) -> None:
        """Show how often the pages of the console's lists waited for their shared
        budget of reading time (console/pace.py's Listing; this process's)."""
        self._exposed.register(_Waits(
            self._alone, reading, "footfall_list_read_waits",
            "Pages of the console's lists (ListUserEvents and its counts, ListClientEvents, "
            "ListRejections) that waited for their caller's turn in --list-read-ms.",
            "footfall_list_reads_waiting",
            "Pages of the console's lists waiting for their turn in --list-read-ms now."))

    def watch_sending(self, sending: Any) -> None:
        """Show how often the console's watches of single rows waited for their shared
        budget of the loop's time (console/pace.py's SendCost; this process's)."""
        self._exposed.register(_Waits(
            self._alone, sending, "footfall_watch_send_waits",
            "Times a console watch of single rows waited for its turn in --watch-send-ms: "
            "each time, it fell behind the rows stored rather than slow the writes.",
            "footfall_watches_waiting_to_send",
            "Console watches of single rows waiting for --watch-send-ms now."))

    # -- operations ------------------------------------------------------------

    def observe_job(self, kind: str, job: Callable[[Any], None]) -> Callable[[Any], None]:
        """`job` (an OperationRunner job) counted: running now, and how each run ended."""
        running = self.operations_running.labels(kind)

        def observed(context: Any) -> None:
            # a crash is retried, but on the last try the runner ends the operation
            state = "failed" if context.last_try else "crashed"
            running.inc()
            try:
                job(context)
                state = _final_state(context)
            except FootfallError as exc:  # the runner ends the operation with it
                state = "paused" if exc.code is grpc.StatusCode.UNAVAILABLE else "failed"
                raise
            except StopRequested:
                state = "paused"
                raise
            except LeaseLost:  # (taken over, deleted, or ended by a reset of its catalog)
                state = _final_state(context, ended_elsewhere=True)
                raise
            finally:
                running.dec()
                self.operations.labels(kind, state).inc()

        return observed

    def job_given_up(self, kind: str) -> None:
        """Count an operation the runner ended unrun (INTERNAL: its tries ended their
        process) as failed, as a crash on its last try is."""
        self.operations.labels(kind, "failed").inc()

    # -- exposition ------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self._exposed), CONTENT_TYPE_LATEST


class _Uncommitted(Collector):
    """The gauge of a store's acknowledged, uncommitted events, read at each scrape. A
    collector, not a Gauge: under --processes a Gauge writes a file of its own, which
    the multiprocess collector then showed as a second metric of the same name."""

    def __init__(self, store: Any, alone: str) -> None:
        self._store = store
        self._alone = alone  # ANSWERING_PROCESS under --processes

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "footfall_events_acknowledged_uncommitted",
            "Events answered before their commit (pixels, write_async) and not committed "
            "yet: what a kill -9 now would lose." + self._alone,
            value=self._store.acknowledged_uncommitted)


class _Serving(Collector):
    """The gauge of what health says, read at each scrape (a collector for the same
    reason as _Uncommitted)."""

    def __init__(self, serving: Callable[[], bool], alone: str) -> None:
        self._serving = serving
        self._alone = alone

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "footfall_serving",
            "1 while the health check says SERVING; 0 while it says NOT_SERVING: the "
            "database unreachable or hung, its disk full, or the server draining."
            + self._alone,
            value=1 if self._serving() else 0)


class _Replaced(Collector):
    """A count of worker processes given up on, by why, read at each scrape (a
    collector for the same reason as _Uncommitted)."""

    def __init__(self, replaced: dict[str, int], name: str, documentation: str) -> None:
        self._replaced = replaced
        self._name, self._documentation = name, documentation

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=["reason"])
        for reason, count in self._replaced.items():
            family.add_metric([reason], count)
        yield family


class _NotKept(Collector):
    """The count of refusals let go unkept, read at each scrape (a collector for the
    same reason as _Uncommitted)."""

    def __init__(self, rejections: Any, alone: str) -> None:
        self._rejections = rejections
        self._alone = alone

    def collect(self) -> Iterator[Metric]:
        # (here, not at the top: the keeper of refusals imports the policy's auth)
        from server.console.rejections import GATHERED_BYTES, GATHERED_LIMIT

        yield CounterMetricFamily(
            "footfall_rejections_not_kept",
            "Refused requests the console's rejections let go unkept: while the store did "
            f"not take them, more than {GATHERED_LIMIT:,} of them or "
            f"{GATHERED_BYTES // 1024 // 1024} MiB waited (the oldest let go), or the store "
            "refused them. Each is counted in footfall_requests all the same." + self._alone,
            value=self._rejections.skipped)


class _Waits(Collector):
    """The waits of one of the shared budgets of console/pace.py (its `waits`
    so far, counted, and its `waiting` now), read at each scrape (a collector for the
    same reason as _Uncommitted)."""

    def __init__(self, alone: str, budget: Any, waits: str, waits_help: str, waiting: str,
                 waiting_help: str) -> None:
        self._budget = budget
        self._names = (waits, waits_help + alone, waiting, waiting_help + alone)

    def collect(self) -> Iterator[Metric]:
        waits, waits_help, waiting, waiting_help = self._names
        yield CounterMetricFamily(waits, waits_help, value=self._budget.waits)
        yield GaugeMetricFamily(waiting, waiting_help, value=self._budget.waiting)


class CallCounts(Collector):
    """footfall_requests and footfall_request_duration_seconds of one process, kept
    in plain integers and floats and written out as prometheus_client's Counter and
    Histogram would write them (same samples, labels and `_created` times).

    `observe` runs on the loop's thread; a scrape on another thread reads values
    at most one call old, as it would from the children."""

    def __init__(self) -> None:
        # (method, transport, code) -> [count, created]
        self._requests: dict[tuple[str, str, grpc.StatusCode], list[float]] = {}
        # (method, transport) -> [count per bucket (+Inf last)..., sum, created]
        self._latency: dict[tuple[str, str], list[float]] = {}

    def observe(self, method: str, transport: str, code: grpc.StatusCode,
                seconds: float) -> None:
        counted = self._requests.get((method, transport, code))
        if counted is None:
            counted = self._requests[(method, transport, code)] = [0, time.time()]
        counted[0] += 1
        latency = self._latency.get((method, transport))
        if latency is None:
            latency = self._latency[(method, transport)] = \
                [0] * (len(LATENCY_BUCKETS) + 1) + [0.0, time.time()]
        latency[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1  # buckets are `le`
        latency[-2] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(*REQUESTS, labels=["service", "method", "transport",
                                                          "code"])
        for (method, transport, code), (count, created) in list(self._requests.items()):
            requests.add_metric([*split_method(method), transport, code.name], count,
                                created=created)
        yield requests
        latency = HistogramMetricFamily(*LATENCY, labels=["service", "method", "transport"])
        for (method, transport), values in list(self._latency.items()):
            labels = [*split_method(method), transport]
            cumulative, buckets = 0.0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), values, strict=False):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            latency.add_metric(labels, buckets, values[-2])
            latency.add_sample(LATENCY[0] + "_created",
                               dict(zip(("service", "method", "transport"), labels,
                                        strict=True)), values[-1])
        yield latency


def _final_state(context: Any, ended_elsewhere: bool = False) -> str:
    """How the operation a job just ran ended, read back from the store; or, if the
    job lost it (`ended_elsewhere`), how another ended it: a reset of its catalog ends
    it done and held by nobody (server.store.console); else it goes on elsewhere."""
    try:
        record = context.store.get_operation(context.record.name)
    except Exception:  # metrics must never fail a job
        return "paused" if ended_elsewhere else "succeeded"
    if record is None or not record.done or (ended_elsewhere and record.lease_owner is not None):
        return "paused"
    operation = operations_pb2.Operation.FromString(record.operation)
    if not operation.HasField("error"):
        return "succeeded"
    return "cancelled" if operation.error.code == code_pb2.CANCELLED else "failed"
