"""Large REST answers, written as JSON off the loop within a budget of bytes.

json_format writes about 3 MB of JSON a second: an answer larger than
transcode.LARGE_ANSWER_BYTES is written on the decoders' threads
(server.loop.in_decoder), two of them, and the others wait for their turn. What
waits is the answer's serialized bytes, not the decoded message (a page of one
event naming 60,000 products is 1.1 MB serialized, 25 MB decoded), and the bytes
of the answers waiting or being written are bounded: at most ANSWERS_HELD times
--max-request-bytes (the largest message gRPC sends) between them. Past that, a
large answer is refused RESOURCE_EXHAUSTED (429, retry after a second). Without
the bound, 30 console reads at once of such pages held 1.2 GB waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from server.errors import ResourceExhausted
from server.loop import in_decoder

T = TypeVar("T")

ANSWERS_HELD = 16


class Answers:
    """The bytes of the large answers waiting for a decoder thread or being written
    there: at most ANSWERS_HELD times `limit` (--max-request-bytes), or one answer
    alone, however large (waiting would not make room for it)."""

    def __init__(self, limit: int) -> None:
        self.held = 0
        self.room = ANSWERS_HELD * limit

    async def render(self, kind: type[Message], wire: bytes,
                     render: Callable[[Message], T]) -> T:
        """`render` of the message `wire` holds (a `kind`), decoded and rendered on a
        decoder thread; RESOURCE_EXHAUSTED when the answers waiting or being written
        hold the room already. Its bytes are held until its thread is done with
        them, even if the caller goes first."""
        size = len(wire)
        if self.held and self.held + size > self.room:
            raise ResourceExhausted(
                f"the server holds too many large answers waiting to be written as JSON "
                f"({self.held:,} bytes; at most {ANSWERS_HELD} x --max-request-bytes, "
                f"{self.room:,}); retry shortly, ask for a smaller page (pageSize), or read "
                f"over gRPC", retry_after=1.0)
        self.held += size
        return await in_decoder(_decoded, kind, wire, render, ended=lambda: self._give_back(size))

    def _give_back(self, size: int) -> None:
        self.held -= size


def _decoded(kind: type[Message], wire: bytes, render: Callable[[Message], T]) -> T:
    return render(kind.FromString(wire))
