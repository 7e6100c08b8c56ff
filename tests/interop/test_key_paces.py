"""A key paced in the keys file (`calls_per_second`): its calls past its pace wait for
their time, over gRPC, REST and the pixel alike, and one whose time is more than 2 s
off is refused RESOURCE_EXHAUSTED (HTTP 429) with a RetryInfo, after waiting that
long; other keys' calls are served meanwhile. Seen by the official clients."""

from __future__ import annotations

import functools
import http.client
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceRestTransport,
)
from google.rpc import error_details_pb2

from .console import Console
from .support import RPC_DEADLINE, ServerProcess, retail_client, running_server, sqlite_url
from .trust import with_key

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
PACED_GRPC = "paced-grpc-key-0123456789abcdef"
PACED_REST = "paced-rest-key-0123456789abcdef"
PACED_PIXEL = "paced-pixel-key-0123456789abcdef"
PACED_GONE = "paced-gone-key-0123456789abcdefg"
PACED_LATE = "paced-late-key-0123456789abcdefg"
PACED_DROP = "paced-drop-key-0123456789abcdefg"
FREE = "unpaced-writer-key-0123456789abc"
READER = "paces-reader-key-0123456789abcde"
# Each paced key: one call a second, so a burst of one; of calls made at once, the
# first is on time and the next two wait 1 and 2 s: any after is refused.
SERVED = 3
SAID = "this key is paced at 1 a second (calls_per_second in the keys file)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("paces")
    keys = folder / "keys.json"
    paced = {"projects": ["p"], "role": "writer", "calls_per_second": 1}
    keys.write_text(json.dumps({"keys": {
        PACED_GRPC: {**paced, "name": "paced-grpc"},
        PACED_REST: {**paced, "name": "paced-rest"},
        PACED_PIXEL: {**paced, "name": "paced-pixel"},
        PACED_GONE: {**paced, "name": "paced-gone"},
        PACED_LATE: {**paced, "name": "paced-late"},
        PACED_DROP: {**paced, "name": "paced-drop"},
        FREE: {"projects": ["p"], "role": "writer", "name": "free"},
        READER: {"projects": ["p"], "role": "reader", "name": "reader"}}}))
    keys.chmod(0o600)
    with running_server(folder, sqlite_url(folder / "events.db"), "--auth-file",
                        str(keys)) as running:
        yield running


def at_once(calls: list[Callable[[], Any]]) -> tuple[list[Any], float]:
    """What each of `calls`, made together, gave (an answer or an exception), and the
    seconds until the last ended."""
    started = time.monotonic()
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        outcomes = [future.exception() or future.result() for future in futures]
    return outcomes, time.monotonic() - started


def event(visitor: str) -> retail_v2.UserEvent:
    return retail_v2.UserEvent(event_type="home-page-view", visitor_id=visitor)


def written(client: retail_v2.UserEventServiceClient, key: str, visitor: str,
            timeout: float = RPC_DEADLINE) -> retail_v2.UserEvent:
    """A write of `visitor`'s event with `key`, not retried by the client."""
    return client.write_user_event(request=retail_v2.WriteUserEventRequest(
        parent=CATALOG, user_event=event(visitor)), metadata=with_key(key), timeout=timeout,
        retry=None)


