"""`footfall insights funnel|products|jobs|totals --server HOST:PORT`: the
insights of a running server (over TLS with --tls or --tls-ca), through
footfall.insights.v1 (a reader key is enough), as text or, with --json, as
proto3 JSON. Light to import: `serve`
builds this parser too; the asking is in `client`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from server.cli_args import add_source_arguments, row_limit

CATALOG_EXAMPLE = "projects/p/locations/global/catalogs/default_catalog"
TENANT_EXAMPLE = "projects/p/tenants/t"
TIME_EXAMPLE = "2024-05-01T00:00:00Z"


_RANGES = {"Duration": "at most 315576000000s, 10,000 years",
           "Timestamp": "0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"}


def _json_value(kind: str, what: str, examples: str) -> Callable[[str], str]:
    """argparse type of a flag holding a google.protobuf `kind` (Timestamp, Duration)
    as its JSON form reads it; a bad one is refused saying `what` it must be, with
    `examples` (argparse names the flag)."""
    def parse(text: str) -> str:
        from google.protobuf import duration_pb2, timestamp_pb2

        reads = {"Timestamp": timestamp_pb2.Timestamp().FromJsonString,
                 "Duration": duration_pb2.Duration().FromJsonString}
        try:
            reads[kind](text)
        except ValueError as exc:
            if "range" in str(exc):  # ("not a duration in seconds" of one, too long)
                raise argparse.ArgumentTypeError(f"{text!r} is out of range ({_RANGES[kind]})"
                                                 ) from None
            if kind == "Duration" and text.strip().replace(".", "", 1).isdigit():
                # (3600 is a duration in seconds to a person: its unit was left out)
                raise argparse.ArgumentTypeError(
                    f"a duration takes its unit: {text.strip()}s, not {text!r}") from None
            raise argparse.ArgumentTypeError(f"not {what}: {text!r} ({examples})") from None
        return text

    return parse


_time = _json_value("Timestamp", "an RFC 3339 time with its offset",
                    f"e.g. {TIME_EXAMPLE} or 2024-05-01T02:00:00+02:00")
_duration = _json_value("Duration", "a duration in seconds",
                        "e.g. 3600s for an hour, 86400s for a day")


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
                        choices=("visitor", "user", "session", "request", "job"))
    funnel.add_argument("--window", type=_duration, metavar="DURATION",
                        help="conversion window, e.g. 3600s (default 1 day)")
    funnel.add_argument("--breakdown", type=str.lower, choices=("day", "item"))
    for name, parent, orders in (("products", CATALOG_EXAMPLE, "views desc"),
                                 ("jobs", f"{TENANT_EXAMPLE} (a project alone: its "
                                          "default tenant)", "impressions desc")):
        table = common(name, f"the per-{name[:-1]} table", parent)
        table.add_argument("--order-by", default="", help=f"e.g. '{orders}' (the default)")
        table.add_argument("--limit", type=row_limit, default=100, help="rows to print (all: 0)")
    totals = common("totals", "events per type over time, revenue, top searches",
                    CATALOG_EXAMPLE)
    totals.add_argument("--granularity", type=str.lower, choices=("hour", "day"), default="day")
    totals.add_argument("--top-queries", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """0 done; 2 a bad request or one the server refused as such; 1 otherwise."""
    from server.insights import client

    return client.run(args)
