"""Resource names in Google's form: parse with a clear error, format back.

Every parser raises InvalidArgument naming the request field that held the bad
name. Product ids may hold '/' (the HTTP routes bind `products/**`); products live
in branch 0, 1 or 2, and `default_branch`, another name of 0, never reaches the store.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from server.errors import InvalidArgument

T = TypeVar("T")
DEFAULT_BRANCH = "default_branch"
DEFAULT_BRANCH_ID = "0"
BRANCH_IDS = ("0", "1", "2")
MAX_PRODUCT_ID = 128
# The longest segment of a name (a project, location, catalog, tenant or job id):
# Google's ids are far shorter; a name comes back in every list and watch that
# shows what it names, so a megabyte id made one catalog's line a megabyte.
MAX_SEGMENT = 255
# The most bytes (as UTF-8) of a catalog, branch, tenant or job name: 255 characters
# of 4 bytes each a segment made names past what PostgreSQL's indexes take (2,704
# bytes a row): each write of such a name failed, and was retried as if the database
# were away, stopping every write of the server for seconds.
MAX_NAME_BYTES = 1024


class _Form:
    """A name's form as Google writes it: `{x}` is a segment named x (non-empty, no
    '/', no white space, control or invisible format character, not '.' or '..':
    Google's ids are stricter per kind, but Footfall accepts what a client can put
    in a path; a project is never `-`, which stands for every project where a read
    allows it); `{x=**}` is the
    rest of the name, '/' too, so an id a client chose names the same thing again
    (parse_product_key then refuses in a product id what a segment refuses, but '/')."""

    def __init__(self, form: str) -> None:
        self.form = form
        self.shown = re.sub(r"\{[^}]+\}", "*", form)
        self.regex = re.compile(re.sub(r"\{(\w+)(=\*\*)?\}", _group, form) + r"\Z", re.DOTALL)

    def refuse(self, value: str, field: str) -> NoReturn:
        shown = value if len(value) <= 200 else value[:200] + "..."
        longest = max(len(segment) for segment in value.split("/"))
        if longest > MAX_SEGMENT:
            raise InvalidArgument.field(field, f"each segment of {self.shown!r} must be at most "
                                               f"{MAX_SEGMENT} characters, got {longest} in "
                                               f"{shown!r}")
        why = self._segment_problem(value)
        if why is not None:  # of the form, but for what one segment holds: say which
            raise InvalidArgument.field(field, f"{why}, in {shown!r} (of the form "
                                               f"{self.shown!r})")
        trailing = ": drop the trailing '/'" if value.endswith("/") and \
            self.regex.match(value.rstrip("/")) else ""
        raise InvalidArgument.field(field, f"must be of the form {self.shown!r}, got "
                                           f"{shown!r}{trailing}")

    def _segment_problem(self, value: str) -> str | None:
        """Why `value`, of this form segment by segment, is not a name: the first
        segment that is empty, `-` for a project, `.` or `..`, or holds a character
        no segment may; None if it is not of the form at all."""
        parts, slots = value.split("/"), self.form.split("/")
        if slots[-1].endswith("=**}"):  # the rest of the name, '/' too
            if len(parts) < len(slots):
                return None
            parts = [*parts[:len(slots) - 1], "/".join(parts[len(slots) - 1:])]
        if len(parts) != len(slots):
            return None
        found = None
        for part, slot in zip(parts, slots, strict=True):
            if not slot.startswith("{"):
                if part != slot:
                    return None
                continue
            name = slot.strip("{}").removesuffix("=**")
            bad = _BAD_IN_SEGMENT.search(part) if not slot.endswith("=**}") else \
                _NOT_IN_PRODUCT_ID.search(part)
            why = (f"the {name} is empty" if not part
                   else f"the {name} must be named ('-' stands for every project only "
                        f"where a read allows it)" if name == "project" and part == "-"
                   else f"the {name} must not be {part!r}" if part in (".", "..")
                   # (counted from 1, as a filter's characters are: "at 1" was the 2nd)
                   else f"the {name} must not hold white space, control or invisible format "
                        f"characters, got {bad[0]!r} at character {bad.start() + 1} of the {name}"
                        if bad is not None
                   else None)
            found = found or why  # (the first; the segments after it must still fit the form)
        return found


# What no segment holds: '/', white space, control characters (C0 and C1) and the
# invisible format characters (zero-width, bidirectional overrides, byte-order mark)
# that make two names look alike in a log or the console.
_NOT_IN_SEGMENT = ("/\\s\\x00-\\x1f\\x7f-\\x9f"
                   "\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff")


# What a product id holds of those: all but '/' (an id may hold it, see above).
_NOT_IN_PRODUCT_ID = re.compile(f"[{_NOT_IN_SEGMENT.removeprefix('/')}]")
_BAD_IN_SEGMENT = re.compile(f"[{_NOT_IN_SEGMENT}]")
# NUL (U+0000) is in no id or name a column keeps: PostgreSQL's text cannot hold it
# (SQLite's can), so one store would merge ids the other keeps apart.
NUL_REFUSED = "must not hold a NUL character (U+0000)"


def product_id_problem(product_id: str) -> str | None:
    """Why `product_id` cannot be a product's id for the characters it holds (white
    space, a control or invisible format character, as in every name's segment),
    or None."""
    bad = _NOT_IN_PRODUCT_ID.search(product_id)
    if bad is None:
        return None
    return (f"must not hold white space, control or invisible format characters, got "
            f"{bad[0]!r} at character {bad.start() + 1}")


def _group(variable: re.Match[str]) -> str:
    if variable[2]:
        return f"(?P<{variable[1]}>.+)"
    every_project = "(?!-/)" if variable[1] == "project" else ""
    # '.' and '..' are not names: a URL path cannot carry them (clients and proxies
    # resolve them away), so nothing could read back what was stored under them.
    dots = r"(?!\.\.?(?:/|\Z))"
    return rf"{every_project}{dots}(?P<{variable[1]}>[^{_NOT_IN_SEGMENT}]{{1,{MAX_SEGMENT}}})"


_CATALOG = _Form("projects/{project}/locations/{location}/catalogs/{catalog}")
_PROJECT_ID = re.compile(rf"(?!-\Z)(?!\.\.?\Z)[^{_NOT_IN_SEGMENT}]{{1,{MAX_SEGMENT}}}")
_BRANCH = _Form("projects/{project}/locations/{location}/catalogs/{catalog}/branches/{branch}")
_PRODUCT = _Form("projects/{project}/locations/{location}/catalogs/{catalog}/branches/{branch}"
                 "/products/{product=**}")
_TENANT = _Form("projects/{project}/tenants/{tenant}")
_JOB = _Form("projects/{project}/tenants/{tenant}/jobs/{job}")
# Talent v4beta1 lets a project alone stand for its default tenant: a parent of
# projects/*, jobs of projects/*/jobs/*. Footfall keeps that tenant's client events
# under this tenant id (where the console and the insights read them).
DEFAULT_TENANT_ID = "default_tenant"
_PROJECT = _Form("projects/{project}")
_DEFAULT_TENANT_JOB = _Form("projects/{project}/jobs/{job}")
_DEFAULT_BRANCH_IN_NAME = re.compile(rf"/branches/{DEFAULT_BRANCH}(?=/|\Z)")


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


def _branch_of(match: re.Match[str]) -> BranchName:
    return BranchName(CatalogName(match["project"], match["location"], match["catalog"]),
                      match["branch"])


# Names parsed lately: every write names its catalog, and a server has few. Only
# names of a sensible length are kept, so the cache stays small whatever is sent.
_CACHED_NAME_CHARS = 512


def is_project_id(text: str) -> bool:
    """Whether `text` may be the project of a name (a segment, not `-`): what a
    name no parser takes (a project id of a megabyte, say) is not."""
    return _PROJECT_ID.fullmatch(text) is not None


def _fits(value: str, form: _Form, field: str) -> None:
    """INVALID_ARGUMENT naming `field` when the name `value` (of `form`) is longer
    than MAX_NAME_BYTES as UTF-8."""
    if len(value) > MAX_NAME_BYTES // 4:  # (fewer characters never are)
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_NAME_BYTES:
            raise InvalidArgument.field(field, f"a name of the form {form.shown!r} may hold "
                                               f"at most {MAX_NAME_BYTES:,} bytes as UTF-8, "
                                               f"got {size:,}")


def parse_catalog(value: str, field: str = "parent") -> CatalogName:
    """A catalog name; raises INVALID_ARGUMENT naming `field` otherwise."""
    found = _catalog(value) if len(value) <= _CACHED_NAME_CHARS else _read_catalog(value)
    if found is None:
        _CATALOG.refuse(value, field)
    _fits(value, _CATALOG, field)
    return found


def _read_catalog(value: str) -> CatalogName | None:
    match = _CATALOG.regex.match(value)
    return None if match is None else CatalogName(match["project"], match["location"],
                                                  match["catalog"])


_catalog = functools.lru_cache(maxsize=1024)(_read_catalog)


def parse_branch(value: str, field: str = "parent") -> BranchName:
    """A branch name; raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _BRANCH.regex.match(value) or _BRANCH.refuse(value, field)
    _fits(value, _BRANCH, field)
    return _branch_of(match)


