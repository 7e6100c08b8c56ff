"""The web console's files: `/console/` serves the pages in `server/http/console/`
(shipped as package data), `/` and `/console` lead there.

The pages are static ES modules that call the public REST routes like any
client; nothing here answers data. Their answers carry a Content-Security-Policy
that allows only this server's own scripts, styles and fetches (no inline
script, no other origin), and an ETag: the browser revalidates each load, so a
new version shows at once and an unchanged file costs a 304.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from server.http.headers import EVERY

FOLDER = Path(__file__).with_name("console")
PREFIX = "/console/"
INDEX = "index.html"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
HEADERS = {
    **EVERY,
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Page:
    body: bytes
    content_type: str
    etag: str


def _load(folder: Path) -> dict[str, Page]:
    """The files of `folder` whose type is served, by name."""
    pages = {}
    for path in sorted(folder.iterdir()):
        content_type = TYPES.get(path.suffix)
        if content_type and path.is_file():
            body = path.read_bytes()
            pages[path.name] = Page(body, content_type, etag_of(body))
    return pages


def etag_of(body: bytes) -> str:
    """The strong entity tag of a file whose bytes are `body`."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def not_modified(etag: str, if_none_match: str | None) -> bool:
    """Whether a request's If-None-Match (None: not sent) names `etag`, or is `*`
    (any current copy: the file exists): the copy the client holds is current, and a
    304 answers. Compared weakly (RFC 9110 §13.1.2): `W/"x"` names `"x"`."""
    # (its first MOST_TAGS entity tags only: split whole, a header of 64 KiB of commas,
    # no key needed, held the loop 2.4 ms, 20 times what any other head of its size
    # costs; a browser sends the one it has)
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":  # (it was answered 200: no tag is "*")
        return True
    return etag in {tag.strip().removeprefix("W/")
                    for tag in if_none_match.split(",", MOST_TAGS)}


PAGES = _load(FOLDER)
# The entity tags of an If-None-Match looked at, at most (one listing the page's later
# is answered the page, as one that lists it not at all)
MOST_TAGS = 64


def answer(method: str, raw_path: str, if_none_match: str | None) -> web.Response | None:
    """The answer to a GET or HEAD of a console file or of `/`; None for any
    other request (the REST routes under /console/v1/ among them)."""
    if method not in ("GET", "HEAD"):
        return None
    if raw_path in ("/", "/console"):
        return web.Response(status=302, headers={"Location": PREFIX, "Cache-Control": "no-cache",
                                                 **EVERY})
    if not raw_path.startswith(PREFIX):
        return None
    page = PAGES.get(raw_path[len(PREFIX):] or INDEX)
    if page is None:
        return None
    headers = {**HEADERS, "ETag": page.etag}
    if not_modified(page.etag, if_none_match):
        return web.Response(status=304, headers=headers)
    return web.Response(body=page.body, headers={**headers, "Content-Type": page.content_type})
