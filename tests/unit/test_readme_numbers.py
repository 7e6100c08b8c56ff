"""The numbers README.md states in its prose are the code's: each phrase below is read
out of the README and its number compared with the constant it describes, so a change
of the constant fails here until the README says the new one (the audit found a forced
purge documented in batches of 2,000 long after the code took 8,192). The flags'
defaults quoted in prose (`--max-watches` (1,000)) are compared with their declarations
too; the flag table itself is test_readme_flags.py's. On a failure, fix the README's
sentence (or, if the README is right, the constant)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from server import errors, policy
from server.config import OPTIONS
from server.console import feed, queries
from server.http import connections, gateway
from server.insights import funnel_request
from server.operations import service as operations_service
from server.policy import call_shares, paces
from server.retail import (
    bulk_import,
    collect,
    export,
    gcs,
    import_events,
    line_pool,
    ndjson,
    purge,
    purge_products,
)
from server.store import ANSWERED_WAIT_SECONDS, group_commit, postgres, sql

ROOT = Path(__file__).resolve().parents[2]
KIB, MIB = 1024, 1024 * 1024


def readme_prose() -> str:
    """README.md with its line breaks and runs of spaces as one space, so that a
    phrase is found however the paragraph is wrapped."""
    return re.sub(r"\s+", " ", (ROOT / "README.md").read_text(encoding="utf-8"))


def number(text: str) -> float:
    return float(text.replace(",", ""))


@dataclass(frozen=True)
class Stated:
    """A phrase of the README (a regular expression whose first group is a number)
    and the value the code has for it, in the phrase's unit."""

    phrase: str
    value: Callable[[], float]

    def __str__(self) -> str:  # the test's id: the phrase, its number as N
        return self.phrase.replace(N, "N")


