"""API keys and roles: who may call which RPC on which project.

Keys live in a JSON file (`--auth-file`):

    {"keys": {"<secret>": {"projects": ["my-project"], "role": "writer",
                           "name": "shop-frontend"}}}

`writer` may write, collect and create client events; `reader` may list and
watch through the console (footfall.console.v1), ask for insights
(footfall.insights.v1) and get and list products (ProductService), nothing
else; `admin` may call every RPC. Every key may ask what it grants (GetCaller,
the one call that names no project). `projects` may hold "*" for every project;
`name` (optional) is what the logs say instead of the key; `buckets`
(optional, default every bucket) lists the Cloud Storage buckets the key's
requests may name (`gs://` URIs, e.g. import sources and error folders),
exactly or with `*` wildcards ("shop-a-*"); `calls_per_second` (optional, default
none) paces the key's calls, over gRPC, REST and the pixel (server.policy.paces).

Keys are kept only as SHA-256 digests and looked up by digest, so no comparison
ever runs over a secret (constant time in the key), and no message or log line
ever holds one.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from google.rpc import error_details_pb2

from server.errors import PermissionDenied, Unauthenticated

API_KEY_HEADER = "x-goog-api-key"
AUTHORIZATION_HEADER = "authorization"
ERROR_DOMAIN = "footfall"
OPERATIONS_SERVICE = "google.longrunning.Operations"

log = logging.getLogger(__name__)

# The RPCs a writer may call (full gRPC method names); every other guarded RPC
# needs an admin key.
WRITER_METHODS = frozenset({
    *(f"/google.cloud.retail.{version}.UserEventService/{rpc}"
      for version in ("v2", "v2beta", "v2alpha")
      for rpc in ("WriteUserEvent", "CollectUserEvent")),
    *(f"/google.cloud.talent.{version}.EventService/CreateClientEvent"
      for version in ("v4", "v4beta1")),
})
# The RPCs a reader may call: the console's lists and watches (not its resets),
# every insight, and the product reads (the console's products page, `footfall
# products list`).
READER_METHODS = frozenset(
    f"/footfall.console.v1.ConsoleService/{rpc}" for rpc in (
        "ListUserEvents", "CountUserEvents", "ListClientEvents", "CountClientEvents",
        "ListRejections", "ListCatalogs", "GetCaller",
        "WatchUserEvents", "WatchUserEventBatches", "WatchClientEvents", "WatchRejections"
    )) | frozenset(
    f"/footfall.insights.v1.InsightsService/{rpc}" for rpc in (
        "RunFunnel", "ListProductStats", "ListJobStats", "ComputeTotals")) | frozenset(
    f"/google.cloud.retail.{version}.ProductService/{rpc}"
    for version in ("v2", "v2beta", "v2alpha") for rpc in ("GetProduct", "ListProducts"))
# The RPCs that name no project, admitted for any key: what a key grants (the console
# asks it first, to offer only the projects the key may read, and to tell a writer key
# that it writes only, where every read refused it for its role). It names the key's
# own role and projects, never the key: what a writer key learns of them it may
# already do.
PROJECTLESS_METHODS = frozenset({"/footfall.console.v1.ConsoleService/GetCaller"})
# Request fields that hold a resource name, and so the project a call acts on.
RESOURCE_FIELDS = (("parent",), ("name",), ("product", "name"), ("product",),
                   ("inventory", "name"))
_PROJECT = re.compile(r"^projects/(?P<project>[^/]+)(?:/|$)")
ANY_PROJECT = "*"
EVERY_PROJECT = "-"  # `projects/-` in a read: what only ANY_PROJECT grants
# Request fields that name Cloud Storage locations (gs://bucket/...), repeated or not.
GCS_FIELDS = (("input_config", "gcs_source", "input_uris"),
              ("input_config", "big_query_source", "gcs_staging_dir"),
              ("errors_config", "gcs_prefix"),
              ("output_config", "gcs_destination", "output_uri_prefix"))
_BUCKET_PATTERN = re.compile(r"^[a-z0-9._*-]+$")


class Role(enum.Enum):
    WRITER = "writer"
    READER = "reader"
    ADMIN = "admin"

    def may_call(self, method: str) -> bool:
        return self is Role.ADMIN or method in (
            WRITER_METHODS if self is Role.WRITER else READER_METHODS) \
            or method in PROJECTLESS_METHODS


class AuthFileError(ValueError):
    """An auth file that cannot be used; the message names the file and the entry
    (by position or name, never by secret)."""


@dataclass(frozen=True)
class Grant:
    """What one key may do."""

    role: Role
    projects: frozenset[str]
    name: str  # for logs: the entry's "name", else "key #n"
    buckets: re.Pattern[str] | None = None  # the bucket names allowed; None: every one
    calls_per_second: float | None = None  # its calls' pace (any transport); None: none
    # The key itself, as its digest: the same after a reload (SIGHUP makes a new Grant
    # of every key) and never another key's, where names need not be unique and an
    # object's id is reused once it is freed. What a key is counted by while it waits.
    identity: bytes = field(default=b"", repr=False)
    # The key as sent: a refusal kept of its call masks it wherever the request
    # holds it (server.console.rejections: a refusal never keeps a key).
    key: str = field(default="", repr=False, compare=False)

    def allows_project(self, project: str) -> bool:
        """Whether the key may act on `project`; `-` (every project, in a read's
        parent) needs a key granted every project."""
        return ANY_PROJECT in self.projects or (project != EVERY_PROJECT
                                                and project in self.projects)

    def allows_bucket(self, bucket: str) -> bool:
        return self.buckets is None or self.buckets.fullmatch(bucket) is not None


# Whether the call being served may read what the store holds (its key is no writer
# key, or auth is off): set by the envelope for each call, a context variable so that
# it follows the call on its task. An answer says what is stored only to such a caller.
_reads: ContextVar[bool] = ContextVar("footfall_caller_reads", default=True)
# ... and its key's identity (b"": none, auth is off), whose turns its list pages take.
_identity: ContextVar[bytes] = ContextVar("footfall_caller_identity", default=b"")
# ... and its key's grant itself (None: none, auth is off), which GetCaller tells.
_granted: ContextVar[Grant | None] = ContextVar("footfall_caller_grant", default=None)


def set_caller(grant: Grant | None) -> None:
    """The key of the call being served (None: auth is off)."""
    _reads.set(grant is None or grant.role is not Role.WRITER)
    _identity.set(grant.identity if grant is not None else b"")
    _granted.set(grant)


def caller_grant() -> Grant | None:
    """The grant of the key of the call being served (see set_caller); None if none."""
    return _granted.get()


def caller_identity() -> bytes:
    """The identity of the key of the call being served (see Grant); b"" if none."""
    return _identity.get()


def caller_reads() -> bool:
    """Whether the call being served may read what is stored (see set_caller)."""
    return _reads.get()


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """Keys by digest. Lookups hash the offered key and probe a dict of digests:
    their time does not depend on how much of a secret was guessed right."""

    def __init__(self, grants: Mapping[str, Grant]) -> None:
        self._by_digest = {_digest(key): grant for key, grant in grants.items()}

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, key: str) -> Grant | None:
        return self._by_digest.get(_digest(key))

    @classmethod
    def parse(cls, text: str, source: str = "auth file") -> KeyRing:
        """The keys of an auth file's JSON text; AuthFileError saying what is wrong."""
        try:
            document = json.loads(text, object_pairs_hook=_Names)
        except (ValueError, RecursionError) as exc:  # (nested too deep: no ValueError)
            raise AuthFileError(f"{source}: not JSON: {exc}") from None
        twice = _given_twice(document)
        if twice:
            raise AuthFileError(f"{source}: {twice}")
        if not isinstance(document, dict) or set(document) != {"keys"} \
                or not isinstance(document["keys"], dict):
            raise AuthFileError(f'{source}: must be an object {{"keys": {{"<key>": '
                                f'{{"projects": [...], "role": "admin"|"writer"|"reader"}}}}}}')
        grants = {}
        for position, (key, entry) in enumerate(document["keys"].items(), start=1):
            grants[key] = _grant(key, entry, f"{source}: key #{position}")
        return cls(grants)

    @classmethod
    def load(cls, path: str | Path) -> KeyRing:
        """The keys of the file at `path`; AuthFileError (also when it cannot be read)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthFileError(f"cannot read auth file {path}: {exc}") from None
        return cls.parse(text, f"auth file {path}")


class _Names(dict[str, Any]):
    """A JSON object that remembers the names it was given more than once: the
    last one would silently win, and a key pasted twice with another role or
    projects would change what that key may do without a word."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: dict[str, int] = {}
        self.twice: tuple[str, int, int] | None = None  # name, first and second place
        self.values_given = [value for _, value in pairs]
        for place, (name, _) in enumerate(pairs, start=1):
            if name in seen and self.twice is None:
                self.twice = (name, seen[name], place)
            seen.setdefault(name, place)


