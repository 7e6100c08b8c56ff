"""One operation in a few words: its state, kind, counts and error.

Read from the google.longrunning.Operation alone, so the same summary serves the
store (`footfall operations list`), a server's ListOperations and the log line a
job writes when it ends. The metadata and response are unpacked by their type
name from the default descriptor pool: whoever calls this must have imported the
modules that define them (the server has; the CLI imports them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from google.longrunning import operations_pb2
from google.protobuf import any_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2

from server.operations import records

# The kinds operations are named after (records.new_name); a name such as
# `purge-user-events-retention-...` still has the kind it starts with.
KINDS = ("import-user-events", "purge-user-events", "rejoin-user-events", "import-products",
         "export-user-events", "export-products")
_TRAILING_ID = re.compile(r"-\d+$")
# The longest kind of all, the inventory RPCs' included (remove-fulfillment-places):
# `operations list` pads each kind to it, so that every name starts in one column.
KIND_WIDTH = 25


@dataclass(frozen=True)
class Summary:
    name: str
    kind: str
    state: str  # running, done, failed or cancelled
    counts: dict[str, int] = field(default_factory=dict)
    error: str = ""

    def line(self) -> str:
        """`state kind name counts [error: CODE: message]`, for people and logs."""
        parts = [f"{self.state:<9}", f"{self.kind:<{KIND_WIDTH}}", self.name]
        parts.extend(f"{key}={value}" for key, value in self.counts.items())
        if self.error:
            parts.append(f"error: {self.error}")
        return " ".join(parts)


def kind_of(name: str) -> str:
    """The kind an operation name says (`.../operations/purge-user-events-123`,
    `.../operations/export-user-events-v2beta-123`)."""
    last = records.VERSION_MARKER.sub("", name.rpartition("/")[2])
    for kind in KINDS:
        if last.startswith(kind + "-"):
            return kind
    return _TRAILING_ID.sub("", last)


def summarize(op: operations_pb2.Operation) -> Summary:
    """The state, kind, integer counts (metadata and response) and error of `op`."""
    counts: dict[str, int] = {}
    for packed in (op.metadata, op.response if op.HasField("response") else None):
        if packed is not None and packed.type_url:
            message = unpacked(packed)
            if message is not None:
                _collect_counts(message, counts)
    error = ""
    if op.HasField("error"):
        code = code_pb2.Code.Name(op.error.code) if op.error.code in code_pb2.Code.values() \
            else str(op.error.code)
        error = f"{code}: {op.error.message}"
        state = "cancelled" if op.error.code == code_pb2.CANCELLED else "failed"
    else:
        state = "done" if op.done else "running"
    return Summary(op.name, kind_of(op.name), state, counts, error)


def unpacked(packed: any_pb2.Any) -> Message | None:
    """The message in `packed`, or None when its type is not known here (a row
    kept by another version)."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(packed.TypeName())
    except KeyError:
        return None
    message: Message = message_factory.GetMessageClass(descriptor)()
    return message if packed.Unpack(message) else None


def _collect_counts(message: Message, into: dict[str, int]) -> None:
    """Integer fields (`success_count`, `purged_events_count`, ...), those of nested
    messages too (`import_summary.joined_events_count`), and how many items a
    repeated message field holds (`error_samples`)."""
    for fd in message.DESCRIPTOR.fields:
        if fd.is_repeated:
            if fd.type == FieldDescriptor.TYPE_MESSAGE:
                into[fd.name] = len(getattr(message, fd.name))
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            if message.HasField(fd.name) and fd.message_type is not None and \
                    fd.message_type.full_name.startswith("google.cloud."):
                _collect_counts(getattr(message, fd.name), into)
        elif fd.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                             FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
            into[fd.name] = getattr(message, fd.name)
