"""The pixel: GET collect from a browser always answers the 1x1 GIF.

A page must never show a broken image, so a refused event still gets the GIF
(status 200); the refusal goes to the log and to an `X-Footfall-Error` header.
A client that asks for JSON (`$alt=json`, as the official REST clients do) is
no browser: it gets Google's JSON error like any other call.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping

from aiohttp import web
from google.rpc import status_pb2

from server.http.errors import one_line
from server.http.routes import Route
from server.http.transcode import Output
from server.retail.collect import PIXEL_CONTENT_TYPE, PIXEL_GIF, Requester

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
    """The browser facts of a request: User-Agent, address (the first
    X-Forwarded-For entry when trusted and valid, else the peer), Referer."""
    address = peer_host
    if trust_forwarded_for and "X-Forwarded-For" in headers:
        first = headers["X-Forwarded-For"].split(",")[0].strip()
        try:
            address = str(ipaddress.ip_address(first))
        except ValueError:
            log.debug("ignoring X-Forwarded-For %r", first[:100])
    return Requester(user_agent=headers.get("User-Agent", ""), ip_address=address,
                     page=headers.get("Referer", ""))
