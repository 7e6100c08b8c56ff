"""Large REST answers, written as JSON off the loop and sent within a budget of bytes.

JSON is written at about 3 MB a second by json_format, about three times that by
protojson.message_to_dict (which writes answers): an answer larger than
transcode.LARGE_ANSWER_BYTES, or of more fields than transcode.FIELDS_ON_LOOP
(transcode.written_off_loop), is written on the decoders' threads
(server.loop.in_decoder), two of them, and the others wait for their turn. What
waits is the answer's serialized bytes, not the decoded message (a page of one
event naming 60,000 products is 1.1 MB serialized, 25 MB decoded). Once written,
its JSON (up to about 17 MB for a page) waits to be sent: the connection holds it
until its client has taken it (connections.Connection.finish_response).

The bytes of the answers waiting, being written or waiting to be sent are bounded
together (a budget.Budget): at most ANSWERS_HELD times --max-request-bytes (the
largest message gRPC sends), a quarter of that for one key. Past that, a large
answer is refused RESOURCE_EXHAUSTED (429, retry after a second). Without the
bound, 30 console reads at once of such pages held 1.2 GB waiting to be written,
and 30 connections of one key that never read the pages of 8 MB they asked for held
381 MiB unsent (now its share, 40 MiB).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from server.http.budget import Budget, Hold
from server.loop import in_decoder

T = TypeVar("T")

ANSWERS_HELD = 16
WHAT = "large answers waiting to be written as JSON or sent"
ADVICE = ", ask for a smaller page (pageSize), or read over gRPC"


class Answers(Budget):
    """The bytes of the large answers waiting for a decoder thread or being written
    there, and of the answers waiting to be sent: at most ANSWERS_HELD times
    `limit` (--max-request-bytes), a quarter of that for one key, or one answer
    alone, however large (waiting would not make room for it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(ANSWERS_HELD * limit, f"{ANSWERS_HELD} x --max-request-bytes")

    async def render(self, kind: type[Message], wire: bytes,
                     render: Callable[[Message], T], holder: str | None,
                     kept: Callable[[Hold], None]) -> T:
        """`render` of the message `wire` holds (a `kind`), decoded and rendered on a
        decoder thread; RESOURCE_EXHAUSTED when the answers waiting, being written or
        being sent hold the room already, or `holder`'s share of it. Its bytes are
        held until its thread is done with them, even if the caller goes first, and
        until the caller lets go of the Hold handed to `kept` (once the JSON is
        sent: counted only then, it let another answer in while this one's JSON,
        admitted already, waited to be counted)."""
        size = len(wire)
        self.take(holder, size, WHAT, ADVICE)
        hold = Hold(self, holder, size)
        kept(hold)
        return await in_decoder(_decoded, kind, wire, render, ended=hold.let_go)

    def check(self, holder: str | None, size: int) -> None:
        """RESOURCE_EXHAUSTED when `render` of `size` bytes for `holder` would be
        refused now (what a HEAD answers; it writes nothing and holds nothing)."""
        self.take(holder, size, WHAT, ADVICE)
        self.give_back(holder, size)


def _decoded(kind: type[Message], wire: bytes, render: Callable[[Message], T]) -> T:
    return render(kind.FromString(wire))
