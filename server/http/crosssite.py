"""What keeps other sites' pages away from the REST routes, keys or no keys.

A browser lets any page send a POST to any address without asking first, as
long as it looks like a form: Content-Type text/plain, form-encoded or
multipart. A page on another site could so purge a local emulator's events,
since the gateway reads the body as JSON whatever it is labelled. So:

- **Host** (DNS rebinding: a name of the attacker's that resolves to 127.0.0.1
  makes its page "same-origin" with us): on a loopback listener, only loopback
  names (`localhost`, `*.localhost`, 127.0.0.0/8, `[::1]`, any port) and
  --http-allowed-hosts are answered, every request; others get 421. A request
  line that names the server itself (absolute-form, as sent to a proxy) is
  checked by that name, and its Host ignored (RFC 9112 section 3.2.2).
- **Origin**: a call from a page of an origin --cors-origins does not allow, and
  that is not this server's own, gets 403 before anything runs: one that changes
  state (any method but GET and HEAD), and a read (a fetch() in cors mode, an
  EventSource), which the server would otherwise have run in full (a count over
  millions of events, say) before the browser hid the answer from the page.
  Non-browser clients send no Origin, nor do a page's requests of its own origin
  and links followed. `*` allows every origin only the calls that record events;
  the rest, reads too, need the origin by name.
- **Content-Type**: such a call must say `application/json` (a browser asks
  first before sending that cross-site, and --cors-origins answers); a DELETE
  without a body needs none. Else 415; so is a charset other than UTF-8.

- **Fetch Metadata** (embedding): a GET or HEAD of a REST route other than the pixel
  that a page of another site makes without CORS (an iframe, image or script of it, a
  no-cors fetch: Sec-Fetch-Site cross-site or same-site) gets 403, and so does one the
  browser prefetches or prerenders (Sec-Purpose) for a page not of this server; a link
  followed is let through, and a fetch() in cors mode is the Origin check's.

The pixel stays open to every page, as Google's is: GET collect by design, and
POST collect (Google's form for events too long for a URL, sent by its
JavaScript pixel from the shop's pages) from any origin, as JSON or text/plain
(what `navigator.sendBeacon` sends). It can only record one event, which a GET
could record as well.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from server.errors import InvalidArgument, PermissionDenied
from server.http.routes import Route
from server.retail.collect import PIXEL_RPCS

if TYPE_CHECKING:  # (light to import: a serve with HTTP off asks is_loopback_listener)
    from aiohttp import web

SAFE_METHODS = frozenset({"GET", "HEAD"})
JSON = "application/json"
PIXEL_TYPES = frozenset({JSON, "text/plain"})
FORM = "application/x-www-form-urlencoded"  # what curl -d sends unless told otherwise
# JSON exchanged between systems is UTF-8 (RFC 8259 section 8.1), of which ASCII is
# a part: a body said to be in another charset is refused, not read as UTF-8.
UTF8_CHARSETS = frozenset({"utf-8", "us-ascii"})
_KNOWN_HOSTS_KEPT = 1024  # Host values whose verdict is remembered
# What a preflight grants when it names no headers (a browser names every header it
# will send beyond the safelisted ones, lower-case)
DEFAULT_ALLOWED_HEADERS = ("Content-Type, Authorization, X-Goog-Api-Client, "
                           "X-Goog-User-Project, X-Goog-Request-Params, X-Server-Timeout")
# A preflight grants at most this many of the headers it names, each a field name (RFC
# 9110 section 5.1) of at most MAX_HEADER_NAME characters: one naming 64 KiB of them
# had all of it said back. A Google client names four or five.
MAX_ASKED_HEADERS = 32
MAX_HEADER_NAME = 64
_FIELD_NAME = re.compile(rf"[!#$%&'*+.^_`|~0-9A-Za-z-]{{1,{MAX_HEADER_NAME}}}")


class MisdirectedHost(PermissionDenied):
    """A Host this loopback listener does not answer to: 421 Misdirected Request."""

    http_status = 421


class ForeignOrigin(PermissionDenied):
    """A state-changing call from a page of an origin --cors-origins does not allow."""


class NotJson(InvalidArgument):
    """A state-changing call whose body is not declared JSON: 415."""

    http_status = 415


def is_loopback_listener(host: str) -> bool:
    """Whether --host listens on loopback only (then Host headers are checked)."""
    return _loopback_name(host.strip("[]").lower())


def _loopback_name(name: str) -> bool:
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def split_host(host: str) -> str | None:
    """The name in a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`),
    lower-cased, or None if it is not one."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
    else:
        name, bracket, rest = host.partition(":")
        rest = bracket + rest
        bracket = "]"
    if not name or not bracket or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
        return None
    return name


def authority(request: web.BaseRequest) -> tuple[str, str | None]:
    """What names the server `request` is for, and the name: the authority of its
    target when the request line gives one (absolute-form: RFC 9112 section 3.2.2
    has the Host header ignored then), else its Host header (None: no Host)."""
    target = request.raw_path  # the request line's target, as sent
    # Origin-form starts with "/", asterisk-form is "*"; the forms that name the
    # server are what aiohttp builds `request.url` from then.
    if not target.startswith("/") and target != "*":
        return "the request target's authority", request.url.host_port_subcomponent or ""
    return "Host", request.headers.get("Host")


def host_check(listen_host: str, allowed: Iterable[str]) -> HostCheck | None:
    """The Host check of a server listening on `listen_host` with
    --http-allowed-hosts `allowed` (None: every Host is answered). On loopback a
    check always runs (DNS rebinding); beyond it, only when names are listed, so
    that an operator whose server faces a network can pin its names too."""
    allowed = tuple(allowed)
    return HostCheck(allowed) if is_loopback_listener(listen_host) or allowed else None


REBINDING = ("auth is off and the HTTP port answers any Host name: a web page whose own name "
             "its DNS points at this server (DNS rebinding) can read, purge and reset what it "
             "holds from a browser on its network; list the names it is reached by with "
             "--http-allowed-hosts, or require keys with --auth-file")


def open_to_rebinding(listen_host: str, allowed: Iterable[str], auth_on: bool) -> bool:
    """Whether a page could reach the HTTP port under a name of its own and be let
    through (REBINDING): auth off, and no Host check (see `host_check`)."""
    return not auth_on and host_check(listen_host, allowed) is None


class HostCheck:
    """The Host names a server answers to: loopback ones and the allowed ones."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self._allowed = frozenset(a.strip().lower().rstrip(".") for a in allowed)
        self._known: dict[str, bool] = {}  # verdicts by Host value: O(1) per request

    def allows(self, host: str | None) -> bool:
        """True for a loopback or allowed name, or no Host at all (no browser)."""
        if host is None:
            return True
        verdict = self._known.get(host)
        if verdict is None:
            verdict = self._decide(host)
            if len(self._known) < _KNOWN_HOSTS_KEPT:
                self._known[host] = verdict
        return verdict

    def _decide(self, host: str) -> bool:
        name = split_host(host)
        if name is None:
            return False
        return _loopback_name(name) or name.rstrip(".") in self._allowed

    @staticmethod
    def refusal(host: str, named_by: str = "Host") -> MisdirectedHost:
        """421 for `host`, found in `named_by` (see `authority`)."""
        return MisdirectedHost(
            f"{named_by} {host[:200]!r} is not a name of this server: it answers only localhost, "
            f"*.localhost, 127.0.0.0/8 and [::1] (and --http-allowed-hosts); a page that "
            f"renamed the server's address (DNS rebinding) is refused")


# What `*` in --cors-origins opens to every page: recording events, as a shop's or job
# site's own pages do (any API version). Reading, purging, importing, resetting and
# products need an origin listed by name: with auth off, `*` would otherwise let any
# page a developer visits read or wipe a local server.
_OPEN_TO_ANY = (".UserEventService.WriteUserEvent", ".UserEventService.CollectUserEvent",
                ".EventService.CreateClientEvent")


def allowed_headers(asked: str | None) -> str:
    """Access-Control-Allow-Headers for a preflight whose Access-Control-Request-Headers
    is `asked`: the field names it lists (the server ignores any it does not read), the
    first MAX_ASKED_HEADERS of them, less any that is no field name or is too long;
    DEFAULT_ALLOWED_HEADERS when it names none."""
    if asked is None:
        return DEFAULT_ALLOWED_HEADERS
    names = (name.strip() for name in asked.split(",", MAX_ASKED_HEADERS)[:MAX_ASKED_HEADERS])
    return ", ".join(name for name in names if _FIELD_NAME.fullmatch(name)) \
        or DEFAULT_ALLOWED_HEADERS


def open_to_any(route: Route | None) -> bool:
    """Whether `route` records events (what `*` lets every page call)."""
    return route is not None and route.rpc.endswith(_OPEN_TO_ANY)


class OriginCheck:
    """Origin of calls from pages (reads too), Content-Type of calls that change state."""

    def __init__(self, cors_origins: Iterable[str]) -> None:
        self._origins = frozenset(o.rstrip("/").lower() for o in cors_origins)
        self._any = "*" in self._origins

    def lists(self, origin: str) -> bool:
        """Whether --cors-origins names `origin` itself (not through `*`)."""
        return origin.lower() in self._origins

    def allows_origin(self, origin: str, route: Route | None) -> bool:
        """Whether --cors-origins lets pages of `origin` call `route` (None: a path
        no route serves, or a file such as /footfall.js)."""
        return self.lists(origin) or (self._any and (route is None or open_to_any(route)))

    def check(self, request: web.BaseRequest, route: Route) -> None:
        """Raises ForeignOrigin (403) or NotJson (415) for a state-changing call a
        page of another site could have sent, or whose body is in a charset other
        than UTF-8 (NotJson), and ForeignOrigin for a read another site's page
        embeds (`embedded`) or fetches from an origin --cors-origins does not allow
        it; nothing for the rest, and nothing of the pixel's reads."""
        method = request.method
        pixel = route.rpc in PIXEL_RPCS
        if method in SAFE_METHODS:
            if not pixel:
                embedded(request, route)
                # (a link followed is answered whoever's page it is on: see `embedded`)
                if request.headers.get("Sec-Fetch-Mode") != "navigate":
                    self._from_allowed_origin(request, route)
            return
        if not pixel:
            self._from_allowed_origin(request, route)
        media_type = request.content_type  # "application/octet-stream" when not given
        if "Content-Type" not in request.headers:
            if method == "DELETE" and not request.body_exists:
                return
            media_type = ""
        if media_type == JSON or (pixel and media_type in PIXEL_TYPES):
            charset = request.charset
            if charset is not None and charset.lower() not in UTF8_CHARSETS:
                raise NotJson.field("Content-Type", f"charset {charset[:100]!r}: a JSON body "
                                                    f"must be UTF-8 (RFC 8259), sent as "
                                                    f"charset=utf-8 or without a charset")
            return
        accepted = "application/json or text/plain" if pixel else JSON
        # (curl's -d sends a form's type unless told otherwise: the commonest way here)
        hint = f" (curl -d sends that: add -H 'Content-Type: {JSON}')" if media_type == FORM \
            else ""
        raise NotJson.field("Content-Type", f"must be {accepted} for {method} "
                                            f"{route.template.text}, got "
                                            f"{media_type[:100] or 'none'!r}{hint}")

    def _from_allowed_origin(self, request: web.BaseRequest, route: Route) -> None:
        """Raises ForeignOrigin for a call to `route` from a page whose Origin
        --cors-origins does not allow and that is not this server's own; nothing for
        one without an Origin (no browser, or a request of the server's own page)."""
        origin = request.headers.get("Origin")
        if origin is None or self.allows_origin(origin, route) \
                or _same_origin(origin, authority(request)[1]):
            return
        star = " (its `*` lets every page record events, and only that: list the " \
               "origin by name)" if self._any else ""
        raise ForeignOrigin(
            f"Origin {origin[:200]!r} may not call {request.method} {route.template.text}: "
            f"--cors-origins does not allow it{star}")


# What a browser says of a request with Fetch Metadata: whose page sent it
# (Sec-Fetch-Site), how (Sec-Fetch-Mode) and for what (Sec-Fetch-Dest).
_OTHER_SITES = frozenset({"cross-site", "same-site"})


def embedded(request: web.BaseRequest, route: Route) -> None:
    """Raises ForeignOrigin for a GET or HEAD of `route` that a page of another site
    made without CORS: an <iframe>, <object>, <img> or <script> of it, or a
    fetch() in no-cors mode; and for one the browser prefetches or prerenders for a
    page other than this server's own (`prefetched`). Nothing for a link followed (a
    top-level navigation), a fetch() in cors mode (the Origin check decides whether it
    runs: `OriginCheck.check`) and any client that sends no Fetch Metadata (no
    browser, or an old one).

    Such a page reads nothing, but the server did the read for it, and an iframe of a
    watch held it open for as long as the page stayed: three Chromium tabs of 600 such
    iframes each, over 120 names *.localhost, held 250 watches of a local server with
    auth off, every connection its address may hold (--http-max-connections-per-address),
    and the developer's own calls from 127.0.0.1 were answered 503 while they stayed."""
    headers = request.headers
    site = headers.get("Sec-Fetch-Site")
    if site not in _OTHER_SITES:
        if site == "none":  # (typed in, a bookmark; Chromium's prefetches say it too)
            prefetched(request, route, site)
        return
    mode, dest = headers.get("Sec-Fetch-Mode", ""), headers.get("Sec-Fetch-Dest", "")
    if mode == "cors":
        return
    if mode == "navigate" and dest == "document":
        prefetched(request, route, site)
        return
    raise ForeignOrigin(
        f"a page of another site may not embed {request.method} {route.template.text} "
        f"(Sec-Fetch-Site {site[:20]!r}, Sec-Fetch-Mode {mode[:20]!r}, Sec-Fetch-Dest "
        f"{dest[:20]!r}): of the REST routes only the pixel is open to other sites' pages; "
        f"a page of an origin --cors-origins names reads them with fetch()")


def prefetched(request: web.BaseRequest, route: Route, site: str) -> None:
    """Raises ForeignOrigin for a navigation to `route` that the browser makes before
    anyone follows the link (`prefetch`), unless this server's own page asked for it
    (its Referer names this server). Such a request says it is a top-level navigation
    (Sec-Fetch-Mode navigate, Sec-Fetch-Dest document), and Chromium 156 says
    Sec-Fetch-Site none for it whoever asked, with the asking page's origin as
    Referer, or none under its speculation rules' "referrer_policy": "no-referrer". A
    page of another site so had the server read, or hold a watch open, for nobody, as
    an iframe of it did. Refused, the link is fetched again when it is followed
    (Chromium discards a speculation answered 403), and answered as a link followed."""
    purpose = prefetch(request.headers)
    if purpose is None:
        return
    referer = request.headers.get("Referer", "")
    scheme, separator, rest = referer.partition("://")
    if site == "none" and _same_origin(f"{scheme}{separator}{rest.partition('/')[0]}",
                                       authority(request)[1]):
        return
    raise ForeignOrigin(
        f"only this server's own pages may have the browser prefetch {request.method} "
        f"{route.template.text} (Sec-Purpose {purpose[:40]!r}, Sec-Fetch-Site {site[:20]!r}"
        f"{', no Referer' if not referer else ''}): a link to it is answered once it is "
        f"followed")


def prefetch(headers: Mapping[str, str]) -> str | None:
    """The Sec-Purpose (or the older Purpose) of a request the browser makes before
    anyone follows the link, for a page's speculation rules (prefetch; prerender:
    `prefetch;prerender`) or <link rel=prefetch>; None for the rest."""
    for name in ("Sec-Purpose", "Purpose"):
        value = headers.get(name)
        # (a structured-header list: `prefetch`, `prefetch;prerender`,
        # `prefetch;anonymous-client-ip`)
        if value is not None and any(item.partition(";")[0].strip().lower() == "prefetch"
                                     for item in value.split(",")):
            return value
    return None


def _same_origin(origin: str, host: str | None) -> bool:
    """Whether `origin` (scheme://name[:port]) names this server as the request
    reached it (its `authority`): a page the server itself served."""
    if host is None:
        return False
    _, separator, named = origin.partition("://")
    return bool(separator) and named.lower() == host.strip().lower()
