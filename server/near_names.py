"""The field name a misspelt one most likely meant, compared word by word.

difflib alone compares letters: `event_name` came closer to `eventTime` than to
`eventType` (name and time share "me"), and `purchase` or `user_ident` came close to
nothing. Names are compared here by their words (`event_name`: event + name;
`eventType`: event + type), each word matched to one of the field's, alike when equal,
spelt alike (`typ`, `type`), a plural of the other (`detail`, `details`), or a word
other event schemas use for the field's (an event's name is its type: GA4's and
Snowplow's `event_name`; a timestamp its time). The field whose words the typed ones
cover best wins, one sharing the first word before one that does not; when no word
matches (`idd`), the closest spelling, as difflib finds it.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence

# Words other event schemas use where ours say another (GA4's event_name and
# event_timestamp, Segment's timestamp); a match by one counts a little less than the
# word itself, so that `product_name` still means `name` where there is one.
_SYNONYMS = {"name": "type", "kind": "type", "timestamp": "time", "ts": "time",
             "date": "time", "datetime": "time", "url": "uri", "location": "uri"}
_SYNONYM_WEIGHT = 0.9
# Words too common to suggest a field alone: `id` matched would make every *Id field
# as near as any other.
_WEAK = frozenset({"id"})
_ALIKE = 0.8  # difflib's ratio from which two words are taken as one spelt apart
_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_LONGEST = 100  # characters of a name compared: past that it is no spelling of one
# Words of a name compared word by word: more is no field's name (the longest have 4),
# and each costs a comparison with every word of every field (8 words spelt one letter
# off ours took a refused call's server CPU from 1.8 to 4 ms).
_MOST_WORDS = 5


def words(name: str) -> list[str]:
    """`name`'s words, lower case and singular: `visitorID` and `visitor_ids` are
    [visitor, id], `pageCategories` [page, category]."""
    return [_singular(part.lower()) for part in _PARTS.findall(name[:_LONGEST])]


@functools.lru_cache(maxsize=64)
def _words_of(names: tuple[str, ...]) -> list[list[str]]:
    return [words(name) for name in names]


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 2 and word.endswith("s") and not word.endswith(("ss", "us")):
        return word[:-1]
    return word


def _split(typed: list[str], vocabulary: set[str]) -> list[str]:
    """`typed` with a word run together from known ones (`eventname`) parted where a
    word of `vocabulary` begins it: [event, name]."""
    parted: list[str] = []
    for word in typed:
        while len(word) > 3 and word not in vocabulary:  # (`timestamp` is one word)
            head = max((v for v in vocabulary if len(v) > 1 and word.startswith(v)
                        and len(word) - len(v) > 1), key=len, default=None)
            if head is None:
                break
            parted.append(head)
            word = word[len(head):]
        parted.append(word)
    return parted


@functools.lru_cache(maxsize=4096)  # (fields share words: `id`, `event`, `product`)
def _alike(typed: str, word: str) -> tuple[float, float]:
    """How much `typed` counts as `word`: (1 the same, less for a synonym; the ratio of
    their letters when spelt alike), (0, 0) for none."""
    if typed == word:
        return 1.0, 1.0
    if _SYNONYMS.get(typed) == word:
        return _SYNONYM_WEIGHT, _SYNONYM_WEIGHT
    if abs(len(typed) - len(word)) > 0.25 * (len(typed) + len(word)):
        return 0.0, 0.0  # (lengths too far apart for a ratio of _ALIKE)
    # (a bound cheaper still: letters of one that the other lacks match nothing; most
    # pairs end here, before a SequenceMatcher, the cost of a name made of many words)
    letters = set(word)
    shared = len(typed) - sum(1 for letter in typed if letter not in letters)
    if 2 * shared < _ALIKE * (len(typed) + len(word)):
        return 0.0, 0.0
    matcher = difflib.SequenceMatcher(None, typed, word)
    if matcher.quick_ratio() < _ALIKE:  # (a bound of the ratio, cheaper to find)
        return 0.0, 0.0
    ratio = matcher.ratio()
    return 0.0, ratio if ratio >= _ALIKE else 0.0


def _closeness(typed: list[str], field: list[str],
               kind: bool) -> tuple[float, float, bool, float]:
    """How near `typed` is to `field`, to compare with others: the share of the words of
    both that match as words (the same, or synonyms), then as words spelt alike too,
    whether the first words match, the ratio of the letters; all 0 when nothing but a
    weak word matches, or when the last word typed is a `kind` (a word of some field)
    and none of this field's. (A word spelt alike counts after one the same: `attribution`
    means attributionToken before attributes.)"""
    left = list(range(len(field)))
    same = alike = 0.0
    head = strong = False
    matched = 0
    for i, word in enumerate(typed):
        best, j = max(((_alike(word, field[j]), j) for j in left), default=((0.0, 0.0), -1))
        if best[1] > 0:
            left.remove(j)
            same, alike = same + best[0], alike + best[1]
            head = head or (i == 0 and j == 0)
            strong = strong or field[j] not in _WEAK
            matched += 1
    # (a field that shares the first word, or every word typed, or all its own, is a
    # guess; one that shares only some other word is not: `profileEvents` shares
    # `event` alone with `jobEvent`, a field of another kind)
    if not strong or not (head or matched == len(typed) or matched == len(field)):
        return 0.0, 0.0, False, 0.0
    # (the last of several words says what the field is, where it is a word fields
    # use: `page_url` is a uri, not pageCategories, `eventId` no eventTime)
    if len(typed) > 1 and kind and not any(_alike(typed[-1], word)[1] for word in field):
        return 0.0, 0.0, False, 0.0
    letters = difflib.SequenceMatcher(None, "".join(typed), "".join(field)).ratio()
    most = max(len(typed), len(field))
    return same / most, alike / most, head, letters


def nearest(typed: str, names: Sequence[str]) -> str | None:
    """The one of `names` (field names, camelCase or snake_case) that `typed` most
    likely meant, or None when none is near."""
    return _nearest(typed[:_LONGEST], tuple(names))


@functools.lru_cache(maxsize=256)  # (an import's lines repeat one mistake: said once)
def _nearest(typed: str, names: tuple[str, ...]) -> str | None:
    field_words = _words_of(names)
    vocabulary = {w for each in field_words for w in each} | set(_SYNONYMS)
    mine = _split(words(typed), vocabulary)
    if 0 < len(mine) <= _MOST_WORDS:
        kind = any(_alike(mine[-1], theirs)[1] for theirs in vocabulary)
        scored = [(_closeness(mine, theirs, kind), i) for i, theirs in enumerate(field_words)]
        # (the best; of equals, the first field: max would take the last)
        best, at = max(scored, key=lambda s: (s[0], -s[1]))
        if best[1] > 0:
            return names[at]
        if any(_alike(word, theirs)[1] for word in mine for theirs in vocabulary - _WEAK):
            return None  # (its words are ours, put together as no field is)
    close = difflib.get_close_matches(typed, names, n=1)
    return close[0] if close else None
