"""A RunFunnelRequest answered: its steps parsed and checked, the events of the
catalog or tenant turned into funnel points, the counts put in the response."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from footfall.insights.v1 import insights_pb2
from footfall.retail.v2 import user_event_pb2
from footfall.talent.v4 import event_pb2
from google.protobuf import duration_pb2

from server.errors import FieldViolation, InvalidArgument, gather, raise_if_any
from server.insights import funnel, read
from server.names import (
    CatalogName,
    TenantName,
    job_spellings,
    parse_catalog,
    parse_job_or_default_tenant_job,
    parse_tenant,
)
from server.retail.join import load_products
from server.retail.validation import EVENT_TYPES
from server.store import Store

MAX_STEPS = 10
# The longest condition text a step may give (a product id, as ids are; other texts
# as Google's longest event texts): each step comes back in every group's results.
MAX_PRODUCT_ID = 128
MAX_CONDITION = 5_000
# A breakdown has as many groups as products, jobs or days hold entrants: the answer
# keeps at most this many, and stays under this size (as a console page does), so
# that it never passes a client's 4 MiB message limit nor the server's own.
MAX_GROUPS = 1_000
# The products (or jobs) of one event a funnel takes: an event of 150,000 products
# (1.5 MB) made 150,000 trails of a breakdown, 55 MB of the server's memory an event,
# and a talent event counted by JOB compared each of its jobs with each. A search
# page shows at most 120 products (Google's retail page_size) or 100 jobs.
MAX_ITEMS_PER_EVENT = 200
MAX_GROUP_BYTES = 3 * 1024 * 1024
DEFAULT_WINDOW_US = funnel.US_PER_DAY
SHOP_FUNNEL = ("home-page-view", "detail-page-view", "add-to-cart", "purchase-complete")
TALENT_FUNNEL = ("IMPRESSION", "VIEW", "APPLICATION_START", "APPLICATION_FINISH")
JOB_EVENT_TYPES = tuple(name for name in event_pb2.JobEvent.JobEventType.keys()
                        if name != "JOB_EVENT_TYPE_UNSPECIFIED")
RETAIL_COUNTS = (insights_pb2.VISITOR, insights_pb2.USER, insights_pb2.SESSION)
TALENT_COUNTS = (insights_pb2.REQUEST, insights_pb2.JOB)
# The event field that names an entrant, per CountBy (USER: user_info.user_id).
ENTRANT_FIELDS: dict[int, str] = {
    insights_pb2.VISITOR: "visitor_id", insights_pb2.SESSION: "session_id",
    insights_pb2.REQUEST: "request_id"}
# The user_events column that holds it, where one does.
ENTRANT_COLUMNS: dict[int, str] = {insights_pb2.VISITOR: "visitor_id",
                                   insights_pb2.USER: "user_id"}
_RETAIL_CONDITIONS = ("product_id", "category", "search_query_present", "attribute_key",
                      "attribute_value")
NO_ITEM_NOTE = ("no {item} groups: a {item}'s group begins with a first-step event that "
                "names the {item}, and no first-step event names one (home-page-view names "
                "no product; begin with detail-page-view to compare products)")
CATEGORY_NOTE = ("categories are the events' page categories, their products' categories "
                 "as stored with them (joined when written) and those the catalog's "
                 "default branch holds now; a product in neither has none")
UNNAMED_NOTE = "events of the steps that name no {name}, left out: {count:,} (counted by {by})"
CUT_NOTE = ("events that name more than {most} {items}, of which the first {most} were "
            "counted: {count:,}")
UNNAMED_BY: dict[int, str] = {
    insights_pb2.VISITOR: "visitor", insights_pb2.USER: "user (user_info.user_id)",
    insights_pb2.SESSION: "session (session_id)", insights_pb2.REQUEST: "request (request_id)",
    insights_pb2.JOB: "job"}
COMPANY_NOTE = ("companies are not counted: client events name jobs only, and Footfall "
                "stores no job records")

Match = Callable[[Any], bool]


@dataclass(frozen=True)
class Funnel:
    """A checked request: whose events, which steps, counted how."""

    parent: CatalogName | TenantName
    steps: tuple[insights_pb2.FunnelStep, ...]
    count_by: int
    window_us: int
    span: read.TimeRange
    breakdown: int

    @property
    def retail(self) -> bool:
        return isinstance(self.parent, CatalogName)


def parse(request: insights_pb2.RunFunnelRequest) -> Funnel:
    """The funnel `request` asks for, defaults filled in; INVALID_ARGUMENT naming
    every bad field."""
    violations: list[FieldViolation] = []
    parent = gather(violations, _parent, request.parent)
    retail = not isinstance(parent, TenantName)
    if len(request.steps) > MAX_STEPS:
        violations.append(FieldViolation("steps", f"must be at most {MAX_STEPS}, "
                                                  f"got {len(request.steps)}"))
    # Only the steps a funnel may have are checked: this runs on the loop, and a
    # million empty steps (5 MB, a reader key's) held every call of both transports
    # for 2.6 s while each was told it had no event type.
    steps = tuple(request.steps[:MAX_STEPS]) or tuple(
        insights_pb2.FunnelStep(event_type=t) for t in (SHOP_FUNNEL if retail else TALENT_FUNNEL))
    for i, step in enumerate(steps):
        violations += _step_violations(f"steps[{i}]", step, retail,
                                       parent if isinstance(parent, TenantName) else None)
    counts = RETAIL_COUNTS if retail else TALENT_COUNTS
    count_by = request.count_by or counts[0]
    if count_by not in counts:
        names = " or ".join(insights_pb2.CountBy.Name(c) for c in counts)
        violations.append(FieldViolation("count_by", f"must be {names} for a "
                                                     f"{'catalog' if retail else 'tenant'}"))
    window = gather(violations, read.parse_duration, request, "conversion_window",
                    DEFAULT_WINDOW_US)
    span = gather(violations, read.parse_range, request)
    if request.breakdown not in insights_pb2.Breakdown.values():
        violations.append(FieldViolation("breakdown", f"unknown value {request.breakdown}"))
    raise_if_any(violations)
    assert parent is not None
    return Funnel(parent, steps, count_by, window, span, request.breakdown)


def _parent(value: str) -> CatalogName | TenantName:
    """A catalog or a tenant; INVALID_ARGUMENT naming `parent` otherwise."""
    for parse in (parse_tenant, parse_catalog):
        try:
            return parse(value)
        except InvalidArgument:
            pass
    raise InvalidArgument.field("parent", "must be of the form 'projects/*/locations/*/catalogs/*' "
                                          f"or 'projects/*/tenants/*', got {value[:200]!r}")


def _step_violations(path: str, step: insights_pb2.FunnelStep, retail: bool,
                     tenant: TenantName | None = None) -> Iterator[FieldViolation]:
    if not step.event_type:
        yield FieldViolation(f"{path}.event_type", "is required")
    elif not retail and step.event_type not in JOB_EVENT_TYPES:
        yield FieldViolation(f"{path}.event_type",
                             f"must be a JobEventType ({', '.join(JOB_EVENT_TYPES)}), "
                             f"got {step.event_type[:200]!r}")
    elif retail and len(step.event_type) > 128:
        yield FieldViolation(f"{path}.event_type", "must be at most 128 characters")
    if retail and step.job:
        yield FieldViolation(f"{path}.job", "is a condition of talent funnels")
    if not retail:
        for name in _RETAIL_CONDITIONS:
            if getattr(step, name):
                yield FieldViolation(f"{path}.{name}", "is a condition of retail funnels")
    if retail and step.attribute_value and not step.attribute_key:
        yield FieldViolation(f"{path}.attribute_value", "needs attribute_key")
    for name in ("product_id", "category", "attribute_key", "attribute_value", "job"):
        longest = MAX_PRODUCT_ID if name == "product_id" else MAX_CONDITION
        if len(getattr(step, name)) > longest:
            yield FieldViolation(f"{path}.{name}", f"must be at most {longest} characters")
    if tenant is not None and step.job and len(step.job) <= MAX_CONDITION:
        # (a job of another tenant, or a bare id, matched nothing, unsaid)
        found: list[FieldViolation] = []
        # (a job of a project's default tenant by either of its names, as stored)
        job = gather(found, parse_job_or_default_tenant_job, step.job, f"{path}.job")
        yield from found
        if job is not None and job.tenant != tenant:
            yield FieldViolation(f"{path}.job", f"is a job of {job.tenant}; this funnel reads "
                                                f"the events of {tenant}")


class CatalogCategories:
    """The categories of a catalog's products as its default branch holds them
    now: for events stored before their product was (not joined, so carrying no
    categories). Read once per product id."""

    def __init__(self, store: Store, catalog: str) -> None:
        self._store = store
        self._catalog = catalog
        self._known: dict[str, tuple[str, ...]] = {}

    def __call__(self, product_id: str) -> tuple[str, ...]:
        if product_id not in self._known:
            found = load_products(self._store, self._catalog, [product_id])
            self._known[product_id] = (tuple(found[product_id].categories)
                                       if product_id in found else ())
        return self._known[product_id]


def _retail_match(step: insights_pb2.FunnelStep, catalog: CatalogCategories) -> Match:
    """Whether a UserEvent of the step's type meets its conditions."""
    number: float | None = None
    try:
        number = float(step.attribute_value) if step.attribute_value else None
    except ValueError:
        pass

    def matches(event: Any) -> bool:
        products = event.product_details
        if step.product_id and not any(d.product.id == step.product_id for d in products):
            return False
        if step.category and step.category not in event.page_categories and not any(
                step.category in d.product.categories or step.category in catalog(d.product.id)
                for d in products):
            return False
        if step.search_query_present and not event.search_query:
            return False
        if step.attribute_key:
            if step.attribute_key not in event.attributes:
                return False
            value = event.attributes[step.attribute_key]
            if step.attribute_value and step.attribute_value not in value.text and (
                    number is None or number not in value.numbers):
                return False
        return True

    return matches


