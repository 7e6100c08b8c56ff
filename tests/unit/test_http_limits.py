"""The HTTP connection limits: how the cap fits the descriptor limit, the
once-per-interval log, and their flags."""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import time
from types import SimpleNamespace
from typing import Any

import pytest

from server.config import Settings, add_serve_arguments, settings_from_args
from server.descriptors import plan_descriptors
from server.errors import InvalidArgument
from server.http import console_pages, transcode
from server.http.connections import MAX_PATH_SEGMENTS, GuardedSite, RateLimitedLog
from server.http.gateway import _UNROUTED_PIXEL, per_address

UNLIMITED = resource.RLIM_INFINITY


@pytest.mark.parametrize(("wanted", "soft", "hard", "plan"), [
    (1000, 65536, 65536, (None, 1000)),  # fits as it is
    (1000, UNLIMITED, UNLIMITED, (None, 1000)),
    (1000, 1024, 524288, (1334, 1000)),  # the usual 1024: raised to fit
    (1000, 1024, UNLIMITED, (1334, 1000)),
    (1000, 1024, 1200, (1200, 900)),  # raised as far as it goes, the cap lowered
    (1000, 256, 256, (None, 192)),  # cannot be raised: 3/4 of it
    (1, 1, 1, (None, 1)),  # never below one
])
def test_the_cap_fits_the_descriptor_limit(wanted: int, soft: int, hard: int,
                                           plan: tuple[int | None, int]) -> None:
    assert plan_descriptors(wanted, soft, hard) == plan


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_repeated_trouble_is_reported_once_per_interval_with_a_count(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    report = RateLimitedLog(logging.getLogger("test.ratelimited"), interval=60, clock=clock)
    with caplog.at_level(logging.WARNING, "test.ratelimited"):
        for _ in range(1000):  # a thousand failures in a second
            report.note("cannot accept: [Errno 24] Too many open files")
            clock.now += 0.001
        assert len(caplog.records) == 1  # the first, at once
        clock.now += 60
        report.note("cannot accept: [Errno 24] Too many open files")
        report.flush()  # nothing left: writes nothing
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and report.total == 1001
    assert messages[0].startswith("cannot accept: [Errno 24] Too many open files (repeats")
    assert messages[1] == ("cannot accept: [Errno 24] Too many open files: 1000 times in the "
                           "last 61 s")


def parse(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, env or {})
    return settings_from_args(parser.parse_args(argv))


def test_connection_flags_and_variables() -> None:
    default = parse([])
    assert (default.http_header_timeout, default.http_body_timeout,
            default.http_max_connections) == (10.0, 60.0, 1000)
    given = parse(["--http-header-timeout", "2.5", "--http-max-connections", "50"],
                  {"FOOTFALL_HTTP_BODY_TIMEOUT": "5"})
    assert (given.http_header_timeout, given.http_body_timeout,
            given.http_max_connections) == (2.5, 5.0, 50)
    for bad in (["--http-header-timeout", "0"], ["--http-body-timeout", "-1"],
                ["--http-max-connections", "0"]):
        with pytest.raises(SystemExit):
            parse(bad)


@pytest.mark.parametrize(("argv", "most"), [
    ([], 250),  # a quarter of --http-max-connections
    (["--http-max-connections", "40"], 16),  # at least 16
    (["--trust-forwarded-for"], 0),  # every connection is the proxy's
    (["--trust-forwarded-for", "--http-max-connections-per-address", "300"], 300),
    (["--http-max-connections-per-address", "0"], 0),
])
def test_connections_of_one_address(argv: list[str], most: int) -> None:
    assert per_address(parse(argv)) == most


def test_the_catalog_of_an_unrouted_pixel_is_found_at_the_cost_of_any_path() -> None:
    """The slashes an unrouted pixel's path begins with (an endpoint written with a
    trailing one: //v2/...) were matched by `/+`, which the pattern then backtracked
    into, each giving a scan of up to 1,024 characters: a GET of 250 slashes, 7,000
    letters and /userEvents:collect, no key needed, held the server's loop 5 ms, 250
    times what a path of one slash does."""
    def cost(path: str) -> float:
        least = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            _UNROUTED_PIXEL.fullmatch(path)
            least = min(least, time.perf_counter() - started)
        return least

    ordinary = cost("/" + "a" * 7_000 + "/userEvents:collect")
    slashes = cost("/" * (MAX_PATH_SEGMENTS - 6) + "a" * 7_000 + "/userEvents:collect")
    assert slashes < 10 * ordinary + 0.0005, (slashes, ordinary)
    catalog = "projects/p/locations/global/catalogs/default_catalog"
    for path in (f"//v2/{catalog}/userEvents:collect", f"/v2beta/{catalog}/userEvents:collect",
                 f"///{catalog}/userEvents:collect"):
        found = _UNROUTED_PIXEL.fullmatch(path)
        assert found is not None and found.group(2) == catalog, path


def test_a_console_page_is_revalidated_at_the_cost_of_any_if_none_match() -> None:
    """An If-None-Match was split whole into a set of its entity tags: one of 64 KiB
    of commas (a head line may be that long), no key needed, held the server's loop
    2.4 ms, 20 times what any other head of that size costs. A page listed among the
    first tags is still answered 304."""
    page = console_pages.PAGES[console_pages.INDEX]
    path = console_pages.PREFIX

    def cost(header: str) -> float:
        least = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            console_pages.answer("GET", path, header)
            least = min(least, time.perf_counter() - started)
        return least

    ordinary = cost("a" * 64_000)
    commas = cost("," * 64_000 + page.etag)
    assert commas < 10 * ordinary + 0.0002, (commas, ordinary)
    for header in (page.etag, f'W/"other", {page.etag}', f" {page.etag} ,"):
        answer = console_pages.answer("GET", path, header)
        assert answer is not None and answer.status == 304, header
    answer = console_pages.answer("GET", path, 'W/"other"')
    assert answer is not None and answer.status == 200


def test_the_output_a_query_asks_for_is_read_at_the_cost_of_any_alt() -> None:
    """`alt` was split at each `;` and each part stripped and checked: `json` and
    260 KB of `;` (a URL may be that long, and the format is read before any key
    is asked for) held the server's loop 30 ms, where a refused `alt` as long takes
    a tenth of one. Now one longer than any sensible is refused unsplit."""
    def cost(alt: str) -> float:
        least = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            with pytest.raises(InvalidArgument):
                transcode.output_of({"alt": alt})
            least = min(least, time.perf_counter() - started)
        return least

    ordinary = cost("x" * 260_000)
    semicolons = cost("json" + ";" * 260_000)
    assert semicolons < 10 * ordinary + 0.0005, (semicolons, ordinary)
    assert transcode.output_of({"$alt": "json; enum-encoding=string"}).explicit_json
    assert transcode.output_of({"alt": "json;enum-encoding=int"}).enums_as_ints


class SlowClient:
    """A connection whose body comes, and whose answer is taken, slower than the least
    rates: counts its cuts."""

    waiting_since = 0.0
    waiting = False
    address = None
    transport = object()

    def __init__(self) -> None:
        self.cuts = 0

    def slow_body(self, now: float) -> bool:
        return True

    slow_send = slow_body

    def cut_body(self) -> None:
        self.cuts += 1

    cut_send = cut_body


def test_a_connection_cut_at_the_cap_is_not_cut_again_before_it_is_gone() -> None:
    """A body cut at the cap is answered 408 before its connection goes; had that answer
    waited for its client (writing paused), the connection was listed among the slow
    readers and cut again, and the newcomer of that second cut let in over the cap
    with no room made (it counted once among those making room)."""
    async def cut_twice() -> tuple[bool, bool, int]:
        site = GuardedSite(SimpleNamespace(server=object()),  # type: ignore[arg-type]
                           "127.0.0.1", 0, header_timeout=1.0, max_connections=1,
                           handler_args={})
        client: Any = SlowClient()
        site._pending = 1
        site.opened(client)
        site.answering(client)
        site.reads_body(client, True)
        first = site._make_room()  # its body cut: the first newcomer comes in
        site.reads_body(client, False)
        site.sends(client, True)  # its 408 waits for its client
        return first, site._make_room(), client.cuts

    assert asyncio.run(cut_twice()) == (True, False, 1)


class Wire:
    """A transport with the rest of an answer in its buffer."""

    def __init__(self) -> None:
        self.closed = False

    def get_write_buffer_size(self) -> int:
        return 40_000

    def close(self) -> None:
        self.closed = True


class TailClient:
    """A connection waiting for a request, the rest of its answers still to be taken by
    its client (at an honest pace unless `slow`): says how it was let go."""

    waiting_since = 0.0
    waiting = True
    address = None

    def __init__(self, slow: bool = False) -> None:
        self.wire: Any = Wire()
        self.slow = slow
        self.ended = ""

    def slow_tail(self, now: float) -> bool:
        return self.slow

    def force_close(self) -> None:
        self.ended = "closed"

    def watch_closing(self) -> None:
        assert self.ended == "closed" and self.wire.closed

    def cut(self) -> None:
        self.ended = "cut"


def test_the_tails_outside_the_cap_are_bounded_whatever_their_addresses() -> None:
    """A connection closed to make room whose client still takes the rest of its answers
    is counted outside the cap until they are sent: its address's share bounded those
    of one address (an IPv6 client's /64, and a client is given 2^16 of them with a
    /48), nothing bounded them all. At most a quarter of the cap are now: past that,
    one is passed over (a slow one is cut as before), and the newcomer refused unless
    another makes room; once one is gone, the next may be closed so again."""
    async def make_room() -> tuple[list[bool], list[str]]:
        site = GuardedSite(SimpleNamespace(server=object()),  # type: ignore[arg-type]
                           "127.0.0.1", 0, header_timeout=1.0, max_connections=8,
                           handler_args={})
        clients: list[Any] = [TailClient(slow=index == 4) for index in range(8)]
        for client in clients:
            site._pending += 1
            site.opened(client)
        made = [site._make_room() for _ in range(4)]
        site.closed(clients[0])  # (its tail sent)
        made.append(site._make_room())
        return made, [client.ended for client in clients]

    made, ended = asyncio.run(make_room())
    assert made == [True, True, True, False, True]
    assert ended == ["closed", "closed", "closed", "", "cut", "", "", ""]
