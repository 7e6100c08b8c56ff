"""Routes derived from the `google.api.http` annotations of the served services.

Nothing here knows a method by name: every route comes from an HttpRule, either
the method's own annotation or a rule of the services' configuration (the REST
bindings Google publishes for `google.longrunning.Operations` under the retail
and talent resources, which live in service YAML, not in the .proto files).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, descriptor_pool, message_factory

from server.http.templates import PathTemplate, TemplateError

GET_OPERATION = "google.longrunning.Operations.GetOperation"
LIST_OPERATIONS = "google.longrunning.Operations.ListOperations"
CANCEL_OPERATION = "google.longrunning.Operations.CancelOperation"
DELETE_OPERATION = "google.longrunning.Operations.DeleteOperation"

# Where operations live: retail v2, v2beta and v2alpha (catalog, branch, location,
# project) and talent v4.
RETAIL_VERSIONS = ("v2", "v2beta", "v2alpha")
_OPERATION_NAMES = (
    *(f"/{version}/{{name={pattern}}}" for version in RETAIL_VERSIONS for pattern in (
        "projects/*/locations/*/operations/*",
        "projects/*/locations/*/catalogs/*/branches/*/operations/*",
        "projects/*/locations/*/catalogs/*/operations/*",
        "projects/*/operations/*")),
    # v2beta and v2alpha also name operations of a branch's places
    *(f"/{version}/{{name=projects/*/locations/*/catalogs/*/branches/*/places/*/operations/*}}"
      for version in RETAIL_VERSIONS[1:]),
    "/v4/{name=projects/*/operations/*}",
)


def _rule(selector: str, verb: str, paths: Iterable[str], body: str = "") -> http_pb2.HttpRule:
    first, *more = paths
    rule = http_pb2.HttpRule(selector=selector, body=body, **{verb: first})
    for path in more:
        rule.additional_bindings.add(body=body, **{verb: path})
    return rule


# The http rules of the retail (v2, v2beta, v2alpha) and talent v4 service
# configurations for google.longrunning.Operations (what the official REST
# transports call), plus
# Cancel and Delete under the same names: a Footfall extension, so that a
# client with only HTTP can stop and forget its jobs.
SERVICE_CONFIG_RULES: tuple[http_pb2.HttpRule, ...] = (
    _rule(GET_OPERATION, "get", _OPERATION_NAMES),
    _rule(LIST_OPERATIONS, "get", (
        f"/{version}/{{name={pattern}}}/operations" for version in RETAIL_VERSIONS
        for pattern in ("projects/*/locations/*", "projects/*/locations/*/catalogs/*",
                        "projects/*"))),
    _rule(CANCEL_OPERATION, "post", (f"{p}:cancel" for p in _OPERATION_NAMES), body="*"),
    _rule(DELETE_OPERATION, "delete", _OPERATION_NAMES),
)


class RouteError(ValueError):
    """An HttpRule the gateway cannot serve (a bug in a contract, found at start-up)."""


@dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC."""

    http_method: str  # GET, POST, PATCH, DELETE, PUT or a custom verb
    template: PathTemplate
    body: str  # "" (no body), "*" (the whole request) or a top-level field name
    response_body: str  # "" (the whole response) or a top-level field name
    method: descriptor.MethodDescriptor
    request_class: type[Any]
    call: Callable[[Any, Any], Any]  # the servicer's (request, context) method
    response_class: type[Any]
    # The servicer's refusal of a request whose body held values of the wrong type,
    # (request read without them, their violations, context): see HttpGateway.
    partly_read: Callable[[Any, Any, Any], Any] | None = None

    # (Worked out once per route, not on each call: a pixel asks for them three times,
    # and each asked the descriptors and built its string anew.)
    @cached_property
    def rpc(self) -> str:
        """The RPC's full name, e.g. google.cloud.retail.v2.UserEventService.WriteUserEvent."""
        return self.method.full_name

    @cached_property
    def retail_version(self) -> str:
        """The retail version its path is of (`v2`, `v2beta`, `v2alpha`), else ""."""
        version = self.template.text[1:].partition("/")[0]
        return version if version in RETAIL_VERSIONS else ""

    @cached_property
    def grpc_method(self) -> str:
        """The RPC as gRPC names it: /google.cloud.retail.v2.UserEventService/WriteUserEvent."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"


def http_bindings(rule: http_pb2.HttpRule) -> Iterator[tuple[str, str, str, str]]:
    """(HTTP method, path template, body, response_body) of a rule and its
    additional bindings."""
    for binding in (rule, *rule.additional_bindings):
        kind = binding.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            yield binding.custom.kind.upper(), binding.custom.path, binding.body, \
                binding.response_body
        else:
            yield kind.upper(), getattr(binding, kind), binding.body, binding.response_body


def annotated_rules(service: descriptor.ServiceDescriptor
                    ) -> Iterator[tuple[descriptor.MethodDescriptor, http_pb2.HttpRule]]:
    """The methods of `service` that carry a google.api.http annotation, unary or
    server-streaming (served as server-sent events)."""
    for method in service.methods:
        options = method.GetOptions()
        if method.client_streaming:
            continue
        if options.HasExtension(annotations_pb2.http):
            yield method, options.Extensions[annotations_pb2.http]


def _check_field(message: descriptor.Descriptor, field_path: str, what: str) -> None:
    current: descriptor.Descriptor | None = message
    for part in field_path.split("."):
        field = current.fields_by_name.get(part) if current is not None else None
        if field is None:
            raise RouteError(f"{what} {field_path!r} is not a field of {message.full_name}")
        current = field.message_type


def _route(method: descriptor.MethodDescriptor, servicer: Any,
           binding: tuple[str, str, str, str]) -> Route:
    http_method, path, body, response_body = binding
    try:
        template = PathTemplate.parse(path)
    except TemplateError as exc:
        raise RouteError(f"{method.full_name}: {exc}") from None
    for variable in template.variables:
        _check_field(method.input_type, variable.field_path, f"{method.full_name}: variable")
    if body not in ("", "*"):
        if body not in method.input_type.fields_by_name:
            raise RouteError(f"{method.full_name}: body {body!r} is not a top-level field")
    if response_body:
        _check_field(method.output_type, response_body, f"{method.full_name}: response_body")
    # (a servicer that says the rules about what did read of such a body: see
    # HttpGateway)
    refusal = getattr(servicer, "partly_read_refusal", None)
    return Route(http_method, template, body, response_body, method,
                 message_factory.GetMessageClass(method.input_type),
                 getattr(servicer, method.name),
                 message_factory.GetMessageClass(method.output_type),
                 functools.partial(refusal, method.name) if refusal is not None else None)


def derive_routes(servicers: Mapping[str, Any],
                  extra_rules: Iterable[http_pb2.HttpRule] = SERVICE_CONFIG_RULES) -> list[Route]:
    """Every HTTP binding of the services in `servicers` (full service name ->
    servicer): their annotations, then the `extra_rules` whose selector names
    one of their methods. Raises RouteError for a rule that cannot be served."""
    pool = descriptor_pool.Default()
    routes: list[Route] = []
    for service_name, servicer in servicers.items():
        for method, rule in annotated_rules(pool.FindServiceByName(service_name)):
            routes.extend(_route(method, servicer, b) for b in http_bindings(rule))
    for rule in extra_rules:
        service_name, _, method_name = rule.selector.rpartition(".")
        if service_name in servicers:
            method = pool.FindMethodByName(rule.selector)
            routes.extend(_route(method, servicers[service_name], b)
                          for b in http_bindings(rule))
    seen: set[tuple[str, str]] = set()
    for route in routes:
        key = (route.http_method, route.template.regex.pattern)
        if key in seen:
            raise RouteError(f"two routes for {route.http_method} {route.template.text}")
        seen.add(key)
    return routes


# Paths matched lately, kept so that a path met again (every pixel of a catalog)
# is not tried against each template again; at most this many, of sensible length.
RECENT_PATHS = 256
RECENT_PATH_CHARS = 1024


class Router:
    """Finds the route of a request: first matching template of its HTTP method
    (of GET for HEAD)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self._by_method: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_method.setdefault(route.http_method, []).append(route)
        # HEAD is answered wherever GET is (RFC 9110 section 9.3.2), on the GET's route:
        # the gateway sends its status and headers, and aiohttp leaves out the body.
        if "GET" in self._by_method:
            self._by_method["HEAD"] = self._by_method["GET"]
        self._recent: dict[tuple[str, str], tuple[Route, dict[str, str]]] = {}

    def match(self, http_method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The route and its decoded path variables (a dict of the caller's), or None."""
        key = (http_method, raw_path)
        recent = self._recent.get(key)
        if recent is not None:
            return recent[0], dict(recent[1])
        for route in self._by_method.get(http_method, ()):
            found = route.template.match(raw_path)
            if found is not None:
                if len(raw_path) <= RECENT_PATH_CHARS:
                    if len(self._recent) >= RECENT_PATHS:
                        self._recent.clear()
                    self._recent[key] = (route, dict(found))
                return route, found
        return None

    def methods_for(self, raw_path: str) -> list[str]:
        """The HTTP methods some route answers at `raw_path` (for CORS and 404s)."""
        return sorted(m for m, routes in self._by_method.items()
                      if any(r.template.match(raw_path) is not None for r in routes))
