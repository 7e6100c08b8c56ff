"""Building the google.longrunning.Operation messages clients see."""

from __future__ import annotations

import secrets

from google.longrunning import operations_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2


def new_name(parent: str, kind: str) -> str:
    """`{parent}/operations/{kind}-{random digits}`, as Google names them."""
    return f"{parent}/operations/{kind}-{secrets.randbelow(10**18):018d}"


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


def ended(name: str, metadata: Message, response: Message, cancelled: bool,
          what: str) -> operations_pb2.Operation:
    """The done Operation of a job: with `response`, or CANCELLED (`what` names the
    job: "the purge") when `cancelled`."""
    if cancelled:
        return operation(name, metadata, error=cancelled_status(what))
    return operation(name, metadata, response=response)
