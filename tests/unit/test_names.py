from __future__ import annotations

from typing import Any

import pytest

from server import names
from server.errors import InvalidArgument
from server.names import (
    default_branch,
    parse_branch,
    parse_branch_key,
    parse_catalog,
    parse_job,
    parse_product,
    parse_product_key,
    parse_tenant,
    product_id_problem,
    product_name,
    resolve_default_branch,
)

CATALOG = "projects/p1/locations/global/catalogs/default_catalog"
BRANCH = f"{CATALOG}/branches/0"


def test_catalog_round_trip() -> None:
    name = parse_catalog(CATALOG)
    assert (name.project, name.location, name.catalog) == ("p1", "global", "default_catalog")
    assert str(name) == CATALOG


def test_product_round_trip() -> None:
    text = f"{CATALOG}/branches/0/products/sku-1"
    name = parse_product(text)
    assert name.product == "sku-1" and name.branch.branch == "0"
    assert str(name) == text
    assert str(parse_branch(f"{CATALOG}/branches/default_branch")).endswith("default_branch")


def test_job_and_tenant() -> None:
    job = parse_job("projects/p/tenants/t/jobs/j1", "jobs[0]")
    assert job.tenant == parse_tenant("projects/p/tenants/t")
    assert str(job) == "projects/p/tenants/t/jobs/j1"


def test_talent_v4beta1_names_a_projects_default_tenant_by_the_project_alone() -> None:
    default = names.TenantName("p", names.DEFAULT_TENANT_ID)
    assert names.parse_tenant_or_project("projects/p") == default
    assert names.parse_tenant_or_project("projects/p/tenants/t") == parse_tenant(
        "projects/p/tenants/t")
    assert names.parse_job_or_default_tenant_job("projects/p/jobs/j", "jobs[0]") == \
        names.JobName(default, "j")
    assert names.parse_job_or_default_tenant_job("projects/p/tenants/t/jobs/j", "jobs[0]") == \
        parse_job("projects/p/tenants/t/jobs/j", "jobs[0]")