def _given_twice(document: Any) -> str | None:
    """What names a key or a field twice in the auth file, never quoting a key."""
    if not isinstance(document, _Names):
        return None
    if document.twice is not None:
        return f"{document.twice[0]!r} is given twice"
    keys = document.get("keys")
    if not isinstance(keys, _Names):
        return None
    if keys.twice is not None:
        _, first, second = keys.twice
        return (f"key #{second}{_named(keys.values_given[second - 1])} is the same key as "
                f"key #{first}{_named(keys.values_given[first - 1])}: give each key one "
                "entry (the later one would replace the earlier without a word)")
    for position, entry in enumerate(keys.values(), start=1):
        if isinstance(entry, _Names) and entry.twice is not None:
            return f"key #{position}: {entry.twice[0]!r} is given twice"
    return None


def _named(entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f" ({name})" if isinstance(name, str) and name else ""


SHORT_KEY = 16  # characters: a key shorter than this is warned of


def _grant(key: str, entry: Any, where: str) -> Grant:
    if not key or key != key.strip():
        raise AuthFileError(f"{where}: a key must be non-empty, without surrounding spaces")
    if not isinstance(entry, dict):
        raise AuthFileError(f"{where}: must be an object with 'projects' and 'role'")
    unknown = set(entry) - {"projects", "role", "name", "buckets", "calls_per_second"}
    if unknown:
        raise AuthFileError(f"{where}: unknown fields {sorted(unknown)}; "
                            "allowed: projects, role, name, buckets, calls_per_second")
    name = entry.get("name", "")
    if not isinstance(name, str):
        raise AuthFileError(f"{where}: 'name' must be a string")
    where = f"{where} ({name})" if name else where
    try:
        role = Role(entry.get("role"))
    except ValueError:
        # the value given is said (a role is no secret, and a long one is cut), so
        # that a typo ('writter') is seen without opening the file
        given = f"got {entry['role']!r:.40}" if "role" in entry else "none given"
        raise AuthFileError(f"{where}: 'role' must be 'admin', 'writer' or 'reader' "
                            f"({given})") from None
    projects = entry.get("projects")
    named = [p for p in projects if isinstance(p, str) and p.startswith("projects/")
             and p.split("/")[1]] if isinstance(projects, list) else []
    if named:  # (a non-empty list, said to be wanted, was refused without why)
        raise AuthFileError(f"{where}: 'projects' lists project ids: {named[0]!r} is a "
                            f"resource name; write {named[0].split('/')[1]!r}")
    if not isinstance(projects, list) or not projects or not all(
            isinstance(p, str) and p and "/" not in p and p != EVERY_PROJECT
            for p in projects):
        raise AuthFileError(f"{where}: 'projects' must be a non-empty list of project ids "
                            "(or \"*\" for every project; \"-\" is no project id)")
    if len(key) < SHORT_KEY:  # (said, not refused: a test's keys may be short)
        log.warning("%s: the key is %d characters, short enough to guess; use a long random "
                    "one (at least %d characters)", where, len(key), SHORT_KEY)
    return Grant(role, frozenset(projects), name or where.rpartition(": ")[2],
                 _buckets(entry.get("buckets"), where),
                 _calls_per_second(entry.get("calls_per_second"), where), _digest(key), key)


# The most calls a second a key may be paced at (a pace past it would pace nothing).
MOST_CALLS_PER_SECOND = 1_000_000


def _calls_per_second(pace: Any, where: str) -> float | None:
    """The pace of a key's calls as its entry gives it (None: none given)."""
    if pace is None:
        return None
    if isinstance(pace, bool) or not isinstance(pace, (int, float)) or \
            not 0 < pace <= MOST_CALLS_PER_SECOND:
        raise AuthFileError(f"{where}: 'calls_per_second' must be a number above 0 and at "
                            f"most {MOST_CALLS_PER_SECOND:,} (got {pace!r:.40}); leave it out "
                            "for calls unpaced")
    return float(pace)


def _buckets(patterns: Any, where: str) -> re.Pattern[str] | None:
    """One pattern matching the listed bucket names (`*`: any run of characters);
    None (every bucket) when the entry has no list or lists "*"."""
    if patterns is None:
        return None
    if not isinstance(patterns, list) or not patterns or not all(
            isinstance(p, str) and _BUCKET_PATTERN.match(p) for p in patterns):
        raise AuthFileError(f"{where}: 'buckets' must be a non-empty list of bucket names, "
                            'with * for any characters (e.g. "shop-a-*"); leave it out for '
                            "every bucket")
    if "*" in patterns:
        return None
    return re.compile("|".join(".*".join(map(re.escape, p.split("*"))) for p in patterns))


def _error_info(reason: str) -> list[Message]:
    return [error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)]


