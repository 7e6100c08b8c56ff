"""What `footfall insights` asks a running server and how it prints the answer."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import grpc
from footfall.insights.v1 import insights_pb2, insights_pb2_grpc
from footfall.talent.v4 import event_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from server.errors import FootfallError, InvalidArgument
from server.inspect import connection, remote_failed
from server.lines import printable
from server.names import parse_catalog, parse_tenant, parse_tenant_or_project
from server.remote import CALL_SECONDS, RemoteError, pages

_SWITCHES = {"true": True, "false": False}
_JOB_EVENT_TYPES = frozenset(event_pb2.JobEvent.JobEventType.keys())


# The conditions a step may have, by their JSON names (the proto names work too).
_CONDITION_FIELDS = [f for f in insights_pb2.FunnelStep.DESCRIPTOR.fields
                     if f.name != "event_type"]
_CONDITIONS = [f.json_name for f in _CONDITION_FIELDS]
_CONDITION_NAMES = {*_CONDITIONS, *(f.name for f in _CONDITION_FIELDS)}
_PROTO_NAMES = {**{f.json_name: f.name for f in _CONDITION_FIELDS},
                **{f.name: f.name for f in _CONDITION_FIELDS}}


def _parts(text: str) -> list[str]:
    """The comma-separated parts of a --step, a value quoted from its start whole
    (productId="a,b" was cut at its comma; a quote left open runs to the end, and is
    refused as such by _step)."""
    parts, current, quote = [], "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'" and current.rstrip().endswith("="):
            quote = char
        elif char == ",":
            parts.append(current)
            current = ""
            continue
        current += char
    return [*parts, current]


def _step(text: str) -> dict[str, Any]:
    """One `--step TYPE[,FIELD=VALUE]...` as proto3 JSON; json_format.ParseError
    naming --step for a condition without `=VALUE` (it was dropped unsaid), one
    that is no condition of a step (protobuf's two lines of words were said), or a
    switch (searchQueryPresent) that is not true or false."""
    # (commas apart the parts, but not within a quoted value: productId="a,b")
    kind, *conditions = _parts(text)
    if any(c.isspace() or c == "=" for c in kind.strip()):  # (a type no event has: 0, unsaid)
        raise json_format.ParseError(f"--step {text!r}: the event type {kind.strip()!r} holds "
                                     "a space or '='; conditions follow it after commas: "
                                     "TYPE,FIELD=VALUE")
    step: dict[str, Any] = {"eventType": kind.strip()}
    given: dict[str, str] = {}  # each condition's field (proto name) -> as written
    for condition in conditions:
        field, equals, value = (part.strip() for part in condition.partition("="))
        if not equals:  # (most likely the rest of a value cut at its comma: job=x,y)
            raise json_format.ParseError(f"--step {text!r}: a condition is FIELD=VALUE, "
                                         f"got {condition.strip()!r} (a value holding a "
                                         f"comma is quoted: job=\"x,y\")")
        if field not in _CONDITION_NAMES:
            raise json_format.ParseError(f"--step {text!r}: unknown condition {field!r}; "
                                         f"one of {', '.join(_CONDITIONS)}")
        name = _PROTO_NAMES[field]
        if name in given:  # (the last of the two was taken, unsaid)
            raise json_format.ParseError(f"--step {text!r}: {field} is given twice; a step "
                                         "matches one value of each condition")
        given[name] = field
        # Quoted as in a filter (productId = "sku-1"): the quotes are no part of the
        # value, which matched nothing.
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif value[:1] in ("\"", "'") or value[-1:] in ("\"", "'"):
            raise json_format.ParseError(f"--step {text!r}: {field}'s value has a quote at "
                                         f"one end only: {value!r}")
        if not value:  # (job= named ".../jobs/", a value never typed)
            raise json_format.ParseError(f"--step {text!r}: {field} has no value")
        if field in ("searchQueryPresent", "search_query_present"):
            if value.lower() not in _SWITCHES:
                raise json_format.ParseError(f"--step {text!r}: {field} is true or false, "
                                             f"got {value!r}")
            step[field] = _SWITCHES[value.lower()]
        else:
            step[field] = value
    return step


# What a command asked of the other kind of data set answers instead, in this CLI's
# words: the server's refusal names RPCs (RunFunnel's breakdown BY_DAY, ListJobStats)
# and proto values (count_by: must be REQUEST or JOB), which a shell user never typed.
_OF_A_CATALOG = {
    "totals": "totals are a catalog's: a tenant's events by day are `footfall insights "
              "funnel --breakdown day`, each job's counts `footfall insights jobs` "
              "(--start and --end for a range)",
    "products": "per-product counts are a catalog's: a tenant's per-job counts are "
                "`footfall insights jobs`",
}
_OF_A_TENANT = {"jobs": "per-job counts are a tenant's: a catalog's per-product counts are "
                        "`footfall insights products`"}
_COUNTS_BY = {True: ("request", "job"), False: ("visitor", "user", "session")}


def _fits(args: argparse.Namespace) -> None:
    """json_format.ParseError when the command asks a tenant (a catalog) what only a
    catalog (a tenant) answers, saying what to ask instead; a project alone becomes its
    default tenant in `args.parent`."""
    if _names(args.parent, parse_tenant_or_project) and not _names(args.parent, parse_tenant):
        # A project alone: its default tenant, as `talent-events list` reads it (talent
        # v4beta1's parent, where Google's samples write): it was refused here.
        args.parent = str(parse_tenant_or_project(args.parent, "--parent"))
    tenant = _names(args.parent, parse_tenant)
    command = args.insights_command
    if not tenant and not _names(args.parent, parse_catalog):
        _refuse_parent(args.parent, command)
    said = (_OF_A_CATALOG if tenant else _OF_A_TENANT).get(command)
    if said is not None:
        kind = "a talent tenant" if tenant else "a retail catalog"
        raise json_format.ParseError(f"--parent: {args.parent!r} is {kind}; {said}")
    counts = _COUNTS_BY[tenant]
    if command == "funnel" and args.count_by and args.count_by not in counts:
        raise json_format.ParseError(
            f"--count-by: a {'tenant' if tenant else 'catalog'}'s funnel counts by "
            f"{', '.join(counts[:-1])} or {counts[-1]}, got {args.count_by!r}")


def _refuse_parent(parent: str, command: str) -> None:
    """json_format.ParseError naming --parent, which is neither a catalog nor a
    tenant, before connecting: the server's answer named `parent`, a field the
    command line does not have (and took a round trip to say it)."""
    try:
        if command == "jobs" or command == "funnel" and "/tenants/" in parent:
            parse_tenant_or_project(parent, "--parent")
        if command != "funnel" or "/catalogs/" in parent:
            parse_catalog(parent, "--parent")
    except InvalidArgument as exc:
        raise json_format.ParseError(exc.message) from None
    raise json_format.ParseError(
        f"--parent: must be a catalog (projects/*/locations/*/catalogs/*) or a tenant "
        f"(projects/*/tenants/*; a project alone, projects/*, its default tenant), got "
        f"{parent[:200]!r}")


def _names(parent: str, parse: Callable[[str], object]) -> bool:
    try:
        parse(parent)
    except InvalidArgument:
        return False
    return True


def _request(args: argparse.Namespace) -> Message:
    """The request the command line asks for (json_format.ParseError on a bad value)."""
    _fits(args)
    fields: dict[str, Any] = {"parent": args.parent}
    if args.start:
        fields["startTime"] = args.start
    if args.end:
        fields["endTime"] = args.end
    command = args.insights_command
    if command == "funnel":
        fields["steps"] = [_step(s) for s in args.step]
        if "/tenants/" in args.parent:
            for step in fields["steps"]:  # a job by its id, as `talent-events list` shows it
                if "/" not in step.get("job", "/"):
                    step["job"] = f"{args.parent}/jobs/{step['job']}"
                # a JobEventType in any case, as --count-by takes its values: `--step
                # view` was refused 'must be a JobEventType (..., VIEW, ...)'. (A catalog's
                # type is kept as given: a custom type is any text, in any case.)
                if step["eventType"].upper() in _JOB_EVENT_TYPES:
                    step["eventType"] = step["eventType"].upper()
        if args.count_by:
            fields["countBy"] = args.count_by.upper()
        if args.window:
            fields["conversionWindow"] = args.window
        if args.breakdown:
            fields["breakdown"] = f"BY_{args.breakdown.upper()}"
        return json_format.ParseDict(fields, insights_pb2.RunFunnelRequest())
    if command == "totals":
        fields.update(granularity=args.granularity.upper(), topQueries=args.top_queries)
        return json_format.ParseDict(fields, insights_pb2.ComputeTotalsRequest())
    fields.update(orderBy=args.order_by, pageSize=min(args.limit or 1000, 1000))
    kind = (insights_pb2.ListProductStatsRequest if command == "products"
            else insights_pb2.ListJobStatsRequest)
    return json_format.ParseDict(fields, kind())


def _rows(call: Callable[[Any], Any], request: Any, field: str,
          limit: int, notes: list[str], cut: list[str]) -> Iterator[Message]:
    """The rows of a table, page after page, up to `limit` (0: all); each page's
    notes not yet in `notes` are added to it, and to `cut` what says that rows
    were left out past `limit` (as every `list` says it: a table of 100 rows read
    as the whole table)."""
    shown = 0
    for page in pages(call, request):
        notes.extend(note for note in page.notes if note not in notes)
        for row in getattr(page, field):
            if limit and shown == limit:
                cut.append(f"only {limit} shown; more are stored (raise --limit; 0 shows all)")
                return
            shown += 1
            yield row


def _counted(number: int, one: str, many: str = "") -> str:
    """1 and "purchase" as "1 purchase", 3 as "3 purchases" (`many`: if not one + s)."""
    return f"{number:,} {one if number == 1 else many or one + 's'}"


def _step_text(step: Any, parent: str) -> str:
    """A funnel step as --step takes it: its type, then its conditions (a job of the
    funnel's tenant by its id, as it was given and as `talent-events list` shows it)."""
    conditions = json_format.MessageToDict(step)
    conditions.pop("eventType", None)
    if conditions.get("job", "").startswith(f"{parent}/jobs/"):
        conditions["job"] = conditions["job"].removeprefix(f"{parent}/jobs/")
    return ",".join([step.event_type, *(f"{field}={_value_text(value)}"
                                         for field, value in conditions.items())])


def _value_text(value: Any) -> str:
    """A condition's value as --step takes it back: quoted when it holds a comma or
    a quote at an end (job=x,y read as job=x and a condition 'y')."""
    if value is True:
        return "true"
    text = str(value)
    if "," in text or (text and (text[0] in "\"'" or text[-1] in "\"'")):
        return f"'{text}'" if '"' in text else f'"{text}"'
    return text


def _rate(rate: float, whole: int) -> str:
    """`rate` of `whole` as a percentage, as the console shows it: "–" when `whole` is
    0 (the answer says 0: viewRate=0.0% of a job of no impressions read as none of
    them viewed), "<0.1%" for a rate above 0 that rounds to 0.0% (25 of 166,000 read
    as none)."""
    if not whole:
        return "–"
    return "<0.1%" if 0 < rate < 0.0005 else f"{rate:.1%}"


# Units of a median as the console writes them (format.js duration), largest first.
_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def _duration_text(seconds: float) -> str:
    """A median time as the console shows it: "<0.1 s", "7.5 s", "1 h 30 min" (its
    two largest units). Written as a Duration it read "0.016837500s", and a job
    seeker's day between a view and an application "86400s"."""
    if 0 < seconds < 0.05:
        return "<0.1 s"
    if seconds < 60:
        # (a tie up, as the console's toFixed(1): round() halves to even, 0.25 s "0.2 s"
        # where the console wrote "0.3 s")
        return f"{float(Decimal(seconds).quantize(Decimal('0.1'), ROUND_HALF_UP)):g} s"
    shown: list[str] = []
    rest = int(seconds + 0.5)  # (half up, as the console's Math.round: round() halves to even)
    for size, unit in _UNITS:
        count, rest = divmod(rest, size)
        if count or shown:
            shown.append(f"{count} {unit}" if count else "")
        if len(shown) == 2:
            break
    return " ".join(part for part in shown if part)


def _text(answer: Any, command: str, parent: str) -> Iterator[str]:
    if command == "funnel":
        groups = [insights_pb2.FunnelGroup(key="all", steps=answer.steps), *answer.groups]
        width = max([24, *(len(_step_text(r.step, parent)) for r in answer.steps)])
        yield (f"  {'step':<{width}} {'entrants':>10} {'from prev':>11} {'from first':>11}"
               f"  median time from prev")
        for group in groups:
            yield f"{_job_text(group.key, parent)}:"
            for i, r in enumerate(group.steps):
                gap = r.median_time_from_previous
                median = (f"  {_duration_text(gap.ToTimedelta().total_seconds())}"
                          if r.HasField("median_time_from_previous") else "")
                # (the first step has none before it: "first step", as the console says)
                previous = _rate(r.conversion_from_previous, group.steps[i - 1].entrants) \
                    if i else "first step"
                yield (f"  {_step_text(r.step, parent):<{width}} {r.entrants:>10,} "
                       f"{previous:>11} "
                       f"{_rate(r.conversion_from_first, group.steps[0].entrants):>11}"
                       f"{median}")
        yield f"{_counted(answer.events_read, 'event')} read"
        yield from answer.notes
    elif command == "totals":
        for bucket in answer.buckets:
            counts = " ".join(f"{c.event_type}={c.count}" for c in bucket.event_counts)
            yield (f"{bucket.start_time.ToJsonString()}  visitors={bucket.distinct_visitors}"
                   f"  {counts}")
        for paid in answer.revenue:
            yield (f"{paid.day}  {paid.currency_code} "
                   f"{amount_text(paid.revenue, paid.currency_code)} "
                   f"({_counted(paid.purchases, 'purchase')})")
        yield f"distinct visitors: {answer.distinct_visitors:,}"
        for query in answer.top_queries:
            yield (f"{query.query!r}: {_counted(query.searches, 'search', 'searches')}, "
                   f"{query.led_to_detail_view:,} led to a detail view")
        yield from answer.notes  # what was left out, as a funnel's


def run(args: argparse.Namespace) -> int:
    """0 done; 2 a bad request or one the server refused as such; 1 otherwise."""
    try:
        request = _request(args)
    except json_format.ParseError as exc:
        print(f"footfall: {exc}", file=sys.stderr)
        return 2
    try:
        reach = connection(args)
    except FootfallError as exc:
        print(f"footfall: {exc.message}", file=sys.stderr)
        return 2
    metadata = (("x-goog-api-key", args.key),) if args.key else ()
    command = args.insights_command
    notes: list[str] = []  # of a table's pages
    cut: list[str] = []  # that a table was cut at --limit
    with reach.channel() as channel:
        stub = insights_pb2_grpc.InsightsServiceStub(channel)
        method = {"funnel": stub.RunFunnel, "totals": stub.ComputeTotals,
                  "products": stub.ListProductStats, "jobs": stub.ListJobStats}[command]

        def call(request: Any) -> Any:
            try:
                return method(request, metadata=metadata, timeout=CALL_SECONDS)
            except grpc.RpcError as exc:
                raise RemoteError(exc.code(), exc.details() or "") from None

        try:
            if command in ("funnel", "totals"):
                answer = call(request)
                lines = ([json.dumps(json_format.MessageToDict(answer))] if args.json
                         else list(_text(answer, command, args.parent)))
                empty = (answer.events_read == 0 if command == "funnel"
                         else not answer.buckets)
            else:
                field = "products" if command == "products" else "jobs"
                lines = [json.dumps(json_format.MessageToDict(row)) if args.json
                         else _row_text(row, args.parent)
                         for row in _rows(call, request, field, args.limit, notes, cut)]
                empty = not lines
        except RemoteError as exc:
            return remote_failed(exc, args)
    for line in lines:
        print(printable(line))  # ids and event types are what clients sent
    # On stderr, so that every line on stdout stays a row (or the JSON answer, which
    # holds a funnel's and totals' notes itself); without them a revenue of 0 for
    # purchased units that named no price went unexplained, with --json too.
    for note in notes:
        print(f"footfall: {printable(note)}", file=sys.stderr)
    for note in cut:
        print(f"footfall: {note}", file=sys.stderr)
    if empty:  # a mistyped name and a quiet catalog look alike otherwise
        print(f"footfall: {printable(_nothing(args))}", file=sys.stderr)
    return 0


def _nothing(args: argparse.Namespace) -> str:
    """What stderr says when nothing was counted: where, and what to check."""
    tenant = "/tenants/" in args.parent or args.parent.count("/") == 1  # (a project: its
    # default tenant)
    what = "client event" if tenant else "event"
    which = " of the steps' types" if args.insights_command == "funnel" else ""
    when = " in that time" if args.start or args.end else ""
    refused = ""
    if tenant:  # (a job site whose client sent profile events alone was told only that
        # none was read: they were refused, and the refusals kept)
        refused = (f"; `footfall rejections list --parent {args.parent}` lists the requests "
                   "refused that named it: profile events, say, which Footfall does not "
                   "store")
    return (f"no {what}{which} of {args.parent} was read{when} (`footfall catalogs` lists "
            f"the catalogs and tenants that hold events{refused})")


def _job_text(name: str, parent: str) -> str:
    """A job of the tenant `parent` by its id, as `talent-events list` shows it and
    --step job= takes it (projects/P/tenants/T/jobs/ before each id buried the ids
    in a line of a table); any other name as it is."""
    return name.removeprefix(f"{parent}/jobs/")


# A table's rates by their JSON names, each with the count it divides by.
_RATE_OF = {"viewToPurchaseRate": "views", "viewRate": "impressions",
            "applicationStartRate": "views", "applicationFinishRate": "applicationStarts"}


# ISO 4217's currencies whose minor unit is not a hundredth (the console asks the
# browser's Intl, which knows them too): "123 JPY", not "123.00 JPY".
_DIGITS = {**dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                            "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
           **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
           **dict.fromkeys(("CLF", "UYW"), 4)}


def amount_text(amount: float, currency: str) -> str:
    """An amount to its currency's minor unit: "20.00" (USD), "123" (JPY), "1.250" (KWD)."""
    return f"{amount:.{_DIGITS.get(currency, 2)}f}"


def _row_text(row: Any, parent: str) -> str:
    """A table's row as `NAME  field=value ...`, every field of the row's message in
    the message's order, zero or not, so that the rows' columns line up; a job by its
    id, a rate as a percentage (as the funnel's; 0.30303030303030304 read poorly),
    or "–" when it divides by 0."""
    given = json_format.MessageToDict(row, always_print_fields_with_no_presence=True)
    # MessageToDict puts the fields left at zero after the others: each row had its
    # own order.
    fields = {f.json_name: given[f.json_name] for f in row.DESCRIPTOR.fields
              if f.json_name in given}
    name = fields.pop("productId", None) or _job_text(fields.pop("job"), parent)
    fields.pop("company", None)
    for key, value in fields.items():
        if key.endswith("Rate"):
            fields[key] = _rate(value, int(fields[_RATE_OF[key]]))
    if "revenue" in fields:
        fields["revenue"] = ",".join(
            f"{amount_text(m['amount'], m['currencyCode'])} {m['currencyCode']}"
            for m in fields["revenue"]) or "0"
    return f"{name}  " + " ".join(f"{k}={v}" for k, v in fields.items())
