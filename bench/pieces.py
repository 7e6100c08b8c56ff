"""Each piece of a pixel's and a durable write's path timed alone: the least of 15
runs of `--calls` calls, in µs per call. Imports only `server` (and the bench's
pixel), so `PYTHONPATH=<another tree>:<its generated>` times another commit.

    python -m bench.pieces [--calls 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import timeit
from collections.abc import Callable
from typing import Any

import grpc
import orjson
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2
from google.protobuf import json_format
from yarl import URL

import server.app  # noqa: F401  (registers the served contracts in the default pool)
from bench.collect import EVENT, PATH
from bench.write import EVENT as WRITE_EVENT
from server import protojson, wellknown
from server.http import pixel, transcode
from server.http.routes import Router, derive_routes
from server.names import parse_catalog
from server.policy.metrics import Metrics
from server.retail import collect, join, validation
from server.store.packed import pack, unpack

CATALOG = "projects/bench/locations/global/catalogs/default_catalog"


class _AnyServicer:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    calls = parser.parse_args().calls

    def timed(name: str, fn: Callable[[], Any]) -> None:
        best = min(timeit.repeat(fn, number=calls, repeat=15)) / calls * 1e6
        print(f"{name:34s} {best:7.2f} µs")

    router = Router(derive_routes({"google.cloud.retail.v2.UserEventService": _AnyServicer()}))
    url = URL(PATH, encoded=True)
    found = router.match("GET", url.raw_path)
    assert found is not None
    route, values = found
    query = url.query
    request = transcode.build_request(route, values, query.items(), b"")
    event = user_event_pb2.UserEvent()
    collect.decode_collect_request(request, event)
    requester = pixel.requester({}, "127.0.0.1", False)

    def decode() -> None:
        collect.decode_collect_request(request, user_event_pb2.UserEvent())

    def fill() -> None:
        copy = user_event_pb2.UserEvent()
        copy.CopyFrom(event)
        collect.fill_from_requester(copy, requester)

    def copy_only() -> None:
        user_event_pb2.UserEvent().CopyFrom(event)

    timed("Router.match", lambda: router.match("GET", url.raw_path))
    timed("output_of", lambda: transcode.output_of(query))
    timed("build_request (pixel)", lambda: transcode.build_request(route, values,
                                                                    query.items(), b""))
    timed("decode_collect_request", decode)
    timed("copy + fill_from_requester", fill)
    timed("copy alone", copy_only)
    collect.fill_from_requester(event, requester)
    timed("user_event_violations", lambda: validation.user_event_violations(event))
    timed("parse_catalog", lambda: parse_catalog(CATALOG))
    metrics = Metrics()
    timed("Metrics.observe_call", lambda: metrics.observe_call(
        "/google.cloud.retail.v2.UserEventService/CollectUserEvent", "http",
        grpc.StatusCode.OK, 0.001))
    event.event_time.FromNanoseconds(1_700_000_000_123_456_789)
    timed("joined_row (no product found)", lambda: join.joined_row(CATALOG, event, {},
                                                                    1 << 20))
    row = join.joined_row(CATALOG, event, {}, 1 << 20)
    timed("dataclasses.replace(row)", lambda: dataclasses.replace(row, transport=3,
                                                                  received_us=5))
    timed("EventRow.as_params", row.as_params)
    args = (row.payload, row.event_type, row.visitor_id, row.user_id, row.event_time_us,
            row.event_time_ns)
    timed("packed.pack", lambda: pack(*args))
    stored = pack(*args)
    timed("packed.unpack", lambda: unpack(stored, *args[1:]))
    timed("orjson.loads (the pixel's event)", lambda: orjson.loads(EVENT))
    data = orjson.loads(EVENT)
    timed("protojson.parse_dict", lambda: protojson.parse_dict(data, user_event_pb2.UserEvent))
    write = user_event_service_pb2.WriteUserEventRequest(
        parent=CATALOG, user_event=json_format.ParseDict(WRITE_EVENT, user_event_pb2.UserEvent()))
    raw = write.SerializeToString()
    timed("WriteUserEventRequest.FromString", lambda: write.FromString(raw))
    timed("wellknown.check (the bench write)", lambda: wellknown.check(write))


if __name__ == "__main__":
    main()
