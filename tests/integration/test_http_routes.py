"""Every RPC the server serves with a google.api.http annotation is routed, each
binding (additional ones too), and so is every URI the official REST transports
of the served services call. Routes are derived, never listed by hand."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.api import http_pb2
from google.protobuf import descriptor_pool

from server.app import GUARDED, Running, start
from server.clock import FixedClock
from server.config import Settings
from server.http.routes import (
    SERVICE_CONFIG_RULES,
    RouteError,
    annotated_rules,
    derive_routes,
    http_bindings,
)
from server.http.templates import PathTemplate

from .http_client import call

# The official REST transports (read as text: importing them here would clash
# with our generated modules) of the services we serve.
REST_TRANSPORTS = {
    ("google.cloud.retail_v2", "user_event_service"): "google.cloud.retail.v2.UserEventService",
    ("google.cloud.retail_v2", "product_service"): "google.cloud.retail.v2.ProductService",
    ("google.cloud.talent_v4", "event_service"): "google.cloud.talent.v4.EventService",
    **{(f"google.cloud.retail_{version}", module): f"google.cloud.retail.{version}.{service}"
       for version in ("v2beta", "v2alpha")
       for module, service in (("user_event_service", "UserEventService"),
                               ("product_service", "ProductService"))},
}
OPERATIONS = "google.longrunning.Operations"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("routes")
    settings = Settings(port=0, http_port=-1, store=f"sqlite:///{folder}/events.db",
                        gcs_root=str(folder / "gcs"), grace_seconds=5, workers=4)
    running = start(settings, FixedClock(0))
    yield running
    running.stop()


def annotated_bindings() -> list[tuple[str, str, str]]:
    """(rpc full name, HTTP method, template) of every annotation of the served
    services, and of the service-configuration rules for the operations."""
    pool = descriptor_pool.Default()
    found = []
    for service in GUARDED:
        for method, rule in annotated_rules(pool.FindServiceByName(service)):
            found.extend((method.full_name, verb, path)
                         for verb, path, _, _ in http_bindings(rule))
    for rule in SERVICE_CONFIG_RULES:
        found.extend((rule.selector, verb, path) for verb, path, _, _ in http_bindings(rule))
    return found


def rest_transport_bindings() -> list[tuple[str, str, str]]:
    """(rpc, HTTP method, template) of every `_get_http_options` in the official
    rest_base.py files of the served services."""
    found = []
    for (package, service_module), service in REST_TRANSPORTS.items():
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            pytest.skip(f"{package} is not installed")
        text = (Path(next(iter(spec.submodule_search_locations))) / "services" /
                service_module / "transports" / "rest_base.py").read_text()
        for block in re.split(r"\n    class _Base", text)[1:]:
            method = block.split("(", 1)[0].split(":", 1)[0]
            rpc = (f"{OPERATIONS}.{method}" if method.endswith(("Operation", "Operations"))
                   else f"{service}.{method}")
            for verb, uri in re.findall(r'"method": "(\w+)",\s*"uri": "([^"]+)"', block):
                found.append((rpc, verb.upper(), uri))
    return found


ANNOTATED = annotated_bindings()


def test_the_served_contracts_have_annotations_to_route() -> None:
    rpcs = {rpc for rpc, _, _ in ANNOTATED}
    assert "google.cloud.retail.v2.UserEventService.CollectUserEvent" in rpcs
    assert len([1 for rpc, _, _ in ANNOTATED if rpc.endswith("CollectUserEvent")]) == 2 * 3
    assert {f"{OPERATIONS}.GetOperation", f"{OPERATIONS}.ListOperations"} <= rpcs
    assert "google.cloud.retail.v2alpha.UserEventService.ExportUserEvents" in rpcs
    assert len(ANNOTATED) >= 100


@pytest.mark.parametrize(("rpc", "verb", "template"), ANNOTATED,
                         ids=[f"{v} {t}" for _, v, t in ANNOTATED])
def test_every_annotated_binding_is_routed_and_answered(gateway: Running, rpc: str, verb: str,
                                                        template: str) -> None:
    assert gateway.http is not None
    path = PathTemplate.parse(template).example()
    found = gateway.http.router.match(verb, path)
    assert found is not None, f"{verb} {path} is not routed"
    route, values = found
    assert route.rpc == rpc
    assert values or "{" not in template, "path variables are bound"  # (GET /console/v1/caller)
    # a stream (server-sent events) answers until its deadline
    headers = {"X-Server-Timeout": "0.2"} if route.method.server_streaming else None
    reply = call(gateway.http_port, verb, path, {} if verb != "GET" else None, headers)
    if reply.status != 200:  # the servicer's own answer, not the gateway's "no route"
        assert not reply.error()["message"].startswith("no route"), reply.body


def test_every_rest_transport_uri_is_routed(gateway: Running) -> None:
    assert gateway.http is not None
    bindings = rest_transport_bindings()
    assert len(bindings) >= 60
    missing = []
    for rpc, verb, template in bindings:
        found = gateway.http.router.match(verb, PathTemplate.parse(template).example())
        if found is None or found[0].rpc != rpc:
            missing.append((rpc, verb, template))
    assert not missing


class AnyServicer:
    def __getattr__(self, name: str) -> Callable[[object, object], None]:
        return lambda request, context: None


@pytest.mark.parametrize("rule", [
    http_pb2.HttpRule(get="/v1/{nme=operations/*}"),  # not a field
    http_pb2.HttpRule(get="v1/operations"),  # no leading slash
    http_pb2.HttpRule(post="/v1/{name=operations/*}", body="nobody"),  # not a field
    http_pb2.HttpRule(get="/v1/{name=operations/*"),  # unbalanced
], ids=str)
def test_derivation_refuses_broken_rules(rule: http_pb2.HttpRule) -> None:
    rule.selector = f"{OPERATIONS}.GetOperation"
    with pytest.raises(RouteError):
        derive_routes({OPERATIONS: AnyServicer()}, [rule])


def test_two_routes_for_one_path_are_refused() -> None:
    twice = http_pb2.HttpRule(selector=f"{OPERATIONS}.GetOperation", get="/v1/x/{name=*}")
    twice.additional_bindings.add(get="/v1/x/{name=*}")
    with pytest.raises(RouteError, match="two routes"):
        derive_routes({OPERATIONS: AnyServicer()}, [twice])
