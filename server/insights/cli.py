"""`footfall insights funnel|products|jobs|totals --server HOST:PORT`: the
insights of a running server (over TLS with --tls or --tls-ca), through
footfall.insights.v1 (a reader key is enough), as text or, with --json, as
proto3 JSON. Light to import: `serve`
builds this parser too; the asking is in `client`."""

from __future__ import annotations

import argparse
import decimal
import re
from collections.abc import Mapping
from typing import Any

from server.cli_args import add_source_arguments, row_limit

CATALOG_EXAMPLE = "projects/p/locations/global/catalogs/default_catalog"
TENANT_EXAMPLE = "projects/p/tenants/t"
TIME_EXAMPLE = "2024-05-01T00:00:00Z"
DURATION_FORMS = "a number with s, m, h or d, e.g. 90m, 2h, 1d or 3600s; seconds if none"


def _time(text: str) -> str:
    """argparse type of --start and --end: an RFC 3339 time as a Timestamp's JSON
    reads it; a bad one is refused saying so, with examples (argparse names the flag)."""
    from google.protobuf import timestamp_pb2

    from server.protojson import offset_problem

    offset = offset_problem(text)
    if offset is not None:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}: {offset}")
    try:
        timestamp_pb2.Timestamp().FromJsonString(text)
    except ValueError as exc:
        if "range" in str(exc):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range (0001-01-01T00:00:00Z "
                                             "to 9999-12-31T23:59:59Z)") from None
        raise argparse.ArgumentTypeError(
            f"not an RFC 3339 time with its offset: {text!r} (e.g. {TIME_EXAMPLE} or "
            "2024-05-01T02:00:00+02:00)") from None
    return text


_SPAN = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> str:
    """argparse type of --window: a number with s, m, h or d (seconds when it has
    none: `--window 2h` was refused 'not a duration in seconds'), as the JSON of a
    google.protobuf.Duration (7200s); refused saying the forms it takes, or the
    range a Duration holds."""
    from google.protobuf import duration_pb2

    match = _SPAN.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} ({DURATION_FORMS})")
    try:  # (to the nanosecond, as a Duration holds it)
        seconds = (decimal.Decimal(match[1]) * _UNIT_SECONDS[match[2]]).quantize(
            decimal.Decimal("1e-9"), decimal.ROUND_HALF_EVEN)
        wire = f"{seconds.normalize():f}s"
        duration_pb2.Duration().FromJsonString(wire)
    except (decimal.InvalidOperation, ValueError):  # (well formed: too long)
        raise argparse.ArgumentTypeError(f"{text!r} is out of range (at most 315576000000s, "
                                         "10,000 years)") from None
    return wire


def _top_queries(text: str) -> int:
    """argparse type of --top-queries: 1 to the most ComputeTotals lists, checked before
    any call (-1 was the server's `top_queries: must be between 0 and 1000`, naming no
    flag, and 0 quietly its default)."""
    from server.insights.totals import MAX_QUERIES

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_QUERIES:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_QUERIES:,}, got {value}")
    return value


def add_parser(commands: Any, env: Mapping[str, str]) -> None:
    """The `insights` command and its four subcommands."""
    insights = commands.add_parser("insights", help="funnels, product and job tables, totals "
                                                    "of a running server")
    kinds = insights.add_subparsers(dest="insights_command", required=True)

    def common(name: str, text: str, parent: str) -> argparse.ArgumentParser:
        sub = kinds.add_parser(name, help=text)
        sub.add_argument("--parent", required=True, help=parent)
        add_source_arguments(sub, env, store=False)
        sub.add_argument("--start", type=_time, metavar="TIME",
                         help=f"only events at or after this RFC 3339 time, e.g. {TIME_EXAMPLE}")
        sub.add_argument("--end", type=_time, metavar="TIME",
                         help="only events before this RFC 3339 time")
        sub.add_argument("--json", action="store_true", help="proto3 JSON")
        return sub

    funnel = common("funnel", "entrants per step of a funnel",
                    f"catalog ({CATALOG_EXAMPLE}) or tenant ({TENANT_EXAMPLE}; a project "
                    f"alone: its default tenant)")
    funnel.add_argument("--step", action="append", default=[], metavar="TYPE[,FIELD=VALUE]",
                        help="a step, in order (repeat it); conditions by their JSON names, "
                             "e.g. 'add-to-cart,productId=sku-1'. None: the default funnel")
    # (values in any case: each becomes an enum value, VISITOR or BY_DAY, as --step's
    # job event type does)
    funnel.add_argument("--count-by", type=str.lower,
                        choices=("visitor", "user", "session", "request", "job"),
                        help="what an entrant is: a catalog's visitor (the default), user "
                             "or session; a tenant's request (the default) or job")
    funnel.add_argument("--window", type=_duration, metavar="DURATION",
                        help="conversion window, e.g. 90m, 2h, 1d or 3600s (default 1d)")
    funnel.add_argument("--breakdown", type=str.lower, choices=("day", "item"),
                        help="besides the whole funnel, one per UTC day of the first step, "
                             "or one per product (a tenant's: per job)")
    for name, parent, orders, column in (
            ("products", CATALOG_EXAMPLE, "views desc", ("addToCarts", "add_to_carts")),
            ("jobs", f"{TENANT_EXAMPLE} (a project alone: its default tenant)",
             "impressions desc", ("viewRate", "view_rate"))):
        table = common(name, f"the per-{name[:-1]} table", parent)
        table.add_argument("--order-by", default="",
                           help=f"e.g. '{orders}' (the default); a column by its name in the "
                                f"rows ({column[0]}) or its snake_case one ({column[1]})")
        table.add_argument("--limit", type=row_limit, default=100,
                           help="rows to print (100; all: 0)")
    totals = common("totals", "events per type over time, revenue, top searches",
                    CATALOG_EXAMPLE)
    totals.add_argument("--granularity", type=str.lower, choices=("hour", "day"), default="day",
                        help="events per type counted per UTC day (the default) or hour")
    # (0, the API's "unset", is sent when not given: the server's default)
    totals.add_argument("--top-queries", type=_top_queries, default=0, metavar="N",
                        help="how many of the most searched queries to list (10; at most "
                             "1,000)")


def run(args: argparse.Namespace) -> int:
    """0 done; 2 a bad request or one the server refused as such; 1 otherwise."""
    from server.insights import client

    return client.run(args)