def _talent_match(step: insights_pb2.FunnelStep, _: CatalogCategories) -> Match:
    if not step.job:
        return lambda event: True
    try:  # (checked before: a name that does not parse was refused)
        names = frozenset(job_spellings(parse_job_or_default_tenant_job(step.job, "job")))
    except InvalidArgument:
        names = frozenset((step.job,))
    # a job of a default tenant is stored as v4beta1's clients name it: projects/*/jobs/*
    # (Google's Go sample) or projects/*/tenants/default_tenant/jobs/*
    return lambda event: not names.isdisjoint(event.job_event.jobs)


def _matchers(spec: Funnel, catalog: CatalogCategories
              ) -> dict[str, list[tuple[int, Match | None]]]:
    """For each event type: the steps of that type (their bit) and their matchers
    (None: the type is the only condition)."""
    by_type: dict[str, list[tuple[int, Match | None]]] = {}
    make = _retail_match if spec.retail else _talent_match
    for i, step in enumerate(spec.steps):
        by_type.setdefault(step.event_type, []).append(
            (1 << i, make(step, catalog) if _has_conditions(step) else None))
    return by_type


# A number the contract does not name (stored before they were refused) is no step.
_JOB_TYPE_NAME = {number: name for name, number
                  in event_pb2.JobEvent.JobEventType.items()}.get


