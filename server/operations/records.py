"""Building the google.longrunning.Operation messages clients see.

An operation started through the retail v2beta or v2alpha surface carries that
version in its name (`.../operations/import-user-events-v2beta-123`), and its
metadata and response are answered under that version's type names: the
official clients of each version unpack only their own types. The jobs store
what they pack (v2 types, or v2beta for exports, which v2 lacks); `relabel`
renames them on the way out, whoever asks (GetOperation has no version).
"""

from __future__ import annotations

import contextvars
import re
import secrets

from google.longrunning import operations_pb2
from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

# The retail surface a call came through ("" for v2); set by server.retail.surfaces
# around the v2 servicer it calls, read by new_name (off the loop too: off_loop
# carries the context).
API_VERSION: contextvars.ContextVar[str] = contextvars.ContextVar("retail_api_version",
                                                                   default="")
VERSIONS = ("v2beta", "v2alpha")
# `-v2beta` before an operation name's digits (see new_name)
VERSION_MARKER = re.compile(rf"-({'|'.join(VERSIONS)})(?=-\d+$)")
_RETAIL_TYPE = re.compile(r"^(type\.googleapis\.com/google\.cloud\.retail\.)(v2|v2beta|v2alpha)\.")


def new_name(parent: str, kind: str) -> str:
    """`{parent}/operations/{kind}-{random digits}`, as Google names them; with the
    surface's version before the digits when the call came through v2beta/v2alpha."""
    version = API_VERSION.get()
    marker = f"{version}-" if version else ""
    return f"{parent}/operations/{kind}-{marker}{secrets.randbelow(10**18):018d}"


def version_of(name: str) -> str:
    """The retail version an operation name carries ("" for v2 and talent)."""
    found = VERSION_MARKER.search(name)
    return found[1] if found else ""


def relabel(op: operations_pb2.Operation) -> operations_pb2.Operation:
    """`op` with its retail metadata and response types named in the version its
    name carries (in place; the same bytes, as the versions share field numbers)."""
    version = version_of(op.name)
    if version:
        for packed in (op.metadata, op.response):
            if packed.type_url:
                packed.type_url = _RETAIL_TYPE.sub(rf"\g<1>{version}.", packed.type_url)
    return op


def in_version(answer: Message, version: str) -> Message:
    """`answer` (an Operation, or a ListOperationsResponse) with its retail types
    named in `version`, that of the REST path it is asked under (in place): an
    official REST client parses every operation's types, and failed on an
    operation of another version (`v2beta.ImportMetadata` in a v2 listing) with
    the whole page. A type `version` lacks (an export's, under v2) is left out of
    the operation: the operation is answered, without that part."""
    operations = answer.operations if isinstance(answer, operations_pb2.ListOperationsResponse) \
        else [answer]
    for op in operations:
        for field in ("metadata", "response"):
            packed = getattr(op, field)
            if not packed.type_url or not _RETAIL_TYPE.match(packed.type_url):
                continue
            renamed = _RETAIL_TYPE.sub(rf"\g<1>{version}.", packed.type_url)
            try:
                descriptor_pool.Default().FindMessageTypeByName(renamed.rpartition("/")[2])
            except KeyError:
                op.ClearField(field)
            else:
                packed.type_url = renamed
    return answer


def operation(name: str, metadata: Message, *, response: Message | None = None,
              error: status_pb2.Status | None = None) -> operations_pb2.Operation:
    """An Operation; done when it has a response or an error."""
    op = operations_pb2.Operation(name=name, done=response is not None or error is not None)
    op.metadata.Pack(metadata)
    if response is not None:
        op.response.Pack(response)
    elif error is not None:
        op.error.CopyFrom(error)
    return op


def cancelled_status(what: str) -> status_pb2.Status:
    return status_pb2.Status(
        code=code_pb2.CANCELLED,
        message=f"{what} was cancelled; the batches committed before the cancel are kept")


def cancelled_by_reset(payload: bytes, reset: str) -> bytes:
    """The stored Operation `payload` of a job still running when `reset` (the name a
    reset was asked for: a catalog or a project) came, ended CANCELLED by it: its
    metadata as its last step left it, and the reset named as the reason."""
    op = operations_pb2.Operation.FromString(payload)
    op.done = True
    op.ClearField("response")
    op.error.CopyFrom(status_pb2.Status(
        code=code_pb2.CANCELLED,
        message=f"cancelled by the reset of {reset}, which came while it ran: what it had "
                f"done there went with the reset, and nothing more of it is done"))
    return op.SerializeToString()


def ended(name: str, metadata: Message, response: Message, cancelled: bool,
          what: str) -> operations_pb2.Operation:
    """The done Operation of a job: with `response`, or CANCELLED (`what` names the
    job: "the purge") when `cancelled`."""
    if cancelled:
        return operation(name, metadata, error=cancelled_status(what))
    return operation(name, metadata, response=response)
