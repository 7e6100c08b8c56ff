"""The pixel: GET collect from a browser always answers the 1x1 GIF.

A page must never show a broken image, so a refused event still gets the GIF
(status 200); the refusal goes to the log and to an `X-Footfall-Error` header.
A client that asks for JSON (`$alt=json`, as the official REST clients do) is
no browser: it gets Google's JSON error like any other call.

A browser's pixel is answered once its event is queued (unless
--durable-pixels), so nothing in its way needs awaiting: the gateway serves a v2
GET collect inline (`inline`), through the envelope's steps called one after the
other (key, request, admission, the servicer's `collect_queued`, the call
recorded), with no task, future or coroutine of its own. What needs the long way
takes it: a JSON caller, a body, a deadline (X-Server-Timeout), a fault to inject,
a large query (policy.envelope.json_large: its turn among the large requests).
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Mapping

from aiohttp import web
from google.rpc import status_pb2
from multidict import MultiMapping

from server.console.rejections import KEY_MASK
from server.http.errors import one_line
from server.http.headers import NO_STORE
from server.http.routes import Route
from server.http.transcode import Output, default_output
from server.policy import Policy
from server.policy.auth import API_KEY_HEADER, AUTHORIZATION_HEADER, AmbiguousKey
from server.policy.faults import HEADER as FAULT_HEADER
from server.retail.collect import (
    PIXEL_CONTENT_TYPE,
    PIXEL_GIF,
    PIXEL_RPCS,
    Requester,
    normal_address,
)

log = logging.getLogger(__name__)

# The one a browser's pixel is served inline for (v2beta and v2alpha are bridged).
INLINE_RPC = "google.cloud.retail.v2.UserEventService.CollectUserEvent"
ERROR_HEADER = "X-Footfall-Error"
# What the long way answers a pixel with (the servicer's HttpBody, as the gateway
# writes one).
GIF_HEADERS = {**NO_STORE, "Content-Type": PIXEL_CONTENT_TYPE}


def is_pixel(route: Route, output: Output) -> bool:
    return route.rpc in PIXEL_RPCS and route.http_method == "GET" and not output.explicit_json


def query_key(query: MultiMapping[str]) -> str | None:
    """The API key a pixel gives in its URL: `key`, or `$key` (a system parameter
    may take a `$`, see transcode.SYSTEM_PARAMETERS).

    AmbiguousKey (UNAUTHENTICATED) when it gives two different keys (`?key=A&key=B`,
    `key` beside `$key`), as auth.key_of refuses two different headers: the first was
    taken, so a proxy or a log that read the other named another caller than the one
    admitted. The same key given twice is one key; an empty one is none, as an empty
    x-goog-api-key header is."""
    if "key" not in query and "$key" not in query:  # (most pixels: no key in the URL)
        return None
    given = {key for name in ("key", "$key") for key in query.getall(name, ()) if key}
    if len(given) > 1:
        raise AmbiguousKey("key parameter", "key parameter")
    return given.pop() if given else None


def inline(request: web.Request, policy: Policy) -> bool:
    """Whether a GET of the pixel route can be served inline: no output format
    asked for (a JSON caller is no browser), no body, no X-Server-Timeout, and no
    fault the policy may inject."""
    headers = request.headers
    return default_output(request.query) and not request.body_exists \
        and "X-Server-Timeout" not in headers \
        and not policy.has_fault(headers.get(FAULT_HEADER))


def gif() -> web.Response:
    """The answer to an accepted pixel."""
    return web.Response(body=PIXEL_GIF, headers=GIF_HEADERS)


def given_keys(request: web.Request) -> tuple[str, ...]:
    """Every text a request gives as a credential, known to the server or not: its
    `key` and `$key` parameters, its x-goog-api-key headers, and its authorization
    headers (whole, and the part after a scheme). What quotes the request (a path
    with no route, a field's `got '...'`) is masked of them before it is logged:
    the envelope masks the key it admitted only, and a pixel's reason was logged as
    it was answered, a writer's or an admin's key in it."""
    given = [value for name in ("key", "$key") for value in request.query.getall(name, ())]
    given.extend(value.strip() for value in request.headers.getall(API_KEY_HEADER, ()))
    for value in request.headers.getall(AUTHORIZATION_HEADER, ()):
        given.extend((value.strip(), value.strip().partition(" ")[2].strip()))
    # (longest first: a key holding another is masked whole)
    return tuple(sorted({text for text in given if text}, key=len, reverse=True))


def masked(text: str, keys: tuple[str, ...]) -> str:
    """`text` with each of `keys` (given_keys) replaced by KEY_MASK, as it is and
    percent-encoded (any of its characters, in either case of hex): a path quotes
    the key as the client encoded it, where the query gives it decoded, and a key of
    base64 (`+`, `/`, `=`) in a path with no route was logged whole as %2B, %2F, %3D.
    Every key is sought in `text` as given, and all masked in one pass, a mask
    already in it left as it is: masked one key after another, a key found in the
    mask another had left (`n`, `key`) was masked again, each such key doubling
    the text (8 one-letter keys in a query made 22 characters 24,000, 20 of them
    gigabytes). A surrogate (a byte not of UTF-8 in a header, as aiohttp decodes it)
    is sought and kept as any other character."""
    if not keys or not text:
        return text
    given = text.encode(errors="surrogatepass")
    needles = [key.encode(errors="surrogatepass") for key in keys if key]
    spans = [(at, at + len(needle)) for needle in needles for at in _found(given, needle)]
    if b"%" in given:
        decoded, began = _decoded(given)
        spans += [(began[at], began[at + len(needle)])
                  for needle in needles for at in _found(decoded, needle)]
    if not spans:
        return text
    mask = KEY_MASK.encode()
    masks = _found(given, mask)  # (a span within one of them is left as it is)
    spans = [(start, end) for start, end in spans
             if not (within := bisect.bisect_right(masks, start))
             or end > masks[within - 1] + len(mask)]
    if not spans:
        return text
    parts, kept_to = [], 0
    for start, end in sorted(spans):
        if end <= kept_to:
            continue  # (within the mask just made)
        if start < kept_to:  # (overlapping it: one mask for both)
            kept_to = end
            continue
        parts += [given[kept_to:start], mask]
        kept_to = end
    # (cut where characters begin and end: UTF-8's lead bytes are no other bytes)
    return b"".join([*parts, given[kept_to:]]).decode(errors="surrogatepass")


def _found(haystack: bytes, needle: bytes) -> list[int]:
    """Where `needle` starts in `haystack`, each after the one before it ends."""
    found, at = [], haystack.find(needle)
    while at >= 0:
        found.append(at)
        at = haystack.find(needle, at + len(needle))
    return found


def _decoded(given: bytes) -> tuple[bytes, list[int]]:
    """`given` with each %XX decoded, and where in `given` each decoded byte began
    (and its end). (Not a pattern of a key's characters each as it is or encoded:
    compiling it took 2.6 ms for a key of 40 characters, half a second for one of
    8,000 in a header.)"""
    decoded, began, at = bytearray(), list[int](), 0
    for escape in _ESCAPE.finditer(given):
        decoded += given[at:escape.start()]
        began.extend(range(at, escape.start()))
        decoded.append(int(escape[1], 16))
        began.append(escape.start())
        at = escape.end()
    decoded += given[at:]
    began.extend(range(at, len(given) + 1))
    return bytes(decoded), began


_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")


def refused(status: status_pb2.Status, peer: str, keys: tuple[str, ...] = ()) -> web.Response:
    """The GIF for a refused pixel; the reason in the header, and in the log by
    its call's line (INFO, as every client's mistake), within the budgets of the
    lines of calls without a key and of writer keys (policy.LineBudget). This
    one, naming the client's address, is DEBUG: at INFO, besides the call's, one
    client's loop of pixels without a key wrote 3,300 lines a second, outside
    either budget. `keys` (given_keys) are masked in both, before the reason is
    cut (a key across the cut is masked all the same)."""
    if keys:
        status = status_pb2.Status(code=status.code, message=masked(status.message, keys))
    reason = one_line(status)
    log.debug("pixel from %s refused: %s", peer, reason)
    return web.Response(body=PIXEL_GIF, content_type=PIXEL_CONTENT_TYPE,
                        headers={**NO_STORE, ERROR_HEADER: reason})


def requester(headers: Mapping[str, str], peer_host: str,
              trust_forwarded_for: bool, in_url: bool = False) -> Requester:
    """The browser facts of a request: User-Agent, address (the last
    X-Forwarded-For entry when trusted and valid, else the peer), Referer, and
    `in_url`: whether it carried its event in the URL (a GET).

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
                     page=headers.get("Referer", ""), in_url=in_url)
