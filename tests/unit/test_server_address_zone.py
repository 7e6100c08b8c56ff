"""--server with a link-local IPv6 address and its zone (`[fe80::1%eth0]:50051`), which
a server's ready line gives for `--host fe80::1%eth0` and grpc connects to: refused as
no HOST:PORT, and `fe80::1%eth0:50051` was told to write it so, bracketed, a form
refused in turn (h7's review of stop 63)."""

from __future__ import annotations

import argparse

import pytest

from server.cli_args import server_address


@pytest.mark.parametrize("text", ["[fe80::1%eth0]:50051", "[::1%lo]:50051"])
def test_a_bracketed_address_with_its_zone_is_taken(text: str) -> None:
    assert server_address(text) == text


def test_the_form_advised_for_an_unbracketed_one_is_taken() -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        server_address("fe80::1%eth0:50051")
    assert "[fe80::1%eth0]:50051" in str(refused.value)
    assert server_address("[fe80::1%eth0]:50051") == "[fe80::1%eth0]:50051"
