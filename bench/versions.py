"""What the v2beta and v2alpha surfaces cost beside v2, and what export costs
beside import, in one run on one server.

WriteUserEvent: the same request bytes (the versions share field numbers) sent to
the v2, v2beta and v2alpha paths of one Footfall, in turns within each rep so that
drift of a shared machine hits them alike, beside the empty grpc.aio handler.
Export: events imported from a file, exported through v2beta, purged, and the
exported files imported again (every count checked), each timed and its server
CPU per event read from /proc.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import grpc
from footfall.retail.v2 import (
    import_config_pb2,
    purge_config_pb2,
    user_event_service_pb2_grpc,
)
from footfall.retail.v2beta import export_config_pb2
from footfall.retail.v2beta import user_event_service_pb2_grpc as v2beta_grpc

from bench.common import PARENT, Server, empty_server, footfall, h2load, summary, wait_done
from bench.write import frame_file, stored

VERSIONS = ("v2", "v2beta", "v2alpha")
BASELINE = "empty-aio"


def path_of(version: str) -> str:
    return f"/google.cloud.retail.{version}.UserEventService/WriteUserEvent"


def _load(server: Server, path: str, frame: Path, callers: int,
          requests: int) -> tuple[float, float]:
    """(calls/s, server CPU µs per call) of one h2load run."""
    before = server.cpu_seconds()
    load = h2load(server.port, path, frame, callers, requests)
    if load.failed:
        raise RuntimeError(f"{load.failed} calls to {path} failed")
    return load.per_second, (server.cpu_seconds() - before) / requests * 1e6


def writes(requests: int, reps: int, callers: tuple[int, ...]) -> dict[str, Any]:
    frame = frame_file()
    rates: dict[str, dict[int, list[float]]] = {}
    cpus: dict[str, dict[int, list[float]]] = {}
    try:
        with empty_server("aio") as empty, footfall() as server:
            for version in VERSIONS:  # warm-up
                h2load(server.port, path_of(version), frame, 4, min(requests, 500))
            h2load(empty.port, path_of("v2"), frame, 4, min(requests, 500))
            for _ in range(reps):
                for c in callers:
                    for name, target, path in (
                            (BASELINE, empty, path_of("v2")),
                            *((v, server, path_of(v)) for v in VERSIONS)):
                        rate, cpu = _load(target, path, frame, c, requests)
                        rates.setdefault(name, {}).setdefault(c, []).append(rate)
                        cpus.setdefault(name, {}).setdefault(c, []).append(cpu)
            expected = len(VERSIONS) * (min(requests, 500) + requests * reps * len(callers))
            if stored(server) != expected:
                raise RuntimeError(f"stored {stored(server)}, not {expected}")
    finally:
        frame.unlink()
    out: dict[str, Any] = {}
    for c in callers:
        median = {n: summary(rates[n][c])["median"] for n in rates}
        cpu = {n: summary(cpus[n][c])["median"] for n in cpus}
        out[str(c)] = {
            "per_second": {n: summary(rates[n][c]) for n in rates},
            "cpu_us_per_call": {n: summary(cpus[n][c]) for n in cpus},
            "ratios": {v: {"throughput_vs_v2": median[v] / median["v2"],
                           "cpu_vs_v2": cpu[v] / (cpu["v2"] or float("nan")),
                           "throughput_vs_empty": median[v] / median[BASELINE],
                           "cpu_vs_empty": cpu[v] / (cpu[BASELINE] or float("nan"))}
                       for v in VERSIONS},
        }
    return out


def _lines(count: int) -> bytes:
    return b"".join(
        b'{"eventType":"home-page-view","visitorId":"v-%d","eventTime":'
        b'"2024-05-20T%02d:%02d:%02dZ"}\n' % (i, i // 3600 % 24, i // 60 % 60, i % 60)
        for i in range(count))


def _timed(server: Server, work: Any) -> tuple[Any, float, float]:
    """(work()'s result, seconds, server CPU seconds)."""
    cpu, start = server.cpu_seconds(), time.perf_counter()
    result = work()
    return result, time.perf_counter() - start, server.cpu_seconds() - cpu


def export_round_trip(events: int, reps: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"import": [], "export": [], "import_cpu_us": [],
                                    "export_cpu_us": []}
    with footfall() as server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        v2 = user_event_service_pb2_grpc.UserEventServiceStub(channel)
        v2beta = v2beta_grpc.UserEventServiceStub(channel)
        source = server.workdir / "gcs" / "bench" / "source.json"
        source.parent.mkdir(parents=True)
        source.write_bytes(_lines(events))

        def load(uris: list[str]) -> Any:
            request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
            request.input_config.gcs_source.input_uris.extend(uris)
            return wait_done(channel, v2.ImportUserEvents(request))

        def purge() -> None:
            done = wait_done(channel, v2.PurgeUserEvents(purge_config_pb2.PurgeUserEventsRequest(
                parent=PARENT, filter='eventTime > "2000-01-01T00:00:00Z"', force=True)))
            purged = purge_config_pb2.PurgeUserEventsResponse()
            done.response.Unpack(purged)
            if purged.purged_events_count != events:
                raise RuntimeError(f"purged {purged.purged_events_count}, not {events}")

        load(["gs://bench/source.json"])  # warm-up (worker processes, caches)
        purge()
        for rep in range(reps):
            _, seconds, cpu = _timed(server, lambda: load(["gs://bench/source.json"]))
            runs["import"].append(events / seconds)
            runs["import_cpu_us"].append(cpu / events * 1e6)
            request = export_config_pb2.ExportUserEventsRequest(parent=PARENT)
            request.output_config.gcs_destination.output_uri_prefix = f"gs://bench/out-{rep}/"
            done, seconds, cpu = _timed(server, functools.partial(
                lambda r: wait_done(channel, v2beta.ExportUserEvents(r)), request))
            runs["export"].append(events / seconds)
            runs["export_cpu_us"].append(cpu / events * 1e6)
            answer = export_config_pb2.ExportUserEventsResponse()
            if not done.response.Unpack(answer):
                raise RuntimeError(f"export failed: {done.error}")
            uris = [r.output_uri for r in answer.output_result.gcs_result]
            purge()
            again = load(uris)  # the round trip gives every event back
            meta = import_config_pb2.ImportMetadata()
            again.metadata.Unpack(meta)
            if meta.success_count != events or stored(server) != events:
                raise RuntimeError(f"re-imported {meta.success_count}, stored "
                                   f"{stored(server)}, not {events}")
            purge()
    med = {k: summary(v)["median"] for k, v in runs.items()}
    return {"events": events,
            "import_per_second": summary(runs["import"]),
            "export_per_second": summary(runs["export"]),
            "import_cpu_us_per_event": summary(runs["import_cpu_us"]),
            "export_cpu_us_per_event": summary(runs["export_cpu_us"]),
            "ratio_export_to_import": med["export"] / med["import"]}


def run(requests: int = 10_000, reps: int = 3, callers: tuple[int, ...] = (16,),
        events: int = 200_000) -> dict[str, Any]:
    return {"write": writes(requests, reps, callers),
            "export": export_round_trip(events, reps)}