class Unnamed:
    """How many events a step took that name no entrant (a client event without a
    request_id, counted by REQUEST): left out of the funnel, and said so in a note;
    and how many named more than MAX_ITEMS_PER_EVENT products or jobs (`cut`)."""

    def __init__(self) -> None:
        self.events = 0
        self.cut = 0


def points(spec: Funnel, events: Iterator[tuple[int, Any]], by_item: bool,
           catalog: CatalogCategories, unnamed: Unnamed | None = None
           ) -> Iterator[funnel.Point]:
    """The funnel points of talent `events` ((id, ClientEvent), in any order;
    retail funnels go through _retail_paths); `by_item`: also one per job the
    event names, in its group. The events that name no entrant are counted in
    `unnamed`."""
    unnamed = unnamed or Unnamed()
    matchers = _matchers(spec, catalog)
    # the common case, one entrant per event named by a field, without a detour
    field = ENTRANT_FIELDS.get(spec.count_by) if not by_item else None
    for order, event in events:
        kind, time = _JOB_TYPE_NAME(event.job_event.type, ""), event.create_time
        bits = 0
        for bit, matches in matchers.get(kind, ()):
            if matches is None or matches(event):
                bits |= bit
        if not bits:
            continue
        micros = time.seconds * 1_000_000 + time.nanos // 1000
        if field is not None:
            entrant = getattr(event, field)
            if entrant:
                yield None, entrant, micros, order, bits
            else:
                unnamed.events += 1
            continue
        named = False
        for group, entrant in _entrants(spec, event, by_item, unnamed):
            if entrant:
                named = named or group is None
                yield group, entrant, micros, order, bits
        unnamed.events += not named


