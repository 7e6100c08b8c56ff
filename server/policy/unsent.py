"""Large gRPC answers held until their client has taken them, within a budget of bytes.

grpc holds a unary call's answer until its client's flow control lets it all be
written, and the call ends only then: a client that asks and never reads (its
HTTP/2 window left at 0) had every answer kept. Four connections of 200
ListUserEvents calls each, pages of 1.8 MB none of them read, took the server from
0.2 to 0.8 GB in 24 s and on (a connection may have 1,000 calls open, and there may
be 1,000 connections). The REST side bounds its answers so (http.answers); here
the answers over LARGE_ANSWER_BYTES are counted from the time they are made until
their call ends (sent, cancelled, or its connection gone): at most ANSWERS_HELD
times --max-request-bytes (the largest message the server sends) in all, a quarter
of that for one key; past it a read (policy.auth.READER_METHODS) is refused
RESOURCE_EXHAUSTED, retry in a second. Other calls are counted and never refused:
their answers come once what they change is stored, and a client told to retry
would write again. Smaller answers are not counted: a call's own state costs about
as much.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from server.http.budget import Budget
from server.http.transcode import LARGE_ANSWER_BYTES
from server.policy.call_ends import at_call_end

ANSWERS_HELD = 16
WHAT = "large answers not yet taken by their clients"
ADVICE = ", read the answers asked for, or ask for smaller pages (page_size)"


class Unsent(Budget):
    """The bytes of the large gRPC answers of calls not yet ended."""

    def __init__(self, limit: int) -> None:
        super().__init__(ANSWERS_HELD * limit, f"{ANSWERS_HELD} x --max-request-bytes")

    def held(self, answer: Message | bytes, holder_of: Callable[[], str | None],
             refusable: bool) -> bytes:
        """`answer` serialized (as grpc would: it sends bytes as they are), counted
        as its holder's (`holder_of()`: its key) until its call ends (called in the
        call's task: see call_ends) when it is large; RESOURCE_EXHAUSTED when the
        room, or the holder's share of it, is held, if the call is `refusable` (a
        read: a write's answer comes after its commit, and refused it would be sent
        again, and stored twice)."""
        wire = answer if isinstance(answer, bytes) else answer.SerializeToString()
        size = len(wire)
        if size > LARGE_ANSWER_BYTES:
            holder = holder_of()
            self.take(holder, size, WHAT, ADVICE, admitted=not refusable)
            at_call_end(lambda _task: self.give_back(holder, size))
        return wire
