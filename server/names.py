"""Resource names in Google's form: parse with a clear error, format back.

Every parser raises InvalidArgument naming the request field that held the bad
name, so the message says exactly where the problem is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.errors import InvalidArgument

# A segment is anything but '/', non-empty; Google's IDs are stricter per kind,
# but the emulator accepts what a client can put in a path.
_SEGMENT = r"[^/]+"



_CATALOG = re.compile(rf"^projects/(?P<project>{_SEGMENT})/locations/(?P<location>{_SEGMENT})"
                      rf"/catalogs/(?P<catalog>{_SEGMENT})$")
_BRANCH = re.compile(rf"^(?P<catalog>projects/{_SEGMENT}/locations/{_SEGMENT}/catalogs/{_SEGMENT})"
                     rf"/branches/(?P<branch>{_SEGMENT})$")
_PRODUCT = re.compile(rf"^(?P<branch>projects/{_SEGMENT}/locations/{_SEGMENT}/catalogs/{_SEGMENT}"
                      rf"/branches/{_SEGMENT})/products/(?P<product>{_SEGMENT})$")
_TENANT = re.compile(rf"^projects/(?P<project>{_SEGMENT})/tenants/(?P<tenant>{_SEGMENT})$")
_JOB = re.compile(rf"^projects/(?P<project>{_SEGMENT})/tenants/(?P<tenant>{_SEGMENT})"
                  rf"/jobs/(?P<job>{_SEGMENT})$")


@dataclass(frozen=True)
class CatalogName:
    project: str
    location: str
    catalog: str

    def __str__(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/catalogs/{self.catalog}"


@dataclass(frozen=True)
class BranchName:
    catalog: CatalogName
    branch: str

    def __str__(self) -> str:
        return f"{self.catalog}/branches/{self.branch}"


@dataclass(frozen=True)
class ProductName:
    branch: BranchName
    product: str

    def __str__(self) -> str:
        return f"{self.branch}/products/{self.product}"


@dataclass(frozen=True)
class TenantName:
    project: str
    tenant: str

    def __str__(self) -> str:
        return f"projects/{self.project}/tenants/{self.tenant}"


@dataclass(frozen=True)
class JobName:
    tenant: TenantName
    job: str

    def __str__(self) -> str:
        return f"{self.tenant}/jobs/{self.job}"


def _fail(field: str, value: str, form: str) -> InvalidArgument:
    shown = value if len(value) <= 200 else value[:200] + "..."
    return InvalidArgument.field(field, f"must be of the form {form!r}, got {shown!r}")


def parse_catalog(value: str, field: str = "parent") -> CatalogName:
    """A catalog name; raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _CATALOG.match(value)
    if not match:
        raise _fail(field, value, "projects/*/locations/*/catalogs/*")
    return CatalogName(match["project"], match["location"], match["catalog"])


def parse_branch(value: str, field: str = "parent") -> BranchName:
    """A branch name; raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _BRANCH.match(value)
    if not match:
        raise _fail(field, value, "projects/*/locations/*/catalogs/*/branches/*")
    return BranchName(parse_catalog(match["catalog"], field), match["branch"])


def parse_product(value: str, field: str = "name") -> ProductName:
    """A product name; raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _PRODUCT.match(value)
    if not match:
        raise _fail(field, value, "projects/*/locations/*/catalogs/*/branches/*/products/*")
    return ProductName(parse_branch(match["branch"], field), match["product"])


def parse_tenant(value: str, field: str = "parent") -> TenantName:
    """A tenant name; raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _TENANT.match(value)
    if not match:
        raise _fail(field, value, "projects/*/tenants/*")
    return TenantName(match["project"], match["tenant"])


def parse_job(value: str, field: str) -> JobName:
    """A job name; raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _JOB.match(value)
    if not match:
        raise _fail(field, value, "projects/*/tenants/*/jobs/*")
    return JobName(TenantName(match["project"], match["tenant"]), match["job"])
