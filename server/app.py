"""Builds and runs the process: gRPC server, health, reflection, graceful shutdown.

Both transports (grpc.aio and the HTTP gateway) serve on one asyncio loop on a
thread of its own (`server.loop`); `start` and `Running.stop` may be called from
any other thread.
"""

from __future__ import annotations

import asyncio
import datetime
import errno
import functools
import gc
import logging
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from footfall.console.v1 import console_pb2_grpc
from footfall.insights.v1 import insights_pb2_grpc
from footfall.retail.v2 import (
    product_service_pb2,
    product_service_pb2_grpc,
    user_event_service_pb2,
    user_event_service_pb2_grpc,
)
from footfall.retail.v2alpha import product_service_pb2_grpc as v2alpha_products_grpc
from footfall.retail.v2alpha import user_event_service_pb2_grpc as v2alpha_events_grpc
from footfall.retail.v2beta import product_service_pb2_grpc as v2beta_products_grpc
from footfall.retail.v2beta import user_event_service_pb2_grpc as v2beta_events_grpc
from footfall.talent.v4 import event_service_pb2, event_service_pb2_grpc
from footfall.talent.v4beta1 import event_service_pb2 as v4beta1_service_pb2
from footfall.talent.v4beta1 import event_service_pb2_grpc as v4beta1_service_pb2_grpc
from google.longrunning import operations_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from server import certificate_dates
from server.clock import Clock, SystemClock
from server.config import Settings
from server.console import origin
from server.console import service as console_service
from server.console.feed import Watches
from server.console.pace import Listing
from server.console.rejections import Rejections
from server.console.watch import Commits
from server.descriptors import fit_connections
from server.gone_clients import quiet_gone_clients
from server.http import crosssite
from server.insights import service as insights_service
from server.lines import counted
from server.loop import LoopThread
from server.malloc_tuning import return_large_blocks
from server.operations import service as operations_service
from server.operations.runner import Job, OperationRunner
from server.operations.sweep import OperationSweep
from server.policy import Policy
from server.policy.auth import Authenticator, AuthFileError, open_mode
from server.policy.request_room import RequestRoom
from server.ports import bind_refusal, grpc_refusal, http_refusal
from server.ready_file import ANY_ADDRESS
from server.ready_file import write as write_ready_file
from server.retail import (
    encoder,
    export,
    gcs,
    import_events,
    import_products,
    purge,
    purge_products,
    rejoin,
    surfaces,
)
from server.retail.line_pool import LinePool
from server.retail.product_service import ProductService
from server.retail.retention import Retention
from server.retail.user_event_service import UserEventService
from server.rpc import CallGuard
from server.store import Store, located, open_store
from server.store.group_commit import Job as StoreJob
from server.store.watch import HealthWatch
from server.talent.event_service import ClientEvents, EventService, EventServiceV4beta1

if TYPE_CHECKING:
    from server.http import HttpGateway

log = logging.getLogger("footfall")

SERVED = (
    user_event_service_pb2.DESCRIPTOR.services_by_name["UserEventService"].full_name,
    product_service_pb2.DESCRIPTOR.services_by_name["ProductService"].full_name,
    event_service_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
    "google.longrunning.Operations",
    console_service.SERVICE,
    insights_service.SERVICE,
    v4beta1_service_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
)
# The retail v2beta and v2alpha services, answered by the v2 servicers
# (server.retail.surfaces), with the generated function that registers each.
VERSIONED = {
    f"google.cloud.retail.{version}.{service}": add
    for version, service, add in (
        ("v2beta", "UserEventService", v2beta_events_grpc.add_UserEventServiceServicer_to_server),
        ("v2beta", "ProductService", v2beta_products_grpc.add_ProductServiceServicer_to_server),
        ("v2alpha", "UserEventService",
         v2alpha_events_grpc.add_UserEventServiceServicer_to_server),
        ("v2alpha", "ProductService",
         v2alpha_products_grpc.add_ProductServiceServicer_to_server),
    )
}
GRPC_IDLE_MS = 30_000  # see _serve
# A gRPC request not yet read holds at most this much in grpc's core (_unread_windows),
# HTTP/2's own initial window; those read or served, --max-request-bytes-held, by
# default this many times --max-request-bytes (as HTTP's bodies: gateway.BODIES_HELD).
STREAM_WINDOW_BYTES = 65_535
REQUESTS_HELD = 16
GRPC_MOST_WAITING = 3_000  # grpc's own hard limit of calls waiting for the loop (_calls_waiting)
YOUNG_COLLECTION = 2_000  # see tune_collector
MIDDLE_COLLECTION = 50  # young collections to a middle one (see tune_collector)
# Every service of ours the policy guards and health reports on.
GUARDED = (*SERVED, *VERSIONED)


