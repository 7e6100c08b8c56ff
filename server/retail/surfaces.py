"""The retail v2beta and v2alpha surfaces of UserEventService and ProductService,
answered by the v2 servicers on the same store.

The versions give their shared messages the same names, numbers and types (the
contract test checks each version against Google's), so a request becomes a v2
request by its wire bytes and the answer comes back the same way: nothing is
copied field by field, and an event written through one version is the event
every version reads, purges and exports. What v2 lacks is handled here, by name:

- ExportUserEvents and ExportProducts (both versions): server.retail.export.
- v2alpha's fields that v2 has no number for (tests/contract/retail_versions.py lists them):
  DeleteProductRequest.force deletes a primary's variants first;
  ListProductsRequest.require_total_size fills total_size on a first page;
  ImportProductsRequest.skip_default_branch_protection is accepted either way
  (Footfall has no such guard: it refuses FULL imports altogether);
  LocalInventory.availability is refused (INVALID_ARGUMENT naming where it was
  set): inventory updates merge fields by name, so it could not be kept;
  ImportMetadata.transformed_user_events_metadata is output only, never set.
- Operations started here carry the version in their name, and their metadata
  and response are answered under that version's type names
  (server.operations.records); so are the types a NOT_FOUND or ALREADY_EXISTS
  names (its ResourceInfo and message).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc.aio
from footfall.retail.v2alpha import product_service_pb2 as _v2alpha_products  # noqa: F401
from footfall.retail.v2alpha import user_event_service_pb2 as _v2alpha_events  # noqa: F401
from footfall.retail.v2beta import product_service_pb2 as _v2beta_products  # noqa: F401
from footfall.retail.v2beta import user_event_service_pb2 as _v2beta_events  # noqa: F401
from google.longrunning import operations_pb2
from google.protobuf import descriptor, descriptor_pool, message_factory
from google.protobuf.message import Message

from server.errors import FieldViolation, InvalidArgument, ResourceError, raise_if_any
from server.loop import in_decoder, large_call, off_loop
from server.operations import records
from server.operations.runner import OperationRunner
from server.retail import export
from server.retail.product_service import ProductService

VERSIONS = records.VERSIONS
RETAIL = "google.cloud.retail."
Call = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
# Runs before the v2 call with the versioned request (may raise), or after it with
# the request and the versioned answer (may change the answer).
Before = Callable[[Any], Awaitable[None]]
After = Callable[[Any, Any], Awaitable[None]]


def v2_name(full_name: str, version: str) -> str:
    """`google.cloud.retail.v2beta.X` as v2 names it."""
    return full_name.replace(f"{RETAIL}{version}.", f"{RETAIL}v2.", 1)


def versioned_name(v2_full_name: str, version: str) -> str:
    """`google.cloud.retail.v2.X` as `version` names it."""
    return v2_full_name.replace(f"{RETAIL}v2.", f"{RETAIL}{version}.", 1)


class Surface:
    """One service of one version: an attribute per RPC, as a generated servicer
    has, for gRPC and the HTTP gateway alike."""

    def __init__(self, version: str, service: descriptor.ServiceDescriptor, v2: Any,
                 own: Mapping[str, Call] | None = None,
                 before: Mapping[str, Before] | None = None,
                 after: Mapping[str, After] | None = None) -> None:
        self.version = version
        self.service = service
        self._v2 = v2
        self._v2_requests: dict[str, type[Message]] = {}  # of the methods bridged
        pool = descriptor_pool.Default()
        for method in service.methods:
            mine = (own or {}).get(method.name)
            if mine is not None:
                call = self._versioned(mine)
            else:
                v2_request = message_factory.GetMessageClass(pool.FindMessageTypeByName(
                    v2_name(method.input_type.full_name, version)))
                self._v2_requests[method.name] = v2_request
                call = self._bridge(method, getattr(v2, method.name), v2_request,
                                    (before or {}).get(method.name),
                                    (after or {}).get(method.name))
            setattr(self, method.name, call)

    def partly_read_refusal(self, method: str, request: Message,
                            found: list[FieldViolation], context: Any
                            ) -> InvalidArgument | None:
        """The v2 servicer's refusal of a REST request of a method bridged to it whose
        body held values of the wrong type (see HttpGateway); None when it has none."""
        v2_request = self._v2_requests.get(method)
        refusal = getattr(self._v2, "partly_read_refusal", None)
        if v2_request is None or refusal is None:
            return None
        return refusal(method, v2_request.FromString(request.SerializeToString()), found,
                       context)

    def _versioned(self, call: Call) -> Call:
        """`call` run with the version known (operation names) and relabelled."""
        version = self.version

        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = records.API_VERSION.set(version)
            try:
                answer = await call(request, context)
            except ResourceError as error:  # (a Product not found: this version's Product)
                if error.resource_type.startswith(f"{RETAIL}v2."):
                    error.retyped(versioned_name(error.resource_type, version))
                raise
            finally:
                records.API_VERSION.reset(token)
            if isinstance(answer, operations_pb2.Operation):
                records.relabel(answer)
            return answer

        return run

    def _bridge(self, method: descriptor.MethodDescriptor, v2_call: Call,
                v2_request: type[Message], before: Before | None,
                after: After | None) -> Call:
        """The RPC answered by `v2_call`, converting by wire bytes both ways."""
        output = method.output_type
        versioned_output = message_factory.GetMessageClass(output) \
            if output.full_name.startswith(RETAIL) else None

        def to_v2(request: Message) -> Message:
            return v2_request.FromString(request.SerializeToString())

        async def converted(request: Any, context: grpc.aio.ServicerContext) -> Any:
            # (a large request's two passes, as its decoding, on a decoder's thread)
            return await v2_call(await in_decoder(to_v2, request) if large_call()
                                 else to_v2(request), context)

        call = self._versioned(converted)

        async def bridged(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if before is not None:
                await before(request)
            answer = await call(request, context)
            if isinstance(answer, bytes) and versioned_output is not None:
                # (a large answer, serialized off the loop: made this version's there, the
                # bytes the loop would make of the message in this version)
                if after is None:
                    return await in_decoder(_reencoded, versioned_output, answer)
                answer = versioned_output.FromString(answer)
            elif versioned_output is not None and not isinstance(answer, bytes):
                answer = versioned_output.FromString(answer.SerializeToString())
            if after is not None:
                await after(request, answer)
            return answer

        return bridged


def _reencoded(kind: type[Message], wire: bytes) -> bytes:
    """`wire` decoded as a `kind` and serialized again."""
    return kind.FromString(wire).SerializeToString()


class Exports:
    """ExportUserEvents and ExportProducts: checked now, run by the operation runner."""

    def __init__(self, runner: OperationRunner, gcs_root: Path) -> None:
        self._runner = runner
        self._root = gcs_root

    async def ExportUserEvents(self, request: export.AnyEventsRequest,
                               context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Start an export of the catalog's events; INVALID_ARGUMENT naming each bad
        field (parent, output_config, filter)."""
        catalog, _ = await off_loop(export.check_events_request, request, self._root)
        return await off_loop(self._runner.submit, catalog, export.EVENTS_KIND, request,
                              export.new_operation)

    async def ExportProducts(self, request: export.AnyProductsRequest,
                             context: grpc.aio.ServicerContext) -> operations_pb2.Operation:
        """Start an export of the branch's products; INVALID_ARGUMENT naming each bad
        field (parent, output_config, filter)."""
        branch, _ = await off_loop(export.check_products_request, request, self._root)
        return await off_loop(self._runner.submit, branch, export.PRODUCTS_KIND, request,
                              export.new_operation)