def parse_product(value: str, field: str = "name") -> ProductName:
    """A product name; raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _PRODUCT.regex.match(value) or _PRODUCT.refuse(value, field)
    _fits(value.rpartition("/products/")[0], _BRANCH, field)  # (the id has its own bound)
    return ProductName(_branch_of(match), match["product"])


def parse_tenant(value: str, field: str = "parent") -> TenantName:
    """A tenant name; raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _TENANT.regex.match(value) or _TENANT.refuse(value, field)
    _fits(value, _TENANT, field)
    return TenantName(match["project"], match["tenant"])


def parse_job(value: str, field: str) -> JobName:
    """A job name; raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _JOB.regex.match(value) or _JOB.refuse(value, field)
    _fits(value, _JOB, field)
    return JobName(TenantName(match["project"], match["tenant"]), match["job"])


def parse_tenant_or_project(value: str, field: str = "parent") -> TenantName:
    """A tenant name, or a project alone for its default tenant (talent v4beta1:
    DEFAULT_TENANT_ID); raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _PROJECT.regex.match(value)
    if match is None or match["project"] == "-":  # (the form's last segment: no '/' after)
        return _or_default_tenant(parse_tenant, value, field, _PROJECT)
    tenant = TenantName(match["project"], DEFAULT_TENANT_ID)
    _fits(str(tenant), _TENANT, field)  # (the name the store keeps)
    return tenant


