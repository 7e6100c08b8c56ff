"""REST/JSON transcoding from the contracts' google.api.http annotations, the
browser pixel and the `/footfall.js` tracker.

The gateway (aiohttp and what serves with it) is imported when it is first asked
for (`server.http.HttpGateway`), not with the package: the modules a gRPC server
needs from here (transcode, budget) are light, and a serve with HTTP off
(`--http-port 0`) never loads aiohttp (some 140 ms of CPU at each start)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.http.gateway import HttpGateway

__all__ = ["HttpGateway"]


def __getattr__(name: str) -> Any:
    if name == "HttpGateway":
        # First: aiohttp without reading CA certificates at import (see the module).
        from server.http import aiohttp_import  # noqa: F401
        from server.http.gateway import HttpGateway

        return HttpGateway
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