@dataclass
class Running:
    """A started server: what tests and `serve` need to reach and stop it."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    store: Store
    runner: OperationRunner
    port: int
    settings: Settings
    loop: LoopThread
    http: HttpGateway | None = None  # None when --http-port is 0
    store_health: HealthWatch | None = None
    policy: Policy | None = None
    retention: Retention | None = None  # None without --retain-days
    operation_sweep: OperationSweep | None = None  # None with --operations-keep-days 0
    # What health says (False while the store is unhealthy and from the drain on), for
    # /metrics' footfall_serving: a scrape answers while the database is away.
    serving: bool = True
    commits: Commits | None = None  # wakes the console's watches
    line_pool: LinePool | None = None

    @property
    def http_port(self) -> int:
        return self.http.port if self.http is not None else 0

    def stop(self) -> None:
        """Drain: NOT_SERVING, refuse new calls, finish in-flight ones, pause jobs
        after their current batch, flush, close."""
        if self.store_health is not None:
            self.store_health.stop()
        self.loop.run(self._drain(), timeout=None)
        if self.retention is not None:
            self.retention.stop()
        if self.operation_sweep is not None:
            self.operation_sweep.stop()
        if self.policy is not None and self.policy.rejections is not None:
            self.policy.rejections.stop()
        # Jobs stop at the end of their batch; one held longer (a file system that does
        # not answer) is left behind, to resume at the next start.
        self.runner.stop(max(self.settings.grace_seconds, 5.0))
        if self.line_pool is not None:
            self.line_pool.close()
        encoder.close()
        self.store.close()
        self.loop.close()

    async def _drain(self) -> None:
        self.serving = False
        await self.health.enter_graceful_shutdown()
        self.runner.wakeups.close()  # waiting callers get the operation as it is now
        if self.commits is not None:
            self.commits.close()  # watches end
        await asyncio.gather(self.server.stop(self.settings.grace_seconds),
                             *([self.http.stop()] if self.http is not None else []))


async def _set_serving(servicer: health.aio.HealthServicer, serving: bool) -> None:
    """Every served service SERVING, or NOT_SERVING (while the database is away)."""
    status = (health_pb2.HealthCheckResponse.SERVING if serving
              else health_pb2.HealthCheckResponse.NOT_SERVING)
    for name in ("", *GUARDED):
        await servicer.set(name, status)


def start(settings: Settings, clock: Clock | None = None, process: int = 0,
          keys: str | None = None) -> Running:
    """Open the store and start serving; raises if the address cannot be bound
    (OSError), or the auth file (AuthFileError) or TLS files (ValueError) cannot be used.
    `process`: this process's index among --processes; `keys`: the auth file's text
    in force, when the file itself may hold other (see processes.Supervisor)."""
    clock = clock or SystemClock()
    quiet_gone_clients()
    policy = Policy.from_settings(settings, GUARDED, clock, keys)
    tls = _server_credentials(settings)
    _refuse_taken_ports(settings)
    gcs_root = Path(settings.gcs_root)
    problem = gcs.root_problem(gcs_root)  # (made when a gs:// file is first written)
    if problem is not None:  # said before the store is opened, as a port in use
        raise OSError(f"--gcs-root {settings.gcs_root}: cannot make the folder: {problem}")
    store = open_store(settings.store)
    commits = Commits()

    def committed(jobs: list[StoreJob]) -> None:
        commits.on_commit(jobs)
        policy.metrics.on_commit(jobs)

    store.on_commit(committed)
    policy.metrics.watch_uncommitted(store)
    rejections = policy.rejections = Rejections(store, clock, settings.rejections_keep,
                                                settings.rejections_keep_hours * 3600,
                                                settings.rejections_keep_per_project)
    line_pool = LinePool(settings.import_processes)
    import_job = import_events.ImportJob(gcs_root, settings.strict_event_types,
                                         settings.max_event_bytes, line_pool)
    import_job.rejections = rejections
    # (failed product lines are kept as event lines are: refusals of ImportProducts)
    products_job = import_products.ImportProductsJob(gcs_root, line_pool)
    products_job.rejections = rejections
    # (an import's batches are writes, for the reads paced while events are written)
    import_job.writing = products_job.writing = policy.wrote
    # The jobs that write files, each able to cut its own back (OperationRunner's settle).
    writers: dict[str, import_events.ImportJob | import_products.ImportProductsJob
                  | export.ExportJob] = {
        import_events.KIND: import_job,
        import_products.KIND: products_job,
        export.EVENTS_KIND: export.ExportJob(gcs_root, export.EVENTS_KIND),
        export.PRODUCTS_KIND: export.ExportJob(gcs_root, export.PRODUCTS_KIND)}
    jobs: dict[str, Job] = {
        **writers,
        import_events.KIND: origin.as_import(import_job),
        purge.KIND: purge.run_purge,
        rejoin.KIND: functools.partial(rejoin.run_rejoin, max_event_bytes=settings.max_event_bytes),
        purge_products.KIND: purge_products.run_purge_products,
    }
    runner = OperationRunner(store, clock, {
        kind: policy.metrics.observe_job(kind, job) for kind, job in jobs.items()
    }, workers=settings.operation_workers, lease_seconds=settings.lease_seconds,
        max_pending=settings.max_pending_operations, given_up=policy.metrics.job_given_up,
        settle={kind: job.settle for kind, job in writers.items()},
        discard={kind: job.discard for kind, job in writers.items()
                 if isinstance(job, export.ExportJob)},
        kept_after_stop=settings.store != "memory://")
    loop = LoopThread(settings.workers)
    try:
        running = loop.run(_serve(settings, clock, policy, tls, store, runner, gcs_root, loop,
                                  commits, process))
    except BaseException:
        loop.close()
        line_pool.close()
        store.close()
        raise
    running.line_pool = line_pool
    encoder.open()  # (closed by stop)
    rejections.start()
    runner.start()
    def store_healthy(ok: bool) -> None:
        running.serving = ok
        loop.run(_set_serving(running.health, ok))

    running.store_health = HealthWatch(store, store_healthy)
    policy.metrics.watch_serving(lambda: running.serving)
    policy.metrics.watch_encoder(encoder.replaced)
    policy.metrics.watch_rejections(rejections)
    policy.metrics.watch_import_workers(line_pool.replaced)
    running.store_health.start()
    if settings.operations_keep_days:
        running.operation_sweep = OperationSweep(store, clock, settings.operations_keep_days)
        running.operation_sweep.start()
    if settings.retain_days:
        running.retention = Retention(store, runner, clock, settings.retain_days,
                                      settings.retention_interval_seconds)
        running.retention.start()
    return running


async def _serve(settings: Settings, clock: Clock, policy: Policy,
                 tls: grpc.ServerCredentials | None, store: Store, runner: OperationRunner,
                 gcs_root: Path, loop: LoopThread, commits: Commits, process: int) -> Running:
    """On the loop: the gRPC server and the HTTP gateway, both listening."""
    # Each connection holds a file descriptor: without a cap on both ports, anyone
    # (no key is looked at before a connection is accepted) could take them all.
    http_cap, grpc_cap = fit_connections(settings.http_max_connections if settings.http_port
                                         else 0, settings.grpc_max_connections)
    settings = replace(settings, http_max_connections=max(http_cap, 1))
    server = grpc.aio.server(maximum_concurrent_rpcs=settings.max_concurrent_rpcs, options=[
        ("grpc.max_allowed_incoming_connections", grpc_cap),
        ("grpc.max_receive_message_length", settings.max_request_bytes),
        ("grpc.max_send_message_length", settings.max_request_bytes),
        # Never share a port with another process by accident; --processes shares
        # it on purpose (the kernel spreads connections over the processes).
        ("grpc.so_reuseport", int(settings.processes > 1)),
        # A connection with no call in progress is closed (GOAWAY; clients reconnect
        # on their next call): otherwise --grpc-max-connections idle connections,
        # opened without a key and never used, shut every other client out for good.
        ("grpc.max_connection_idle_ms", GRPC_IDLE_MS),
        # Pings are acked, never policed: past two pings of a connection without calls
        # grpc sent GOAWAY too_many_pings, and each ping it read after it cost 150-400 us
        # of CPU; 200,000 pings (3.4 MB, no key needed) took a core for 30 s. Acked, a
        # million take 0.17 s, and a client that reads no acks is stopped by grpc's bound
        # on the frames it owes (it stops reading the connection).
        ("grpc.http2.max_ping_strikes", 0),
        # Requests come uncompressed (identity only: grpc refuses any other
        # grpc-encoding UNIMPLEMENTED as the headers come). grpc unpacks a compressed
        # request up to --max-request-bytes as it comes, before the server may look at
        # it: 100 keyless health checks of 8.8 KB, 9 MB each unpacked, took the
        # server from 70 MB to 735 MB (900 of them: 2.6 GB) and seconds of CPU.
        ("grpc.compression_enabled_algorithms_bitset", 1 << grpc.Compression.NoCompression),
        *_calls_per_connection(settings.grpc_max_calls_per_connection),
        *_calls_waiting(settings.max_concurrent_rpcs),
        *_unread_windows(),
    ])
    user_events = UserEventService(store, settings, clock, runner, process)
    # The reading time of the console's list pages and of the product pages; and, a
    # budget of their own (a funnel's second of CPU held no page back, nor did a
    # count's: another caller's page waited 5 s beside 8 callers looping counts in
    # the lists' budget), that of the reads that may take seconds: the insights, the
    # console's counts, the products' total_size (see console.pace.Listing).
    lists = Listing(settings.list_read_ms, lambda: policy.last_write)
    long_reads = Listing(settings.list_read_ms, lambda: policy.last_write, sliced=True)
    products = ProductService(store, clock, runner, gcs_root, lists, long_reads)
    client_events = ClientEvents(store, settings.max_event_bytes, clock)
    talent_events = EventService(client_events)
    talent_v4beta1_events = EventServiceV4beta1(client_events)
    operations = operations_service.OperationsService(
        store, runner, max_waits=settings.max_wait_operations)
    guard = CallGuard(policy, settings.max_streams, settings.max_keyless_streams,
                      settings.max_keyless_streams_per_address, settings.keyless_stream_seconds,
                      settings.max_request_bytes, settings.max_event_bytes,
                      settings.max_concurrent_rpcs, _request_room(settings))
    user_event_service_pb2_grpc.add_UserEventServiceServicer_to_server(user_events, guard)
    product_service_pb2_grpc.add_ProductServiceServicer_to_server(products, guard)
    event_service_pb2_grpc.add_EventServiceServicer_to_server(talent_events, guard)
    v4beta1_service_pb2_grpc.add_EventServiceServicer_to_server(talent_v4beta1_events, guard)
    operations_pb2_grpc.add_OperationsServicer_to_server(operations, guard)
    watches = Watches(commits, settings.max_watches,
                      messages_per_second=settings.watch_messages,
                      read_ms=settings.watch_read_ms,
                      send_ms=settings.watch_send_ms,
                      per_project=settings.max_watches_per_project
                      if settings.max_watches_per_project >= 0
                      else max(1, settings.max_watches // 2))
    policy.metrics.watch_pace(watches.pace)
    policy.metrics.watch_reading(watches.reading)
    policy.metrics.watch_sending(watches.sending)
    policy.metrics.list_reading(lists.reading)
    console = console_service.ConsoleService(store, watches, policy, lists, long_reads)
    console_pb2_grpc.add_ConsoleServiceServicer_to_server(console, guard)
    insights = insights_service.InsightsService(store, long_reads)
    insights_pb2_grpc.add_InsightsServiceServicer_to_server(insights, guard)
    versioned = surfaces.surfaces(user_events, products, runner, gcs_root)
    for service, add in VERSIONED.items():
        add(versioned[service], guard)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, guard)
    server.add_generic_rpc_handlers((guard,))
    # The same servicers answer HTTP: one implementation, two transports.
    servicers: dict[str, Any] = dict(zip(
        SERVED, (user_events, products, talent_events, operations, console, insights,
                 talent_v4beta1_events),
        strict=True))
    servicers.update(versioned)
    await _set_serving(health_servicer, True)
    # Through the guard, so that its streams count against --max-streams.
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection.aio.ReflectionServicer(
        (*servicers, health.SERVICE_NAME, reflection.SERVICE_NAME)), guard)

    address = _grpc_address(settings)
    try:
        port = (server.add_secure_port(address, tls) if tls is not None
                else server.add_insecure_port(address))
    except RuntimeError as exc:  # grpc says only "Failed to bind": ask the system why
        refusal = bind_refusal(settings.host, settings.port, grpc_places=True)
        raise OSError(grpc_refusal(address, refusal) if refusal
                      else f"cannot listen for gRPC on {address}: {exc}") from exc
    await server.start()
    async def serving() -> bool:  # (the overall status: it is always set, see _set_serving)
        answer = await health_servicer.Check(health_pb2.HealthCheckRequest(service=""), None)
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    gateway = None
    if settings.http_port:  # (aiohttp and the gateway's modules only then: server.http)
        from server.http import HttpGateway

        gateway = HttpGateway(settings, servicers, policy, serving)
    if gateway is not None:
        try:
            await gateway.start()
        except OSError:
            await server.stop(0)
            raise
    return Running(server, health_servicer, store, runner, port, settings, loop, gateway,
                   policy=policy, commits=commits)


def _calls_per_connection(most: int) -> list[tuple[str, int]]:
    """grpc's options that bound the calls open on one connection to `most` (0: none).

    Without a bound, one connection sending each call's headers and its cancellation
    together, in a loop (HTTP/2 "rapid reset", CVE-2023-44487), had every call taken
    in and queued for the loop: 30,000 calls a second cost the server a core, and the
    durable writes of other connections, queued behind them, went from 1,000 a second
    to 7 and were some of them CANCELLED. grpc counts a cancelled call against the
    bound until the server has let it go, and refuses the calls past it at once
    (REFUSED_STREAM): a quarter of the CPU each or less, and no write of another
    connection cancelled (still slow, behind the calls let in; lower bounds let in fewer).
    Since calls that ended stay counted a moment too, a bound near what one client
    keeps in flight refuses some of its calls: 100 refused 70% of h2load's writes with
    64 at once on each of 4 connections; 1,000 refused none of 1,000 sent together."""
    return [("grpc.max_concurrent_streams", most)] if most else []


def _unread_windows() -> list[tuple[str, int]]:
    """grpc's options that keep a call's request out of the server until it is read
    (RequestRoom lets it be): each stream's HTTP/2 window stays STREAM_WINDOW_BYTES
    until then. grpc's probe of the bandwidth (BDP) grew the windows of a fast client's
    streams to take whole requests in unasked: 300 calls of 9 MiB, 16 of them let read
    at once, still took the server to 2.75 GB (700 MB without the probe). grpc opens
    the window of a stream it is asked to read to fit its whole message, so a large
    request read comes as fast as before."""
    return [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES)]


def _request_room(settings: Settings) -> RequestRoom:
    """The room of the gRPC requests read or served at once (--max-request-bytes-held)."""
    room = settings.max_request_bytes_held
    most = settings.max_request_bytes
    return RequestRoom(room if room >= 0 else REQUESTS_HELD * most, most)


def _calls_waiting(most: int) -> list[tuple[str, int]]:
    """grpc's options that let `most` calls (--max-concurrent-rpcs) wait for the loop.

    grpc's core holds a call that has come until grpc.aio's loop takes it (one at a
    time, between the other work of the loop), and cancelled those past 1,000 waiting
    at random and all past 3,000 (its defaults): the client was answered CANCELLED, a
    code no client retries, though it had cancelled nothing, and the write was not
    made. Three clients keeping 1,000 writes in flight each, within
    --grpc-max-calls-per-connection, had 9-14% of them CANCELLED, and one channel
    sending 3,000 together without that bound up to 12%. Now as many may wait as may run,
    and never fewer than grpc's own hard limit (a server of few calls at once refuses
    those past them RESOURCE_EXHAUSTED as it takes them, not CANCELLED before)."""
    waiting = max(most, GRPC_MOST_WAITING)
    return [("grpc.server.max_pending_requests", waiting),
            ("grpc.server.max_pending_requests_hard_limit", waiting)]


def _server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from --tls-cert/--tls-key, or None; ValueError (the
    configuration is wrong: exit 2) if they cannot be read or do not make a TLS
    identity (grpc said only that it could not listen on the port)."""
    if not settings.tls_cert:
        return None
    try:
        cert = Path(settings.tls_cert).read_bytes()
        key = Path(settings.tls_key).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the TLS certificate or key: {exc}") from exc
    asked: list[bool] = []

    def no_pass_phrase() -> bytes:  # (else OpenSSL asked for one on the terminal, or failed
        asked.append(True)          # with "[Errno 22] Invalid argument" without one)
        return b""

    try:  # what grpc and the HTTP port will load, checked where it can say why
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
            settings.tls_cert, settings.tls_key, password=no_pass_phrase)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or ""
        why = ("the key is encrypted (it has a pass phrase): give it unencrypted, e.g. "
               "`openssl pkey -in KEY -out key.pem`" if asked else
               "the key is not the certificate's" if reason == "KEY_VALUES_MISMATCH" else
               "each must be PEM: --tls-cert the certificate (chain), --tls-key its "
               "private key")
        raise ValueError(f"--tls-cert {settings.tls_cert} and --tls-key {settings.tls_key} "
                         f"make no TLS identity: {why} ({reason or exc})") from None
    return grpc.ssl_server_credentials([(key, cert)])


