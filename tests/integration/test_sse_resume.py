"""A watch over HTTP (server-sent events) says where it is: each event of a stored row
has an `id:` line, its row's id (a batch's, its last row's), so that an EventSource
that reconnects sends it back as Last-Event-ID and the watch goes on after it. Without
it, a plain EventSource (not the console, which asks with afterId itself) that lost its
connection and reconnected to the same URL read from afterId again, or from the newest
row when it gave none, and missed what was stored meanwhile (h5, black-box)."""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from server.app import Running

from . import http_client
from .test_console import settings, write  # noqa: F401 (the HTTP gateway on)
from .test_server import PARENT

WATCH = f"/console/v1/{PARENT}/userEvents:watch"


@contextmanager
def watching(running: Running, path: str,
             headers: dict[str, str] | None = None) -> Iterator[http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        answer = conn.getresponse()
        assert answer.status == 200, answer.read()
        yield answer
    finally:
        conn.close()


def events(answer: http.client.HTTPResponse, count: int) -> list[tuple[str | None, dict]]:
    """The next `count` events: each one's id: line (None without) and its data (the
    fields of an event come in any order, up to the blank line that ends it)."""
    got: list[tuple[str | None, dict]] = []
    given: str | None = None
    data: dict | None = None
    while len(got) < count:
        line = answer.readline().rstrip(b"\n").decode()
        if line.startswith("id: "):
            given = line[4:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif not line and data is not None:
            got.append((given, data))
            given = data = None
    return got


def test_each_event_of_a_watch_gives_its_rows_id(running: Running,
                                                channel: grpc.Channel) -> None:
    for name in ("a", "b", "c"):
        write(channel, visitorId=name)
    with watching(running, f"{WATCH}?afterId=0") as answer:
        got = events(answer, 3)
    assert [data["userEvent"]["visitorId"] for _, data in got] == ["a", "b", "c"]
    assert [given for given, _ in got] == [data["id"] for _, data in got]
    assert [int(given or 0) for given, _ in got] == sorted({int(given or 0) for given, _ in got})


def test_last_event_id_goes_on_after_the_event_it_names(running: Running,
                                                       channel: grpc.Channel) -> None:
    for name in ("a", "b", "c"):
        write(channel, visitorId=name)
    with watching(running, f"{WATCH}?afterId=0") as answer:
        (_, a), (b_id, _), (_, c) = events(answer, 3)
    # (as an EventSource reconnects: its first URL again, the last id it read beside)
    with watching(running, f"{WATCH}?afterId=0", {"Last-Event-ID": str(b_id)}) as answer:
        write(channel, visitorId="d")
        assert [data["userEvent"]["visitorId"] for _, data in events(answer, 2)] == ["c", "d"]
    # and with no afterId at all (the newest rows only), the same
    with watching(running, WATCH, {"Last-Event-ID": a["id"]}) as answer:
        assert [data["userEvent"]["visitorId"] for _, data in events(answer, 3)] == [
            "b", "c", "d"]


def test_a_batch_gives_its_last_rows_id(running: Running, channel: grpc.Channel) -> None:
    for name in ("a", "b", "c"):
        write(channel, visitorId=name)
    with watching(running, f"/console/v1/{PARENT}/userEvents:watchBatches?afterId=0") as answer:
        seen: list[str] = []
        while len(seen) < 3:
            [(given, data)] = events(answer, 1)
            batch = data["userEvents"]
            seen += [each["userEvent"]["visitorId"] for each in batch]
            assert given == batch[-1]["id"]
    assert seen == ["a", "b", "c"]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "99999999999999999999", "0x10"])
def test_a_last_event_id_that_is_no_id_is_refused_naming_it(running: Running,
                                                           value: str) -> None:
    reply = http_client.call(running.http_port, "GET", WATCH,
                             headers={"Last-Event-ID": value})
    assert reply.status == 400
    [(field, said)] = reply.violations().items()
    assert field == "Last-Event-ID"
    assert "must be the id of the last event read" in said


def test_a_client_cut_within_an_event_has_not_read_its_id(running: Running,
                                                         channel: grpc.Channel) -> None:
    """A batch of four events (about 200 KB of JSON) is cut after its first 64 KiB, as
    a connection lost, or a slow client let go (--http-send-timeout), cuts it. A client
    that takes an id as its line comes (the npm `eventsource` package does; the HTML
    spec takes it when the event is whole) then resumes after the id it read: with the
    id line ahead of the data, after the batch's last row, and the four were never
    read, nor sent again. Sent after the data, the id comes with the event's end."""
    products = [{"product": {"id": f"product-{n:05d}"}} for n in range(1_500)]
    for name in ("a", "b", "c", "d"):
        write(channel, visitorId=name, eventType="detail-page-view", productDetails=products)
    path = f"/console/v1/{PARENT}/userEvents:watchBatches?afterId=0"
    with watching(running, path) as answer:
        start, _, came = answer.read(64 * 1024).partition(b"\n\n")
        assert start == b"id: 0"  # (the stream's start, an event alone)
        assert b"\n\n" not in came  # (cut within the batch's event)
    # what such a client holds of it: the id of every id: line read whole
    read = ["0"] + [line[4:].decode() for line in came.split(b"\n")[:-1]
                    if line.startswith(b"id: ")]
    headers = {"Last-Event-ID": read[-1]}
    with watching(running, path, headers) as answer:
        write(channel, visitorId="e")
        seen: list[str] = []
        while "e" not in seen:
            [(_, data)] = events(answer, 1)
            seen += [each["userEvent"]["visitorId"] for each in data["userEvents"]]
    assert seen == ["a", "b", "c", "d", "e"]


def test_a_watch_from_now_lost_before_its_first_event_misses_nothing(
        running: Running, channel: grpc.Channel) -> None:
    write(channel, visitorId="before")
    read: list[str] = []
    with watching(running, WATCH) as answer:
        answer.fp.raw._sock.settimeout(2)  # type: ignore[attr-defined]
        with contextlib.suppress(TimeoutError):  # (what it says at once, if anything)
            while not read:
                line = answer.readline()
                if line.startswith(b"id: "):
                    read.append(line[4:].strip().decode())
    write(channel, visitorId="meanwhile")  # (stored while the EventSource reconnects)
    with watching(running, WATCH, {"Last-Event-ID": read[-1]} if read else {}) as answer:
        write(channel, visitorId="after")
        [(_, first)] = events(answer, 1)
    assert first["userEvent"]["visitorId"] == "meanwhile"  # ("after": it was missed)