N = r"(\d[\d,]*(?:\.\d+)?)"  # 8,192 or 0.5
STATED = [
    # Purge filter: the forced purge's steps (the audit's find)
    Stated(rf"in batches of at most {N} events among at most", lambda: purge.BATCH),
    Stated(rf"events among at most {N} ids", lambda: purge.WINDOW),
    Stated(rf"ends after the {N} events it is deleting", lambda: sql.DELETE_CHUNK),
    Stated(rf"a write waits for {N} deletions", lambda: sql.DELETE_CHUNK),
    # Pixels and kill -9; Design notes
    Stated(rf"gathers what comes within {N} ms of its first",
           lambda: group_commit.LINGER_SECONDS * 1e3),
    Stated(rf"the next one waits up to {N} ms for as many as the last had",
           lambda: group_commit.GATHER_SECONDS * 1e3),
    Stated(rf"never more than {N} events, nor", lambda: sql.MAX_UNCOMMITTED),
    Stated(rf"never more than [\d,]+ events, nor {N} MiB",
           lambda: sql.MAX_UNCOMMITTED_BYTES / MIB),
    Stated(rf"for {N} s at most, after which a store that cannot commit",
           lambda: ANSWERED_WAIT_SECONDS),
    # Import: line workers given up on
    Stated(rf"past its allowance, {N} s and [\d.]+ s a MiB of the chunk",
           lambda: line_pool.WAIT_SECONDS),
    Stated(rf"past its allowance, [\d.]+ s and {N} s a MiB of the chunk",
           lambda: line_pool.WAIT_SECONDS_PER_MIB),
    Stated(rf"loses its worker {N} times in a row decoded alone", lambda: line_pool.MAX_LOSSES),
    Stated(rf"those of a map still in progress after {N} s at most",
           lambda: line_pool.CLOSE_SECONDS),
    # Pixel and Limits: what a GET carries, and the request head
    Stated(rf"holds more than {N} characters is refused", lambda: collect.GET_EVENT_CHARS),
    Stated(rf"At most {N} KiB of event in a URL", lambda: collect.GET_EVENT_CHARS / KIB),
    Stated(rf"longer than (?:any legal GET collect \()?{N} bytes",
           lambda: connections.MAX_URL_BYTES),
    Stated(rf"at most {N} bytes \(or `--max-request-bytes`", lambda: connections.MAX_URL_BYTES),
    Stated(rf"a header line (?:over )?{N} KiB", lambda: gateway.MAX_HEADER_LINE_BYTES / KIB),
    Stated(rf"a URL's path may have at most {N} KiB", lambda: connections.MAX_PATH_BYTES / KIB),
    Stated(rf"KiB and {N} segments", lambda: connections.MAX_PATH_SEGMENTS),
    Stated(rf"its query at most {N} parameters", lambda: connections.MAX_QUERY_PARAMETERS),
    # Validation
    Stated(rf"past {N} violations both name the first", lambda: errors.MAX_REPORTED_VIOLATIONS),
    Stated(rf"description is cut to {N} characters", lambda: errors.MAX_REPORTED_CHARS),
    # Import and export
    Stated(rf"Inline \(`user_event_inline_source`\): up to {N} events",
           lambda: import_events.MAX_INLINE_EVENTS),
    Stated(rf"at most [\d,]+ URIs of up to {N} characters", lambda: gcs.MAX_URI_CHARS),
    Stated(rf"characters and {N} files, as Google's", lambda: gcs.MAX_FILES),
    Stated(rf"streamed in batches of {N} lines", lambda: bulk_import.BATCH),
    Stated(rf"`--max-event-bytes` \({N} bytes at the default", lambda: ndjson.MAX_LINE_BYTES),
    Stated(rf"lines \(or about {N} MiB\)", lambda: bulk_import.BATCH_BYTES / MIB),
    Stated(rf"`error_samples` \(up to {N}\)", lambda: bulk_import.MAX_ERROR_SAMPLES),
    Stated(rf"a new file once one holds {N} lines", lambda: export.LINES_PER_FILE),
    # PurgeProducts
    Stated(rf"at most {N} conditions, nested at most", lambda: purge_products.MAX_CONDITIONS),
    Stated(rf"nested at most {N} deep", lambda: purge_products.MAX_DEPTH),
    Stated(rf"`purge_sample` with up to {N} names", lambda: purge_products.MAX_SAMPLE),
    Stated(rf"`force=true` deletes in batches of {N}, `PurgeProductsMetadata",
           lambda: purge_products.BATCH),
    # The console API and its watches
    Stated(rf"Lists page with `pageSize` \(default {N}", lambda: queries.DEFAULT_PAGE),
    Stated(rf"Lists page with `pageSize` \(default [\d,]+, at most {N}\)",
           lambda: queries.MAX_PAGE),
    Stated(rf"`ListUserEvents` answers the latest event time first, {N} to a page",
           lambda: queries.DEFAULT_PAGE),
    Stated(rf"to a page \(`pageSize` up to {N}\)", lambda: queries.MAX_PAGE),
    Stated(rf"once more than {N} events \(or", lambda: feed.QUEUE_LIMIT),
    Stated(rf"events \(or {N} MiB of them, as stored\)", lambda: feed.QUEUE_BYTES / MIB),
    Stated(rf"hold at most about {N} MiB of events queued", lambda: feed.HELD_BYTES / MIB),
    Stated(rf"not as it is stored: about {N} KB an event", lambda: feed.HELD_PER_ITEM / KIB),
    Stated(rf"takes no message for {N} s is let go", lambda: feed.SEND_SECONDS),
    # Insights
    Stated(rf"\*\*Funnels\.\*\* Up to {N} steps", lambda: funnel_request.MAX_STEPS),
    Stated(rf"taken with its first {N} distinct products",
           lambda: funnel_request.MAX_ITEMS_PER_EVENT),
    Stated(rf"An answer holds at most {N} groups", lambda: funnel_request.MAX_GROUPS),
    # Limits: waits; Metrics and logs
    Stated(rf"reads the store every {N} s for operations run by another replica",
           lambda: operations_service.WAIT_POLL_SECONDS),
    Stated(rf"at most {N} every [\d.]+ s", lambda: policy.KEYLESS_LINES),
    Stated(rf"at most [\d,]+ every {N} s", lambda: policy.KEYLESS_LINES_SECONDS),
    # Keys and roles: a paced key's requests waiting over HTTP
    Stated(rf"pace's 2 s worth of its requests, the one it may make at once, and {N} more",
           lambda: paces.WAITING_PAST_PACE),
    Stated(rf"pace's {N} s worth of its requests", lambda: paces.PACE_WAIT),
    # Limits: the calls without a key of one client address
    Stated(rf"one client address \(an IPv6 client's /64\) may hold {N} of them",
           lambda: call_shares.KEYLESS_PER_ADDRESS),
    Stated(rf"in progress at once \({N} waiting, see below",
           lambda: policy.WAITING_PER_ADDRESS),
    # Scaling out: the health probe of PostgreSQL
    Stated(rf"`SELECT 1` answered within {N} s", lambda: postgres.PROBE_SECONDS),
    Stated(rf"no answer within {N} s \(a database", lambda: postgres.PROBE_SECONDS),
    Stated(rf"At start a replica waits up to {N} s for the database",
           lambda: postgres.STARTUP_SECONDS),
    # Scaling out: a write held up by a lock (its caller hears at the lock's wait, not
    # at the 5 s a write is tried for while the database is away; the README said 5 s)
    Stated(rf"A write waits at most {N} s for a lock", lambda: postgres.LOCK_WAIT_SECONDS),
    Stated(rf"caller hears `UNAVAILABLE` then, {N} s after it came",
           lambda: postgres.LOCK_WAIT_SECONDS),
    Stated(rf"\(the {N} s a write is tried for are spent by then",
           lambda: postgres.RETRY_SECONDS),
]