def _local_availabilities(message: Message, path: str, out: list[FieldViolation]) -> None:
    """A violation for each LocalInventory.availability set in `message` (at `path`)."""
    if message.DESCRIPTOR.name == "LocalInventory" and getattr(message, "availability", None):
        out.append(FieldViolation(f"{path}availability", "is not supported by Footfall "
                                  "(v2 has no such field); use the product's availability"))
    for field, value in message.ListFields():
        if field.message_type is None or not field.message_type.full_name.startswith(RETAIL):
            continue
        if field.message_type.GetOptions().map_entry:
            continue
        items = value if field.is_repeated else [value]
        for i, item in enumerate(items):
            index = f"[{i}]" if field.is_repeated else ""
            _local_availabilities(item, f"{path}{field.name}{index}.", out)


async def refuse_local_availability(request: Any) -> None:
    """INVALID_ARGUMENT naming every LocalInventory.availability the request sets."""
    found: list[FieldViolation] = []
    _local_availabilities(request, "", found)
    raise_if_any(found)


# The v2alpha ProductService requests that may carry a LocalInventory.
LOCAL_INVENTORY_RPCS = ("CreateProduct", "UpdateProduct", "SetInventory",
                        "AddLocalInventories", "ImportProducts")


def v2alpha_product_hooks(products: ProductService) -> tuple[dict[str, Before],
                                                             dict[str, After]]:
    """What v2alpha's ProductService adds to v2's: force, require_total_size, and
    the refusal of LocalInventory.availability."""
    async def delete_variants(request: Any) -> None:
        if request.force:
            await products.delete_variants(request.name)

    async def total_size(request: Any, answer: Any) -> None:
        if request.require_total_size and not request.page_token:
            answer.total_size = await products.count_products(request.parent, request.filter)

    before: dict[str, Before] = {rpc: refuse_local_availability for rpc in LOCAL_INVENTORY_RPCS}
    before["DeleteProduct"] = delete_variants
    return before, {"ListProducts": total_size}


def surfaces(user_events: Any, products: ProductService, runner: OperationRunner,
             gcs_root: Path) -> dict[str, Surface]:
    """Every versioned service (full name -> Surface) over the v2 servicers."""
    pool = descriptor_pool.Default()
    exports = Exports(runner, gcs_root)
    out: dict[str, Surface] = {}
    for version in VERSIONS:
        before, after = v2alpha_product_hooks(products) if version == "v2alpha" else ({}, {})
        events = pool.FindServiceByName(f"{RETAIL}{version}.UserEventService")
        catalog = pool.FindServiceByName(f"{RETAIL}{version}.ProductService")
        out[events.full_name] = Surface(version, events, user_events,
                                        own={"ExportUserEvents": exports.ExportUserEvents})
        out[catalog.full_name] = Surface(version, catalog, products,
                                         own={"ExportProducts": exports.ExportProducts},
                                         before=before, after=after)
    return out
