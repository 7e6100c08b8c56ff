"""Inventory updates: SetInventory of a price (the update and its operation, done,
in one transaction; a caller would wait for an operation that was not) beside
UpdateProduct of the same field, from the same callers on the same server,
interleaved. Server CPU per call from /proc."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from footfall.retail.v2 import product_pb2, product_service_pb2, product_service_pb2_grpc
from google.protobuf import field_mask_pb2

from bench.common import PARENT, Server, footfall, summary, wait_done

BRANCH = f"{PARENT}/branches/0"
PRODUCTS = 50  # callers spread over this many products


def _price(i: int) -> product_pb2.Product:
    product = product_pb2.Product(name=f"{BRANCH}/products/p{i % PRODUCTS}")
    product.price_info.price = 10.0 + i % 7
    product.price_info.currency_code = "USD"
    return product


def _update(stub: Any, channel: grpc.Channel, i: int) -> None:
    stub.UpdateProduct(product_service_pb2.UpdateProductRequest(
        product=_price(i), update_mask=field_mask_pb2.FieldMask(paths=["price_info"])))


def _set_inventory(stub: Any, channel: grpc.Channel, i: int) -> None:
    operation = stub.SetInventory(product_service_pb2.SetInventoryRequest(
        inventory=_price(i), set_mask=field_mask_pb2.FieldMask(paths=["price_info"])))
    if not wait_done(channel, operation).HasField("response"):
        raise RuntimeError(f"{operation.name} did not succeed")


CALLS: dict[str, Callable[[Any, grpc.Channel, int], None]] = {
    "update_product": _update, "set_inventory": _set_inventory}


def _measure(server: Server, call: Callable[[Any, grpc.Channel, int], None], requests: int,
             callers: int) -> tuple[float, float]:
    """(calls/s, server CPU µs per call) for `requests` calls from `callers` threads."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = product_service_pb2_grpc.ProductServiceStub(channel)
        counter = iter(range(requests))
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                call(stub, channel, i)

        threads = [threading.Thread(target=work) for _ in range(callers)]
        cpu, start = server.cpu_seconds(), time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds, cpu = time.perf_counter() - start, server.cpu_seconds() - cpu
    return requests / seconds, cpu / requests * 1e6


def _catalog(server: Server) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = product_service_pb2_grpc.ProductServiceStub(channel)
        for i in range(PRODUCTS):
            stub.CreateProduct(product_service_pb2.CreateProductRequest(
                parent=BRANCH, product_id=f"p{i}", product=product_pb2.Product(
                    title=f"Product {i}", categories=["Bench"])))


def run(requests: int = 2_000, reps: int = 3, callers: int = 16) -> dict[str, Any]:
    """Each call's rate and server CPU per call (median, min, max over `reps`
    interleaved rounds), and SetInventory's ratios to UpdateProduct."""
    rates: dict[str, list[float]] = {name: [] for name in CALLS}
    cpus: dict[str, list[float]] = {name: [] for name in CALLS}
    with footfall() as server:
        _catalog(server)
        for _ in range(reps):
            for name, call in CALLS.items():
                rate, cpu = _measure(server, call, requests, callers)
                rates[name].append(rate)
                cpus[name].append(cpu)
    results: dict[str, Any] = {
        name: {"per_second": summary(rates[name]), "cpu_us_per_call": summary(cpus[name])}
        for name in CALLS}
    results.update(requests=requests, callers=callers, ratios={
        "throughput": statistics.median(rates["set_inventory"])
        / statistics.median(rates["update_product"]),
        "cpu_per_call": statistics.median(cpus["set_inventory"])
        / statistics.median(cpus["update_product"])})
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
