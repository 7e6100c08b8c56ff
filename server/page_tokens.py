"""Page tokens: what a list's tokens carry of the question they go on with, and
the signature that makes a token tamper-evident; and how many bytes a page holds.

A token of one list (another parent, another filter) went on at its position in
another, where AIP-158 asks for INVALID_ARGUMENT: the console's lists and
ListOperations bind their tokens to their question (the insights tables and
ListProducts carry a fingerprint of their own). Every list's tokens are also signed
with a key the store keeps (Store.page_token_key): a check value anyone can compute
let a caller write a token for any position, so a token's position and question are
now only what a server wrote, and every server on one store reads the others' tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import zlib

from server.errors import InvalidArgument

# A page of any list ends once what it holds passes this many bytes (with at least one
# item): its items may be large (events of up to 2 MiB, products of a few MB, failed
# imports with their error samples), and a thousand of them made answers past the
# 4 MiB a gRPC client takes by default (RESOURCE_EXHAUSTED, 'Received message larger
# than max'), with no token to go on by, built whole in the server's memory.
PAGE_BYTES = 3 * 1024 * 1024
# ... and a call of a list whose filter is checked on each item read (the console's by
# sessionId or productId, ListProducts by type or primary) reads at most this many
# items: past it, its page is short (or empty), with a token to go on from the last item
# read. A filter that matches none read the whole catalog, or branch, in one call.
SCAN_LIMIT = 5000

# A signed token is "BODY.TAG", each unpadded base64url; a token of a Footfall from
# before they were signed is the padded base64url of its body (no dot).
TAG_BYTES = 16  # of HMAC-SHA256: 128 bits, past guessing
_PURPOSE = b"footfall page token\0"  # the key signs nothing else, but says what it signs
_UNSIGNED = re.compile(rb"-?[0-9]+(\.-?[0-9]+)*|(catalogs|tenants):.*", re.DOTALL)
# ... and of the other lists before theirs were signed too: ListOperations'
# "CREATED:QUESTION:NAME", "CREATED:NAME" before 2026-12-04 (padded), and ListProducts'
# JSON ["AFTER_ID","FINGERPRINT"] (unpadded); the insights tables' "END.FINGERPRINT"
# reads as the console's.
_UNSIGNED_OPERATIONS = re.compile(rb"-?[0-9]{1,19}:.*", re.DOTALL)  # (a time in int64)
_UNSIGNED_PRODUCTS = re.compile(rb'\[".*","[0-9a-f]{16}"\]', re.DOTALL)


def question(*asked: object) -> int:
    """A number standing for `asked` (a list's parent and filter) in its page tokens."""
    return zlib.crc32(repr(asked).encode())


def of_another_list(names: str = "parent") -> InvalidArgument:
    """The refusal of a token made for another question (`names`: what the request
    names its list by)."""
    return InvalidArgument.field("page_token", f"is a page token of another list: a token "
                                               f"goes on with the {names} and filter it came "
                                               f"with")


def signed(key: bytes, body: bytes) -> str:
    """The page token that carries `body`, signed with `key`."""
    return f"{_text(body)}.{_text(_tag(key, body))}"


def body_of(key: bytes | None, token: str) -> bytes:
    """What the page token `token` carries. INVALID_ARGUMENT naming page_token for
    one `key` did not sign (every one when there is no key yet: see
    Store.page_token_key_if_made): altered, made up, or of an earlier Footfall."""
    text, dot, tag = token.partition(".")
    try:
        body, given = _bytes(text), _bytes(tag)
    except (ValueError, binascii.Error):  # (not ASCII: a ValueError)
        body, given = b"", b""
    # (a base64 decoder skips what is not of its alphabet: only the text signed() wrote)
    if dot and key is not None and hmac.compare_digest(given, _tag(key, body)) \
            and _text(body) == text and _text(given) == tag:
        return body
    if not dot and _was_unsigned(token):
        raise InvalidArgument.field("page_token", "is a page token of an earlier Footfall, "
                                                  "which this one does not take: start from "
                                                  "the first page (no page_token)")
    raise InvalidArgument.field("page_token", "is not a page token this server issued (it "
                                              "was changed, or made up; or it is of another "
                                              "store, or of a memory:// server since "
                                              "restarted: start from the first page)")


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, _PURPOSE + body, hashlib.sha256).digest()[:TAG_BYTES]


def _text(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))


def _was_unsigned(token: str) -> bool:
    """Whether `token` reads as an unsigned token of an earlier Footfall's lists."""
    return _reads_as(_UNSIGNED, token) or _reads_as(_UNSIGNED_OPERATIONS, token) \
        or _reads_as(_UNSIGNED_PRODUCTS, token + "=" * (-len(token) % 4))


def _reads_as(form: re.Pattern[bytes], token: str) -> bool:
    try:
        return form.fullmatch(base64.urlsafe_b64decode(token.encode("ascii"))) is not None
    except (ValueError, binascii.Error):
        return False
