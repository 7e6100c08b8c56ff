"""Keys given twice in a JSON object, which orjson lets pass."""

from __future__ import annotations

import orjson
import pytest

from server import json_keys


@pytest.mark.parametrize(("text", "repeated"), [
    ('{"a": 1, "b": "x:y"}', None),
    ('{"a" : {"b": [1, {"c": "é:"}]}, "d": null}', None),
    ('{"a": 1, "a": 2}', "a"),
    ('{"a" : 1, "b": 2, "b": 3}', "b"),  # a space before a colon
    ('{"a": "x", "a": "\\u003a"}', "a"),  # an escaped colon
    ('{"a": "x", "a": "\\u003A", "b": "\\/"}', "a"),
    ('{"o": {"k": ":", "k": ":"}}', "k"),
    ('[{"a": 1}, {"a": 2}]', None),  # the same key in two objects
])
def test_a_key_given_twice_is_found(text: str, repeated: str | None) -> None:
    for given in (text, text.encode()):
        maybe = json_keys.may_repeat(given, orjson.loads(given))
        assert maybe or repeated is None
        assert (json_keys.repeated_key(given) if maybe else None) == repeated


@pytest.mark.parametrize("text", [
    '{"a": "x:y", "b": [{"c": "::"}]}',
    # PHP writes slashes escaped: such events stay off json_format (a pixel's cost)
    '{"uri": "https:\\/\\/shop\\/p", "q": "say \\"a:b\\"", "e": "\\u00e9"}',
])
def test_text_without_repeats_or_escaped_colons_is_told_by_the_count(text: str) -> None:
    assert not json_keys.may_repeat(text, orjson.loads(text))


def test_nesting_too_deep_to_read_again_is_left_to_json_format() -> None:
    text = '{"a":' * 2000 + "1" + "}" * 2000
    assert json_keys.repeated_key(text) is None