@pytest.mark.parametrize("stated", STATED, ids=str)
def test_the_readme_states_the_codes_number(stated: Stated) -> None:
    found = [number(m.group(1)) for m in re.finditer(stated.phrase, readme_prose())]
    assert found, f"README.md no longer says {stated.phrase!r}: update this test's phrase"
    assert all(value == pytest.approx(stated.value()) for value in found), \
        f"README.md says {found} where the code has {stated.value():g}: {stated.phrase!r}"


# `--max-watches` (1,000), `--max-concurrent-rpcs` (default 10,000), `--keyless-stream-
# seconds` (300 s; ...): a flag's default quoted in prose, not scaled (a `1.25 ×
# `--max-event-bytes` (2.5 MiB)` is a multiple of it) nor a bound of another kind
# (`--http-max-connections` (429 past it)).
QUOTED_DEFAULT = re.compile(r"(?<!× )`(--[a-z][a-z0-9-]*)`,? \((?:default )?"
                            r"(\d[\d,]*(?:\.\d+)?)(?: (s|KiB|MiB))?(?=[;,:)])")
UNITS = {None: 1, "s": 1, "KiB": KIB, "MiB": MIB}


def test_flag_defaults_quoted_in_prose_are_the_declared_ones() -> None:
    defaults = {opt.flag: opt.default for opt in OPTIONS}
    quoted = [(m.group(1), number(m.group(2)) * UNITS[m.group(3)])
              for m in QUOTED_DEFAULT.finditer(readme_prose()) if m.group(1) in defaults]
    assert len(quoted) >= 15, quoted  # the pattern still finds them
    wrong = [(flag, said, defaults[flag]) for flag, said in quoted if said != defaults[flag]]
    assert not wrong, f"README.md quotes flags' defaults wrongly (flag, said, default): {wrong}"


def test_the_metrics_the_readme_names_are_the_served_ones() -> None:
    """Every `footfall_*` metric of README.md is declared in server/policy/metrics.py
    (a counter's name there lacks the `_total` it is served with), and every one
    declared is in the README's table."""
    source = (ROOT / "server" / "policy" / "metrics.py").read_text(encoding="utf-8")
    declared = set(re.findall(r'"(footfall_[a-z_]+)"', source))
    named = set(re.findall(r"`(footfall_[a-z_]+)(?:\{[a-z_,]*\})?`", readme_prose()))
    unknown = {name for name in named
               if name not in declared and name.removesuffix("_total") not in declared}
    assert not unknown, f"README.md names metrics the server does not serve: {sorted(unknown)}"
    served = {name for name in named} | {name.removesuffix("_total") for name in named}
    assert declared <= served, f"metrics missing from README.md: {sorted(declared - served)}"