@pytest.mark.parametrize(("parse", "bad", "says"), [
    (names.parse_tenant_or_project, "projects/", "the project is empty, in 'projects/' "
                                                 "(of the form 'projects/*')"),
    (names.parse_tenant_or_project, "projects/-", "the project must be named"),
    (names.parse_tenant_or_project, "tenants/t", "must be of the form 'projects/*/tenants/*', "
                                                 "got 'tenants/t' (or, of the project's "
                                                 "default tenant, 'projects/*')"),
    (names.parse_tenant_or_project, "projects/" + "\U00020000" * 255,
     "at most 1,024 bytes as UTF-8"),
    (names.parse_job_or_default_tenant_job, "projects/p/jobs/a b",
     "the job must not hold white space"),
    (names.parse_job_or_default_tenant_job, "projects/p/jobs", "(or, of the project's "
                                                             "default tenant, "
                                                             "'projects/*/jobs/*')"),
])
def test_talent_v4beta1_names_are_refused_naming_both_forms(parse: Any, bad: str,
                                                           says: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse(bad, "parent")
    [violation] = refused.value.violations
    assert violation.field == "parent" and says in violation.description, violation


@pytest.mark.parametrize("bad", [
    "", "projects/p", "projects/p/locations/global/catalogs/", "projects//locations/l/catalogs/c",
    f"{CATALOG}/extra", f"/{CATALOG}", "projects/p/locations/l/catalog/c",
    "projects/a b/locations/global/catalogs/c", "projects/a\nb/locations/global/catalogs/c",
    "projects/p/locations/global/catalogs/c\t", "projects/p/locations/x\x00/catalogs/c",
    "projects/-/locations/global/catalogs/c",  # `-` is every project, in reads only
    # no URL can carry '.' or '..' as a segment: nothing could read them back
    "projects/../locations/global/catalogs/c", "projects/./locations/global/catalogs/c",
    "projects/p/locations/global/catalogs/..",
    # invisible characters that make two names look alike
    "projects/p\u200b/locations/global/catalogs/c", "projects/p\u202e/locations/global/catalogs/c",
    "projects/\ufeffp/locations/global/catalogs/c", "projects/p\x85/locations/global/catalogs/c",
])
def test_bad_catalog_names_the_field(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_catalog(bad, "parent")
    [violation] = caught.value.violations
    assert violation.field == "parent"
    assert "projects/*/locations/*/catalogs/*" in violation.description


@pytest.mark.parametrize(("bad", "why"), [
    ("projects/p/locations/global/catalogs/a b",
     "the catalog must not hold white space, control or invisible format characters, "
     "got ' ' at character 2 of the catalog, in 'projects/p/locations/global/catalogs/a b'"),
    ("projects/p\u200b/locations/global/catalogs/c",
     "the project must not hold white space, control or invisible format characters, "
     "got '\\u200b' at character 2 of the project"),
    ("projects/-/locations/global/catalogs/c", "the project must be named ('-' stands for "
                                               "every project only where a read allows it)"),
    ("projects/p/locations//catalogs/c", "the location is empty"),
    ("projects/p/locations/global/catalogs/..", "the catalog must not be '..'"),
    ("projects/p/locations/global/catalog/c",
     "must be of the form 'projects/*/locations/*/catalogs/*', got"),  # not of the form
    ("projects/p/locations/global/catalogs/c/",  # (a parent copied with its slash)
     "must be of the form 'projects/*/locations/*/catalogs/*', got "
     "'projects/p/locations/global/catalogs/c/': drop the trailing '/'"),
])
def test_a_name_of_the_form_says_what_is_wrong_with_its_segment(bad: str, why: str) -> None:
    # `a b` was told "must be of the form 'projects/*/locations/*/catalogs/*'": it is.
    with pytest.raises(InvalidArgument) as caught:
        parse_catalog(bad, "parent")
    assert caught.value.violations[0].description.startswith(why)


@pytest.mark.parametrize("segment", ["..a", ".x", "a.", "é", "名前"])
def test_dots_within_a_segment_and_other_letters_are_names(segment: str) -> None:
    assert parse_catalog(f"projects/{segment}/locations/global/catalogs/c").project == segment


def test_long_bad_names_are_shortened_in_the_message() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_tenant("x" * 10_000, "parent")
    assert len(caught.value.message) < 400


@pytest.mark.parametrize(("parse", "form"), [
    (parse_catalog, "projects/{}/locations/{}/catalogs/{}"),
    (parse_tenant, "projects/{}/tenants/{}"),
    (lambda value, field: parse_job(value, field), "projects/{}/tenants/{}/jobs/{}"),
])
def test_a_segment_is_at_most_255_characters(parse: Any, form: str) -> None:
    # A name comes back in every list of what it names: a megabyte catalog id
    # made ListCatalogs pass the server's 10 MiB message limit with a dozen events.
    slots = form.count("{}")
    for i in range(slots):
        fine = ["x"] * slots
        fine[i] = "x" * 255
        parse(form.format(*fine), "parent")
        long = ["x"] * slots
        long[i] = "x" * 256
        with pytest.raises(InvalidArgument) as caught:
            parse(form.format(*long), "parent")
        [violation] = caught.value.violations
        assert violation.field == "parent"
        assert "must be at most 255 characters, got 256" in violation.description


# -- product branches: the names the store keys products by ---------------------

@pytest.mark.parametrize(("value", "normalised"), [
    (f"{CATALOG}/branches/default_branch", BRANCH),
    (f"{CATALOG}/branches/0", BRANCH),
    (f"{CATALOG}/branches/2", f"{CATALOG}/branches/2"),
])
def test_branches_normalise(value: str, normalised: str) -> None:
    assert parse_branch_key(value) == normalised


@pytest.mark.parametrize(("value", "message"), [
    (f"{CATALOG}/branches/3", "branch must be one of 0, 1, 2 or default_branch"),
    (f"{CATALOG}/branches/main", "branch must be one of"),
    (CATALOG, "must be of the form"),
])
def test_bad_branches_name_the_field(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_branch_key(value, "parent")
    assert caught.value.violations[0].field == "parent"
    assert message in caught.value.violations[0].description


@pytest.mark.parametrize(("value", "expected"), [
    (f"{CATALOG}/branches/default_branch/products/sku-1", (BRANCH, "sku-1")),
    (f"{CATALOG}/branches/1/products/a/b", (f"{CATALOG}/branches/1", "a/b")),
])
def test_product_names_parse(value: str, expected: tuple[str, str]) -> None:
    assert parse_product_key(value) == expected


@pytest.mark.parametrize("value", [
    f"{CATALOG}/branches/0/products/", f"{CATALOG}/branches/0", "products/x",
    f"{CATALOG}/branches/9/products/x", f"{CATALOG}/branches/0/products/{'x' * 129}",
])
def test_bad_product_names(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_product_key(value, "product.name")
    assert caught.value.violations[0].field == "product.name"


def test_product_ids_may_hold_slashes_as_the_http_route_allows() -> None:
    text = f"{CATALOG}/branches/1/products/shoes/red/42"
    name = parse_product(text)
    assert (name.branch.branch, name.product) == ("1", "shoes/red/42")
    assert str(name) == text


@pytest.mark.parametrize("product_id", ["sku\n", "a\nb", "\n"])
def test_a_line_break_in_a_product_id_is_refused_not_cut_off(product_id: str) -> None:
    """An id ending in a line break used to name the product without it; now the
    name is read whole, and its id refused: a product id holds no white space, as
    no segment does."""
    assert parse_product(f"{CATALOG}/branches/0/products/{product_id}").product == product_id
    with pytest.raises(InvalidArgument, match="white space"):
        parse_product_key(f"{CATALOG}/branches/0/products/{product_id}")


@pytest.mark.parametrize("product_id", ["x y", "x\u0007z", "a\u202eb", "a\u200bb", "a\x85b",
                                        "a\ufeffb", "a\x00b", "\t"])
def test_a_product_id_holds_what_a_segment_holds_but_slashes(product_id: str) -> None:
    with pytest.raises(InvalidArgument, match="name: product id must not hold"):
        parse_product_key(f"{CATALOG}/branches/0/products/{product_id}")
    assert parse_product_key(f"{CATALOG}/branches/0/products/a/b-ß") == (BRANCH, "a/b-ß")


def test_the_default_branch_is_branch_0_wherever_it_is_named() -> None:
    assert default_branch(CATALOG) == default_branch(parse_catalog(CATALOG)) == BRANCH
    assert parse_branch_key(f"{CATALOG}/branches/default_branch") == BRANCH
    assert product_name(BRANCH, "a/b") == f"{BRANCH}/products/a/b"
    operation = f"{CATALOG}/branches/default_branch/operations/import-products-7"
    assert resolve_default_branch(operation) == f"{BRANCH}/operations/import-products-7"
    assert resolve_default_branch(f"{CATALOG}/branches/default_branch") == BRANCH


@pytest.mark.parametrize("name", [
    f"{CATALOG}/branches/1/operations/x", f"{CATALOG}/branches/default_branches/operations/x",
    f"{CATALOG}/branches/my_default_branch", "projects/p/operations/default_branch",
    f"{CATALOG}/branches/default_branch_2",
])
def test_only_the_whole_default_branch_segment_is_resolved(name: str) -> None:
    assert resolve_default_branch(name) == name


@pytest.mark.parametrize(("parse", "form"), [
    (names.parse_catalog, "projects/{0}/locations/{0}/catalogs/{0}"),
    (names.parse_branch, "projects/{0}/locations/{0}/catalogs/{0}/branches/0"),
    (names.parse_product, "projects/{0}/locations/{0}/catalogs/{0}/branches/0/products/p"),
    (names.parse_tenant, "projects/{0}/tenants/{0}"),
    (names.parse_job, "projects/{0}/tenants/{0}/jobs/{0}"),
])
def test_a_name_is_at_most_1024_bytes_of_utf8(parse: Any, form: str) -> None:
    """255 characters of 4 bytes each a segment made names past what PostgreSQL's
    indexes take: each write of one was retried as if the database were away,
    and stopped every write of the server for seconds."""
    wide = "\U00020000" * 255  # a CJK character of 4 bytes, a segment's most
    with pytest.raises(InvalidArgument) as refused:
        parse(form.format(wide), "parent")
    assert "at most 1,024 bytes as UTF-8" in str(refused.value)
    assert str(refused.value).startswith("parent: ")
    parse(form.format("\U00020000" * 60), "parent")  # (a long name that fits)
    parse(form.format("x" * 255), "parent")  # 255 ASCII characters a segment still do


def test_a_default_tenants_job_has_both_its_names() -> None:
    spellings = names.job_spellings(names.parse_job_or_default_tenant_job("projects/p/jobs/j",
                                                                          "job"))
    assert spellings == ("projects/p/tenants/default_tenant/jobs/j", "projects/p/jobs/j")
    assert names.job_spellings(parse_job("projects/p/tenants/t/jobs/j", "job")) == (
        "projects/p/tenants/t/jobs/j",)


def test_a_product_id_says_where_its_bad_character_is_counted_from_1() -> None:
    """`"p q"` was told `got ' ' at 1`: the 2nd character, where a filter's
    `at character 13` counts from 1 (a new user read "at 1" as the first)."""
    assert product_id_problem("p q") == ("must not hold white space, control or invisible "
                                         "format characters, got ' ' at character 2")
