"""authorize() admits GetCaller, which names no project, for any key, a writer's too
(it names the key's own role and projects: the console tells a writer key that it
writes only, where it was told only that its role may not read); every other call
that names no project is refused as before."""

from __future__ import annotations

import json

import pytest
from footfall.console.v1 import console_pb2

from server.policy.auth import (
    PROJECTLESS_METHODS,
    READER_METHODS,
    Denied,
    Grant,
    KeyRing,
    authorize,
    caller_grant,
    set_caller,
)

GET_CALLER = "/footfall.console.v1.ConsoleService/GetCaller"
LIST_CATALOGS = "/footfall.console.v1.ConsoleService/ListCatalogs"
RING = KeyRing.parse(json.dumps({"keys": {
    f"{role}-of-one-shop-0123456789": {"projects": ["shop"], "role": role}
    for role in ("reader", "writer", "admin")}}))


def _grant(role: str) -> Grant:
    grant = RING.lookup(f"{role}-of-one-shop-0123456789")
    assert grant is not None
    return grant


def test_get_caller_is_a_read_that_names_no_project() -> None:
    assert GET_CALLER in READER_METHODS and PROJECTLESS_METHODS == {GET_CALLER}


@pytest.mark.parametrize("role", ["reader", "writer", "admin"])
def test_get_caller_is_admitted_for_every_key(role: str) -> None:
    assert authorize(_grant(role), GET_CALLER, console_pb2.GetCallerRequest()) == ""
    assert _grant(role).role.may_call(GET_CALLER)


def test_a_writer_key_still_reads_nothing_else() -> None:
    with pytest.raises(Denied) as refused:
        authorize(_grant("writer"), LIST_CATALOGS,
                  console_pb2.ListCatalogsRequest(parent="projects/shop"))
    assert refused.value.reason == "ROLE_NOT_ALLOWED"


def test_another_read_that_names_no_project_is_still_refused() -> None:
    with pytest.raises(Denied) as refused:
        authorize(_grant("reader"), LIST_CATALOGS, console_pb2.ListCatalogsRequest())
    assert refused.value.reason == "PROJECT_REQUIRED"


def test_the_grant_of_the_call_being_served_is_what_set_caller_set() -> None:
    grant = _grant("reader")
    set_caller(grant)
    assert caller_grant() is grant
    set_caller(None)
    assert caller_grant() is None
