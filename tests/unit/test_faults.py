"""The x-footfall-fail header: its grammar and how after/times count calls."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import InvalidArgument
from server.policy.faults import FaultInjector, FaultSpec, parse_spec

WRITE = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"


@pytest.mark.parametrize(("text", "spec"), [
    ("UNAVAILABLE", FaultSpec(grpc.StatusCode.UNAVAILABLE)),
    ("unavailable", FaultSpec(grpc.StatusCode.UNAVAILABLE)),
    ("INTERNAL;after=2", FaultSpec(grpc.StatusCode.INTERNAL, after=2)),
    (" ABORTED ; times=1 ; after=0 ;", FaultSpec(grpc.StatusCode.ABORTED, times=1)),
    ("OK;delay=1.5", FaultSpec(None, delay=1.5)),
    ("UNAVAILABLE;times=3;id=run-7", FaultSpec(grpc.StatusCode.UNAVAILABLE, times=3)),
])
def test_parses(text: str, spec: FaultSpec) -> None:
    assert parse_spec(text) == spec


@pytest.mark.parametrize(("text", "words"), [
    ("", "unknown status code"),
    ("BROKEN", "unknown status code 'BROKEN'"),
    ("UNAVAILABLE;after=-1", "after must be a whole number"),
    ("UNAVAILABLE;times=x", "times must be a whole number"),
    ("UNAVAILABLE;times=99999999999", "times must be a whole number"),
    ("UNAVAILABLE;delay=soon", "delay must be seconds"),
    ("UNAVAILABLE;delay=61", "delay must be 0..60"),
    ("UNAVAILABLE;delay=nan", "delay must be 0..60"),
    ("UNAVAILABLE;retries=2", "unknown option 'retries'"),
])
def test_refuses_naming_the_header(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words) as caught:
        parse_spec(text)
    assert caught.value.violations[0].field == "x-footfall-fail"


def test_times_fails_that_many_calls_then_lets_them_through() -> None:
    faults = FaultInjector()
    header = "UNAVAILABLE;times=2"
    spec = parse_spec(header)
    assert [faults.fires(WRITE, header, spec) for _ in range(4)] == [True, True, False, False]
    other = "/google.cloud.retail.v2.UserEventService/CollectUserEvent"
    assert faults.fires(other, header, spec), "each RPC counts on its own"


def test_after_lets_calls_through_first() -> None:
    faults = FaultInjector()
    header = "INTERNAL;after=2;times=1"
    spec = parse_spec(header)
    assert [faults.fires(WRITE, header, spec) for _ in range(4)] == [False, False, True, False]
    always = "INTERNAL;after=1"
    assert [faults.fires(WRITE, always, parse_spec(always)) for _ in range(3)] == \
        [False, True, True]


def test_ok_never_fails_and_counters_stay_bounded() -> None:
    faults = FaultInjector(max_tracked=10)
    assert not faults.fires(WRITE, "OK", parse_spec("OK"))
    for i in range(100):
        header = f"UNAVAILABLE;times=1;id={i}"
        assert faults.fires(WRITE, header, parse_spec(header))
    assert len(faults._seen) == 10


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_header_parses_or_is_invalid_argument(text: str) -> None:
    try:
        spec = parse_spec(text)
    except InvalidArgument as exc:
        assert exc.violations[0].field == "x-footfall-fail"
    else:
        assert spec.after >= 0 and 0 <= spec.delay <= 60