def _entrants(spec: Funnel, event: Any, by_item: bool, unnamed: Unnamed
              ) -> list[tuple[str | None, str]]:
    """(group, entrant) pairs of an event: (None, entrant) for the whole funnel,
    and with `by_item` (item, entrant) for each product or job it names (the first
    MAX_ITEMS_PER_EVENT of them, counting in `unnamed.cut` an event that names more)."""
    jobs = _first(event.job_event.jobs, unnamed) \
        if not spec.retail and (by_item or spec.count_by == insights_pb2.JOB) else []
    if spec.count_by == insights_pb2.JOB:
        pairs: list[tuple[str | None, str]] = [(None, job) for job in jobs]
        return pairs + [(job, job) for job in jobs] if by_item else pairs
    entrant = (event.user_info.user_id if spec.count_by == insights_pb2.USER
               else getattr(event, ENTRANT_FIELDS[spec.count_by]))
    pairs = [(None, entrant)]
    if by_item:
        items = _first((d.product.id for d in event.product_details), unnamed) \
            if spec.retail else jobs
        pairs += [(item, entrant) for item in items]
    return pairs


def _first(items: Iterable[str], unnamed: Unnamed) -> list[str]:
    """The first MAX_ITEMS_PER_EVENT distinct of `items`; an event naming more is
    counted in `unnamed.cut`."""
    distinct = dict.fromkeys(items)
    if len(distinct) <= MAX_ITEMS_PER_EVENT:
        return list(distinct)
    unnamed.cut += 1
    return list(itertools.islice(distinct, MAX_ITEMS_PER_EVENT))


def _retail_paths(store: Store, spec: Funnel, by_item: bool, catalog: CatalogCategories,
                  unnamed: Unnamed, decode_all: bool = False
                  ) -> tuple[dict[Any, list[int]], int]:
    """The counted path of each (group, entrant) of a catalog's events, walked in
    time order as the pages come (funnel.Walks: a list of every event's point held
    the whole range; 1M events, a product condition: +97 MB of peak memory), and
    how many events were read. The store works
    out what the event type alone says (the bits of the steps without
    conditions) and names the entrant from its column; an event is decoded only
    when a step of its type has a condition, or its entrant (a session) or its
    group (its products) is in no column, or `decode_all` (as every event once was:
    for comparing). The events a step takes that name no entrant are counted in
    `unnamed`."""
    matchers = _matchers(spec, catalog)
    type_bits = {kind: sum(bit for bit, matches in steps if matches is None)
                 for kind, steps in matchers.items()}
    conditioned = {kind: [(bit, matches) for bit, matches in steps if matches is not None]
                   for kind, steps in matchers.items()}
    column = ENTRANT_COLUMNS.get(spec.count_by)
    if by_item or column is None or decode_all:
        decode = set(matchers)
    else:
        decode = {kind for kind, steps in conditioned.items() if steps}
    walks = funnel.Walks(len(spec.steps), spec.window_us)
    events = 0
    for rows in read.typed_pages(store, str(spec.parent), spec.span, type_bits, column,
                                 decode):
        events += len(rows)
        for row in rows:
            if len(row) == 4 or row[4] is None:  # the columns say it all
                if row[2] and row[3]:
                    walks.add((None, row[3]), row[0], row[2])
                elif row[2]:
                    unnamed.events += 1
                continue
            time_us, order, bits, entrant, payload = row
            event = user_event_pb2.UserEvent.FromString(payload)
            for bit, matches in conditioned[event.event_type]:
                if matches(event):
                    bits |= bit
            if not bits:
                continue
            pairs = _entrants(spec, event, by_item, unnamed) if entrant is None or by_item \
                else [(None, entrant)]
            unnamed.events += not any(who for group, who in pairs if group is None)
            for group, who in pairs:
                if who:
                    walks.add((group, who), time_us, bits)
    return walks.paths(), events


