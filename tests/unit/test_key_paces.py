"""A paced key's calls (calls_per_second in the keys file): on time within a second's
worth of burst, then each a pace's interval later than the one before, and refused
once its time would be more than PACE_WAIT off (server.policy.paces)."""

from __future__ import annotations

import json
import time

import pytest

from server.errors import ResourceExhausted
from server.policy.auth import Grant, KeyRing
from server.policy.metrics import Metrics
from server.policy.paces import (
    PACE_WAIT,
    PACES_KEPT,
    WAITING_PAST_PACE,
    KeyPaces,
    Paced,
    TooManyWaiting,
)

KEYS = {"keys": {
    "ten-a-second-0123456789": {"projects": ["p"], "role": "writer", "name": "ten",
                                "calls_per_second": 10},
    "one-in-two-s-0123456789": {"projects": ["p"], "role": "writer", "name": "half",
                                "calls_per_second": 0.5},
    "unpaced-key-0123456789": {"projects": ["p"], "role": "writer", "name": "free"}}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def grant(key: str) -> Grant:
    found = KeyRing.parse(json.dumps(KEYS)).lookup(key)
    assert found is not None
    return found


def counted(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None
    return value


def test_a_second_of_burst_then_one_call_each_interval_then_refusals() -> None:
    clock, metrics = Clock(), Metrics()
    paces, ten = KeyPaces(metrics, clock), grant("ten-a-second-0123456789")
    assert [paces.of(ten) for _ in range(10)] == [None] * 10  # a second's worth at once
    waits = []
    while isinstance(paced := paces.of(ten), Paced) and paced.refusal is None:
        waits.append(paced.seconds)
    assert waits == pytest.approx([0.1 * n for n in range(1, 21)])  # up to PACE_WAIT
    assert paced is not None and paced.seconds == PACE_WAIT
    assert isinstance(paced.refusal, ResourceExhausted)
    assert paced.refusal.message == (
        "this key is paced at 10 a second (calls_per_second in the keys file), and the calls "
        "it made already take its next one's time 2.1 s ahead, more than 2 s: make fewer "
        "calls at once, or retry later")
    # (its answer comes PACE_WAIT after it: the key's next time 0.1 s after that)
    assert paced.refusal.retry_after == pytest.approx(0.1)
    assert counted(metrics, "footfall_calls_paced_total") == 20
    assert counted(metrics, "footfall_calls_refused_over_pace_total") == 1
    # A refusal takes no time of the key's: the next call is 2.1 s off still; and
    # once time has passed, the calls are on time again.
    refused = paces.of(ten)
    assert refused is not None and refused.refusal is not None
    clock.now += 0.15
    assert paces.of(ten) == Paced(pytest.approx(1.95))
    clock.now += 10
    assert [paces.of(ten) for _ in range(10)] == [None] * 10


def test_a_pace_under_one_a_second_has_a_burst_of_one_and_keys_are_paced_apart() -> None:
    clock = Clock()
    paces = KeyPaces(Metrics(), clock)
    half, ten = grant("one-in-two-s-0123456789"), grant("ten-a-second-0123456789")
    assert paces.of(half) is None
    assert paces.of(half) == Paced(2.0)  # (two seconds apart: on the edge, served)
    later = paces.of(half)
    assert later is not None and later.refusal is not None
    assert "paced at 0.5 a second" in later.refusal.message
    assert [paces.of(ten) for _ in range(10)] == [None] * 10  # another key's own
    assert all(paces.of(grant("unpaced-key-0123456789")) is None for _ in range(1000))
    assert paces.of(None) is None  # (auth off)
    clock.now += 4.0
    assert paces.of(half) is None


def test_a_call_given_up_while_it_waits_gives_its_key_the_time_back() -> None:
    clock = Clock()
    paces, ten = KeyPaces(Metrics(), clock), grant("ten-a-second-0123456789")
    assert [paces.of(ten) for _ in range(10)] == [None] * 10
    waiting = [paces.of(ten) for _ in range(3)]
    assert waiting == [Paced(pytest.approx(s)) for s in (0.1, 0.2, 0.3)]
    clock.now += 0.05
    for gone in waiting[1:]:  # (their clients cancelled them)
        assert gone is not None
        paces.give_back(gone)
    # The next call has the first given back's time, not the one after the last's
    assert paces.of(ten) == Paced(pytest.approx(0.15))
    # A refusal took no time: it has none to give back
    while (refused := paces.of(ten)) is not None and refused.refusal is None:
        pass
    assert refused is not None
    paces.give_back(refused)
    later = paces.of(ten)
    assert later is not None and later.refusal is not None


def test_a_key_given_another_pace_by_a_reload_starts_afresh() -> None:
    clock = Clock()
    paces, half = KeyPaces(Metrics(), clock), grant("one-in-two-s-0123456789")
    assert paces.of(half) is None
    assert paces.of(half) == Paced(2.0)
    # A SIGHUP raised its pace: its calls are not held back by the time its old pace
    # took ahead (its next call 4 s off, refused, where 100 a second makes 100 at once)
    raised = KeyRing.parse(json.dumps({"keys": {"one-in-two-s-0123456789": {
        **KEYS["keys"]["one-in-two-s-0123456789"], "calls_per_second": 100}}})
    ).lookup("one-in-two-s-0123456789")
    assert raised is not None and raised.identity == half.identity
    assert [paces.of(raised) for _ in range(100)] == [None] * 100


def test_more_keys_waiting_for_their_time_than_are_kept_cost_a_call_no_sweep() -> None:
    """(Swept on each call past PACES_KEPT keys, these 15,000 calls took 25 s, not 0.3)"""
    keys = {f"slow-key-{n:05}-0123456789": {"projects": ["p"], "role": "writer",
                                              "calls_per_second": 1}
            for n in range(PACES_KEPT + 1000)}
    ring = KeyRing.parse(json.dumps({"keys": keys}))
    grants = [found for key in keys if (found := ring.lookup(key)) is not None]
    paces = KeyPaces(Metrics(), Clock())
    started = time.perf_counter()
    assert all(paces.of(key) is None for key in grants)  # (every key's time to come)
    assert all(paces.of(key) == Paced(1.0) for key in grants)
    assert all(paces.of(key) == Paced(2.0) for key in grants)
    assert time.perf_counter() - started < 1.0


def test_a_call_whose_deadline_comes_before_its_time_takes_none_of_its_keys() -> None:
    clock, metrics = Clock(), Metrics()
    paces, ten = KeyPaces(metrics, clock), grant("ten-a-second-0123456789")
    assert [paces.of(ten, lambda: 0.05) for _ in range(10)] == [None] * 10
    hasty = paces.of(ten, lambda: 0.05)  # (its time 0.1 s off)
    assert hasty is not None and hasty.seconds == 0.05  # (waits until its deadline)
    assert hasty.refusal is not None and hasty.refusal.message.endswith(
        "its next one's time 0.1 s ahead, past its deadline, 0.1 s away: make fewer calls "
        "at once, or retry later")
    assert hasty.refusal.retry_after == pytest.approx(0.05)  # (from its answer)
    assert paces.of(ten, lambda: None) == Paced(pytest.approx(0.1))  # (its time, untaken)
    assert paces.of(ten, lambda: 0.25) == Paced(pytest.approx(0.2))
    assert counted(metrics, "footfall_calls_refused_over_pace_total") == 1


def test_a_keys_requests_over_http_wait_at_most_its_paces_worth_and_a_few_more() -> None:
    """Each HTTP request that waits holds its connection: a key's waited bounded by the
    connection cap alone, and its holder could hold every connection, each waiting its
    PACE_WAIT. Past those its pace serves within PACE_WAIT and WAITING_PAST_PACE more
    (or the gateway's `most`), one is refused at once, its time given back."""
    clock, metrics = Clock(), Metrics()
    paces, ten = KeyPaces(metrics, clock), grant("ten-a-second-0123456789")
    assert [paces.of(ten) for _ in range(10)] == [None] * 10  # (the burst: no wait)
    most = int(10 * PACE_WAIT) + 1 + WAITING_PAST_PACE  # 20 on time, 1, and 16 refused
    waits = [paces.of(ten) for _ in range(most)]
    assert all(isinstance(p, Paced) for p in waits)
    assert [paces.hold(ten, p, 1000) for p in waits if p is not None] == [None] * most
    refused = counted(metrics, "footfall_calls_refused_over_pace_total")  # (17 of them)
    early = paces.of(ten)
    assert early is not None and early.refusal is not None  # (past its pace, counted)
    too_many = paces.hold(ten, early, 1000)
    assert isinstance(too_many, TooManyWaiting)
    assert too_many.message == (
        f"this key is paced at 10 a second (calls_per_second in the keys file), and {most} "
        f"of its requests over HTTP wait already for their time, the most its pace lets "
        f"wait (those it serves within 2 s, and 16 more): make fewer calls at once, or "
        f"retry later")
    # (answered at once: its time 2.1 s off, counted once)
    assert too_many.retry_after == pytest.approx(2.1)
    assert counted(metrics, "footfall_calls_refused_over_pace_total") == refused + 1
    # One that ends makes room; an on-time one refused so gives its time back.
    paces.let_go(ten)
    clock.now += 2.0  # (the key's next time is 0.1 s off)
    on_time = paces.of(ten)
    assert on_time == Paced(pytest.approx(0.1))
    assert on_time is not None and paces.hold(ten, on_time, 1000) is None
    again = paces.of(ten)
    assert again is not None and again.refusal is None
    assert isinstance(paces.hold(ten, again, 1000), TooManyWaiting)
    assert counted(metrics, "footfall_calls_refused_over_pace_total") == refused + 2
    assert paces.of(ten) == Paced(pytest.approx(0.2))  # (its 0.2 s given back)
    # `most`, the gateway's bound of one key's (a quarter of its connections), first.
    half = grant("one-in-two-s-0123456789")
    first = paces.of(half)
    assert first is None
    waiting = paces.of(half)
    assert waiting is not None and paces.hold(half, waiting, 1) is None
    later = paces.of(half)
    assert later is not None and isinstance(paces.hold(half, later, 1), TooManyWaiting)
