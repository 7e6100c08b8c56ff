"""The pixel: GET collect from a browser always answers the 1x1 GIF.

A page must never show a broken image, so a refused event still gets the GIF
(status 200); the refusal goes to the log and to an `X-Footfall-Error` header.
A client that asks for JSON (`$alt=json`, as the official REST clients do) is
no browser: it gets Google's JSON error like any other call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web
from google.rpc import status_pb2

from server.http.errors import one_line
from server.http.routes import Route
from server.http.transcode import Output
from server.retail.collect import PIXEL_CONTENT_TYPE, PIXEL_GIF, Requester, normal_address

log = logging.getLogger(__name__)

# CollectUserEvent of each retail version: a GET of it is a browser's pixel.
PIXEL_RPCS = frozenset(f"google.cloud.retail.{version}.UserEventService.CollectUserEvent"
                       for version in ("v2", "v2beta", "v2alpha"))
ERROR_HEADER = "X-Footfall-Error"
NO_STORE = {"Cache-Control": "no-store"}


def is_pixel(route: Route, output: Output) -> bool:
    return route.rpc in PIXEL_RPCS and route.http_method == "GET" and not output.explicit_json


def refused(status: status_pb2.Status, peer: str) -> web.Response:
    """The GIF for a refused pixel; the reason in the log and the header."""
    reason = one_line(status)
    log.warning("pixel from %s refused: %s", peer, reason)
    return web.Response(body=PIXEL_GIF, content_type=PIXEL_CONTENT_TYPE,
                        headers={**NO_STORE, ERROR_HEADER: reason})


def requester(headers: Mapping[str, str], peer_host: str,
              trust_forwarded_for: bool) -> Requester:
    """The browser facts of a request: User-Agent, address (the last
    X-Forwarded-For entry when trusted and valid, else the peer), Referer.

    The last entry is the one the proxy in front of Footfall added: entries before
    it came from the client, which may write anything there."""
    address = peer_host
    if trust_forwarded_for and "X-Forwarded-For" in headers:
        getall = getattr(headers, "getall", None)  # the header may come more than once
        lines = getall("X-Forwarded-For") if getall is not None \
            else [headers["X-Forwarded-For"]]
        last = lines[-1].split(",")[-1].strip()
        found = normal_address(last)
        if found is None:
            log.debug("ignoring X-Forwarded-For %r", last[:100])
        else:
            address = found
    return Requester(user_agent=headers.get("User-Agent", ""), ip_address=address,
                     page=headers.get("Referer", ""))
