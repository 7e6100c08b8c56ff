from __future__ import annotations

import pytest

from server.errors import InvalidArgument
from server.names import parse_branch, parse_catalog, parse_job, parse_product, parse_tenant

CATALOG = "projects/p1/locations/global/catalogs/default_catalog"


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


@pytest.mark.parametrize("bad", [
    "", "projects/p", "projects/p/locations/global/catalogs/", "projects//locations/l/catalogs/c",
    f"{CATALOG}/extra", f"/{CATALOG}", "projects/p/locations/l/catalog/c",
])
def test_bad_catalog_names_the_field(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_catalog(bad, "parent")
    [violation] = caught.value.violations
    assert violation.field == "parent"
    assert "projects/*/locations/*/catalogs/*" in violation.description


def test_long_bad_names_are_shortened_in_the_message() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_tenant("x" * 10_000, "parent")
    assert len(caught.value.message) < 400
