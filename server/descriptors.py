"""How many connections the process's file descriptors allow: the caps of both ports
(--http-max-connections, --grpc-max-connections), raising the soft limit if it must.
Light to import: a serve with HTTP off loads none of the gateway's modules."""

from __future__ import annotations

import logging
import math
import resource

log = logging.getLogger(__name__)

# HTTP connections may take at most this share of the process's descriptors;
# the rest are for gRPC, the store, the listening sockets and the logs.
DESCRIPTOR_SHARE = 0.75


def plan_descriptors(wanted: int, soft: int, hard: int) -> tuple[int | None, int]:
    """(the soft RLIMIT_NOFILE to set or None, the connection cap) so that `wanted`
    connections stay within DESCRIPTOR_SHARE of the limit: the soft limit is raised
    as far as the hard one allows, and the cap lowered only if that is not enough."""
    needed = math.ceil(wanted / DESCRIPTOR_SHARE)
    unlimited = resource.RLIM_INFINITY
    if soft == unlimited or soft >= needed:
        return None, wanted
    reachable = needed if hard == unlimited else min(needed, hard)
    new_soft = reachable if reachable > soft else None
    usable = max(reachable, soft)
    return new_soft, wanted if usable >= needed else max(int(usable * DESCRIPTOR_SHARE), 1)


def fit_connections(http: int, grpc: int) -> tuple[int, int]:
    """The caps of HTTP and gRPC connections (--http-max-connections, 0 when the HTTP
    port is off, and --grpc-max-connections) once both fit the file descriptor limit
    (see fit_descriptors): lowered alike if they must be."""
    total = http + grpc
    cap = fit_descriptors(total)
    if cap >= total:
        return http, grpc
    return (max(1, http * cap // total) if http else 0), max(1, grpc * cap // total)


def fit_descriptors(wanted: int) -> int:
    """The connection cap to use for `wanted` connections, after raising the soft
    descriptor limit if it must and can be; a lower cap is logged."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new_soft, cap = plan_descriptors(wanted, soft, hard)
    if new_soft is not None:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            log.info("raised the file descriptor limit from %d to %d for %d HTTP connections",
                     soft, new_soft, cap)
        except (OSError, ValueError) as exc:
            _, cap = plan_descriptors(wanted, soft, soft)
            log.warning("cannot raise the file descriptor limit: %s", exc)
    if cap < wanted:
        log.warning("%d connections (--http-max-connections plus --grpc-max-connections) do "
                    "not fit the file descriptor limit (RLIMIT_NOFILE soft %d, hard %d): at "
                    "most %d; raise the limit (ulimit -n) for more", wanted, soft, hard, cap)
    return cap
