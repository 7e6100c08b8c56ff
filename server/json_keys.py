"""Keys given twice in one JSON object.

orjson keeps the last of them and says nothing, where json_format refuses the text
(and protobuf's conformance tests call it invalid): what the first one said would
be dropped unseen. `may_repeat` tells the texts that give no key twice at the cost
of a count, so only the others are read again (`repeated_key`).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def may_repeat(text: str | bytes, data: Any) -> bool:
    """Whether the JSON `text`, which orjson loaded as `data`, may give a key twice
    in one object (False: it gives none). A colon in `text` is a pair's or one in a
    string, and orjson writes each string with its colons as they are, so the two
    hold as many colons unless a pair was dropped. An escaped colon (`\\u003a`),
    which orjson writes as one, or nesting deeper than orjson writes (255 levels;
    it reads 1,024) leaves it open."""
    if isinstance(text, bytes):
        escaped = b"\\u003a" in text or b"\\u003A" in text
        colons = text.count(b":")
    else:
        escaped = "\\u003a" in text or "\\u003A" in text
        colons = text.count(":")
    if escaped:
        return True
    try:
        written = orjson.dumps(data)
    except TypeError:
        return True
    return colons != written.count(b":")


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Repeated(key)
        found[key] = value
    return found


def repeated_key(text: str | bytes) -> str | None:
    """The first key found given twice in one object of the JSON `text` (text that
    loads); None when none is, or when it nests deeper than Python's json reads
    (then json_format refuses it for its depth)."""
    try:
        json.loads(text, object_pairs_hook=_no_repeats)
    except _Repeated as repeated:
        return repeated.key
    except (RecursionError, ValueError):
        return None
    return None
