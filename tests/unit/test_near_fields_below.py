"""An unknown field that is a field of a message below the one it was given in: a
Segment or GA4 user's `userId` (`user_id`) at the top of a UserEvent, where it goes in
userInfo. Told `did you mean "userInfo"?` before stop 63; near_names then stopped
guessing a field whose name's last word (`id`) no word of it has, and the refusal said
nothing of where the field goes (h7's review of stop 63)."""

from __future__ import annotations

from typing import Any

import pytest
from footfall.retail.v2 import user_event_pb2
from google.protobuf import json_format

from server import protojson


@pytest.mark.parametrize(("document", "said"), [
    ({"userId": "u"}, 'has no field named "userId" (it is a field of userInfo (UserInfo), '
                      'not of UserEvent itself)'),
    ({"user_id": "u"}, 'has no field named "user_id" (it is a field of userInfo (UserInfo), '
                       'not of UserEvent itself)'),
    ({"ipAddress": "192.0.2.1"}, 'has no field named "ipAddress" (it is a field of userInfo '
                                 '(UserInfo), not of UserEvent itself)'),
    ({"revenue": 3}, 'has no field named "revenue" (it is a field of purchaseTransaction '
                     '(PurchaseTransaction), not of UserEvent itself)'),
    # (still no guess of a field of another kind: eventId is no eventTime)
    ({"eventId": "e"}, 'has no field named "eventId"'),
])
def test_a_field_of_a_message_below_is_told_where_it_goes(document: dict[str, Any],
                                                          said: str) -> None:
    with pytest.raises(json_format.ParseError) as caught:
        json_format.ParseDict(document, user_event_pb2.UserEvent())
    _, reason = protojson.parse_error(caught.value, user_event_pb2.UserEvent.DESCRIPTOR,
                                      document)
    assert reason.endswith(said), reason
