"""Write quotas: token buckets per project on an injected clock (no sleeps)."""

from __future__ import annotations

import pytest
from google.rpc import error_details_pb2

from server.clock import FixedClock
from server.errors import ResourceExhausted, to_rpc_status
from server.policy import quota
from server.policy.quota import ByteQuota, WriteQuota


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_714_564_800 * 10**9)


def test_a_minute_of_burst_then_refused_with_retry_info(clock: FixedClock) -> None:
    limit = WriteQuota(60, clock)
    for _ in range(60):
        limit.take("shop")
    with pytest.raises(ResourceExhausted, match="'shop' exhausted") as caught:
        limit.take("shop")
    assert caught.value.retry_after == pytest.approx(1.0)
    status = to_rpc_status(caught.value)
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.ToNanoseconds() == pytest.approx(1e9, rel=1e-6)


def test_tokens_come_back_at_the_rate(clock: FixedClock) -> None:
    limit = WriteQuota(120, clock)  # two a second
    for _ in range(120):
        assert limit.try_take("shop") is None
    assert limit.try_take("shop") == pytest.approx(0.5)
    clock.advance(0.25)
    assert limit.try_take("shop") == pytest.approx(0.25)
    clock.advance(0.25)
    assert limit.try_take("shop") is None
    assert limit.try_take("shop") is not None
    clock.advance(3600)  # never more than a minute's worth
    assert sum(limit.try_take("shop") is None for _ in range(200)) == 120


def test_one_projects_flood_leaves_the_others_alone(clock: FixedClock) -> None:
    limit = WriteQuota(10, clock)
    refused = sum(limit.try_take("flood") is not None for _ in range(1000))
    assert refused == 990
    assert all(limit.try_take("quiet") is None for _ in range(10))


def test_a_clock_set_back_refills_nothing(clock: FixedClock) -> None:
    limit = WriteQuota(60, clock)
    for _ in range(60):
        limit.take("shop")
    clock.advance(-30)
    assert limit.try_take("shop") is not None
    clock.advance(30.5)  # back where it was, plus half a second
    assert limit.try_take("shop") is not None


def test_full_buckets_are_forgotten(clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quota, "SWEEP_AT", 100)
    limit = WriteQuota(60, clock)
    limit._sweep_at = 100
    for i in range(100):
        limit.take(f"p{i}")
    clock.advance(60)  # all full again
    limit.take("late")
    assert len(limit) == 1
    limit.take("late")
    assert limit.try_take("p0") is None  # a new bucket: full


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        WriteQuota(0)


# -- bytes ------------------------------------------------------------------------------


def test_bytes_a_minute_of_burst_then_refused_until_enough_are_due(clock: FixedClock) -> None:
    limit = ByteQuota(60_000, clock)  # 1,000 bytes a second
    limit.take("shop", 50_000)
    limit.take("shop", 10_000)
    with pytest.raises(ResourceExhausted, match="byte quota of project 'shop' exhausted") \
            as caught:
        limit.take("shop", 2_000)
    assert caught.value.retry_after == pytest.approx(2.0)
    retry = error_details_pb2.RetryInfo()
    assert to_rpc_status(caught.value).details[0].Unpack(retry)
    clock.advance(2.0)
    limit.take("shop", 2_000)
    limit.take("other", 60_000)  # each project has its own bucket


def test_a_write_larger_than_a_minute_of_bytes_is_refused_without_retry_info(
        clock: FixedClock) -> None:
    limit = ByteQuota(10_000, clock)
    with pytest.raises(ResourceExhausted, match="more than the byte quota") as caught:
        limit.take("shop", 10_001)
    assert caught.value.retry_after is None and to_rpc_status(caught.value).details == []
    limit.take("shop", 10_000)  # nothing was spent by the refusal