def _reload_keys(running: Running, which: str) -> None:
    """SIGHUP: read the auth file again; a bad file keeps the keys in force. `which`
    ends each line: the process of --processes saying it, or nothing."""
    assert running.policy is not None
    auth = running.policy.auth
    if not auth.enabled:
        log.warning("SIGHUP: no --auth-file to re-read%s", which)
        return
    try:
        auth.reload()
    except AuthFileError as exc:
        log.error("SIGHUP: %s; the previous keys stay in force%s", exc, which)
        return
    log.info("SIGHUP: re-read %s: %s%s", auth.path, counted(auth.key_count, "key"), which)
    _warn_if_keyless(auth)
    _warn_if_open(auth)


NO_KEYS = ("%s holds no key: every call but health, reflection, /healthz, /metrics and "
           "/footfall.js is refused UNAUTHENTICATED (add keys and send SIGHUP)")


def _warn_if_keyless(auth: Authenticator) -> None:
    """A file of `{"keys": {}}` parses, and locks every caller out: say so."""
    if auth.enabled and auth.key_count == 0:
        log.warning(NO_KEYS, auth.path)


OPEN_KEYS = ("%s is open to other users of this machine (mode %04o): any of them may read "
             "its keys; chmod 600 %s")


def _warn_if_open(auth: Authenticator) -> None:
    """A keys file that others may read is said, at start and on each reload, and
    used all the same: refused, a server whose file a umask of 022 made 0644 would
    not start (it was read without a word)."""
    mode = auth.open_mode()
    if mode is not None:
        log.warning(OPEN_KEYS, auth.path, mode, auth.path)


