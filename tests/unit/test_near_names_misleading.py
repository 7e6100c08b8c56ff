"""Names whose first word is one of a field's but whose last word says they are of
another kind (h7's review of stop 62): the word that says what a field is (its last:
url, referrer, id, time) decides, where fields use it. Real spellings of other schemas
(Snowplow's page_url and page_referrer, GA4's page_location) and of our own filter
grammars."""

from __future__ import annotations

import pytest
from footfall.retail.v2 import user_event_pb2

from server import near_names

USER_EVENT = [f.json_name for f in user_event_pb2.UserEvent.DESCRIPTOR.fields]
EVENTS_GRAMMAR = ["eventType", "visitorId", "userId", "eventTime", "sessionId", "productId",
                  "joined", "transport"]  # (`events count --filter`)
TALENT_GRAMMAR = ["eventType", "job", "requestId", "eventId", "createTime"]

CASES = [
    # (typed, fields, told before: of another kind, told now)
    ("page_url", USER_EVENT, "pageCategories", "uri"),  # (Snowplow's)
    ("page_location", USER_EVENT, "pageCategories", "uri"),  # (GA4's)
    ("page_referrer", USER_EVENT, "pageCategories", None),  # (Snowplow's: referrerUri
    # shares its last word only as its first, as profileEvents and jobEvent do `event`)
    ("eventId", EVENTS_GRAMMAR, "eventTime", None),  # (no event id in this grammar)
    ("eventTimestamp", TALENT_GRAMMAR, "eventType", None),
    ("eventDate", TALENT_GRAMMAR, "eventType", None),
    ("requestTime", TALENT_GRAMMAR, "requestId", None),
]


@pytest.mark.parametrize(("typed", "fields", "before", "now"), CASES,
                         ids=[typed for typed, *_ in CASES])
def test_a_name_is_not_told_a_field_of_another_kind(typed: str, fields: list[str],
                                                    before: str, now: str | None) -> None:
    assert near_names.nearest(typed, fields) == now


def test_a_last_word_no_field_uses_leaves_the_first_word_to_decide() -> None:
    """`when` is no field's word: the first word still guides, as before."""
    assert near_names.nearest("event_when", USER_EVENT) == "eventType"
    assert near_names.nearest("page_view_url", USER_EVENT) == "uri"
