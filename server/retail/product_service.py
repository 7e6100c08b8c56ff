"""google.cloud.retail.v2.ProductService (being written)."""

from __future__ import annotations

from footfall.retail.v2 import product_service_pb2_grpc

from server.clock import Clock
from server.store import Store


class ProductService(product_service_pb2_grpc.ProductServiceServicer):
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