def _log_trust(running: Running) -> None:
    settings, policy = running.settings, running.policy
    assert policy is not None
    if policy.auth.enabled:
        log.info("auth is on: %s from %s (SIGHUP re-reads it)",
                 counted(policy.auth.key_count, "API key"), policy.auth.path)
        _warn_if_keyless(policy.auth)
        _warn_if_open(policy.auth)
    else:
        log.log(logging.INFO if crosssite.is_loopback_listener(settings.host) else logging.WARNING,
                "auth is off: any caller may call any RPC (--auth-file to require API keys)")
    if settings.http_port != 0 and crosssite.open_to_rebinding(
            settings.host, settings.http_allowed_hosts, policy.auth.enabled):
        log.warning(crosssite.REBINDING)
    if policy.quota is not None:
        log.info("write quota: %d writes per minute per project", policy.quota.per_minute)
    if policy.byte_quota is not None:
        log.info("byte quota: %d bytes of event writes per minute per project",
                 policy.byte_quota.per_minute)
    if policy.faults is not None:
        log.warning("fault injection is on: calls may ask to fail with x-footfall-fail")
    _warn_if_key_open(settings.tls_key)
    if settings.tls_cert:
        certificate_dates.warn_if_out_of_dates(settings.tls_cert,
                                               datetime.datetime.now(datetime.UTC))


