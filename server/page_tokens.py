"""What a list's page tokens carry of the question they go on with: a token of one
list (another parent, another filter) went on at its position in another, where
AIP-158 asks for INVALID_ARGUMENT. The console's lists and ListOperations bind
their tokens so (the insights tables carry a fingerprint of their own)."""

from __future__ import annotations

import zlib

from server.errors import InvalidArgument


def question(*asked: object) -> int:
    """A number standing for `asked` (a list's parent and filter) in its page tokens."""
    return zlib.crc32(repr(asked).encode())


def of_another_list(names: str = "parent") -> InvalidArgument:
    """The refusal of a token made for another question (`names`: what the request
    names its list by)."""
    return InvalidArgument.field("page_token", f"is a page token of another list: a token "
                                               f"goes on with the {names} and filter it came "
                                               f"with")
