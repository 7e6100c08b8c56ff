"""The gRPC side of error handling: one interceptor turns domain errors into statuses.

Servicers raise `FootfallError`s; this interceptor aborts the call with the
matching code, message and google.rpc details. Anything else is a bug on our
side: it is logged with its traceback and the client sees INTERNAL, never UNKNOWN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from server.errors import FootfallError, internal_status, to_rpc_status

log = logging.getLogger(__name__)


def _guard(behaviour: Callable[[Any, grpc.ServicerContext], Any],
           method: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behaviour(request, context)
        except FootfallError as exc:
            log.debug("%s: %s %s", method, exc.code.name, exc.message)
            context.abort_with_status(rpc_status.to_status(to_rpc_status(exc)))
        except Exception:
            if context.code() is not None:  # already aborted on purpose
                raise
            log.exception("%s failed", method)
            context.abort_with_status(rpc_status.to_status(
                internal_status(f"internal error in {method}; see the server log")))

    return guarded


class ErrorInterceptor(grpc.ServerInterceptor):
    """Wraps every unary-unary handler once (cached per method)."""

    def __init__(self) -> None:
        self._cache: dict[str, grpc.RpcMethodHandler | None] = {}

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method
        if method in self._cache:
            return self._cache[method]
        handler = continuation(handler_call_details)
        if handler is not None and handler.unary_unary is not None:
            handler = grpc.unary_unary_rpc_method_handler(
                _guard(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        self._cache[method] = handler
        return handler