class MissingKey(Unauthenticated):
    def __init__(self, message: str = "this server requires an API key: send it as the "
                                      "x-goog-api-key header (or authorization: Bearer KEY)"
                 ) -> None:
        super().__init__(message)

    @classmethod
    def of_call(cls, method: str) -> MissingKey:
        """The refusal said for a gRPC call to `method`: an operation's poll is told
        that a key given to one call reaches that call only (the official clients'
        `result()` polls GetOperation without the `metadata=` of the call that
        started the operation, and was told only to send a key)."""
        service, _, rpc = method.lstrip("/").rpartition("/")
        if service != OPERATIONS_SERVICE or rpc not in ("GetOperation", "WaitOperation"):
            return cls()
        return cls(f"this server requires an API key (the x-goog-api-key metadata, or "
                   f"authorization: Bearer KEY), and this {rpc} call carried none: a key "
                   "given with metadata= reaches only the call it is given to, not the "
                   "GetOperation polls of an operation's result(); give it to every call, "
                   "or to the channel (README: Keys and roles)")

    @classmethod
    def over_http(cls, pixel: bool, key_in_query: bool) -> MissingKey:
        """The refusal said for an HTTP call: a pixel (an <img> sends no header) is told
        of its `key` parameter; another call that sent one, that only the pixel reads it
        (Google's `key` is a system parameter, so it is not refused as unknown)."""
        if pixel:
            return cls("this server requires an API key: a pixel sends it as its key "
                       "parameter (?key=KEY; the tracker: data-api-key), or as the "
                       "x-goog-api-key header")
        if key_in_query:
            return cls("this server requires an API key, and reads the key parameter of "
                       "a pixel (GET or POST userEvents:collect) only: send it as the "
                       "x-goog-api-key header (or authorization: Bearer KEY)")
        return cls()

    @classmethod
    def other_scheme(cls, scheme: str) -> MissingKey:
        """The refusal said for a call whose only key is an authorization header of
        another scheme than Bearer (Basic, say): told it was not read, not only that
        a key is wanted (a reverse proxy's password looked like a key refused)."""
        # A header of one word is a credential without its scheme (`authorization:
        # KEY`, a key itself, say): it is not repeated, as no key is in a message.
        shown = f"not {scheme[:20]!r}" if scheme else \
            "and this one holds a value with no scheme before it"
        return cls(f"this server requires an API key, and reads the authorization header "
                   f"only as Bearer KEY, {shown}: send the key as the "
                   "x-goog-api-key header or authorization: Bearer KEY")

    def details(self) -> list[Message]:
        return _error_info("API_KEY_MISSING")


