"""The insights a server answers over REST read the events in pages (server/insights/
read.py: typed rows, entrants' events, client events by id): read
in pages of two, with events of one time across their edges, every answer is the
one read in whole pages."""

from __future__ import annotations

from typing import Any

import pytest

from server.app import Running
from server.insights import read

from . import http_client

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
TENANT = "projects/p/tenants/t"
DAY = "2024-04-30"
SHOP = ("home-page-view", "detail-page-view", "add-to-cart", "purchase-complete")
# (visitor, steps of SHOP reached, the minute of each): times shared across visitors
VISITS = [("v0", 4, 0), ("v1", 3, 0), ("v2", 2, 1), ("v3", 4, 1), ("v4", 1, 2), ("v5", 3, 0)]
JOBS = ("IMPRESSION", "VIEW", "APPLICATION_START", "APPLICATION_FINISH")


def call(running: Running, method: str, path: str, body: Any = None) -> Any:
    answer = http_client.call(running.http_port, method, path, body)
    assert answer.status == 200, answer.body[:500]
    return answer.json()


def write_history(running: Running) -> None:
    for visitor, reached, minute in VISITS:
        for step, event_type in enumerate(SHOP[:reached]):
            event: dict[str, Any] = {
                "eventType": event_type, "visitorId": visitor, "sessionId": f"s-{visitor}",
                "eventTime": f"{DAY}T10:{minute + step:02d}:00Z"}
            if event_type != "home-page-view":
                event["productDetails"] = [{"product": {"id": f"sku-{minute}"}, "quantity": 2}]
            if event_type == "purchase-complete":
                event["purchaseTransaction"] = {"revenue": 12.5, "currencyCode": "USD"}
            call(running, "POST", f"/v2/{CATALOG}/userEvents:write", event)
    for n, (visitor, reached, minute) in enumerate(VISITS):
        for step, job_type in enumerate(JOBS[:reached]):
            call(running, "POST", f"/v4/{TENANT}/clientEvents", {
                "requestId": f"r-{visitor}", "eventId": f"e{n}-{step}",
                "createTime": f"{DAY}T11:{minute:02d}:00Z",
                "jobEvent": {"type": job_type, "jobs": [f"{TENANT}/jobs/j{minute}"]}})


def insights(running: Running) -> dict[str, Any]:
    return {
        "shop funnel": call(running, "POST", f"/insights/v1/{CATALOG}:runFunnel", {}),
        "session funnel by item": call(running, "POST", f"/insights/v1/{CATALOG}:runFunnel",
                                       {"countBy": "SESSION", "breakdown": "BY_ITEM"}),
        "totals": call(running, "GET", f"/insights/v1/{CATALOG}:computeTotals"),
        "products": call(running, "GET", f"/insights/v1/{CATALOG}/productStats"),
        "talent funnel": call(running, "POST", f"/insights/v1/{TENANT}:runFunnel", {}),
        "jobs": call(running, "GET", f"/insights/v1/{TENANT}/jobStats"),
    }


def test_insights_read_in_small_pages_answer_as_in_whole_ones(
        served: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    write_history(served)
    whole = insights(served)
    assert whole["shop funnel"]["eventsRead"], whole["shop funnel"]
    with monkeypatch.context() as small:
        small.setattr(read, "ROWS_PAGE", 2)
        small.setattr(read, "PAGE", 2)
        paged = insights(served)
    assert paged == whole