def test_grpc_calls_of_a_paced_key_wait_their_time_and_others_are_served_meanwhile(
        server: ServerProcess) -> None:
    client = retail_client(server.address)

    write = functools.partial(written, client)

    with ThreadPoolExecutor(1) as other:
        # (an unpaced key's write once the paced ones have been asked: served while
        # they wait)
        free = other.submit(lambda: (time.sleep(0.3), write(FREE, "free"),
                                     time.monotonic())[2])
        outcomes, seconds = at_once([functools.partial(write, PACED_GRPC, f"paced-{n}")
                                     for n in range(6)])
        free_done = free.result()
    ended = time.monotonic()
    served = [o for o in outcomes if isinstance(o, retail_v2.UserEvent)]
    refused = [o for o in outcomes if isinstance(o, exceptions.ResourceExhausted)]
    assert (len(served), len(refused)) == (SERVED, 6 - SERVED), outcomes
    assert seconds >= 1.9  # (the refused waited 2 s; the last served 2 s too)
    assert free_done < ended - 1.0  # the free write was answered long before
    for refusal in refused:
        assert SAID in refusal.message
        retry = [d for d in refusal.details if isinstance(d, error_details_pb2.RetryInfo)]
        # (from the refusal, 2 s after the call: the key's next time is 1 s later)
        assert len(retry) == 1
        assert 0.5 < retry[0].retry_delay.ToTimedelta().total_seconds() <= 1.0
    with grpc.insecure_channel(server.address) as channel:
        page = Console(channel, with_key(READER)).call("ListUserEvents", parent=CATALOG,
                                                       pageSize=100)
    stored = {e["userEvent"]["visitorId"] for e in page["userEvents"]}
    assert sorted(v for v in stored if v.startswith("paced-")) == \
        sorted(e.visitor_id for e in served)  # (none of the refused)


def test_rest_calls_and_pixels_of_a_paced_key_wait_their_time(server: ServerProcess) -> None:
    client = retail_v2.UserEventServiceClient(
        client_options={"api_endpoint": server.http_address, "api_key": PACED_REST},
        transport=functools.partial(UserEventServiceRestTransport, url_scheme="http"))
    with client:
        outcomes, seconds = at_once([functools.partial(
            client.write_user_event, request=retail_v2.WriteUserEventRequest(
                parent=CATALOG, user_event=event(f"rest-{n}")), timeout=RPC_DEADLINE)
            for n in range(SERVED + 1)])
    served = [o for o in outcomes if isinstance(o, retail_v2.UserEvent)]
    refused = [o for o in outcomes if isinstance(o, exceptions.TooManyRequests)]
    assert (len(served), len(refused)) == (SERVED, 1), outcomes
    assert seconds >= 1.9 and SAID in refused[0].message

    def pixel(n: int) -> requests.Response:
        user_event = json.dumps({"eventType": "home-page-view", "visitorId": f"pixel-{n}"})
        return requests.get(f"http://{server.http_address}/v2/{CATALOG}/userEvents:collect",
                            params={"key": PACED_PIXEL, "user_event": user_event},
                            timeout=RPC_DEADLINE)

    answers, seconds = at_once([functools.partial(pixel, n) for n in range(SERVED + 1)])
    assert all(a.status_code == 200 and a.headers["Content-Type"] == "image/gif"
               for a in answers)  # (a browser's pixel is always a GIF)
    errors = [a.headers.get("X-Footfall-Error") for a in answers]
    assert sum(error is None for error in errors) == SERVED, errors
    assert any(error is not None and SAID in error for error in errors)
    assert seconds >= 1.9


def test_refusals_past_a_keys_pace_are_counted_and_logged(server: ServerProcess) -> None:
    """(After the tests above: 3 over gRPC, 1 over REST and 1 pixel refused)"""
    page = requests.get(f"http://{server.http_address}/metrics", timeout=RPC_DEADLINE).text
    refused = re.search(r"^footfall_calls_refused_over_pace_total (\S+)$", page, re.MULTILINE)
    paced = re.search(r"^footfall_calls_paced_total (\S+)$", page, re.MULTILINE)
    assert refused is not None and float(refused[1]) == 5
    assert paced is not None and float(paced[1]) == 6  # (two that waited of each key)
    said = [line for line in server.log if "is paced at" in line]
    assert any("call refused RESOURCE_EXHAUSTED: key paced-grpc is paced at 1 a second "
               "and its call would wait" in line for line in said)
    assert any("key paced-rest" in line for line in said)
    assert PACED_GRPC not in server.log_text()


