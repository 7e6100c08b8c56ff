"""PurgeProducts' filter: Google's grammar over availability, and what it refuses."""

from __future__ import annotations

import pytest
from footfall.retail.v2 import product_pb2

from server.errors import InvalidArgument
from server.retail.purge_products import parse_filter

Availability = product_pb2.Product.Availability
ALL = [product_pb2.Product(id=name, availability=Availability.Value(name))
       for name in ("IN_STOCK", "OUT_OF_STOCK", "PREORDER", "BACKORDER")]


@pytest.mark.parametrize(("text", "selected"), [
    ("*", ["IN_STOCK", "OUT_OF_STOCK", "PREORDER", "BACKORDER"]),
    ('availability = "PREORDER"', ["PREORDER"]),
    ('availability="PREORDER" OR availability = "BACKORDER"', ["PREORDER", "BACKORDER"]),
    ('availability = "PREORDER" AND availability = "BACKORDER"', []),
    ('availability = "IN_STOCK" OR availability = "PREORDER" AND availability = "BACKORDER"',
     ["IN_STOCK"]),  # AND binds tighter
    ('(availability = "IN_STOCK" OR availability = "PREORDER") and '
     '(availability = "PREORDER" or (availability = "BACKORDER"))', ["PREORDER"]),
])
def test_filters_select(text: str, selected: list[str]) -> None:
    matches = parse_filter(text)
    assert [p.id for p in ALL if matches(p)] == selected


@pytest.mark.parametrize(("text", "message"), [
    ("  ", 'filter: is required; "*" purges every product'),
    ("* *", "filter: unexpected character at character 1"),
    ('availability = "IN_STOCK" OR', "filter: expected a field name at the end"),
    ('availability = "IN_STOCK")', "filter: expected AND, OR or the end at character 26"),
    ('(availability = "IN_STOCK"', "filter: expected ) at the end"),
    ('availability = IN_STOCK', "filter: expected a double-quoted value at character 16"),
    ('availability != "IN_STOCK"', "filter: availability takes only =, got '!=' at character 14"),
    ('create_time > "2024-01-01T00:00:00Z"', "filter: create_time is not supported"),
])
def test_bad_filters_say_where(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_filter(text)
    assert refused.value.message.startswith(message)
