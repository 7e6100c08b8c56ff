"""PurgeProducts: the filter is checked when called; products go in batches.

Google's filter: `*` (every product of the branch), or conditions on
`availability` joined by AND / OR with parentheses (at most 6 conditions, nested
at most 2 deep). A VARIANT goes with its primary, so no variant is left without
one: the variants are purged first (each by the filter, or by its primary's
match), then the other products, each pass in batches that record how far they
got in the same transaction, so a crash resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from footfall.retail.v2 import product_pb2, purge_config_pb2

from server import names
from server.errors import FieldViolation, InvalidArgument, gather, raise_if_any
from server.operations import records
from server.operations.runner import JobContext
from server.retail import products
from server.retail.product_validation import VARIANT
from server.retail.validation import too_long
from server.store.rows import ProductsChanged, ProductsRead, Progress, Step, StepResult

KIND = "purge-products"
BATCH = 500
MAX_FILTER = 5_000
MAX_CONDITIONS = 6
MAX_DEPTH = 2
MAX_SAMPLE = 100

Matcher = Callable[[Any], bool]
_TOKEN = re.compile(r'\s*(?:(?P<paren>[()])|(?P<string>"(?:[^"\\]|\\.)*")|(?P<op><=|>=|!=|[=<>])'
                    r'|(?P<word>[A-Za-z_][A-Za-z0-9_]*))')
_AVAILABILITY = product_pb2.Product.Availability
_IN_STOCK = product_pb2.Product.IN_STOCK
_SPOKEN = {"word": "a field name", "op": "an operator", "string": "a double-quoted value"}


class _Parser:
    """Recursive descent over the tokens of a filter; OR binds looser than AND."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while text[position:].strip():
            match = _TOKEN.match(text, position)
            if match is None or match.lastgroup is None:
                skipped = len(text[position:]) - len(text[position:].lstrip())
                raise self._error(position + skipped, "unexpected character")
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        self.at = 0
        self.conditions = 0

    @staticmethod
    def _error(position: int, why: str) -> InvalidArgument:
        return InvalidArgument.field("filter", f"{why} at character {position + 1}")

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, kind: str, value: str | None = None) -> tuple[str, str, int]:
        token = self._peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            wanted = f"expected {value or _SPOKEN[kind]}"
            if token is None:
                raise InvalidArgument.field("filter", f"{wanted} at the end")
            raise self._error(token[2], wanted)
        self.at += 1
        return token

    def _joined(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token[0] == "word" and token[1].upper() == word:
            self.at += 1
            return True
        return False

    def parse(self) -> Matcher:
        matcher = self._or(0)
        token = self._peek()
        if token is not None:
            raise self._error(token[2], "expected AND, OR or the end")
        return matcher

    def _or(self, depth: int) -> Matcher:
        terms = [self._and(depth)]
        while self._joined("OR"):
            terms.append(self._and(depth))
        return terms[0] if len(terms) == 1 else lambda p: any(t(p) for t in terms)

    def _and(self, depth: int) -> Matcher:
        terms = [self._term(depth)]
        while self._joined("AND"):
            terms.append(self._term(depth))
        return terms[0] if len(terms) == 1 else lambda p: all(t(p) for t in terms)

    def _term(self, depth: int) -> Matcher:
        token = self._peek()
        if token is not None and token[:2] == ("paren", "("):
            if depth >= MAX_DEPTH:
                raise self._error(token[2], f"parentheses nest deeper than {MAX_DEPTH} levels")
            self.at += 1
            inner = self._or(depth + 1)
            self._take("paren", ")")
            return inner
        return self._condition()

    def _condition(self) -> Matcher:
        _, key, where = self._take("word")
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self._error(where, f"more than {MAX_CONDITIONS} conditions")
        if key == "create_time":
            raise self._error(where, "create_time is not supported: Footfall does not record when "
                              "products were created (filter by availability, or use *)")
        if key != "availability":
            raise self._error(where, f"unknown field {key!r}; use availability (or * for every "
                              "product)")
        _, op, at = self._take("op")
        if op != "=":
            raise self._error(at, f"availability takes only =, got {op!r}")
        _, quoted, at = self._take("string")
        value = quoted[1:-1]
        if value not in _AVAILABILITY.keys() or value == "AVAILABILITY_UNSPECIFIED":
            raise self._error(at, f"unknown availability {value[:50]!r}")
        wanted = _AVAILABILITY.Value(value)
        # unset is in stock: "Default to Availability.IN_STOCK" (Google's Product), as
        # an export's filter reads it
        return lambda p: bool((p.availability or _IN_STOCK) == wanted)


def parse_filter(text: str) -> Matcher:
    """What `text` selects; INVALID_ARGUMENT naming `filter` (and where) otherwise."""
    if not text.strip():
        raise InvalidArgument.field("filter", 'is required; "*" purges every product')
    if len(text) > MAX_FILTER:
        raise InvalidArgument([too_long("filter", text, MAX_FILTER)])
    if text.strip() == "*":
        return lambda _: True
    return _Parser(text).parse()


def check_request(request: Any) -> tuple[str, Matcher]:
    """(branch, matcher) of a PurgeProductsRequest; INVALID_ARGUMENT naming each bad field."""
    violations: list[FieldViolation] = []
    branch = gather(violations, names.parse_branch_key, request.parent, "parent")
    matcher = gather(violations, parse_filter, request.filter)
    raise_if_any(violations)
    return str(branch), matcher


def new_operation(name: str, create_time_ns: int) -> Any:
    meta = purge_config_pb2.PurgeProductsMetadata()
    meta.create_time.FromNanoseconds(create_time_ns)
    meta.update_time.FromNanoseconds(create_time_ns)
    return records.operation(name, meta)


def _batch(ctx: JobContext, branch: str, matcher: Matcher, variants: bool,
           after: str) -> tuple[str, list[str], ProductsRead] | None:
    """(last id read, ids to purge, what they were chosen from) of the batch after
    `after` in id order, None past the last: the variants (each by the filter or its
    primary's match), or every other product. Its step carries what they were chosen
    from (Step.products_read): an UpdateProduct of one of them, or of a primary,
    landing before the step commits makes it delete nothing (ProductsChanged),
    rather than a product the filter no longer selects."""
    # The branch's generation (a read of no product) before the page and primaries:
    # a product write after it moves it, and the step then looks at them again.
    before = ctx.store.read_products(branch, [])
    page = ctx.store.list_products(branch, BATCH, after)
    if not page:
        return None
    batch = [products.decode(payload, branch, pid) for pid, payload in page]
    batch = [p for p in batch if (p.type == VARIANT) == variants]
    wanted = [p.primary_product_id for p in batch if variants and not matcher(p)]
    found = ctx.store.get_products(branch, wanted)
    primaries = {pid: products.decode(payload, branch, pid) for pid, payload in found.items()}
    chosen = [p.id for p in batch if matcher(p) or (
        p.primary_product_id in primaries and matcher(primaries[p.primary_product_id]))]
    read = dataclasses.replace(before, product_ids=[pid for pid, _ in page] + wanted,
                               products={**dict(page), **found})
    return page[-1][0], chosen, read


def _selected(ctx: JobContext, branch: str, matcher: Matcher, variants: bool,
              after: str) -> Iterator[tuple[str, list[str], ProductsRead]]:
    """Each _batch after `after`, to the last."""
    while (batch := _batch(ctx, branch, matcher, variants, after)) is not None:
        yield batch
        after = batch[0]


def run_purge_products(ctx: JobContext) -> None:
    """Count (force=false, with a sample of names) or delete (force=true) the products
    the filter selects."""
    request = purge_config_pb2.PurgeProductsRequest.FromString(ctx.record.request)
    branch, matcher = check_request(request)
    meta = purge_config_pb2.PurgeProductsMetadata()
    meta.create_time.FromMicroseconds(ctx.record.create_time_us)
    if not request.force:
        count, sample = 0, list[str]()

        def counting(_: StepResult) -> Progress:
            meta.update_time.FromNanoseconds(ctx.clock.now_ns())
            return Progress(b"", records.operation(ctx.record.name, meta).SerializeToString(),
                            False)

        for variants in (True, False):
            for _, chosen, _ in _selected(ctx, branch, matcher, variants, ""):
                ctx.check_stop()
                ctx.keep_lease(counting)  # (a million products: 6.5 s here, 5 million a lease)
                count += len(chosen)
                sample.extend(chosen[:MAX_SAMPLE - len(sample)])
        response = purge_config_pb2.PurgeProductsResponse(
            purge_count=count, purge_sample=[names.product_name(branch, p) for p in sample])
        meta.update_time.FromNanoseconds(ctx.clock.now_ns())
        ctx.finish(records.operation(ctx.record.name, meta, response=response))
        return
    state: dict[str, Any] = orjson.loads(ctx.record.checkpoint) if ctx.record.checkpoint \
        else {"variants": True, "after": "", "purged": 0}
    cancelled = ctx.record.cancel_requested
    remade = 0  # times the batch at state["after"] was chosen again
    while not cancelled:
        batch = _batch(ctx, branch, matcher, state["variants"], state["after"])
        if batch is None:
            if not state["variants"]:
                break
            state = {"variants": False, "after": "", "purged": state["purged"]}
            continue
        after, chosen, read = batch
        ctx.check_stop()
        meta.success_count = state["purged"]
        meta.update_time.FromNanoseconds(ctx.clock.now_ns())
        following = dict(state, after=after)

        def progress(result: StepResult, following: dict[str, Any] = following) -> Progress:
            following["purged"] += result.deleted
            meta.success_count = following["purged"]
            return Progress(orjson.dumps(following),
                            records.operation(ctx.record.name, meta).SerializeToString(),
                            False)

        try:
            result = ctx.step(Step(delete_products=[(branch, p) for p in chosen],
                                   products_read=read), progress)
        except ProductsChanged:  # a product it was chosen from was written: chosen again
            remade += 1
            if remade >= products.MAX_REMAKES:
                raise products.remade_too_often("the product purge") from None
            continue
        remade = 0
        state = following
        cancelled = result.cancel_requested
    meta.success_count = state["purged"]
    response = purge_config_pb2.PurgeProductsResponse(purge_count=state["purged"])
    ctx.finish(records.ended(ctx.record.name, meta, response, cancelled, "the product purge"),
               orjson.dumps(state))
