"""footfall.insights.v1.InsightsService: thin, each method hands its request to
a plain function that reads the store and computes, off the loop on the long
reads' own threads (`long_read`: an insight may read a whole catalog), in its
caller's turn of a budget of reading time while events are written (a
console.pace.Listing of its own, --list-read-ms)."""

from __future__ import annotations

import time
from typing import Any

import grpc.aio
from footfall.insights.v1 import insights_pb2, insights_pb2_grpc

from server.console.pace import Listing
from server.insights import funnel_request, tables, totals
from server.insights.kept import Kept
from server.loop import long_read
from server.policy.auth import project_of
from server.policy.envelope import reader_of
from server.store import Store, answered_stored

SERVICE = insights_pb2.DESCRIPTOR.services_by_name["InsightsService"].full_name


def _project(request: Any) -> str:
    """Whose reads a request's are (see loop.long_read): its parent's project."""
    return project_of(request.parent) or request.parent


class InsightsService(insights_pb2_grpc.InsightsServiceServicer):
    """Each retail insight first waits for the pixels this process answered, as the
    console's reads do. The insights take turns in `reading` while events are written:
    one funnel at a time of one reader key (a second of CPU over 200,000 events,
    holding the interpreter's lock most of it) took another key's durable writes to
    0.09-0.16 of their rate, and 8 at once took both cores."""

    def __init__(self, store: Store, reading: Listing | None = None) -> None:
        self._store = store
        self._reading = reading or Listing(0, time.monotonic)  # (none: no bound)
        self._tables = Kept()  # the tables computed, for their next pages (kept.py)

    async def RunFunnel(self, request: insights_pb2.RunFunnelRequest,
                  context: grpc.aio.ServicerContext) -> insights_pb2.RunFunnelResponse:
        """INVALID_ARGUMENT for a bad parent, step, count, window, range or breakdown."""
        await answered_stored(self._store)
        return await self._reading.read(reader_of(context), long_read, funnel_request.run,
                                       self._store, funnel_request.parse(request),
                                       share=_project(request))

    async def ListProductStats(self, request: insights_pb2.ListProductStatsRequest,
                         context: grpc.aio.ServicerContext
                         ) -> insights_pb2.ListProductStatsResponse:
        """INVALID_ARGUMENT for a bad parent, range, order, page size or token."""
        await answered_stored(self._store)
        return await self._reading.read(reader_of(context), long_read, tables.list_product_stats,
                                       self._store, request, self._tables,
                                       share=_project(request))

    async def ListJobStats(self, request: insights_pb2.ListJobStatsRequest,
                     context: grpc.aio.ServicerContext) -> insights_pb2.ListJobStatsResponse:
        """INVALID_ARGUMENT for a bad parent, range, order, page size or token."""
        return await self._reading.read(reader_of(context), long_read, tables.list_job_stats,
                                       self._store, request, self._tables,
                                       share=_project(request))

    async def ComputeTotals(self, request: insights_pb2.ComputeTotalsRequest,
                      context: grpc.aio.ServicerContext) -> insights_pb2.ComputeTotalsResponse:
        """INVALID_ARGUMENT for a bad parent, range, granularity, count or window."""
        await answered_stored(self._store)
        return await self._reading.read(reader_of(context), long_read, totals.compute_totals,
                                       self._store, request, share=_project(request))