class InvalidKey(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("API key not valid; pass a valid API key")

    def details(self) -> list[Message]:
        return _error_info("API_KEY_INVALID")


class AmbiguousKey(Unauthenticated):
    """A call that carries two different credentials (see key_of): which one it
    meant is not guessed. The message names where each came from, never a key."""

    # The order they are named in, whatever order they came in (grpc-go, grpcurl's,
    # sends metadata in no fixed order)
    PLACES = (API_KEY_HEADER, "authorization: Bearer", "authorization", "key parameter")

    def __init__(self, first: str, second: str) -> None:
        first, second = sorted((first, second), key=self.PLACES.index)
        where = ("two key parameters" if first == second == "key parameter" else
                 f"two {first} headers" if first == second else
                 f"{first} and the key parameter" if second == "key parameter" else
                 f"{first} and {second}")
        super().__init__(f"the call carries two different credentials, in {where}: send one "
                         "API key, once (the x-goog-api-key header or authorization: Bearer "
                         "KEY; a client given Google credentials sends them as "
                         "authorization: Bearer, so give it the API key alone)")

    def details(self) -> list[Message]:
        return _error_info("API_KEY_AMBIGUOUS")


class Denied(PermissionDenied):
    """A key that may not make the call; `reason` (its ErrorInfo's) says why, so that
    a client (the console) tells a key it must change from a name it must change:
    ROLE_NOT_ALLOWED (the role is too weak), PROJECT_REQUIRED (the request names no
    project), PROJECT_NOT_GRANTED, BUCKET_NOT_GRANTED."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def details(self) -> list[Message]:
        return _error_info(self.reason)


class NotYourProject(Denied):
    """A key used on a project (or bucket) it is not granted: the call is nobody's
    in that project, so it is not kept among that project's refusals."""


def key_of(metadata: Iterable[tuple[str, str | bytes]], query_key: str | None = None
           ) -> str | None:
    """The API key a call carries: x-goog-api-key, else authorization: Bearer,
    else the `key` query parameter (HTTP only). Header names must be lower case.

    AmbiguousKey (UNAUTHENTICATED) when the call carries two different credentials:
    two x-goog-api-key headers, or one beside an authorization header of Bearer or of
    a value with no scheme (no key alone, but a credential all the same), or beside
    the `key` parameter. The first was taken without a word, so a proxy or a log that
    read the other named a caller that was not the one admitted. The same key given
    twice is one key."""
    key = source = None
    taken = False  # whether one of them is a key read as such (not `authorization: KEY`)
    for name, value in metadata:
        if not isinstance(value, str):
            continue
        if name == API_KEY_HEADER:
            if not value:
                continue
            given, where = value, API_KEY_HEADER
        elif name == AUTHORIZATION_HEADER:
            scheme, _, token = value.strip().partition(" ")
            token, bearer = token.strip(), scheme.lower() == "bearer"
            if bearer and token:
                given, where = token, "authorization: Bearer"
            elif scheme and not token and not bearer:  # (compared, never taken: other_scheme)
                given, where = scheme, "authorization"
            else:  # Basic and other schemes (a proxy's password, say), an empty Bearer
                continue
        else:
            continue
        if source is None:
            key, source = given, where
        elif given != key:
            raise AmbiguousKey(source, where)
        taken = taken or where != "authorization"
    if query_key and source is not None and query_key != key:
        raise AmbiguousKey(source, "key parameter")
    return (key if taken else None) or query_key or None


def other_scheme(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The scheme of a call's authorization header when it is not Bearer (what
    key_of does not read), "" when the header is one word, no scheme and its
    credentials but a credential alone (never to be said), else None."""
    for name, value in metadata:
        if name == AUTHORIZATION_HEADER and isinstance(value, str):
            scheme, _, credentials = value.strip().partition(" ")
            if scheme and scheme.lower() != "bearer":
                return scheme if credentials.strip() else ""
    return None


def _field_value(request: Message, path: tuple[str, ...]) -> str:
    target: Any = request
    for name in path:
        if not isinstance(target, Message) or name not in target.DESCRIPTOR.fields_by_name:
            return ""  # `product` is a Product in some requests, a name in others
        target = getattr(target, name)
    return target if isinstance(target, str) else ""


def resource_names(request: Message) -> list[str]:
    """The non-empty resource names a request carries (parent, name, product.name,
    product, inventory.name)."""
    return [name for _, name in resource_fields(request)]


def resource_fields(request: Message) -> list[tuple[str, str]]:
    """(field path, value) of the non-empty resource names a request carries."""
    return [(".".join(path), v) for path in RESOURCE_FIELDS
            if (v := _field_value(request, path))]


_gcs_paths: dict[str, tuple[tuple[str, ...], ...]] = {}  # by message type


def _paths_in(descriptor: Any) -> tuple[tuple[str, ...], ...]:
    """The GCS_FIELDS a message type has."""
    found = []
    for path in GCS_FIELDS:
        current = descriptor
        for name in path:
            field = current.fields_by_name.get(name) if current is not None else None
            if field is None:
                break
            current = field.message_type
        else:
            found.append(path)
    return tuple(found)


def gcs_uris(request: Message) -> list[tuple[str, str]]:
    """(field path, URI) for every non-empty Cloud Storage location the request names."""
    descriptor = request.DESCRIPTOR
    paths = _gcs_paths.get(descriptor.full_name)
    if paths is None:
        paths = _gcs_paths[descriptor.full_name] = _paths_in(descriptor)
    out: list[tuple[str, str]] = []
    for path in paths:
        target: Any = request
        for name in path[:-1]:
            if not target.HasField(name):
                break
            target = getattr(target, name)
        else:
            value = getattr(target, path[-1])
            field = ".".join(path)
            if isinstance(value, str):
                out.extend([(field, value)] if value else [])
            else:
                out.extend((f"{field}[{i}]", uri) for i, uri in enumerate(value) if uri)
    return out


def bucket_of(uri: str) -> str | None:
    """`shop` for `gs://shop/events/*.json`; None for anything not gs://."""
    return uri[len("gs://"):].partition("/")[0] if uri.startswith("gs://") else None


def project_of(name: str) -> str | None:
    """`my-project` for `projects/my-project/...`; None for anything else."""
    match = _PROJECT.match(name)
    return match["project"] if match else None


def authorize(grant: Grant, method: str, request: Message) -> str:
    """The project the call acts on, if `grant` may call `method` on it ("" for a
    method of PROJECTLESS_METHODS, which acts on none: any key's role may call it).

    Raises PERMISSION_DENIED when a resource name of the request is in a project
    the key is not granted, when the request names no project at all or a gs://
    bucket the key is not granted, or when the role is too weak (in that order).
    """
    if method in PROJECTLESS_METHODS:  # (it acts on no project, and any role may call it)
        return ""
    rpc = method.rpartition("/")[2]
    fields = resource_fields(request)
    projects = [project_of(name) for _, name in fields]
    if not projects or None in projects:
        raise Denied(f"{rpc}: {_no_project(fields)} (projects/PROJECT/...), so no API key "
                     "is allowed to make it", "PROJECT_REQUIRED")
    for project in projects:
        assert project is not None
        if not grant.allows_project(project):
            if project == EVERY_PROJECT and not grant.role.may_call(method):
                # (the role first: told to name a project, the caller named one and was
                # then told its role may not read. No project is named, so the refusal
                # is kept among no project's either)
                raise Denied(_role_refusal(grant, method, rpc), "ROLE_NOT_ALLOWED")
            raise NotYourProject(
                "projects/- (every project) needs an API key granted every project (\"*\"); "
                "name one: projects/PROJECT" if project == EVERY_PROJECT else
                f"the API key is not allowed to use project {project!r} (or it may not exist)",
                "PROJECT_NOT_GRANTED")
    if grant.buckets is not None:
        for field, uri in gcs_uris(request):
            bucket = bucket_of(uri)
            if bucket is not None and not grant.allows_bucket(bucket):
                raise NotYourProject(f"the API key is not allowed to use bucket {bucket!r} "
                                     f"({field})", "BUCKET_NOT_GRANTED")
    # The role after the projects: a key's call on a project it is not granted is
    # NotYourProject whatever its role, so it is never kept among that project's
    # refusals (a reader key of one shop wrote refusals into another's list).
    if not grant.role.may_call(method):
        raise Denied(_role_refusal(grant, method, rpc), "ROLE_NOT_ALLOWED")
    return str(projects[0])


def _no_project(fields: list[tuple[str, str]]) -> str:
    """What names no project: the first field whose name is of none, quoted (a writer
    with a typo in its parent was told only "the request names no project", where a
    call without a key is told the field and the form), or the request itself."""
    for path, name in fields:
        if project_of(name) is None:
            shown = name if len(name) <= 200 else name[:200] + "..."
            return f"its {path} {shown!r} names no project"
    return "the request names no project"


def _role_refusal(grant: Grant, method: str, rpc: str) -> str:
    needs = ("a writer or admin key" if method in WRITER_METHODS else
             "a reader or admin key" if method in READER_METHODS else "an admin key")
    return f"the API key's role ({grant.role.value}) may not call {rpc}; it needs {needs}"


class Authenticator:
    """The current KeyRing (None: auth is off), re-read from `path` on `reload`.
    `text`: the keys to begin with instead of the file's (see processes.Supervisor)."""

    def __init__(self, path: str | None, text: str | None = None) -> None:
        self.path = path or None
        self._ring = (None if not self.path else KeyRing.load(self.path) if text is None
                      else KeyRing.parse(text, f"auth file {self.path}"))
        self.generation = 0  # how many times the keys were read again

    @property
    def enabled(self) -> bool:
        return self._ring is not None

    @property
    def key_count(self) -> int:
        return len(self._ring) if self._ring is not None else 0

    def open_mode(self) -> int | None:
        """open_mode of the file (a umask of 022 writes one 0644: every local user
        reads the keys)."""
        return None if self.path is None else open_mode(self.path)

    def reload(self) -> None:
        """Read the file again; on AuthFileError the old keys stay in force."""
        if self.path is None:
            return
        self._ring = KeyRing.load(self.path)  # one reference swap: calls see old or new
        self.generation += 1

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]],
                     query_key: str | None = None, method: str = "") -> Grant:
        """The grant of the key of a call (to `method`); UNAUTHENTICATED when there is
        none or it is unknown. Only meaningful while `enabled`."""
        ring = self._ring
        assert ring is not None
        key = key_of(metadata, query_key)
        if key is None:
            scheme = other_scheme(metadata)
            raise MissingKey.of_call(method) if scheme is None else MissingKey.other_scheme(scheme)
        grant = ring.lookup(key)
        if grant is None:
            raise InvalidKey()
        return grant


def open_mode(path: str) -> int | None:
    """The permission bits of the file `path` when users other than its owner have
    any, else None, also when it cannot be looked at (reading it says why): a file of
    secrets (the keys file, --tls-key) that others may read is warned of."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None