def test_a_grpc_call_given_up_while_it_waits_gives_its_key_the_time_back(
        server: ServerProcess) -> None:
    """(After the counts above: this key's calls wait too)"""
    client = retail_client(server.address)

    write = functools.partial(written, client, PACED_GONE)

    write("gone-0")  # on time: the key's next call is a second off
    # Two calls that wait 1 and 2 s for their time (grpc callables, which their client
    # may cancel), cancelled while they wait ...
    gone = [client.transport.write_user_event.future(
        retail_v2.WriteUserEventRequest.pb(retail_v2.WriteUserEventRequest(
            parent=CATALOG, user_event=event(f"gone-{n}"))),
        metadata=with_key(PACED_GONE), timeout=RPC_DEADLINE) for n in (1, 2)]
    time.sleep(0.3)
    assert all(call.cancel() for call in gone)
    # ... give their time back: the next call's is 1 s after the first's, and it is
    # served. Kept by the calls that never ran, its time was 3 s after the first's,
    # more than 2 s off: refused.
    write("gone-3")


def test_a_grpc_call_whose_deadline_comes_before_its_time_takes_none_of_its_keys(
        server: ServerProcess) -> None:
    """(After the counts above: this key's calls wait and are refused too)"""
    client = retail_client(server.address)

    write = functools.partial(written, client, PACED_LATE)

    write("late-0", RPC_DEADLINE)  # on time: the key's next call is a second off
    with ThreadPoolExecutor(2) as pool:
        # (their deadlines come before their times, 1 and 2 s off)
        hasty = [pool.submit(write, f"late-{n}", 0.5) for n in (1, 2)]
        time.sleep(0.2)
        # Asked while the hasty ones wait: its time is 1 s after the first's, and it is
        # served. Taken by the calls given up, it was 3 s after: refused.
        write("late-3", RPC_DEADLINE)
        for call in hasty:
            with pytest.raises((exceptions.DeadlineExceeded, exceptions.ResourceExhausted)):
                call.result()