def parse_project(value: str, field: str = "name") -> str:
    """The project id of `projects/PROJECT` (never `-`: no project, but every one
    where a read allows it); raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _PROJECT.regex.match(value)
    if match is None or match["project"] == "-":
        _PROJECT.refuse(value, field)
    _fits(value, _PROJECT, field)
    return match["project"]


def operations_parent_problem(name: str) -> str | None:
    """Why `name` is no parent that ListOperations lists under (a catalog, location or
    project name, or `projects/` for every operation); None if it is one."""
    example = "e.g. projects/p/locations/global/catalogs/default_catalog"
    if not name.startswith("projects/"):
        return f"must name the parent of the operations, {example}"
    if name.split("/")[1] == "-":  # (a prefix no operation's name has: listed none)
        return (f"the project must be named ('-' stands for every project only where a read "
                f"allows it), {example}")
    return None


def parse_job_or_default_tenant_job(value: str, field: str) -> JobName:
    """A job name, or one of a project's default tenant, projects/*/jobs/* (talent
    v4beta1); raises INVALID_ARGUMENT naming `field` otherwise."""
    match = _DEFAULT_TENANT_JOB.regex.match(value)
    if match is None:
        return _or_default_tenant(parse_job, value, field, _DEFAULT_TENANT_JOB)
    _fits(value, _DEFAULT_TENANT_JOB, field)
    return JobName(TenantName(match["project"], DEFAULT_TENANT_ID), match["job"])


def job_spellings(job: JobName) -> tuple[str, ...]:
    """The names a stored client event may give `job`: a job of a project's default
    tenant is named either way (talent v4beta1 takes projects/*/jobs/* and the
    tenant's own form alike), its tenant's form first."""
    if job.tenant.tenant != DEFAULT_TENANT_ID:
        return (str(job),)
    return (str(job), f"projects/{job.tenant.project}/jobs/{job.job}")


def _or_default_tenant(parse: Callable[[str, str], T], value: str, field: str,
                       default_form: _Form) -> T:
    """`parse(value, field)`, its refusal saying the default tenant's form too (or
    what is wrong in a name of that form)."""
    if default_form._segment_problem(value) is not None:
        default_form.refuse(value, field)
    try:
        return parse(value, field)
    except InvalidArgument as exc:
        why = exc.violations[0].description
        raise InvalidArgument.field(field, f"{why} (or, of the project's default tenant, "
                                           f"{default_form.shown!r})") from None


# -- products: the branch and id the store keys them by ----------------------

def default_branch(catalog: str | CatalogName) -> str:
    """The catalog's default branch (where events join) as the store names it."""
    return f"{catalog}/branches/{DEFAULT_BRANCH_ID}"


def resolve_default_branch(name: str) -> str:
    """`name` (a branch, or a name under one) with `branches/default_branch` written
    `branches/0`, as the store keeps it; any other name unchanged."""
    return _DEFAULT_BRANCH_IN_NAME.sub(f"/branches/{DEFAULT_BRANCH_ID}", name)


def parse_branch_key(value: str, field: str = "parent") -> str:
    """The branch name products are stored under (`default_branch` -> `0`).

    INVALID_ARGUMENT naming `field` for a malformed name or a branch other than
    0, 1, 2 or default_branch.
    """
    return _branch_key(parse_branch(value, field), field)


def _branch_key(branch: BranchName, field: str) -> str:
    if branch.branch == DEFAULT_BRANCH:
        return default_branch(branch.catalog)
    if branch.branch not in BRANCH_IDS:
        raise InvalidArgument.field(field, f"branch must be one of {', '.join(BRANCH_IDS)} or "
                                           f"{DEFAULT_BRANCH}, got {branch.branch[:50]!r}")
    return str(branch)


def parse_product_key(value: str, field: str = "name") -> tuple[str, str]:
    """(branch name as stored, product id) of a product name.

    INVALID_ARGUMENT naming `field` for a malformed name, a branch other than 0,
    1, 2 or default_branch, an id longer than MAX_PRODUCT_ID characters or
    holding what no id may (product_id_problem).
    """
    name = parse_product(value, field)
    branch = _branch_key(name.branch, field)
    if len(name.product) > MAX_PRODUCT_ID:
        raise InvalidArgument.field(field, f"product id must be at most {MAX_PRODUCT_ID} "
                                           f"characters, got {len(name.product)}")
    problem = product_id_problem(name.product)
    if problem is not None:
        raise InvalidArgument.field(field, f"product id {problem}")
    return branch, name.product


def product_name(branch: str, product_id: str) -> str:
    """The full name of product `product_id` in `branch` (as parse_branch_key gives it)."""
    return f"{branch}/products/{product_id}"
