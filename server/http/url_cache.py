"""The URLs that yarl keeps of requests answered: let go of the long ones.

aiohttp's parser makes each request's URL through yarl, whose URL constructors are
`functools.lru_cache`s of 128 entries keyed by the whole target: the URLs of the
last 128 distinct request targets stay, each with its query as parsed once asked
for (three copies of a long one, about). A pixel's target may be 260 KB long
(MAX_URL_BYTES): 150 pixels of such URLs, refused, held 116 MB of the server
after their answers, and for good on a quiet server (until 128 others came). Once
a request whose target is longer than LONG_TARGET is answered, those caches are
cleared: they are worth nothing to targets that long, which seldom come twice.
"""

from __future__ import annotations

from collections.abc import Callable

from yarl import _url

# Targets up to this long stay cached: 128 of them hold about 1.5 MB at most.
LONG_TARGET = 4096

# yarl's caches of URLs made from a request target (by aiohttp's C parser, by its
# Python one, and from a string), those of this yarl version that exist.
_CACHES: tuple[Callable[[], None], ...] = tuple(
    clear for name in ("build_pre_encoded_url", "pre_encoded_url", "encode_url")
    if (clear := getattr(getattr(_url, name, None), "cache_clear", None)) is not None)


def answered(raw_target: str) -> None:
    """A request whose target (path and query, as sent) is `raw_target` was
    answered: the URLs yarl keeps are let go if it was long."""
    if len(raw_target) > LONG_TARGET:
        for clear in _CACHES:
            clear()
