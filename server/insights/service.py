"""footfall.insights.v1.InsightsService: thin, each method hands its request to
a plain function that reads the store and computes (blocking; fit for a worker
thread when the servicers become async)."""

from __future__ import annotations

import grpc
from footfall.insights.v1 import insights_pb2, insights_pb2_grpc

from server.insights import funnel_request, tables, totals
from server.store import Store

SERVICE = insights_pb2.DESCRIPTOR.services_by_name["InsightsService"].full_name


class InsightsService(insights_pb2_grpc.InsightsServiceServicer):
    def __init__(self, store: Store) -> None:
        self._store = store

    def RunFunnel(self, request: insights_pb2.RunFunnelRequest,
                  context: grpc.ServicerContext) -> insights_pb2.RunFunnelResponse:
        """INVALID_ARGUMENT for a bad parent, step, count, window, range or breakdown."""
        return funnel_request.run(self._store, funnel_request.parse(request))

    def ListProductStats(self, request: insights_pb2.ListProductStatsRequest,
                         context: grpc.ServicerContext
                         ) -> insights_pb2.ListProductStatsResponse:
        """INVALID_ARGUMENT for a bad parent, range, order, page size or token."""
        return tables.list_product_stats(self._store, request)

    def ListJobStats(self, request: insights_pb2.ListJobStatsRequest,
                     context: grpc.ServicerContext) -> insights_pb2.ListJobStatsResponse:
        """INVALID_ARGUMENT for a bad parent, range, order, page size or token."""
        return tables.list_job_stats(self._store, request)

    def ComputeTotals(self, request: insights_pb2.ComputeTotalsRequest,
                      context: grpc.ServicerContext) -> insights_pb2.ComputeTotalsResponse:
        """INVALID_ARGUMENT for a bad parent, range, granularity, count or window."""
        return totals.compute_totals(self._store, request)