def test_a_rest_call_whose_client_goes_while_it_waits_gives_its_key_the_time_back(
        server: ServerProcess) -> None:
    """aiohttp cancels no handler when its client goes: a paced request whose client
    closed its connection at once held its place and its key's time for its wait, and
    was counted refused after its client had gone."""
    url = f"http://{server.http_address}/v2/{CATALOG}/userEvents:write"

    def write(visitor: str) -> requests.Response:
        return requests.post(url, json={"eventType": "home-page-view", "visitorId": visitor},
                             headers={"x-goog-api-key": PACED_DROP}, timeout=RPC_DEADLINE)

    assert write("drop-0").status_code == 200  # on time: the next call is a second off
    body = json.dumps({"eventType": "home-page-view", "visitorId": "dropped"}).encode()
    request = (f"POST /v2/{CATALOG}/userEvents:write HTTP/1.1\r\n"
               f"Host: {server.http_address}\r\nContent-Type: application/json\r\n"
               f"x-goog-api-key: {PACED_DROP}\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    for _ in range(2):  # (each to wait, 1 and 2 s, and gone at once)
        with socket.create_connection(server.http_address.split(":")) as sock:
            sock.sendall(request)
    time.sleep(0.3)
    # Their time given back, this call's is 1 s after the first's, and it is served;
    # kept by them, it was 3 s after: refused (429).
    answer = write("drop-3")
    assert answer.status_code == 200, answer.text


PACED_MANY = "paced-many-key-0123456789abcdefg"
CONNECTIONS = 40  # --http-max-connections: a key's requests wait 10 at most (a quarter)


def _timed(ask: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    began = time.monotonic()
    answer = ask()
    return answer, time.monotonic() - began


def _flood(pool: ThreadPoolExecutor, ask: Callable[[], requests.Response],
           calls: int) -> list[Any]:
    """`calls` of `ask` at once, each on a connection of its own, once all but 10 of
    them are answered (those wait), or 0.8 s has passed (before the first of them is on
    time, a second after the last served): their futures, each a (answer, seconds)."""
    flood = [pool.submit(_timed, ask) for _ in range(calls)]
    deadline = time.monotonic() + 0.8
    while sum(f.done() for f in flood) < calls - 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    return flood


def _paced_many_and_free(tmp_path: Any) -> Any:
    """A keys file of two writer keys: PACED_MANY paced at 1 a second, FREE unpaced."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {
        PACED_MANY: {"projects": ["p"], "role": "writer", "calls_per_second": 1,
                     "name": "paced-many"},
        FREE: {"projects": ["p"], "role": "writer", "name": "free"}}}))
    keys.chmod(0o600)
    return keys


@pytest.mark.timeout(120)
def test_a_paced_keys_http_requests_wait_a_few_and_the_rest_are_refused_at_once(
        tmp_path: Any) -> None:
    """Each HTTP request of a paced key that waits for its time (or for its refusal's
    2 s) holds its connection: one key's holder with as many requests as the server
    takes connections held them all, and every other client's request was refused 503.
    Now a key's requests wait at most those its pace serves within 2 s and 16 more,
    never more than a quarter of --http-max-connections: the next is answered 429 at
    once (a pixel its GIF), closing its connection."""
    keys = _paced_many_and_free(tmp_path)
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"), "--auth-file",
                        str(keys), "--http-max-connections", str(CONNECTIONS),
                        "--http-max-connections-per-address", "0") as server:
        url = f"http://{server.http_address}/v2/{CATALOG}/userEvents"

        def write(key: str, visitor: str) -> requests.Response:
            return requests.post(f"{url}:write", json={"eventType": "home-page-view",
                                                       "visitorId": visitor},
                                 headers={"x-goog-api-key": key}, timeout=RPC_DEADLINE)

        def pixel() -> requests.Response:
            return requests.get(f"{url}:collect", timeout=RPC_DEADLINE, params={
                "key": PACED_MANY, "user_event": json.dumps(
                    {"eventType": "home-page-view", "visitorId": "many-pixel"})})

        def refused_over_pace() -> float:
            page = requests.get(f"http://{server.http_address}/metrics",
                                timeout=RPC_DEADLINE).text
            found = re.search(r"^footfall_calls_refused_over_pace_total (\S+)$", page,
                              re.MULTILINE)
            assert found is not None
            return float(found[1])

        assert write(PACED_MANY, "many-0").status_code == 200  # (its burst, spent)
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            flood = _flood(pool, lambda: write(PACED_MANY, "many"), CONNECTIONS)
            # Another key is served meanwhile: there are connections for it (held by
            # the paced key's waits, every one: 503).
            assert write(FREE, "free").status_code == 200
            answers = [f.result() for f in flood]
            # ... and a pixel of the key, past its requests waiting, gets its GIF at once.
            # (30: the connections of those before may not all be let go yet)
            pixels = [f.result() for f in _flood(pool, pixel, CONNECTIONS - 10)]
        too_many = [(a, seconds) for a, seconds in answers if "wait already" in a.text]
        assert len(too_many) == CONNECTIONS - 10, [a.text for a, _ in answers[:3]]
        assert all(a.status_code == 429 and a.headers.get("Connection") == "close"
                   and "10 of its requests over HTTP wait already" in a.text
                   and int(a.headers["Retry-After"]) >= 1
                   and seconds < 1.0 for a, seconds in too_many)  # (the others 1-2 s)
        assert [a.status_code for a, _ in answers].count(200) == 2  # (at 1 s and 2 s)
        assert all(a.status_code == 200 and a.headers["Content-Type"] == "image/gif"
                   for a, _ in pixels), [a.status_code for a, _ in pixels]
        too_many = [(a, seconds) for a, seconds in pixels
                    if "wait already" in a.headers.get("X-Footfall-Error", "")]
        assert len(too_many) == CONNECTIONS - 20
        assert all(a.headers.get("Connection") == "close" and seconds < 1.0
                   for a, seconds in too_many)
        # Every refusal is counted past the key's pace (those at once too), once.
        assert refused_over_pace() == \
            sum(a.status_code == 429 for a, _ in answers) + \
            sum("X-Footfall-Error" in a.headers for a, _ in pixels)


LOOPING = 40  # connections of one client asking in a loop with a paced key
LOOP_SECONDS = 3.0


def _probes_at_once(address: str, probes: int = 50) -> tuple[set[int], float]:
    """`probes` /healthz without a key at once: their statuses, the longest's seconds."""
    def probe() -> tuple[int, float]:
        began = time.monotonic()
        status = requests.get(f"http://{address}/healthz", timeout=RPC_DEADLINE).status_code
        return status, time.monotonic() - began

    with ThreadPoolExecutor(probes) as pool:
        answers = list(pool.map(lambda _: probe(), range(probes)))
    return {status for status, _ in answers}, max(seconds for _, seconds in answers)


def _asking_in_a_loop(address: str, key: str, connections: int, seconds: float
                      ) -> list[tuple[int, str, float]]:
    """`connections` clients from this address, each asking for a write with `key` again
    as soon as it has its answer, on a new connection, for `seconds`: every answer
    (status, its text, seconds it took)."""
    host, port = address.rsplit(":", 1)
    body = json.dumps({"eventType": "home-page-view", "visitorId": "looping"})
    stop = time.monotonic() + seconds

    def loop() -> list[tuple[int, str, float]]:
        answers = []
        while time.monotonic() < stop:
            began = time.monotonic()
            connection = http.client.HTTPConnection(host, int(port), timeout=RPC_DEADLINE)
            try:
                connection.request("POST", f"/v2/{CATALOG}/userEvents:write", body, {
                    "x-goog-api-key": key, "Content-Type": "application/json"})
                answer = connection.getresponse()
                answers.append((answer.status, answer.read().decode(),
                                time.monotonic() - began))
            finally:
                connection.close()
        return answers

    with ThreadPoolExecutor(connections) as pool:
        return [answer for done in [pool.submit(loop) for _ in range(connections)]
                for answer in done.result()]


@pytest.mark.timeout(120)
def test_a_paced_keys_requests_past_those_waiting_are_refused_within_the_addresss_budget(
        tmp_path: Any) -> None:
    """The requests of a paced key past those it may have waiting are refused, and
    such refusals of one client address are answered as its refusals for want of a
    key are: within its budget at once (a burst of 200, then 20 a second), past it
    after a second's delay. Each answered at once, 40 connections of one client
    asking in a loop with a key paced at 1 a second had 1,900 refused a second (0.85
    of a core), and another key's writes fell from 1,150 a second to 135: what the
    pace had spared the server, the refusals spent."""
    keys = _paced_many_and_free(tmp_path)
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db"), "--auth-file",
                        str(keys), "--http-max-connections", "200",
                        "--http-max-connections-per-address", "0") as server:
        answers = _asking_in_a_loop(server.http_address, PACED_MANY, LOOPING, LOOP_SECONDS)
        # The budget spent is the key's, not its address's: 50 health checks without a
        # key from that address are answered at once; the address's budget spent, all
        # but the ~20 a second it gets back waited a second (h7's review).
        probe_statuses, probe_seconds = _probes_at_once(server.http_address)
        free = requests.post(f"http://{server.http_address}/v2/{CATALOG}/userEvents:write",
                             json={"eventType": "home-page-view", "visitorId": "free"},
                             headers={"x-goog-api-key": FREE}, timeout=RPC_DEADLINE)
    assert free.status_code == 200
    too_many = [(text, seconds) for status, text, seconds in answers
                if status == 429 and "wait already" in text]
    # (its budget's 200 and 20 a second, 19 waiting for their time and a refusal of
    # each connection a second past it: some 400; at once, thousands)
    assert 200 <= len(too_many) < 800, len(too_many)
    assert sum(seconds >= 0.9 for _, seconds in too_many) >= LOOPING  # (past the budget)
    assert probe_statuses == {200} and probe_seconds < 0.5, (probe_statuses, probe_seconds)
    # (one a second, and two of those waiting when the loop ended)
    assert [status for status, _, _ in answers].count(200) <= int(LOOP_SECONDS) + SERVED
