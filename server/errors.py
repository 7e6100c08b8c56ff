"""Domain errors and the one place that turns them into gRPC statuses.

Every error a client can cause is a `FootfallError` subclass with a fixed status
code; `to_rpc_status` adds the matching `google.rpc` detail (BadRequest,
ResourceInfo, RetryInfo, ...). Servicers raise; they never set codes themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path in the request (`user_event.visitor_id`) and why."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


class FootfallError(Exception):
    """Base of every error a client can cause; `code` is its gRPC status."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[Message]:
        """The google.rpc detail messages that go with the status."""
        return []


class InvalidArgument(FootfallError):
    """INVALID_ARGUMENT with every violation named, plus a BadRequest detail."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one violation")
        self.violations = list(violations)
        super().__init__("; ".join(str(v) for v in self.violations))

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])

    def details(self) -> list[Message]:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in self.violations
                ]
            )
        ]


def gather(violations: list[FieldViolation], parse: Callable[..., Any], *args: Any) -> Any:
    """`parse(*args)`, or None after adding its INVALID_ARGUMENT violations to
    `violations`: for checking every field of a request before answering (callers
    raise_if_any before using the results)."""
    try:
        return parse(*args)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
        return None


def raise_if_any(violations: Iterable[FieldViolation]) -> None:
    """Raise InvalidArgument listing all `violations`, if there are any."""
    found = list(violations)
    if found:
        raise InvalidArgument(found)


class _ResourceError(FootfallError):
    verb = ""

    def __init__(self, resource_type: str, name: str, message: str | None = None) -> None:
        self.resource_type = resource_type
        self.name = name
        super().__init__(message or f"{resource_type} {name!r} {self.verb}")

    def details(self) -> list[Message]:
        return [error_details_pb2.ResourceInfo(resource_type=self.resource_type,
                                               resource_name=self.name)]


class NotFound(_ResourceError):
    """NOT_FOUND for a named resource, with a ResourceInfo detail."""

    code = grpc.StatusCode.NOT_FOUND
    verb = "not found"


class AlreadyExists(_ResourceError):
    """ALREADY_EXISTS for a named resource, with a ResourceInfo detail."""

    code = grpc.StatusCode.ALREADY_EXISTS
    verb = "already exists"


class FailedPrecondition(FootfallError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unimplemented(FootfallError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Unauthenticated(FootfallError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(FootfallError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(FootfallError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(FootfallError):
    """The call's deadline passed while the server was still working on it."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ResourceExhausted(FootfallError):
    """RESOURCE_EXHAUSTED; with `retry_after` seconds, a RetryInfo detail too."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def details(self) -> list[Message]:
        if self.retry_after is None:
            return []
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(self.retry_after * 1e9))
        return [error_details_pb2.RetryInfo(retry_delay=delay)]


def to_rpc_status(error: FootfallError) -> status_pb2.Status:
    """The google.rpc.Status for `error`, details packed as Any."""
    packed = []
    for detail in error.details():
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    return status_pb2.Status(code=error.code.value[0], message=error.message, details=packed)


def internal_status(message: str = "internal error") -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.INTERNAL, message=message)
