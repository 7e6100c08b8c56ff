"""A budget of bytes the HTTP side holds for its callers at once: request bodies
being read or served (gateway.Bodies), and large answers waiting to be written as
JSON or to be sent (answers.Answers).

Each is bounded in all and for one holder, an API key: it may hold a quarter of the
room, so that one key (a page's writer key is public) cannot hold all of it and
have every other caller refused. A writer key is held by each of its client
addresses too (holder_of: `KEY from ADDRESS`), each a quarter of the key's quarter:
every visitor of a shop's pages POSTs with it (an event of more than 16 KiB, one sent
as the page is left), and one client of it keeping bodies unfinished held the key's
quarter, every visitor's POST refused 429 meanwhile. Without keys, where anyone may
call anything, there is no holder: a proxy in front makes one address of every
caller's.
"""

from __future__ import annotations

from server.errors import ResourceExhausted
from server.policy.auth import Grant, Role

SHARE = 4  # one holder may hold 1/SHARE of the room (a writer key's address, of its share)
PARTY = " from "  # (between a writer key and its client address, in a holder)


def holder_of(grant: Grant | None, client: str) -> str | None:
    """Whose bytes a call of `grant`'s key from `client` (ports.ip_prefix) holds: its
    key's (by the key itself, in hex), a writer key's by client address too; None
    without a key."""
    if grant is None:
        return None
    key = grant.identity.hex()
    return f"{key}{PARTY}{client}" if grant.role is Role.WRITER else key


class Budget:
    """At most `room` bytes held together, a quarter of that by one holder (a
    writer key's client address, a quarter of its key's quarter); one take alone
    (nothing held, in all or by its holder) is let in whatever its size: waiting
    would never make room for it. `room_said` is the room in words, for the
    refusals ("16 x --max-request-bytes")."""

    def __init__(self, room: int, room_said: str) -> None:
        self.total = 0
        self.room = room
        self.share = room // SHARE
        self._room_said = room_said
        self._held: dict[str, int] = {}

    def take(self, holder: str | None, size: int, what: str, advice: str = "",
             admitted: bool = False) -> None:
        """Count `size` more bytes of `holder`'s; RESOURCE_EXHAUSTED (retry in a
        second) past the room, or past the holder's share of it, unless they were
        `admitted` already (as other bytes of the same thing). `what` names what
        the bytes are ("request bodies"), `advice` ends the refusal."""
        if not admitted and self.total and self.total + size > self.room:
            raise ResourceExhausted(
                f"the server holds too many {what} at once (they may hold "
                f"{self._room_said}); retry shortly{advice}", retry_after=1.0)
        if holder is not None:
            key, _, party = holder.partition(PARTY)
            held = self._held.get(key, 0)
            if held and held + size > self.share and not admitted:
                raise ResourceExhausted(
                    f"this caller's {what} hold a quarter of the room of all of them (a "
                    f"quarter of {self._room_said}); retry once one is done{advice}",
                    retry_after=1.0)
            if party:
                of_party = self._held.get(holder, 0)
                if of_party and of_party + size > self.share // SHARE and not admitted:
                    raise ResourceExhausted(
                        f"this client address's {what} with this key hold a quarter of "
                        f"the key's part of the room of all of them (a sixteenth of "
                        f"{self._room_said}; the key is a writer's, whose every client "
                        f"shares it); retry once one is done{advice}", retry_after=1.0)
                self._held[holder] = of_party + size
            self._held[key] = held + size
        self.total += size

    def give_back(self, holder: str | None, size: int) -> None:
        self.total -= size
        if holder is None or not size:
            return
        key, _, party = holder.partition(PARTY)
        for held_by in (key, holder) if party else (key,):
            left = self._held.get(held_by, 0) - size
            if left > 0:
                self._held[held_by] = left
            else:
                self._held.pop(held_by, None)


class Hold:
    """`size` bytes of `holder`'s taken from `budget`, given back once each of its
    `owners` has let go (a large answer's: the thread that writes it as JSON, and
    its request, which ends once the JSON is sent): neither knows when the other
    is done with them."""

    __slots__ = ("_budget", "_holder", "_size", "_owners")

    def __init__(self, budget: Budget, holder: str | None, size: int, owners: int = 2) -> None:
        self._budget = budget
        self._holder = holder
        self._size = size
        self._owners = owners

    def let_go(self) -> None:
        self._owners -= 1
        if self._owners == 0:
            self._budget.give_back(self._holder, self._size)