OPEN_TLS_KEY = ("--tls-key %s is open to other users of this machine (mode %04o): any of "
                "them may read the private key and pose as this server; chmod 600 %s")


def _warn_if_key_open(path: str | None) -> None:
    """A TLS private key that others may read is said at start, as a keys file is
    (served all the same)."""
    mode = open_mode(path) if path else None
    if mode is not None:
        log.warning(OPEN_TLS_KEY, path, mode, path)


HANDLED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def console_url(settings: Settings, http_port: int) -> str:
    """The console's URL on this machine, as the ready line shows it to be opened
    (localhost for a server bound on every address). An IPv6 address's zone is
    written `%25` in a URL (RFC 6874): `http://[fe80::1%eth0]:8080/` is no URL, its
    `%et` an escape that is none."""
    host = "localhost" if settings.host in ANY_ADDRESS else settings.host
    host = f"[{host.replace('%', '%25')}]" if ":" in host else host
    return f"{'https' if settings.tls_cert else 'http'}://{host}:{http_port}/console/"


def announce(settings: Settings, port: int, http_port: int, how: str = "") -> None:
    """The ready lines: HTTP's first, then gRPC's, which says the server is ready
    (--ready-file is written just before it).
    Said whatever the log level (at INFO, or the level asked for if higher): with
    --log-level WARNING nothing said which port `--port 0` had picked."""
    level = max(logging.INFO, log.getEffectiveLevel())
    scheme = "TLS" if settings.tls_cert else "plaintext"
    # (an IPv6 address in brackets, as `--server` takes it and README says to copy it)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    if http_port:
        log.log(level, "Footfall serving HTTP on %s:%d (REST, pixel, the console at %s, "
                "/footfall.js, /metrics; %s)", host, http_port,
                console_url(settings, http_port), scheme)
    else:  # (a test suite asking for a free port with 0 found no HTTP line, and no why)
        log.log(level, "HTTP is off (--http-port 0): no REST, pixel or console; "
                "--http-port -1 picks a free port")
    if settings.retain_days:
        log.info("retention: events older than %s are purged at start and then every %g s",
                 counted(settings.retain_days, "day"), settings.retention_interval_seconds)
    try:  # (before the line: a fixture that waits for the line finds the file there)
        write_ready_file(settings.ready_file, settings.host, port, http_port)
    except OSError as exc:  # (its folder was checked at the start: rare, and no reason to stop)
        log.error("cannot write --ready-file %s: %s", settings.ready_file, exc)
    log.log(level, "Footfall serving gRPC on %s:%d (store %s; gcs root %s; %s%s)",
            host, port, located(settings.store), Path(settings.gcs_root).resolve(),
            scheme, how)


