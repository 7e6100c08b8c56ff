"""API keys and roles on their own: the auth file, key lookup, who may call what."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import grpc
import pytest
from footfall.console.v1 import console_pb2
from footfall.retail.v2 import (
    import_config_pb2,
    product_service_pb2,
    purge_config_pb2,
    user_event_service_pb2,
)
from footfall.talent.v4 import event_service_pb2
from google.longrunning import operations_pb2

from server.policy.auth import (
    READER_METHODS,
    AmbiguousKey,
    Authenticator,
    AuthFileError,
    Denied,
    Grant,
    InvalidKey,
    KeyRing,
    MissingKey,
    NotYourProject,
    Role,
    authorize,
    key_of,
    project_of,
)

WRITE = "/google.cloud.retail.v2.UserEventService/WriteUserEvent"
PURGE = "/google.cloud.retail.v2.UserEventService/PurgeUserEvents"
CLIENT_EVENT = "/google.cloud.talent.v4.EventService/CreateClientEvent"
LIST_OPERATIONS = "/google.longrunning.Operations/ListOperations"
UPDATE_PRODUCT = "/google.cloud.retail.v2.ProductService/UpdateProduct"
IMPORT_EVENTS = "/google.cloud.retail.v2.UserEventService/ImportUserEvents"
IMPORT_PRODUCTS = "/google.cloud.retail.v2.ProductService/ImportProducts"
CATALOG = "projects/shop/locations/global/catalogs/default_catalog"

KEYS = {"keys": {
    "writer-secret-0123456789": {"projects": ["shop"], "role": "writer", "name": "frontend"},
    "admin-secret-0123456789": {"projects": ["shop", "jobs"], "role": "admin"},
    "root-secret-0123456789": {"projects": ["*"], "role": "admin", "name": "ops"},
}}


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.parse(json.dumps(KEYS))


def write(parent: str = CATALOG) -> user_event_service_pb2.WriteUserEventRequest:
    return user_event_service_pb2.WriteUserEventRequest(parent=parent)


def test_lookup_finds_grants_by_key(ring: KeyRing) -> None:
    grant = ring.lookup("writer-secret-0123456789")
    assert grant is not None and grant.role is Role.WRITER and grant.name == "frontend"
    assert grant.projects == frozenset({"shop"})
    admin = ring.lookup("admin-secret-0123456789")
    assert admin is not None and admin.name == "key #2"
    assert ring.lookup("writer-secret-012345678") is None
    assert ring.lookup("") is None
    assert len(ring) == 3


def test_keys_are_kept_only_as_digests(ring: KeyRing) -> None:
    assert "writer-secret-0123456789" not in repr(vars(ring))


@pytest.mark.parametrize(("document", "words"), [
    ("not json", "not JSON"),
    ([], "must be an object"),
    ({"keys": []}, "must be an object"),
    ({"keys": {}, "other": 1}, "must be an object"),
    ({"keys": {"SECRETKEY": "admin"}}, "key #1: must be an object"),
    ({"keys": {"SECRETKEY": {"projects": ["p"], "role": "owner"}}}, "'role' must be"),
    # (the value given was not said: a typo had to be looked for in the file)
    ({"keys": {"SECRETKEY": {"projects": ["p"], "role": "writter"}}},
     r"'role' must be 'admin', 'writer' or 'reader' \(got 'writter'\)"),
    ({"keys": {"SECRETKEY": {"projects": ["p"]}}}, r"'reader' \(none given\)"),
    ({"keys": {"SECRETKEY": {"projects": ["p"], "role": 7}}}, r"'reader' \(got 7\)"),
    ({"keys": {"SECRETKEY": {"projects": [], "role": "admin"}}}, "'projects' must be"),
    ({"keys": {"SECRETKEY": {"projects": "p", "role": "admin"}}}, "'projects' must be"),
    ({"keys": {"SECRETKEY": {"projects": ["a/b"], "role": "admin"}}}, "'projects' must be"),
    ({"keys": {"SECRETKEY": {"projects": ["-"], "role": "reader"}}}, "is no project id"),
    # (a non-empty list was said to be wanted, and refused without why)
    ({"keys": {"SECRETKEY": {"projects": ["p", "projects/my-shop"], "role": "writer"}}},
     "'projects' lists project ids: 'projects/my-shop' is a resource name; write 'my-shop'"),
    ({"keys": {"SECRETKEY": {"projects": ["projects/"], "role": "admin"}}}, "'projects' must be"),
    ({"keys": {"SECRETKEY": {"projects": ["p"], "role": "admin", "project": "x"}}},
     "unknown fields"),
    ({"keys": {"": {"projects": ["p"], "role": "admin"}}}, "non-empty"),
    ({"keys": {" SECRETKEY": {"projects": ["p"], "role": "admin"}}}, "surrounding spaces"),
    ({"keys": {"SECRETKEY": {"projects": ["p"], "role": "admin", "name": 7}}}, "'name' must be"),
    ({"keys": {"SECRETKEY": {"projects": ["p"], "role": "admin", "buckets": []}}},
     "'buckets' must be"),
    ({"keys": {"SECRETKEY": {"projects": ["p"], "role": "admin", "buckets": "shop"}}},
     "'buckets' must be"),
    ({"keys": {"SECRETKEY": {"projects": ["p"], "role": "admin", "buckets": ["gs://shop"]}}},
     "'buckets' must be"),
    ({"keys": {"SECRETKEY": {"projects": ["p"], "role": "admin", "buckets": ["Shop"]}}},
     "'buckets' must be"),
    *(({"keys": {"SECRETKEY": {"projects": ["p"], "role": "writer", "calls_per_second": pace}}},
       r"'calls_per_second' must be a number above 0 and at most 1,000,000 \(got ")
      for pace in (0, -5, True, "100", [100], 1e7)),
    ('{"keys": {"SECRETKEY": {"projects": ["p"], "role": "writer", "calls_per_second": NaN}}}',
     r"'calls_per_second' must be .* \(got nan\)"),
])
def test_bad_files_are_refused_without_showing_the_key(document: object, words: str) -> None:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(AuthFileError, match=words) as caught:
        KeyRing.parse(text, "auth file x.json")
    assert "auth file x.json" in str(caught.value)
    if isinstance(document, dict) and isinstance(document.get("keys"), dict):
        for key in document["keys"]:
            if key.strip():
                assert key not in str(caught.value)


def test_key_sources() -> None:
    assert key_of([("x-goog-api-key", "a"), ("authorization", "Bearer a")]) == "a"
    assert key_of([("authorization", "a"), ("x-goog-api-key", "a")]) == "a"
    assert key_of([("x-goog-api-key", "a"), ("authorization", "Basic b")]) == "a"
    assert key_of([("x-goog-api-key", "a"), ("authorization", "Bearer")]) == "a"
    assert key_of([("authorization", "a")]) is None  # (refused as other_scheme says)
    assert key_of([("authorization", "Bearer b")], "b") == "b"
    assert key_of([("authorization", "bearer  b ")]) == "b"
    assert key_of([("authorization", "Basic b")], "c") == "c"
    assert key_of([("authorization", "Bearer ")]) is None
    assert key_of([("x-goog-api-key-bin", b"x")]) is None
    assert key_of([]) is None


FIRST, SECOND = "first-key-0123456789", "second-key-0123456789"


@pytest.mark.parametrize(("metadata", "query", "named"), [
    ([("x-goog-api-key", FIRST), ("x-goog-api-key", SECOND)], None,
     "two x-goog-api-key headers"),
    ([("x-goog-api-key", FIRST), ("authorization", f"Bearer {SECOND}")], None,
     "x-goog-api-key and authorization: Bearer"),
    ([("authorization", SECOND), ("x-goog-api-key", FIRST)], None,
     "x-goog-api-key and authorization"),  # (named in one order, whatever came first)
    ([("authorization", f"Bearer {FIRST}")], SECOND,
     "authorization: Bearer and the key parameter"),
])
def test_two_different_keys_are_refused_naming_where_not_what(
        metadata: list[tuple[str, str]], query: str | None, named: str) -> None:
    with pytest.raises(AmbiguousKey, match=named) as refused:
        key_of(metadata, query)
    assert refused.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert FIRST not in str(refused.value) and SECOND not in str(refused.value)


@pytest.mark.parametrize(("name", "project"), [
    ("projects/shop", "shop"),
    ("projects/shop/locations/global/catalogs/c", "shop"),
    ("projects/", None),
    ("projects//x", None),
    ("project/shop", None),
    ("", None),
    ("  projects/shop", None),
])
def test_project_of(name: str, project: str | None) -> None:
    assert project_of(name) == project


def test_writer_writes_in_its_projects_only(ring: KeyRing) -> None:
    grant = ring.lookup("writer-secret-0123456789")
    assert grant is not None
    assert authorize(grant, WRITE, write()) == "shop"
    with pytest.raises(Denied, match="not allowed to use project 'other'"):
        authorize(grant, WRITE, write("projects/other/locations/global/catalogs/c"))
    with pytest.raises(Denied, match=r"role \(writer\) may not call PurgeUserEvents"):
        authorize(grant, PURGE, purge_config_pb2.PurgeUserEventsRequest(parent=CATALOG))
    with pytest.raises(Denied, match="may not call ListOperations"):
        authorize(grant, LIST_OPERATIONS, operations_pb2.ListOperationsRequest(
            name="projects/shop"))
    # a job board's client events, through either talent version
    for version in ("v4", "v4beta1"):
        assert authorize(grant, f"/google.cloud.talent.{version}.EventService/CreateClientEvent",
                         event_service_pb2.CreateClientEventRequest(
                             parent="projects/shop/tenants/t")) == "shop"


def test_every_project_with_a_role_that_may_not_read_is_told_of_its_role() -> None:
    """A writer key asking for projects/- was told to name a project; naming one, it
    was then told its role may not read at all."""
    listing = console_pb2.ListRejectionsRequest(parent="projects/-")
    method = "/footfall.console.v1.ConsoleService/ListRejections"
    writer = Grant(Role.WRITER, frozenset({"shop"}), "w")
    with pytest.raises(Denied) as refused:
        authorize(writer, method, listing)
    assert refused.value.message == ("the API key's role (writer) may not call "
                                     "ListRejections; it needs a reader or admin key")
    assert not isinstance(refused.value, NotYourProject)


def test_every_project_in_a_read_needs_a_key_for_every_project() -> None:
    listing = console_pb2.ListCatalogsRequest(parent="projects/-")
    method = "/footfall.console.v1.ConsoleService/ListCatalogs"
    some = Grant(Role.READER, frozenset({"shop"}), "some")
    # it said "not allowed to use project '-' (or it may not exist)": what to do was left out
    with pytest.raises(Denied, match=r'^projects/- \(every project\) needs an API key granted '
                                     r'every project \("\*"\); name one: projects/PROJECT$'):
        authorize(some, method, listing)
    assert authorize(Grant(Role.READER, frozenset({"*"}), "all"), method, listing) == "-"


def test_admin_does_everything_in_its_projects(ring: KeyRing) -> None:
    grant = ring.lookup("admin-secret-0123456789")
    assert grant is not None
    assert authorize(grant, PURGE, purge_config_pb2.PurgeUserEventsRequest(
        parent=CATALOG)) == "shop"
    assert authorize(grant, CLIENT_EVENT, event_service_pb2.CreateClientEventRequest(
        parent="projects/jobs/tenants/t")) == "jobs"
    product = product_service_pb2.UpdateProductRequest()
    product.product.name = f"{CATALOG}/branches/0/products/p1"
    assert authorize(grant, UPDATE_PRODUCT, product) == "shop"
    product.product.name = "projects/else/locations/global/catalogs/c/branches/0/products/p1"
    with pytest.raises(Denied):
        authorize(grant, UPDATE_PRODUCT, product)


def test_inventory_calls_act_on_the_project_of_their_product(ring: KeyRing) -> None:
    grant = ring.lookup("admin-secret-0123456789")
    assert grant is not None
    mine = f"{CATALOG}/branches/0/products/p1"
    other = "projects/else/locations/global/catalogs/c/branches/0/products/p1"
    service = "/google.cloud.retail.v2.ProductService/"
    for method, request in (
            ("SetInventory", lambda name: product_service_pb2.SetInventoryRequest(
                inventory={"name": name})),
            ("AddFulfillmentPlaces", lambda name: product_service_pb2.AddFulfillmentPlacesRequest(
                product=name)),
            ("RemoveLocalInventories",
             lambda name: product_service_pb2.RemoveLocalInventoriesRequest(product=name))):
        assert authorize(grant, service + method, request(mine)) == "shop"
        with pytest.raises(Denied):
            authorize(grant, service + method, request(other))


def test_a_request_without_a_project_is_denied_even_to_root(ring: KeyRing) -> None:
    grant = ring.lookup("root-secret-0123456789")
    assert grant is not None
    assert authorize(grant, WRITE, write("projects/anything/locations/l/catalogs/c")) == \
        "anything"
    for name in ("", "projects/", "catalogs/x"):
        with pytest.raises(Denied, match="names no project"):
            authorize(grant, LIST_OPERATIONS, operations_pb2.ListOperationsRequest(name=name))


def test_authenticator_reloads_and_keeps_old_keys_on_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(KEYS))
    auth = Authenticator(str(path))
    assert auth.enabled and auth.key_count == 3
    with pytest.raises(MissingKey):
        auth.authenticate([])
    with pytest.raises(InvalidKey):
        auth.authenticate([("x-goog-api-key", "guess")])
    assert auth.authenticate([("x-goog-api-key", "root-secret-0123456789")]).name == "ops"

    path.write_text(json.dumps({"keys": {"new-key": {"projects": ["p"], "role": "writer"}}}))
    auth.reload()
    assert auth.key_count == 1
    assert auth.authenticate([], "new-key").role is Role.WRITER
    with pytest.raises(InvalidKey):
        auth.authenticate([("authorization", "Bearer root-secret-0123456789")])
    with pytest.raises(MissingKey, match="only as Bearer KEY, not 'Basic'"):
        auth.authenticate([("authorization", "Basic cm9vdDpzZWNyZXQ=")])

    path.write_text("{broken")
    with pytest.raises(AuthFileError):
        auth.reload()
    assert auth.authenticate([], "new-key").role is Role.WRITER


def test_a_key_sent_as_the_authorization_header_without_a_scheme_is_never_repeated(
        tmp_path: Path) -> None:
    """`authorization: KEY` was told "not 'root-secret-0123456' ...": 20 characters of
    the key, in the answer and in the request log."""
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": {"root-secret-0123456789": {"projects": ["*"],
                                                                     "role": "admin"}}}))
    auth = Authenticator(path)
    for value in ("root-secret-0123456789", " root-secret-0123456789 "):
        with pytest.raises(MissingKey) as refused:
            auth.authenticate([("authorization", value)])
        said = str(refused.value)
        assert "root-secret" not in said and "no scheme" in said, said
    with pytest.raises(MissingKey, match="not 'Token'"):
        auth.authenticate([("authorization", "Token root-secret-0123456789")])


def test_auth_is_off_without_a_file() -> None:
    auth = Authenticator(None)
    assert not auth.enabled and auth.key_count == 0
    auth.reload()  # nothing to read
    assert not auth.enabled


def test_missing_file_is_an_auth_file_error(tmp_path: Path) -> None:
    with pytest.raises(AuthFileError, match="cannot read auth file"):
        Authenticator(str(tmp_path / "absent.json"))


BUCKET_KEYS = {"keys": {
    "shop-a-admin-0123456789": {"projects": ["shop"], "role": "admin",
                                "buckets": ["shop-a-*", "shared-exports"]},
    "shop-a-writer-0123456789": {"projects": ["shop"], "role": "writer", "buckets": ["x-*"]},
    "all-buckets-0123456789": {"projects": ["shop"], "role": "admin", "buckets": ["*"]},
}}


def event_import(*uris: str, errors: str = "") -> import_config_pb2.ImportUserEventsRequest:
    request = import_config_pb2.ImportUserEventsRequest(parent=CATALOG)
    request.input_config.gcs_source.input_uris.extend(uris)
    if errors:
        request.errors_config.gcs_prefix = errors
    return request


@pytest.fixture
def bucket_ring() -> KeyRing:
    return KeyRing.parse(json.dumps(BUCKET_KEYS))


def test_a_key_uses_only_its_buckets(bucket_ring: KeyRing) -> None:
    grant = bucket_ring.lookup("shop-a-admin-0123456789")
    assert grant is not None
    allowed = event_import("gs://shop-a-events/2024/*.json", "gs://shared-exports/e.json",
                           errors="gs://shop-a-errors/import/")
    assert authorize(grant, IMPORT_EVENTS, allowed) == "shop"
    for request, field, bucket in [
        (event_import("gs://shop-a-events/e.json", "gs://shop-b-events/e.json"),
         "input_config.gcs_source.input_uris[1]", "shop-b-events"),
        (event_import("gs://shop-a-events/e.json", errors="gs://shop-b/errors"),
         "errors_config.gcs_prefix", "shop-b"),
        (event_import("gs://shared-exports-2/e.json"),  # exact names are exact
         "input_config.gcs_source.input_uris[0]", "shared-exports-2"),
    ]:
        with pytest.raises(Denied) as denied:
            authorize(grant, IMPORT_EVENTS, request)
        assert denied.value.message == (f"the API key is not allowed to use bucket "
                                        f"{bucket!r} ({field})")
        assert [d.reason for d in denied.value.details()] == ["BUCKET_NOT_GRANTED"]
    products = import_config_pb2.ImportProductsRequest(parent=f"{CATALOG}/branches/0")
    products.input_config.gcs_source.input_uris.append("gs://shop-b/products.json")
    with pytest.raises(Denied, match="bucket 'shop-b'"):
        authorize(grant, IMPORT_PRODUCTS, products)
    staging = event_import()
    staging.input_config.big_query_source.gcs_staging_dir = "gs://elsewhere/tmp"
    with pytest.raises(Denied, match="bucket 'elsewhere'"):
        authorize(grant, IMPORT_EVENTS, staging)


def test_buckets_default_to_all_and_leave_other_calls_alone(
        ring: KeyRing, bucket_ring: KeyRing) -> None:
    anywhere = event_import("gs://any-bucket/e.json", errors="gs://other-bucket/e")
    for grant in (ring.lookup("admin-secret-0123456789"),
                  bucket_ring.lookup("all-buckets-0123456789")):
        assert grant is not None and grant.buckets is None
        assert authorize(grant, IMPORT_EVENTS, anywhere) == "shop"
    writer = bucket_ring.lookup("shop-a-writer-0123456789")
    assert writer is not None
    assert authorize(writer, WRITE, write()) == "shop"
    # Not gs:// at all: the request's own validation refuses it (INVALID_ARGUMENT).
    admin = bucket_ring.lookup("shop-a-admin-0123456789")
    assert admin is not None
    assert authorize(admin, IMPORT_EVENTS, event_import("/etc/passwd")) == "shop"


def test_a_reader_may_call_every_console_read_and_watch() -> None:
    # The console's every RPC but its resets reads: a watch left out of the list (as
    # WatchUserEventBatches was) answers a reader key PERMISSION_DENIED "needs an admin key".
    service = console_pb2.DESCRIPTOR.services_by_name["ConsoleService"]
    reads = {f"/{service.full_name}/{m.name}" for m in service.methods
             if not m.name.startswith("Reset")}
    assert reads <= READER_METHODS
    assert {f"/{service.full_name}/{m.name}" for m in service.methods} - reads \
        <= {f"/{service.full_name}/{m}" for m in ("ResetCatalog", "ResetTenant", "ResetProject")}


def test_a_short_key_is_warned_of_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    KeyRing.parse(json.dumps({"keys": {
        "abcde": {"projects": ["shop"], "role": "writer", "name": "shop"},
        "a-long-random-key-0123456789": {"projects": ["shop"], "role": "admin"}}}))
    [warned] = [r.getMessage() for r in caplog.records]
    assert warned == ("auth file: key #1 (shop): the key is 5 characters, short enough to "
                      "guess; use a long random one (at least 16 characters)")
    assert "abcde" not in caplog.text


def test_a_missing_key_of_an_operation_poll_says_a_key_reaches_its_own_call_only() -> None:
    from server.policy.auth import MissingKey

    poll = MissingKey.of_call("/google.longrunning.Operations/GetOperation").message
    assert "x-goog-api-key" in poll and "this GetOperation call carried none" in poll, poll
    for method in ("/google.longrunning.Operations/ListOperations",
                   "/google.cloud.retail.v2.UserEventService/WriteUserEvent"):
        assert MissingKey.of_call(method).message == MissingKey().message


def test_a_keys_pace_is_read_and_defaults_to_none() -> None:
    ring = KeyRing.parse(json.dumps({"keys": {
        "paced-whole-0123456789": {"projects": ["p"], "role": "writer", "calls_per_second": 200},
        "paced-part-0123456789": {"projects": ["p"], "role": "reader",
                                  "calls_per_second": 0.5},
        "unpaced-0123456789": {"projects": ["p"], "role": "admin"}}}))
    paces = {key: grant.calls_per_second for key in
             ("paced-whole-0123456789", "paced-part-0123456789", "unpaced-0123456789")
             if (grant := ring.lookup(key)) is not None}
    assert paces == {"paced-whole-0123456789": 200.0, "paced-part-0123456789": 0.5,
                     "unpaced-0123456789": None}