def _has_conditions(step: insights_pb2.FunnelStep) -> bool:
    return any(getattr(step, name) for name in (*_RETAIL_CONDITIONS, "job"))


def _by_type_alone(spec: Funnel, by_item: bool) -> bool:
    """Whether the columns answer the funnel: a retail one whose steps are event
    types alone, counted by an entrant that has a column, as a whole or by day."""
    return (spec.retail and not by_item and spec.count_by in ENTRANT_COLUMNS
            and not any(_has_conditions(step) for step in spec.steps))


def _entrant_paths(store: Store, spec: Funnel, unnamed: Unnamed, read_count: list[int]
                   ) -> Iterator[tuple[None, list[int]]]:
    """The counted paths of a funnel of event types alone (see _by_type_alone), one
    entrant at a time as the store streams them; the events read are added to
    `read_count[0]`: each event type is a letter, each entrant's events a string of
    them that funnel.kind_path walks. The events read that name no entrant (no
    user_id) are counted in `unnamed`."""
    letters = {kind: chr(ord("a") + i) for i, kind in enumerate(
        dict.fromkeys(step.event_type for step in spec.steps))}
    steps = "".join(letters[step.event_type] for step in spec.steps)
    for who, events, times, kinds in read.entrant_events(
            store, str(spec.parent), spec.span, letters, ENTRANT_COLUMNS[spec.count_by]):
        read_count[0] += events
        if who:
            yield None, funnel.kind_path(kinds, times, steps, spec.window_us)
        else:
            unnamed.events += events


def _results(spec: Funnel, counts: Sequence[funnel.StepCount]
             ) -> list[insights_pb2.FunnelStepResult]:
    results = []
    counts = counts or [funnel.StepCount(0, None)] * len(spec.steps)
    first = counts[0].entrants
    for i, (step, count) in enumerate(zip(spec.steps, counts, strict=True)):
        previous = counts[i - 1].entrants if i else count.entrants
        result = insights_pb2.FunnelStepResult(
            step=step, entrants=count.entrants,
            conversion_from_previous=count.entrants / previous if previous else 0.0,
            conversion_from_first=count.entrants / first if first else 0.0)
        if count.median_us is not None:
            result.median_time_from_previous.CopyFrom(_duration(count.median_us))
        results.append(result)
    return results