def tune_collector() -> None:
    """Once start-up is done: the collector as a served process wants it.

    What start-up made (modules, descriptors, servicers) lives as long as the
    process: out of the collector's sight (gc.freeze), the full collections that the
    objects of busy watches and refusals set off walk only what came since (with 200
    batch watchers at 1,280 writes/s: 4-6% less server CPU per write, bench.watch).

    The youngest generation is collected every YOUNG_COLLECTION allocations not freed,
    not Python's 700: every pixel leaves its job (job, join, partials, lists) alive
    until the writer commits it, so at 700 the collector ran every 90 pixels or so and
    walked the jobs queued each time. Nor 10,000: each gRPC call leaves objects in
    reference cycles, which only a collection frees: 5 of grpc's method lookup, and
    until the share of a call was given back from its task (server.policy.call_ends)
    9 more, its state and servicer context held by a done-callback. With 14 a call, at
    10,000 a young collection freed about 9,200 of them every ~700 durable writes and
    held the loop 3-6 ms, every caller's call with it (2-3% of the calls at 16
    callers, so the p99); at 2,000 one took about 0.5 ms, for the same collector time
    a write, and about 0.5 µs more a pixel (bench/ANALYSIS.md, "The tail of a durable
    write"). With 5, at 2,000: 48 young collections a 10,000 durable writes, not 95.

    The middle generation is collected every MIDDLE_COLLECTION young collections, not
    Python's 10: every 100,000 allocations, as at 10,000 and 10. What a middle
    collection finds alive goes to the old generation, and a full collection, which
    walks every object alive since start-up (a call held, a watch), comes once ten
    middle ones have run (and the old generation has grown by a quarter). At 2,000 and
    10, with 3,300 health checks held unread by a client, a full one came every ~40,000
    durable writes (3 in 120,000), each 57-90 ms of the loop's CPU (up to 585 ms of its
    time on a busy machine); at 50, 1 in 120,000, and a middle collection took 2.5 ms
    against 0.9 (7 at 10,000 and 10).
    """
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION, MIDDLE_COLLECTION, gc.get_threshold()[2])


