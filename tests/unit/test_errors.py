"""Long violation lists: the first hundred named, the rest counted, built in linear
time on both transports (the gRPC trailers and Google's JSON error over HTTP)."""

from __future__ import annotations

import json
import time

from google.rpc import error_details_pb2

from server.errors import MAX_REPORTED_VIOLATIONS, FieldViolation, InvalidArgument, to_rpc_status
from server.http.errors import error_body
from server.retail.bulk_import import failure_message
from server.rpc import DETAILS_BUDGET, MESSAGE_BUDGET, status_of

# What a 10 MiB WriteUserEvent of empty attribute texts carries (~25 bytes each).
FLOOD = 400_000
# Old code: the trailer fitting deleted one violation at a time and re-measured
# the rest (quadratic: 40,000 took 15.9 s); linear work here takes a fraction of it.
WELL_UNDER = 2.0


def violations(count: int) -> list[FieldViolation]:
    """`count` violations; past the first 200 (more than is ever shown) one repeats."""
    named = [FieldViolation(f"user_event.attributes['k{i}'].text[0]", "must not be empty")
             for i in range(min(count, 200))]
    return named + named[-1:] * (count - len(named))


def bad_request(details: list[object]) -> list[tuple[str, str]]:
    [detail] = details
    bad = error_details_pb2.BadRequest()
    assert detail.Unpack(bad)  # type: ignore[attr-defined]
    return [(v.field, v.description) for v in bad.field_violations]


def test_a_short_list_is_reported_whole() -> None:
    error = InvalidArgument(violations(MAX_REPORTED_VIOLATIONS))
    assert error.message.count("must not be empty") == MAX_REPORTED_VIOLATIONS
    assert "more violation" not in error.message
    entries = bad_request(list(to_rpc_status(error).details))
    assert len(entries) == MAX_REPORTED_VIOLATIONS and all(field for field, _ in entries)


def test_past_a_hundred_the_rest_are_counted_in_message_and_detail() -> None:
    error = InvalidArgument(violations(MAX_REPORTED_VIOLATIONS + 1))
    assert error.message.endswith("k99'].text[0]: must not be empty; and 1 more violation")
    error = InvalidArgument(violations(150))
    assert error.message.endswith("; and 50 more violations")
    assert error.message.count("must not be empty") == MAX_REPORTED_VIOLATIONS
    assert len(error.violations) == 150, "callers that merge lists still see them all"
    entries = bad_request(list(to_rpc_status(error).details))
    assert len(entries) == MAX_REPORTED_VIOLATIONS + 1
    assert entries[-1] == ("", "and 50 more violations")


def test_a_flood_of_violations_is_answered_in_linear_time_on_both_transports() -> None:
    flood = violations(FLOOD)
    started = time.perf_counter()
    error = InvalidArgument(flood)
    grpc_status = status_of(error)
    body = error_body(to_rpc_status(error))
    elapsed = time.perf_counter() - started
    assert elapsed < WELL_UNDER, f"{elapsed:.2f}s to build the error"
    # HTTP: the first hundred and the count (the old body was 7.8 MB for 40,000).
    document = json.loads(body)["error"]
    assert len(body) < 32 * 1024
    assert document["message"].endswith(f"; and {FLOOD - 100} more violations")
    [detail] = document["details"]
    assert len(detail["fieldViolations"]) == MAX_REPORTED_VIOLATIONS + 1
    assert detail["fieldViolations"][-1] == {"description": f"and {FLOOD - 100} more violations"}
    # gRPC: cut further to fit the trailers, at a violation, still counting the rest.
    assert len(grpc_status.message) <= MESSAGE_BUDGET
    shown = grpc_status.message.count("must not be empty")
    assert 0 < shown < MAX_REPORTED_VIOLATIONS
    assert grpc_status.message.endswith(f"; and {FLOOD - shown} more violations")
    assert sum(d.ByteSize() for d in grpc_status.details) <= DETAILS_BUDGET
    entries = bad_request(list(grpc_status.details))
    assert entries[-1] == ("", f"and {FLOOD - (len(entries) - 1)} more violations")
    assert all(field.startswith("user_event.attributes[") for field, _ in entries[:-1])


def test_an_import_failure_line_is_cut_the_same_way() -> None:
    line = failure_message("gs://b/f.json line 4", True, violations(FLOOD))
    assert line.startswith("gs://b/f.json line 4: user_event.attributes['k0'].text[0]")
    assert line.endswith(f"; and {FLOOD - 100} more violations") and len(line) < 10_000


def test_what_a_client_sent_is_quoted_only_so_far() -> None:
    """Descriptions may quote the client's value (`got '...'`): a megabyte of it
    would make a megabyte of answer, on each of up to a hundred violations."""
    quoted = FieldViolation("user_event.search_query",
                            f"is only allowed on search events, not {'x' * 1_000_000!r}")
    error = InvalidArgument([quoted] * 5)
    assert len(error.message) < 5 * 1_100
    assert error.message.startswith("user_event.search_query: is only allowed on search events, "
                                    "not 'xxx")
    entries = bad_request(list(to_rpc_status(error).details))
    assert all(len(description) == 1_000 and description.endswith("...")
               for _, description in entries)
    assert len(error_body(to_rpc_status(error))) < 16 * 1024


def test_over_grpc_a_message_is_cut_only_when_the_trailers_need_it() -> None:
    ascii_only = InvalidArgument([FieldViolation(f"user_event.attributes['k{i}']", "x" * 100)
                                  for i in range(12)])
    assert 1_000 < len(ascii_only.message) < MESSAGE_BUDGET - 16
    assert status_of(ascii_only).message == ascii_only.message
    # Percent-encoded, each "é" takes 6 bytes: fewer violations fit, still counted.
    accented = InvalidArgument([FieldViolation(f"user_event.attributes['k{i}']", "é" * 100)
                                for i in range(12)])
    message = status_of(accented).message
    shown = message.count("é" * 100)
    assert 0 < shown < 12 and message.endswith(f"; and {12 - shown} more violations")
    assert sum(len(c.encode()) * 3 if c > "~" else 1 for c in message) <= MESSAGE_BUDGET
