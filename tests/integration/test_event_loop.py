"""Both transports serve on uvloop's event loop (server/loop.py), not asyncio's own:
the same calls for less CPU each (bench/ANALYSIS.md)."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from server.app import Running
from server.config import Settings

from . import http_client


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, http_port=-1)


@pytest.fixture
def loops_seen(monkeypatch: pytest.MonkeyPatch) -> list[type]:
    """The class of the loop each health check runs on, from the next server started:
    gRPC's Health/Check and HTTP's /healthz ask the same servicer."""
    seen: list[type] = []
    check = health.aio.HealthServicer.Check

    async def noting(self: health.aio.HealthServicer, request: health_pb2.HealthCheckRequest,
                     context: object) -> health_pb2.HealthCheckResponse:
        seen.append(type(asyncio.get_running_loop()))
        return await check(self, request, context)

    monkeypatch.setattr(health.aio.HealthServicer, "Check", noting)
    return seen


def test_grpc_and_http_calls_are_served_on_uvloop(loops_seen: list[type], running: Running,
                                                  channel: grpc.Channel) -> None:
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                       timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    said = http_client.call(running.http_port, "GET", "/healthz")
    assert (said.status, said.body) == (200, b"SERVING\n")
    assert loops_seen == [uvloop.Loop, uvloop.Loop]