def _duration(us: float) -> duration_pb2.Duration:
    nanos = round(us * 1000)
    return duration_pb2.Duration(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def run(store: Store, spec: Funnel, decode_all: bool = False,
        by_rows: bool = False) -> insights_pb2.RunFunnelResponse:
    """The funnel `spec` over the stored events (blocking: reads every event it
    needs; `decode_all`: decodes every user event, see _retail_paths; `by_rows`:
    reads a row per event, as a funnel of event types alone once did: for
    comparing)."""
    read_count = 0

    def counted() -> Iterator[tuple[int, Any]]:
        nonlocal read_count
        for item in read.client_events(store, str(spec.parent), spec.span):
            read_count += 1
            yield item

    by_item = spec.breakdown == insights_pb2.BY_ITEM
    by_day = spec.breakdown == insights_pb2.BY_DAY
    catalog = CatalogCategories(store, str(spec.parent))
    unnamed = Unnamed()
    items: int | None = None  # the groups of a breakdown by item, kept or not
    if _by_type_alone(spec, by_item) and not (decode_all or by_rows):
        counted_read = [0]
        groups = funnel.tally(_entrant_paths(store, spec, unnamed, counted_read),
                              len(spec.steps), by_day)
        read_count = counted_read[0]
    else:
        if spec.retail:
            paths, read_count = _retail_paths(store, spec, by_item, catalog, unnamed,
                                              decode_all)
            if by_item:
                paths, items = funnel.leading_paths(paths, MAX_GROUPS)
            groups = funnel.tally(((group, times) for (group, _), times in paths.items()),
                                  len(spec.steps), by_day)
        else:
            trails = funnel.gather(points(spec, counted(), by_item, catalog, unnamed))
            if by_item:
                trails, items = funnel.leading(trails, MAX_GROUPS)
            groups = funnel.count(trails, len(spec.steps), spec.window_us, by_day)
    totals = groups.pop(None, [])
    answer = insights_pb2.RunFunnelResponse(steps=_results(spec, totals),
                                            events_read=read_count)
    _add_groups(answer, spec, groups, by_day, len(groups) if items is None else items)
    if spec.retail and any(step.category for step in spec.steps):
        answer.notes.append(CATEGORY_NOTE)
    if by_item and not groups and answer.steps and answer.steps[0].entrants:
        answer.notes.append(NO_ITEM_NOTE.format(item="product" if spec.retail else "job"))
    if spec.retail:
        answer.notes.extend(_unknown_types(spec, answer.steps))
    if unnamed.cut:
        answer.notes.append(CUT_NOTE.format(
            most=MAX_ITEMS_PER_EVENT, items="products" if spec.retail else "jobs",
            count=unnamed.cut))
    if unnamed.events:
        answer.notes.append(UNNAMED_NOTE.format(
            count=unnamed.events, name=UNNAMED_BY.get(spec.count_by, "entrant"),
            by=insights_pb2.CountBy.Name(spec.count_by)))
    return answer


def _unknown_types(spec: Funnel, results: Sequence[insights_pb2.FunnelStepResult]
                   ) -> Iterator[str]:
    """A note for each step that no entrant reached whose event type is none of
    Google's (add_to_cart for add-to-cart: the funnel said 0 and nothing more)."""
    for number, (step, result) in enumerate(zip(spec.steps, results, strict=True), 1):
        if result.entrants or step.event_type in EVENT_TYPES:
            continue
        # one of Google's in other letters first: difflib, which tells case apart, had
        # nothing to say of DETAIL-PAGE-VIEW
        near = [t for t in EVENT_TYPES if t == step.event_type.lower()] or \
            difflib.get_close_matches(step.event_type, EVENT_TYPES, 1)
        yield (f"step {number}'s event type {step.event_type!r} is none of Google's"
               + (f" (did you mean {near[0]!r}?)" if near else "")
               + ", and no entrant reached it")


def _add_groups(answer: insights_pb2.RunFunnelResponse, spec: Funnel,
                groups: dict[Any, list[funnel.StepCount]], by_day: bool, total: int) -> None:
    """The groups of `answer`, in key order: all of them, or the latest days (by day)
    or the products or jobs with the most entrants at the first step, as many as
    MAX_GROUPS and MAX_GROUP_BYTES allow, and a note saying how many of the `total`
    were left out (`groups` may hold only those that could be kept)."""
    if by_day:
        order = sorted(groups, key=str, reverse=True)
    else:
        order = sorted(groups, key=lambda k: (-(groups[k][0].entrants if groups[k] else 0),
                                              str(k)))
    kept = [insights_pb2.FunnelGroup(key=str(key), steps=_results(spec, groups[key]))
            for key in order[:MAX_GROUPS]]
    kept = kept[:read.fitting(kept, MAX_GROUP_BYTES - answer.ByteSize())]
    answer.groups.extend(sorted(kept, key=lambda g: g.key))
    if len(kept) < total:
        what = ("days, the latest ones (narrow start_time and end_time for earlier days)"
                if by_day else f"{'product' if spec.retail else 'job'} groups, those with "
                               "the most entrants at the first step")
        answer.notes.append(f"{len(kept):,} of {total:,} {what}: an answer holds at "
                            f"most {MAX_GROUPS:,} groups and {MAX_GROUP_BYTES >> 20} MiB")
