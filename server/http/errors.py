"""A google.rpc.Status as Google's JSON error: the HTTP code, the body.

The status itself always comes from `server.errors.to_rpc_status`, the same one
the gRPC side sends; this module only says how it looks over HTTP.
"""

from __future__ import annotations

import math

import orjson
from aiohttp import web
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2

from server.errors import BodyTooSlow, FootfallError, RequestTooLarge
from server.http.headers import NO_STORE

# google/rpc/code.proto: the HTTP mapping of each canonical code.
HTTP_STATUS = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}


# Errors HTTP answers otherwise than their status code maps to.
HTTP_STATUS_OF_ERROR: dict[type[FootfallError], int] = {
    RequestTooLarge: 413,  # Content Too Large
    BodyTooSlow: 408,  # Request Timeout
}


def http_status(code: int) -> int:
    return HTTP_STATUS.get(code, 500)


def http_status_of(error: FootfallError) -> int:
    """The HTTP code that answers `error`: its own in HTTP_STATUS_OF_ERROR (or the
    `http_status` of a cross-site refusal), else the one its status code maps to."""
    return HTTP_STATUS_OF_ERROR.get(type(error)) or getattr(error, "http_status", None) \
        or http_status(error.code.value[0])


def code_name(code: int) -> str:
    try:
        return code_pb2.Code.Name(code)
    except ValueError:
        return "UNKNOWN"


def error_body(status: status_pb2.Status, http: int | None = None) -> bytes:
    """`{"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT",
    "details": [{"@type": ..., ...}]}}`; `http` when the HTTP code is not the one
    the status maps to (413 for a body too large)."""
    error: dict[str, object] = {"code": http or http_status(status.code),
                                "message": status.message, "status": code_name(status.code)}
    if status.details:
        error["details"] = [json_format.MessageToDict(d) for d in status.details]
    return orjson.dumps({"error": error}, option=orjson.OPT_INDENT_2)


def json_error(status: status_pb2.Status, http: int | None = None,
               closing: bool = False) -> web.Response:
    """Google's JSON error for `status`, with Retry-After when it carries a RetryInfo;
    `http` overrides the HTTP code the status maps to; with `closing`, the connection
    closes after it."""
    code = http or http_status(status.code)
    headers = dict(NO_STORE)
    wait = retry_after(status)
    if wait is not None:
        headers["Retry-After"] = wait
    response = web.Response(status=code, body=error_body(status, code),
                            content_type="application/json", charset="utf-8", headers=headers)
    if closing:
        response.force_close()
    return response


def retry_after(status: status_pb2.Status) -> str | None:
    """The Retry-After header (whole seconds, at least 1) of a status with a RetryInfo
    detail, else None: an HTTP client reads the header, not the detail in the body (a
    429 of the write quota said when to retry only there)."""
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return str(max(1, math.ceil(info.retry_delay.ToNanoseconds() / 1e9)))
    return None


def unknown_coding(encoding: str) -> str:
    """What a request body's Content-Encoding `encoding`, one the server does not
    unpack, is told."""
    return (f"the request body's Content-Encoding {encoding[:50]!r} is not one this server "
            f"unpacks: give gzip, deflate or none")


def not_unpacked(encoding: str, why: str = "") -> str:
    """What a request body that does not unpack as its Content-Encoding `encoding`
    says is told, and `why`, if known."""
    told = f"the request body is not valid {encoding[:50]} (its Content-Encoding header)"
    return f"{told}: {why}" if why else told


def one_line(status: status_pb2.Status, limit: int = 1000) -> str:
    """`INVALID_ARGUMENT: user_event.visitor_id: is required` fit for an HTTP header
    (printable ASCII, one line, at most `limit` characters)."""
    text = f"{code_name(status.code)}: {status.message}"
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."
