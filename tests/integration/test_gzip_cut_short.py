"""A gzip body cut short is refused as gzip cut short, as a deflate one is.

Found black-box (h5): a gzip body without its 8-byte trailer (the CRC-32 and length that
end every gzip member) is written as if whole, and one cut inside its packed data is
refused for its JSON ("unexpected end of data"), where a deflate body never finished is
"not valid deflate ...: it ends before its packed data does" and a gzip body whose CRC
is wrong is "not valid gzip". The trailer is what tells a body cut in transit (a proxy's
or a client's bug) from a whole one; Python's own gzip refuses both ("Compressed file
ended before the end-of-stream marker was reached").
"""

from __future__ import annotations

import gzip
import zlib

import pytest

from server.app import Running
from server.store import EventQuery

from . import http_client

PARENT = "projects/p/locations/global/catalogs/default_catalog"
EVENT = b'{"eventType": "home-page-view", "visitorId": "v", "uri": "https://shop.example/' + \
    bytes(range(65, 91)) * 40 + b'"}'
CUT_SHORT = ("the request body is not valid gzip (its Content-Encoding header): it ends "
             "before its packed data does")


def _unfinished_gzip() -> bytes:
    """EVENT as a gzip member flushed but never finished: no final block, no trailer."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    return packer.compress(EVENT) + packer.flush(zlib.Z_SYNC_FLUSH)


@pytest.mark.parametrize("body", [
    gzip.compress(EVENT, mtime=0)[:-8],  # its packed data whole, its trailer gone
    gzip.compress(EVENT, mtime=0)[:-3],  # part of its trailer gone
    _unfinished_gzip(),
], ids=["no-trailer", "part-trailer", "unfinished"])
def test_a_gzip_body_cut_short_is_400_and_nothing_is_written(served: Running,
                                                             body: bytes) -> None:
    reply = http_client.call(served.http_port, "POST", f"/v2/{PARENT}/userEvents:write", body,
                             {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert reply.status == 400, reply.body
    assert reply.error()["message"] == CUT_SHORT
    served.store.flush()
    assert served.store.count_user_events(EventQuery(PARENT)) == 0
