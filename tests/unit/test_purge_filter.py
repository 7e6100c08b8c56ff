"""The filter grammar: examples, and property-based: any input parses or gives a
clear INVALID_ARGUMENT naming the filter, never another exception."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import InvalidArgument
from server.retail.purge_filter import parse
from server.store import TimeBound

CATALOG = "projects/p/locations/global/catalogs/default_catalog"
JAN = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in microseconds


def test_google_examples() -> None:
    query = parse('eventTime > "2024-01-01T00:00:00Z" eventTime < "2024-01-02T00:00:00Z" '
                  'eventType = "detail-page-view" visitorId = "visitor1024"', CATALOG)
    assert query.after == TimeBound(JAN, False)
    assert query.before == TimeBound(JAN + 86_400_000_000, False)
    assert query.event_types == ("detail-page-view",)
    assert query.visitor_ids == ("visitor1024",)


def test_explicit_and_user_id_and_escapes() -> None:
    query = parse(r'userId = "u\"1" AND eventType = "search"', CATALOG)
    assert query.user_ids == ('u"1',) and query.event_types == ("search",)


@pytest.mark.parametrize("text", ["eventType=search", "eventType = search",
                                  'eventType=search visitorId="someVisitorId"'])
def test_an_event_type_may_be_left_bare_as_google_takes_it(text: str) -> None:
    # Google's own refusal of a bad purge filter lists eventType=search among "valid
    # filter examples" (and its export filter takes it); it was refused here.
    assert parse(text, CATALOG).event_types == ("search",)
    assert parse("eventType = home-page-view", CATALOG).event_types == ("home-page-view",)


def test_every_form_the_readme_shows_parses() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- not-run: filter forms")[1].split("```")[1]
    forms = [re.sub(r"\s{2,}\(.*\)$", "", line) for line in block.strip().splitlines()]
    assert len(forms) >= 7
    for form in forms:
        parse(form, CATALOG)  # (InvalidArgument for a form it does not take)


def test_seed_range_extension_is_inclusive() -> None:
    query = parse('event_time: ["2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z"]', CATALOG)
    assert query.after == TimeBound(JAN, True)
    assert query.before == TimeBound(JAN + 1_000_000, True)


def test_a_range_that_ends_before_it_starts_is_the_same_bounds_compared() -> None:
    # Google's form takes bounds that no time meets (it documents no refusal of them):
    # the extension's range, the same bounds, is not refused either; both select nothing
    ranged = parse('event_time: ["2024-02-01T00:00:00Z", "2024-01-01T00:00:00Z"]', CATALOG)
    compared = parse('eventTime >= "2024-02-01T00:00:00Z" eventTime <= "2024-01-01T00:00:00Z"',
                     CATALOG)
    assert ranged == compared and ranged.after == TimeBound(JAN + 31 * 86_400_000_000, True)


def test_the_tighter_bound_wins() -> None:
    query = parse('eventTime >= "2024-01-01T00:00:00Z" eventTime > "2024-01-01T00:00:00Z" '
                  'eventTime > "2023-01-01T00:00:00Z"', CATALOG)
    assert query.after == TimeBound(JAN, False)


@pytest.mark.parametrize(("text", "words"), [
    ("", "is empty"),
    ("   ", "is empty"),
    ('eventType > "a"', "at character 11: expected '=' after eventType"),
    ('eventTime = "2024-01-01T00:00:00Z"', "at character 11"),
    ('eventTime > "soon"', "RFC 3339"),
    # Timestamp.FromJsonString reads any two digits of an offset: "+99:99" selected
    # the events from four days before the time written
    ('eventTime > "2024-01-01T00:00:00+99:99"', "at character 13: \"2024-01-01T00:00:00+99:99\" "
                                                "is not an RFC 3339 time: its offset +99:99 "
                                                "is no offset"),
    ('eventTime < "2024-01-01T00:00:00-05:60"', "its offset -05:60 is no offset"),
    ('eventTime >', "but the filter ends"),
    ('visitorId = visitor', "at character 13: expected a quoted value"),
    ('eventType = "unterminated', "unexpected character"),
    ("eventType = 'single'", "at character 13: unexpected character \"'\": values go in double "
                             "quotes"),
    # a time left bare, an operator or a word the grammar does not have: said, not only
    # "unexpected character '2'" or "unknown field 'OR'"
    ("eventTime > 2024-01-01T00:00:00Z", "at character 13: unexpected character '2': values "
                                         'go in double quotes, times too (eventTime > "'),
    ('userId != "x"', "at character 8: unexpected character '!': '!=' is not in the grammar"),
    ('eventType = "a" OR eventType = "b"', "at character 17: OR is not in the grammar"),
    ('NOT visitorId = "a"', "at character 1: NOT is not in the grammar"),
    # Two mistakes: the first is said (the bare time's character was, and fixing it
    # only led to the second error).
    ("visitorId = bob eventTime > 2026-11-20", "at character 13: expected a quoted value for "
                                               'visitorId, got \'bob\': write visitorId = "bob"'),
    ('visitorId "a" eventTime > 2026-11-20', "at character 11: expected '=' after visitorId"),
    # the proto's (and the columns') snake_case spelling, or another case, is told the
    # field it spells; a field of no spelling is told the list alone
    ('visitor_id = "v1"', "unknown field 'visitor_id' (did you mean visitorId?); filter on "),
    ('UserID = "u1"', "unknown field 'UserID' (did you mean userId?)"),
    # ... and one that looks like a field word by word is told it (the list alone was)
    ('visitor = "v1"', "unknown field 'visitor' (did you mean visitorId?)"),
    ('event_timestamp > "2026-11-20T00:00:00Z"',
     "unknown field 'event_timestamp' (did you mean eventTime?)"),
    ('event_name = "home-page-view"', "unknown field 'event_name' (did you mean eventType?)"),
    ('sessionId = "s1"', "unknown field 'sessionId'; filter on eventType, visitorId, userId, "
                         "eventTime"),
    ("x" * 5001, "at most 5000 characters"),
    # PostgreSQL's text holds no NUL (the store writes U+FFFD): it selected, and
    # purged, the events of visitor "v\ufffd"; no stored id holds a NUL
    ('visitorId = "v\0"', "at character 13: a value must not hold a NUL character"),
    ('userId = "\\\0"', "at character 10: a value must not hold a NUL character"),
])
def test_bad_filters(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(text, CATALOG)
    [violation] = caught.value.violations
    assert violation.field == "filter"
    assert words in violation.description, violation.description


GRAMMAR_PIECES = st.sampled_from([
    "eventType", "visitorId", "userId", "eventTime", "event_time", "AND", "OR", "=", ">", ">=",
    "<", "<=", ":", "[", "]", ",", '"2024-01-01T00:00:00Z"', '"x"', '"', "\\", " ", "\n",
])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(GRAMMAR_PIECES, max_size=12).map(" ".join)))
def test_any_input_parses_or_is_a_clear_invalid_argument(text: str) -> None:
    try:
        query = parse(text, CATALOG)
    except InvalidArgument as exc:
        assert exc.violations[0].field == "filter"
        assert exc.violations[0].description
    else:
        assert query.catalog == CATALOG


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789-:TZ.+ ", max_size=40))
def test_any_time_text_parses_or_is_refused_clearly(text: str) -> None:
    try:
        parse(f'eventTime >= "{text}"', CATALOG)
    except InvalidArgument as exc:
        assert "RFC 3339" in exc.message or "character" in exc.message
