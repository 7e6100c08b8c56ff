"""A writer key's event naming one product of the catalog a hundred thousand
times: joining it must not copy the product into each detail before finding the
result too large (the server's peak memory read from /proc). Imports nothing of
ours."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from google.cloud import retail_v2

from .console import rest
from .support import RPC_DEADLINE, ServerProcess, product_client

CATALOG = "projects/footfall-interop/locations/global/catalogs/join"
DETAILS = 100_000  # about 700 KB sent, far within --max-event-bytes (2 MiB)


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_an_event_naming_a_product_many_times_is_left_unjoined_without_copying_it(
        server_factory: Callable[..., ServerProcess]) -> None:
    """Each of the 100,000 details held a copy of the 4 KB product before the
    joined event was found larger than --max-event-bytes: the server went from
    0.14 to 1.4 GB for one such write."""
    server = server_factory()
    products = product_client(server.address)
    products.create_product(
        parent=f"{CATALOG}/branches/0", product_id="tent",
        product=retail_v2.Product(title="Tent", categories=["Outdoor"],
                                  description="d" * 4_000),
        timeout=RPC_DEADLINE)
    event = {"eventType": "detail-page-view", "visitorId": "v",
             "productDetails": [{"product": {"id": "tent"}}] * DETAILS}
    before = _peak_rss_kib(server.proc.pid)
    answer = requests.post(f"http://{server.http_address}/v2/{CATALOG}/userEvents:write",
                           json=event, timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    grown_mib = (_peak_rss_kib(server.proc.pid) - before) / 1024
    # (the event itself, parsed from JSON and decoded, took 146 MiB at its peak)
    assert grown_mib < 400, f"the server's peak memory grew {grown_mib:.0f} MiB"
    stored = rest(server.http_address, f"{CATALOG}/userEvents").json()["userEvents"]
    assert [e.get("joined", False) for e in stored] == [False]
