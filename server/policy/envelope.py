"""The one envelope every call of either transport runs in: the key, the request
decoded, admission (role, project, faults, quotas, gone callers), the servicer,
any exception turned into a domain error, then the metrics and the log line.

A transport keeps only its framing: gRPC decodes bytes and aborts with the
status of a refusal; HTTP reads its body first (after `screen`, so that nobody
without a key makes the server read or parse one) and renders Google's JSON
error. A refusal is returned, not raised, so both render it the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from server.errors import ChosenStatus, FootfallError, Internal
from server.policy import Admission, Metadata, Policy
from server.policy.auth import Grant

log = logging.getLogger(__name__)


def _chosen(context: Any) -> ChosenStatus | None:
    """The status the servicer set on `context` before it raised, if it set one
    (the generated base classes do: UNIMPLEMENTED)."""
    code = context.code()
    if code is None:
        return None
    details = context.details()
    if isinstance(details, bytes):  # grpc keeps them encoded
        details = details.decode("utf-8", "replace")
    return ChosenStatus(code, details or "")


class Envelope:
    """Runs the calls of one transport ("grpc" or "http") under `policy`."""

    def __init__(self, policy: Policy, transport: str) -> None:
        self.policy = policy
        self.transport = transport

    def screen(self, method: str, metadata: Metadata, query_key: str | None = None
               ) -> Grant | None:
        """The call's grant before anything of its request is read (None when auth
        is off or the method open); raises UNAUTHENTICATED. For a transport that
        must read the request before `run` (HTTP bodies arrive after the head)."""
        return self.policy.authenticate_early(method, metadata, query_key)

    def run(self, method: str, metadata: Metadata, raw: Any, decode: Callable[[Any], Any],
            context: Any, call: Callable[[Any, Any], Any], grant: Grant | None = None,
            started: float | None = None) -> Any:
        """`call(decode(raw), context)`'s answer, or the FootfallError that refused
        the call (Internal for a bug of ours, logged with its traceback). `grant`
        is what `screen` found (else the key is checked here, before decoding);
        `started` when the call began before its request was read."""
        if started is None:
            started = time.perf_counter()
        code, message = grpc.StatusCode.OK, ""
        admission: Admission | None = None
        try:
            if grant is None:
                grant = self.policy.authenticate_early(method, metadata)
            request = decode(raw)
            admission = self.policy.admit(method, metadata, request, context, grant=grant)
            return call(request, context)
        except FootfallError as exc:
            code, message = exc.code, exc.message
            return exc
        except Exception:
            refusal = _chosen(context)
            if refusal is not None:
                code, message = refusal.code, refusal.message
                return refusal
            code, message = grpc.StatusCode.INTERNAL, "see the traceback"
            log.exception("%s failed", method)
            return Internal(f"internal error in {method}; see the server log")
        finally:
            self.policy.record(method, self.transport, code, time.perf_counter() - started,
                               admission, message)

    def refuse(self, method: str, error: FootfallError, started: float) -> FootfallError:
        """`error`, recorded: for a refusal the transport met before `run` (HTTP:
        the Origin, the key, the body)."""
        self.policy.record(method, self.transport, error.code, time.perf_counter() - started,
                           None, error.message)
        return error

