"""A talent tenant's refusals as the console lists them, written through the
official google-cloud-talent clients (v4 and v4beta1) to a `footfall serve`
subprocess, read back over the console's REST routes: talent v4beta1's refusals of a
project alone (its default tenant) among the default tenant's, as its events are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.cloud import talent_v4, talent_v4beta1
from google.cloud.talent_v4beta1.services.event_service.transports import (
    EventServiceGrpcTransport as V4beta1Transport,
)

from .support import RPC_DEADLINE, ServerProcess, wait_until


@pytest.fixture(scope="module")
def talent_beta(server: ServerProcess) -> Iterator[talent_v4beta1.EventServiceClient]:
    client = talent_v4beta1.EventServiceClient(
        transport=V4beta1Transport(channel=grpc.insecure_channel(server.address)))
    with client:
        yield client


def listed(server: ServerProcess, path: str, **query: Any) -> dict[str, Any]:
    answer = requests.get(f"http://{server.http_address}/console/v1/{path}", params=query,
                          timeout=RPC_DEADLINE)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_v4beta1_refusals_of_a_project_alone_are_its_default_tenants(
        talent_beta: talent_v4beta1.EventServiceClient, talent: talent_v4.EventServiceClient,
        server: ServerProcess, request: pytest.FixtureRequest) -> None:
    """Its events are kept under projects/P/tenants/default_tenant: its refusals are
    listed there too (they were only the project's, and the tenant's page said so).
    The refusal still says the parent as sent; v4, which takes no project alone,
    keeps its refusal under the project alone."""
    project = f"projects/{request.node.name.replace('_', '-')[:50]}"
    tenant = f"{project}/tenants/default_tenant"
    with pytest.raises(exceptions.InvalidArgument):
        talent_beta.create_client_event(parent=project, client_event=talent_v4beta1.ClientEvent(
            event_id="refused-beta"), timeout=RPC_DEADLINE)
    with pytest.raises(exceptions.InvalidArgument):
        talent.create_client_event(parent=project, client_event=talent_v4.ClientEvent(
            event_id="refused-v4"), timeout=RPC_DEADLINE)

    def both() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = listed(server, f"{project}/rejections").get(
            "rejections", [])
        return found if len(found) == 2 else None

    everything = wait_until(both, "both refusals", 10)
    assert [r["parent"] for r in everything] == [project, project]
    [of_tenant] = listed(server, f"{tenant}/rejections")["rejections"]
    assert of_tenant["method"] == "/google.cloud.talent.v4beta1.EventService/CreateClientEvent"
    assert of_tenant["parent"] == project  # (as sent)
    assert '"refused-beta"' in of_tenant["requestJson"]
    # (a reset of the tenant forgets them with its events)
    reset = requests.post(f"http://{server.http_address}/console/v1/{tenant}:reset",
                          json={}, timeout=RPC_DEADLINE)
    assert reset.status_code == 200, reset.text
    assert reset.json().get("deletedRejectionsCount") == "1", reset.text
    assert [r["method"] for r in listed(server, f"{project}/rejections")["rejections"]] == [
        "/google.cloud.talent.v4.EventService/CreateClientEvent"]
