"""The per-call metrics of one process, counted in plain numbers (CallCounts), are
written out exactly as prometheus_client's Counter and Histogram write them."""

from __future__ import annotations

import re

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from server.policy.metrics import LATENCY, LATENCY_BUCKETS, REQUESTS, Metrics, split_method

WRITE = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
COLLECT = "/google.cloud.retail.v2.UserEventService/CollectUserEvent"
CALLS = [
    (WRITE, "grpc", grpc.StatusCode.OK, 0.0004),
    (COLLECT, "http", grpc.StatusCode.OK, 0.0005),  # on a bucket's bound: counted in it
    (COLLECT, "http", grpc.StatusCode.INVALID_ARGUMENT, 0.003),
    (WRITE, "grpc", grpc.StatusCode.OK, 0.02),
    (WRITE, "http", grpc.StatusCode.UNAVAILABLE, 12.0),  # past the last bucket
    (COLLECT, "http", grpc.StatusCode.OK, 0.0),
]
CREATED = re.compile(r"^(\w+_created\{.*\}) \S+$")
NAME = re.compile(r"^(?:# (?:HELP|TYPE) )?(\w+)")


def as_prometheus_counts() -> str:
    registry = CollectorRegistry()
    requests = Counter(*REQUESTS, ["service", "method", "transport", "code"], registry=registry)
    latency = Histogram(*LATENCY, ["service", "method", "transport"], buckets=LATENCY_BUCKETS,
                        registry=registry)
    for method, transport, code, seconds in CALLS:
        requests.labels(*split_method(method), transport, code.name).inc()
        latency.labels(*split_method(method), transport).observe(seconds)
    return generate_latest(registry).decode()


def families(text: str) -> list[str]:
    """The lines of the call families, creation times left out."""
    return [CREATED.sub(r"\1", line) for line in text.splitlines()
            if (name := NAME.match(line)) and name[1].startswith("footfall_request")]


def test_call_counts_are_written_as_prometheus_client_writes_them() -> None:
    metrics = Metrics()
    for call in CALLS:
        metrics.observe_call(*call)
    ours = families(metrics.render()[0].decode())
    assert ours == families(as_prometheus_counts())
    assert 'footfall_requests_total{code="OK",method="WriteUserEvent",' \
           'service="google.cloud.retail.v2.UserEventService",transport="grpc"} 2.0' in ours
    assert not hasattr(metrics, "requests")  # no Counter, nor its lock, per call
