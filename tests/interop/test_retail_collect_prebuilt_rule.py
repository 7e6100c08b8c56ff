"""CollectUserEvent with raw_json + prebuilt_rule (Google's "ga4_bq" for a row of
the GA4 BigQuery export): refused, naming the rule and the row, never stored;
over gRPC through the official client and over REST (GET and POST)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2

from .examples import example
from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    count_events,
    list_events,
)

GA4_ROW = json.dumps({
    "event_date": "20240520",
    "event_timestamp": 1716213787123456,
    "event_name": "purchase",
    "user_pseudo_id": "1234567.7654321",
    "items": [{"item_id": "sku-1", "quantity": 2, "price": 10.5}],
    "ecommerce": {"transaction_id": "T-1", "purchase_revenue": 21.0},
})
ROW_REFUSED = "raw_json: is not a UserEvent, and this server cannot apply prebuilt_rule"


def collect(client: retail_v2.UserEventServiceClient, request: dict[str, Any]) -> Any:
    return client.collect_user_event(request=request, timeout=RPC_DEADLINE)


@pytest.mark.parametrize(("rule", "says"), [
    pytest.param("ga4_bq", "prebuilt_rule: 'ga4_bq' (Google's rule for a row of the GA4 "
                           "BigQuery export) is not implemented", id="ga4_bq"),
    pytest.param("ga4", "prebuilt_rule: unknown conversion rule 'ga4'", id="unknown"),
])
def test_a_ga4_row_is_refused_naming_the_rule(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        rule: str, says: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        collect(retail, {"parent": catalog, "raw_json": GA4_ROW, "prebuilt_rule": rule})
    assert_names_fields(refused.value, ["prebuilt_rule", "raw_json"])
    assert says in refused.value.message
    assert f"{ROW_REFUSED} {rule!r}" in refused.value.message
    assert "event_date" not in refused.value.message  # not judged field by field
    assert count_events(server.store, catalog, server.workdir) == 0


def test_malformed_json_for_ga4_bq_says_where(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    with pytest.raises(exceptions.InvalidArgument) as refused:
        collect(retail, {"parent": catalog, "raw_json": GA4_ROW[:40], "prebuilt_rule": "ga4_bq"})
    assert_names_fields(refused.value, ["prebuilt_rule", "raw_json"])
    assert "line 1 column" in refused.value.message
    assert count_events(server.store, catalog, server.workdir) == 0


def test_a_user_event_with_a_rule_is_refused_for_the_rule_alone(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    event = json.dumps(example("home-page-view"))
    with pytest.raises(exceptions.InvalidArgument) as refused:
        collect(retail, {"parent": catalog, "raw_json": event, "prebuilt_rule": "ga4_bq"})
    assert_names_fields(refused.value, ["prebuilt_rule"])
    # without the rule the same raw_json is stored
    collect(retail, {"parent": catalog, "raw_json": event})
    [stored] = list_events(server.store, catalog, server.workdir)
    assert stored["visitorId"] == example("home-page-view")["visitorId"]


def rest_violations(reply: requests.Response) -> dict[str, str]:
    assert reply.status_code == 400, reply.text
    [bad] = [d for d in reply.json()["error"]["details"]
             if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    return {v["field"]: v["description"] for v in bad["fieldViolations"]}


def test_rest_get_and_post_refuse_a_ga4_row(server: ServerProcess, catalog: str) -> None:
    assert server.http_port, "the shared server runs its HTTP gateway"
    url = f"http://127.0.0.1:{server.http_port}/v2/{catalog}/userEvents:collect"
    got = requests.get(f"{url}?rawJson={quote(GA4_ROW, safe='')}&prebuiltRule=ga4_bq"
                       "&$alt=json", timeout=RPC_DEADLINE)
    posted = requests.post(url, json={"rawJson": GA4_ROW, "prebuiltRule": "ga4_bq"},
                           timeout=RPC_DEADLINE)
    for reply in (got, posted):
        found = rest_violations(reply)
        assert set(found) == {"prebuilt_rule", "raw_json"}, found
        assert "'ga4_bq'" in found["prebuilt_rule"]
        assert found["raw_json"].startswith("is not a UserEvent")
    assert count_events(server.store, catalog, server.workdir) == 0
