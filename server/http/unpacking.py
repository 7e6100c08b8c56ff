"""A request body sent packed (Content-Encoding: gzip or deflate), unpacked by the
gateway as it arrives.

aiohttp unpacked bodies itself, and could not tell a gzip body cut short from a whole
one: it makes a new unpacker after each gzip member (RFC 1952 §2.2 allows several), so
at the body's end nothing said that the last member never reached its trailer (its
CRC-32 and length). A gzip body cut anywhere after its header was read as the JSON that
had come, and an event cut at a list's end was stored. The gateway reads bodies packed
as they came (the site's `auto_decompress` is off) and unpacks them here, where a body
whose last member has not ended is refused as cut short, as a deflate body was.

Zero bytes after a gzip body's last member are padding (as a tape or a block device
pads a file to its block size), read over as gzip(1) and Python's gzip module read
them; anything else after them is refused, as it is after a member.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from server.http.errors import not_unpacked

# Bytes unpacked at a time: each piece is counted against the bodies' budget before the
# next is made, so a small body that unpacks to gigabytes (a "zip bomb") is refused
# at the limit, having cost no more than the limit.
PIECE_BYTES = 256 * 1024
# The gzip members a body may hold (aiohttp's bound): each costs a new unpacker, and a
# body of empty members (20 bytes each) would cost one per 20 bytes.
MAX_MEMBERS = 1024
CUT_SHORT = "it ends before its packed data does"


def packed_limit(limit: int) -> int:
    """The most bytes a packed body whose unpacked bytes are at most `limit` may come
    as: deflate's stored blocks (5 bytes in 64 KiB) and gzip's headers and trailers
    add little. A header's name or comment, which unpacks to nothing, counted in no
    limit: a body of one endless comment was read for as long as its client sent it."""
    return limit + limit // 100 + 64 * 1024


class NotUnpacked(ValueError):
    """A body that does not unpack as its Content-Encoding says; its message is the
    client's (`not_unpacked`)."""


class Unpacker:
    """Unpacks one body of Content-Encoding `coding` ("gzip" or "deflate") as its bytes
    arrive (`pieces`) and says whether it ended where its packed data did (`end`)."""

    __slots__ = ("_coding", "_member", "_members", "_padding", "_started")

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._member: zlib._Decompress | None = None  # (made at the first byte)
        self._members = 0
        self._padding = 0  # zero bytes read after the last gzip member
        self._started = False  # some bytes came

    def pieces(self, chunk: bytes) -> Iterator[bytes]:
        """The unpacked bytes of `chunk`, the next bytes of the body, in pieces of at
        most PIECE_BYTES; NotUnpacked for bytes that are not the coding's."""
        data, more = chunk, False  # more: zlib may hold output of bytes it has taken
        while data or more:
            member = self._member
            if member is None or member.eof:
                if self._is_padding(data):
                    return
                member = self._next_member(data)
            try:
                piece = member.decompress(data, PIECE_BYTES)
            except zlib.error:
                raise NotUnpacked(not_unpacked(self._coding)) from None
            data = member.unused_data if member.eof else member.unconsumed_tail
            more = len(piece) == PIECE_BYTES and not member.eof
            if piece:
                yield piece

    def end(self) -> None:
        """NotUnpacked if the body's packed data has not ended (its last gzip member
        has no trailer, its deflate stream no final block): it was cut short."""
        if self._started and (self._member is None or not self._member.eof):
            raise NotUnpacked(not_unpacked(self._coding, CUT_SHORT))

    def _is_padding(self, data: bytes) -> bool:
        """Whether `data`, which comes after a whole gzip member, is zero bytes (of the
        padding that ends a body: then read over); NotUnpacked for bytes other than
        zeros after some."""
        if self._coding != "gzip" or not self._started or not self._padding and data[0]:
            return False
        rest = data.lstrip(b"\0")
        if rest:
            zeros = self._padding + len(data) - len(rest)
            raise NotUnpacked(not_unpacked(self._coding, (
                f"after its gzip data and {zeros} zero bytes of padding it goes on with "
                "other bytes")))
        self._padding += len(data)
        return True

    def _next_member(self, data: bytes) -> zlib._Decompress:
        """The unpacker of the member that begins with `data`: a gzip body may hold
        several (RFC 1952 §2.2); a deflate body (RFC 1950) is one stream."""
        if self._started and self._coding != "gzip":
            raise NotUnpacked(not_unpacked(self._coding, "it goes on after its packed "
                                                         "data ends"))
        self._members += 1
        if self._members > MAX_MEMBERS:
            raise NotUnpacked(not_unpacked(self._coding, f"it holds more than {MAX_MEMBERS} "
                                                         f"gzip members"))
        if self._coding == "gzip":
            wbits = 16 + zlib.MAX_WBITS
        else:  # zlib's header (RFC 1950), or (as many clients send it) raw deflate
            wbits = zlib.MAX_WBITS if data[0] & 0x0F == 8 else -zlib.MAX_WBITS
        self._started = True
        self._member = zlib.decompressobj(wbits)
        return self._member