def serve(settings: Settings, on_ready: Callable[[], None] | None = None,
          ready_lines: bool = True, trust_lines: bool = True, process: int = 0,
          keys: str | None = None) -> int:
    """Run until SIGTERM or SIGINT, then drain and exit 0; SIGHUP re-reads the keys.
    `on_ready` runs once serving. The parent of --processes says the ready lines
    once for all its processes, and one of them the trust lines; `process` is this
    one's index among them; `keys`, as start takes them.

    The signals are blocked before any thread starts (every thread inherits that) and
    taken by this thread alone with sigwait. A Python handler would run only once the
    main thread wakes, and a signal the kernel hands to one of grpc's threads does not
    wake it: SIGHUP (or SIGTERM) could wait for ever.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    return_large_blocks()
    try:
        running = start(settings, process=process, keys=keys)
    except AuthFileError as exc:
        log.error("%s", exc)
        return 2
    tune_collector()
    if trust_lines:
        _log_trust(running)
    if ready_lines:
        announce(settings, running.port, running.http_port)
    if on_ready is not None:
        on_ready()
    # Under --processes every process reads the keys, drains and stops, and says so:
    # the same line twice read as one reload (or stop) said twice, or as a process
    # that read them two times.
    which = f" (process {process + 1} of {settings.processes})" if settings.processes > 1 \
        else ""
    while signal.sigwait(HANDLED_SIGNALS) == signal.SIGHUP:
        _reload_keys(running, which)
    log.info("shutting down: draining in-flight calls (up to %ss)%s", settings.grace_seconds,
             which)
    running.stop()
    log.info("stopped%s", which)
    return 0


def _grpc_address(settings: Settings) -> str:
    return f"[{settings.host}]:{settings.port}" if ":" in settings.host \
        else f"{settings.host}:{settings.port}"


def _refuse_taken_ports(settings: Settings) -> None:
    """OSError if another process listens on --port or --http-port, said before the
    store is opened (a start that cannot serve created or migrated it) and before grpc
    tries (it logs a line of its own first). A port taken between this and the
    bind is refused there, as well said. --processes share their ports on purpose."""
    if settings.processes > 1:
        return
    if settings.port:
        refusal = bind_refusal(settings.host, settings.port, grpc_places=True)
        if refusal and refusal.errno == errno.EADDRINUSE:
            raise OSError(grpc_refusal(_grpc_address(settings), refusal))
    if settings.http_port > 0:
        refusal = bind_refusal(settings.host, settings.http_port)
        if refusal and refusal.errno == errno.EADDRINUSE:
            raise OSError(http_refusal(settings.host, settings.http_port, refusal))
