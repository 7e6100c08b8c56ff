"""Types at the boundaries: every servicer method is annotated with the request and
response classes its RPC names, and mypy reads the generated stubs, so a wrong
field or a wrong message is caught before anything runs (issue 11, item 3)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
import typing
from pathlib import Path

import grpc
import grpc.aio
import pytest
from footfall.retail.v2 import product_service_pb2, user_event_service_pb2
from footfall.talent.v4 import event_service_pb2
from footfall.talent.v4beta1 import event_service_pb2 as v4beta1_event_service_pb2
from google.longrunning import operations_pb2
from google.protobuf.descriptor import ServiceDescriptor

from server.operations.service import OperationsService
from server.retail.product_service import ProductService
from server.retail.user_event_service import UserEventService
from server.talent.event_service import EventService, EventServiceV4beta1

ROOT = Path(__file__).resolve().parents[2]
SERVICERS = [
    (UserEventService, user_event_service_pb2.DESCRIPTOR.services_by_name["UserEventService"]),
    (ProductService, product_service_pb2.DESCRIPTOR.services_by_name["ProductService"]),
    (EventService, event_service_pb2.DESCRIPTOR.services_by_name["EventService"]),
    (EventServiceV4beta1, v4beta1_event_service_pb2.DESCRIPTOR.services_by_name["EventService"]),
    (OperationsService, operations_pb2.DESCRIPTOR.services_by_name["Operations"]),
]


def _message_name(annotation: object) -> str:
    descriptor = getattr(annotation, "DESCRIPTOR", None)
    return descriptor.full_name if descriptor is not None else repr(annotation)


@pytest.mark.parametrize(("servicer", "service"), SERVICERS,
                         ids=[service.full_name for _, service in SERVICERS])
def test_each_rpc_is_typed_with_its_own_messages(servicer: type,
                                                 service: ServiceDescriptor) -> None:
    for method in service.methods:
        hints = typing.get_type_hints(getattr(servicer, method.name))
        where = f"{servicer.__name__}.{method.name}"
        assert _message_name(hints.get("request")) == method.input_type.full_name, where
        assert _message_name(hints.get("return")) == method.output_type.full_name, where
        context = hints.get("context")
        if isinstance(context, types.UnionType):  # a wait may be called from inside
            context = next(arg for arg in typing.get_args(context) if arg is not type(None))
        assert context is grpc.aio.ServicerContext, where  # servicers are coroutines


# Each line of the snippet that mypy must refuse, with the error code it must give.
SNIPPET = '''
import grpc.aio
from footfall.retail.v2 import user_event_pb2, user_event_service_pb2

from server.retail.user_event_service import UserEventService
from server.store.rows import EventUpdate, Step


async def write(service: UserEventService, context: grpc.aio.ServicerContext) -> None:
    event = user_event_pb2.UserEvent(visitor_id="v")
    event.visitor_idd = "misspelt"  # attr-defined
    await service.WriteUserEvent(event, context)  # arg-type
    echo: user_event_service_pb2.WriteUserEventRequest = await service.WriteUserEvent(  # assignment
        user_event_service_pb2.WriteUserEventRequest(), context)
    Step(update_events=[EventUpdate(1, True, b"", None)])
    Step(update_events=[(1, b"", True, None)])  # list-item
'''


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (make setup installs it)")
def test_mypy_follows_the_generated_stubs(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(snippet)],
        cwd=ROOT, env={"MYPYPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300)
    expected = {(number, line.rsplit("# ", 1)[1])
                for number, line in enumerate(SNIPPET.splitlines(), 1)
                if "# " in line and not line.lstrip().startswith("#")}
    found = set()
    for line in out.stdout.splitlines():
        if ": error: " in line:  # path:line: error: what  [code]
            _, number, rest = line.split(":", 2)
            found.add((int(number), rest.rsplit("[", 1)[1].rstrip("]")))
    assert found == expected, out.stdout + out.stderr
