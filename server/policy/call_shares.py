"""The gRPC calls in progress of one caller, at most a share of --max-concurrent-rpcs.

grpc counts a call against --max-concurrent-rpcs until it has ended, and a unary
call ends only once its client has taken its answer: a client that asks and never
reads (its HTTP/2 window left at 0) keeps each call it makes for as long as it keeps
its connection, however small the answer, and nothing in grpc ends it sooner (a
handler that gives up on its write still waits for grpc's status, queued behind the
answer). With a shop's public writer key, 11 connections of 1,000 WriteUserEvent
calls each, none read, held every one of the 10,000: every other call of every key,
health checks included, was refused RESOURCE_EXHAUSTED for as long as they stayed
open. So each caller may hold only a share of them, counted from when its call is
taken (before its request is read) until grpc lets it go.

A caller is its key (any key but an admin's, whose calls are not counted). With auth
on, the calls without a key (health checks) are one caller together, as their streams
are (--max-keyless-streams): counted by address, three addresses (an IPv6 client has
as many /64s as it likes) making health checks and reading no answer held every call,
and every key's calls, an admin's too, were refused. Within that share one client
address may hold what the keyless pacing lets it have in progress at once
(KEYLESS_PER_ADDRESS), never more than half of it: one address keeping a share's
health checks unread held it all, and every other prober's health check without a
key (a load balancer's, a kubelet's) was refused meanwhile. With auth off, a caller
is its client address as ports.client_address has it (an IPv6 client's /64).

A call refused is counted (footfall_calls_refused_over_share_total) and logged, the
lines of one caller within a budget (as those of the calls refused of one client
address are, server.policy.PUBLIC_KEY_LINES): refused before anything of the call is
read, it has no call line of its own, and a client holding its share and asking on
had every refusal unseen. Its answer spends a budget of refusals (Refused.budget: its
key's own, a writer key's by client address: server.policy.refusal_budget; else its
client address's), as server.policy.KeylessRefusals paces those for want of a key: a
burst of 200 and 20 a second at once, each past them after a second. Answered at
once, a key holding its share and asking on with 200 calls in flight had the server
refuse 2,970 a second, 0.81 of a core (250 a second now, 0.07). Past WAITING_PER_ADDRESS
of one budget waiting (or a tenth of --max-concurrent-rpcs in all), it is refused at
once: a call that waits holds its place in --max-concurrent-rpcs (grpc counts it until
it ends) outside its caller's share, and had such calls waited without a bound, one
key's client keeping enough in flight would have held every place, every other
caller refused. Refused at once, they cost the server what a client makes them cost
(~285 us each, and it must keep its share and 256 more in flight for any); the
bound's places are what keeps the server reachable for the rest.

A call of a paced key (calls_per_second in the keys file) waits here for its time, as
server.policy.paces has it, before its request is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from server.errors import FootfallError
from server.policy import (
    PUBLIC_KEY_LINES,
    WAITING_PER_ADDRESS,
    KeylessRefusals,
    LineBudget,
    refusal_budget,
)
from server.policy.auth import Authenticator, Grant, Role
from server.policy.call_ends import at_call_end
from server.policy.metrics import Metrics
from server.policy.paces import KeyPaces, Paced
from server.ports import client_address

log = logging.getLogger("footfall.requests")

# A caller may hold this fraction of --max-concurrent-rpcs: one honest client keeping
# 3,000 calls in flight from one address (tests/interop/test_calls_per_connection.py)
# stays within it at the default 10,000, and two callers together leave a third to
# the rest (three take all but one: callers of many addresses are a proxy's to bound).
SHARE = 3
# ... but never fewer than this many (or all, below it): a limit that small is a test's
# or a small server's, where a third would stop one honest client's few calls at once
LEAST_SHARE = 100

# The caller of every call without a key, with auth on.
WITHOUT_A_KEY = "(without a key)"
# ... of whose calls one client address may have this many in progress: what the
# keyless pacing (server.policy.KeylessRefusals) lets one address have at once, its
# WAITING_PER_ADDRESS waiting past its budget for their answers, and 68 more: its
# requests being read and waiting their turn to be (4 and 64, server.rpc); and its
# health watches, --max-keyless-streams-per-address (16 by default: 340 in all). A
# bound of 16 refused the calls of a client keeping 400 health checks in flight, which
# that pacing serves; they had 259 in progress at most (256 waiting), beside two CPU
# burners too. Never more than half the share, so that another address's probe finds
# room however small --max-concurrent-rpcs is.
KEYLESS_READ_AND_WAITING = WAITING_PER_ADDRESS + 68
KEYLESS_STREAMS_PER_ADDRESS = 16  # (--max-keyless-streams-per-address's default)
KEYLESS_PER_ADDRESS = KEYLESS_READ_AND_WAITING + KEYLESS_STREAMS_PER_ADDRESS

# A connection's peer (`ipv6:%5B2001:db8::1%5D:5678`) as client_address has it, which
# takes 20 us for an IPv6 one: looked up once for a connection's calls.
_address_of = lru_cache(maxsize=4096)(client_address)


@dataclass(frozen=True)
class Refused:
    """A call refused past its caller's share: what its status says; whose budget of
    refusals its answer spends (KeylessRefusals: its key's, as refusal_budget has it,
    the one a paced key's HTTP requests refused past those waiting spend, else a
    client address); and whether its caller has no key (auth on)."""

    message: str
    budget: str
    keyless: bool = False


class CallShares:
    """The calls in progress by caller (touched on the loop only)."""

    def __init__(self, most_calls: int, auth: Authenticator, metrics: Metrics,
                 paces: KeyPaces,
                 keyless_streams_per_address: int = KEYLESS_STREAMS_PER_ADDRESS,
                 refusals: KeylessRefusals | None = None) -> None:
        self.most_calls = most_calls
        self.share = max(most_calls // SHARE, min(most_calls, LEAST_SHARE))
        self._auth = auth
        self._paces = paces
        # (the budgets of refusals a refusal's answer spends: see Refused)
        self.refusals = refusals if refusals is not None else KeylessRefusals()
        self._refused = metrics.calls_refused_over_share
        self._lines = LineBudget(PUBLIC_KEY_LINES, "calls refused past their caller's share",
                                 " of one caller")
        self._held: dict[object, int] = {}
        # (with the watches --max-keyless-streams-per-address gives an address: at 500,
        # its 341st watch was refused by this bound, fixed at 340, where the flag allowed it)
        self.keyless_per_address = min(KEYLESS_READ_AND_WAITING + keyless_streams_per_address,
                                       max(1, self.share // 2))
        self._keyless: dict[str, int] = {}  # the calls without a key, by client address

    def __len__(self) -> int:
        """How many callers hold calls now."""
        return len(self._held)

    def enter(self, context: Any) -> Refused | Paced | None:
        """Count the call of `context` (a grpc.aio servicer context) as its caller's
        until it ends: why not (Refused), when its caller holds its share already; its
        wait (Paced) when its key is paced and the call is early."""
        caller, grant = self._caller(context)
        if caller is WITHOUT_A_KEY:
            return self._enter_keyless(context)
        if caller is not None:
            held = self._held.get(caller, 0)
            if held >= self.share:
                return Refused(self._refuse(caller, grant, held), str(caller) if grant is None
                               else refusal_budget(grant, _address_of(context.peer())))
            self._held[caller] = held + 1
            at_call_end(lambda _task: self._leave(caller))  # (no cycle: see call_ends)
        return self._paces.of(grant, context.time_remaining)

    def gone(self, paced: Paced) -> None:
        """A call that waited for its time (`paced`, as `enter` gave it) ended before
        it came: its key has that time back."""
        self._paces.give_back(paced)

    def _enter_keyless(self, context: Any) -> Refused | None:
        """`enter` for a call without a key (auth on): counted in the share of such
        calls, and in its client address's part of it (keyless_per_address)."""
        held = self._held.get(WITHOUT_A_KEY, 0)
        address = _address_of(context.peer())
        if held >= self.share:
            return Refused(self._refuse(WITHOUT_A_KEY, None, held), address, keyless=True)
        of_address = self._keyless.get(address, 0)
        if of_address >= self.keyless_per_address:
            return Refused(self._refuse_keyless(address, of_address), address, keyless=True)
        self._held[WITHOUT_A_KEY] = held + 1
        self._keyless[address] = of_address + 1
        at_call_end(lambda _task: self._leave_keyless(address))  # (no cycle: see call_ends)
        return None

    def _leave_keyless(self, address: str) -> None:
        self._leave(WITHOUT_A_KEY)
        held = self._keyless.pop(address) - 1
        if held:
            self._keyless[address] = held

    def _refuse_keyless(self, address: str, held: int) -> str:
        """Count and log (within the address's budget of lines) a call without a key
        refused past its client address's part of their share; what its status says."""
        self._refused.inc()
        name = f"client address {address}"
        limit = (f"({self.keyless_per_address:,} of the {self.share:,} the callers without a "
                 f"key may have together; it grows with --max-keyless-streams-per-address, "
                 f"up to half of them)")
        if log.isEnabledFor(logging.INFO) and self._lines.take(name):
            log.info("call refused RESOURCE_EXHAUSTED: %s has %d calls without a key in "
                     "progress, the most one client address may have %s", name, held, limit)
        return (f"this client address has {held} calls without a key in progress, the most "
                f"one client address may have {limit}: take the answers of the calls made, "
                f"or wait for some to end, or send a key (x-goog-api-key)")

    def _refuse(self, caller: object, grant: Grant | None, held: int) -> str:
        """Count and log (within the caller's budget of lines) a call refused past its
        caller's share; what its status says."""
        key_name = None if grant is None else grant.name
        limit = f"({self.share:,} of --max-concurrent-rpcs {self.most_calls:,})"
        self._refused.inc()
        if key_name is not None:
            name, who, has = f"key {key_name}", "this key", "has"
        elif caller is WITHOUT_A_KEY:
            name = who = "the callers without a key"
            has = "have"
        else:
            name, who, has = f"client address {caller}", "this client address", "has"
        most = "they may have together" if caller is WITHOUT_A_KEY else "one caller may have"
        if log.isEnabledFor(logging.INFO) and self._lines.take(name):
            log.info("call refused RESOURCE_EXHAUSTED: %s %s %d calls in progress, the most "
                     "%s %s", name, has, held, most, limit)
        return (f"{who} {has} {held} calls in progress, the most {most} {limit}: take the "
                "answers of the calls made, or wait for some to end")

    def _leave(self, caller: object) -> None:
        held = self._held.pop(caller) - 1
        if held:
            self._held[caller] = held

    def _caller(self, context: Any) -> tuple[object | None, Grant | None]:
        """(What the call is counted by, None: not counted; its key's grant, None: it
        has none, or auth is off)."""
        if self._auth.enabled:
            try:
                grant = self._auth.authenticate(context.invocation_metadata())
            except FootfallError:
                return WITHOUT_A_KEY, None
            return (None if grant.role is Role.ADMIN else grant.identity), grant
        return _address_of(context.peer()), None
