"""pixel.masked: the credentials a request gives, masked in what quotes it (a path
with no route, a pixel's reason), as given and percent-encoded."""

from __future__ import annotations

import pytest

from server.console.rejections import KEY_MASK
from server.http import pixel


def test_keys_found_in_the_mask_are_not_masked_again() -> None:
    # Masked one key after another, each of these letters of the mask found in the
    # masks the keys before it left: 22 characters became 24,000 with 8 such keys,
    # doubling with each more (a query's ?key=n&key=o&... of 20: gigabytes).
    keys = tuple("notkeayp")
    assert pixel.masked("no route for GET /v2/x", keys) == \
        f"{KEY_MASK}{KEY_MASK} r{KEY_MASK}u{KEY_MASK}{KEY_MASK} f{KEY_MASK}r GET /v2/x"
    assert len(pixel.masked("x", tuple("abcdefghijklmnopqrstuvwxyz() :AIP"))) == len(KEY_MASK)


def test_a_text_masked_again_keeps_its_masks() -> None:
    # (the gateway masks the path, then the message quoting it)
    once = pixel.masked("no route for GET /v2/API%20key", ("API key",))
    assert once == f"no route for GET /v2/{KEY_MASK}"
    assert pixel.masked(once, ("API key", "key")) == once


@pytest.mark.parametrize("text, keys, expected", [
    ("/v2/ke%79 and key", ("ke", "ey"), f"/v2/{KEY_MASK} and {KEY_MASK}"),  # overlapping
    ("/v2/b64K3y%2BZm9v%2fYm=", ("b64K3y+Zm9v/Ym=",), f"/v2/{KEY_MASK}"),  # hex of either case
    ("/v2/%C3%A9t%C3%A9/été", ("été",), f"/v2/{KEY_MASK}/{KEY_MASK}"),
    ("/v2/abc%zz", ("abc%",), f"/v2/{KEY_MASK}zz"),
    ("/v2/keykey", ("key",), f"/v2/{KEY_MASK}{KEY_MASK}"),
    ("/v2/nothing", (), "/v2/nothing"),
])
def test_keys_are_masked_as_given_and_encoded(text: str, keys: tuple[str, ...],
                                              expected: str) -> None:
    assert pixel.masked(text, keys) == expected


def test_a_key_or_text_not_of_utf_8_is_masked_not_raised() -> None:
    # aiohttp decodes header values with surrogateescape: a byte 0xff in an
    # x-goog-api-key header is '\udcff' in the key, and encoding it raised
    # UnicodeEncodeError (a 500 and a traceback for a no-route path or a pixel).
    assert pixel.masked("no route for GET /v2/x", ("ab\udcffc",)) == "no route for GET /v2/x"
    assert pixel.masked("got 'ab\udcffc' here", ("ab\udcffc",)) == f"got '{KEY_MASK}' here"
    assert pixel.masked("/v2/k%79 \udcff", ("ky",)) == f"/v2/{KEY_MASK} \udcff"
