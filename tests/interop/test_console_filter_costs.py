"""What a hostile reader's console filter costs the server: a filter of 5,000
characters may name the same session or product id hundreds of times, or
hundreds of ids each a part of another, and its call must cost about what one
such term costs (server CPU read from /proc). Imports nothing of ours."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
import requests

from .console import Console
from .support import RPC_DEADLINE, ServerProcess

CATALOG = "projects/footfall-interop/locations/global/catalogs/costs"
EVENTS = 120
PRODUCTS = 3000  # named by each event: about 40 KB stored
# The last product of each event: every run of q's below is among its bytes, and
# nowhere else in the event, so each is looked for through all of them.
LAST = "x" + "q" * 30


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def hostile_filter() -> str:
    """Thirty distinct ids, each a part of LAST (so a part of every event's bytes,
    yet naming no product), then the shortest again up to 5,000 characters."""
    terms = [f'productId="{"q" * n}"' for n in range(1, 31)]
    while len(" ".join(terms)) < 4_980:
        terms.append(terms[0])
    return " ".join(terms)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.timeout(300)
def test_a_filter_naming_ids_hundreds_of_times_costs_what_one_term_costs(
        server_factory: Callable[..., ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel]) -> None:
    """Each id was looked for through every stored byte of every event, in the
    store and again before decoding: CountUserEvents of 300 such terms over 500
    events of 50 KB took 26 s of CPU against 0.9 s for one term (and a count
    reads the whole catalog). Now only the longest is, the rest checked on the
    decoded event."""
    server = server_factory()
    products = [{"product": {"id": f"p{i:06d}"}} for i in range(PRODUCTS)]
    products.append({"product": {"id": LAST}})
    with requests.Session() as http:
        for n in range(EVENTS):
            answer = http.post(
                f"http://{server.http_address}/v2/{CATALOG}/userEvents:write",
                json={"eventType": "detail-page-view", "visitorId": f"v{n}",
                      "productDetails": products}, timeout=RPC_DEADLINE)
            assert answer.status_code == 200, answer.text
    console = Console(channels(server))
    hostile = hostile_filter()
    assert len(hostile) <= 5_000 and hostile.count("productId") >= 300

    def ticks_of_count(text: str) -> int:
        before = cpu_ticks(server.proc.pid)
        answer = console.call("CountUserEvents", parent=CATALOG, filter=text)
        assert answer.get("count", "0") == "0"  # (LAST is no product looked for)
        return cpu_ticks(server.proc.pid) - before

    ticks_of_count('productId="q"')  # (the first read warms the store's pages)
    one = ticks_of_count('productId="q"')
    many = ticks_of_count(hostile)
    # (10 ms ticks: the margin keeps a busy machine's noise out; without the
    # change it cost 20-30 times one term)
    assert many <= 3 * one + 30, (one, many)
