"""`footfall events ...`, `rejections ...`, `talent-events ...`, `catalogs`,
`products list`, `operations ...`, and `footfall reset` and `footfall backup`.

They read the store, opened read-only (nothing is created or changed, and a
store that does not exist is refused), or a running server through its public
API (`--server`, see server/remote.py); both give the same console.v1 messages,
printed by server/lines.py. `tail` follows a server's watch until Ctrl-C.
Exit codes: 0 done, 1 the store or server cannot be used, 2 bad input, 3 `events count
--at-least` (or `talent-events count --at-least`) waited in vain.
"""

from __future__ import annotations

import argparse
import importlib
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import grpc
from footfall.console.v1 import console_pb2
from google.longrunning import operations_pb2

from server import lines, names
from server.cli_args import AT_LEAST_TIMEOUT, EVERY_OPERATION, key_problem
from server.console import queries
from server.errors import FootfallError, InvalidArgument
from server.names import parse_catalog, parse_project, parse_tenant, parse_tenant_or_project
from server.remote import Connection, RemoteError, ServerSource, pages

# What a command reads from a store only (the store, its backends, the products'
# pages, backup, copy, restore) is imported where a store is opened: a --server
# call, which a test suite makes per test, never uses it (some 0.1 s of CPU each).
if TYPE_CHECKING:
    import sqlite3

    from footfall.retail.v2 import product_service_pb2

    from server.store import Store

PAGE = queries.MAX_PAGE
WAIT_POLL_SECONDS = 0.1  # how often `events count --at-least` asks again
EVERY_PROJECT = f"projects/{queries.ALL_PROJECTS}"
# What the server answers when the request, not the server, is wrong.
_CLIENT_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                 grpc.StatusCode.FAILED_PRECONDITION}


class Kind(NamedTuple):
    """A kind of console record: the RPCs that list and watch it, the field of the
    list's answer that holds it, and its line."""

    list_rpc: str
    field: str
    watch_rpc: str
    line: Callable[[Any], str]


USER_EVENTS = Kind("ListUserEvents", "user_events", "WatchUserEvents", lines.user_event)
CLIENT_EVENTS = Kind("ListClientEvents", "client_events", "WatchClientEvents",
                     lines.client_event)
REJECTIONS = Kind("ListRejections", "rejections", "WatchRejections", lines.rejection)
PRODUCTS = Kind("ListProducts", "products", "", lines.product)  # (ProductService: no watch)


# The messages operations carry in their Any fields (metadata, response, error
# details), which json_format and the summary unpack, and the requests kept refusals
# hold (read from a store file, a talent refusal's request was shown as cut, its type
# unknown to the CLI). A server's console answers hold no Any: only `operations` and
# a store's reads import them.
MESSAGE_MODULES = tuple(f"footfall.{module}" for module in (
    "retail.v2.import_config_pb2", "retail.v2.product_service_pb2",
    "retail.v2.purge_config_pb2", "retail.v2.user_event_pb2",
    "retail.v2.user_event_service_pb2", "retail.v2alpha.export_config_pb2",
    "retail.v2alpha.product_service_pb2", "retail.v2alpha.user_event_service_pb2",
    "retail.v2beta.export_config_pb2", "retail.v2beta.product_service_pb2",
    "retail.v2beta.user_event_service_pb2", "talent.v4.event_service_pb2")) + (
    "google.rpc.error_details_pb2",)


def _message_types() -> None:
    for module in MESSAGE_MODULES:
        importlib.import_module(module)


def _say(message: str) -> None:
    # (a message may quote a server's answer: escaped, as every line printed)
    print(lines.printable(f"footfall: {message}"), file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """The read command `args` names (or reset, backup, restore or copy); one line on
    stderr and exit code 2 for a mistake in the command (a bad flag value, a refused
    key), 1 for a store or server that cannot be used."""
    command = {"events": _events, "talent-events": _talent_events,
               "rejections": _rejections, "catalogs": _catalogs,
               "products": _products, "operations": _operations, "reset": _reset,
               "backup": _backup, "restore": _restore, "copy": _copy}[args.command]
    try:
        return command(args)
    except FootfallError as exc:
        _say(exc.message)
        return 2
    except RemoteError as exc:
        return remote_failed(exc, args)
    except KeyboardInterrupt:  # Ctrl-C: stopped, as a shell says it (a tail's ends it: 0)
        return 130


def remote_failed(exc: RemoteError, args: argparse.Namespace) -> int:
    """One line on stderr for a call to --server that failed; 2 when the request
    (or its key) was wrong, 1 when the server could not be used."""
    if exc.unreached:
        _say(f"cannot reach a server at {args.server}: {_why_unreached(exc.message, args)} "
             f"({exc})")
        return 1
    advice = ""
    if exc.code is grpc.StatusCode.UNAUTHENTICATED:
        # (the role this command needs: `events list` was told "the reader role (admin
        # for operations)", a word about another command)
        role = "admin" if args.command in ("reset", "operations") else "reader"
        advice = f"; give an API key with the {role} role with --key or FOOTFALL_KEY"
    elif exc.reason == "ROLE_NOT_ALLOWED":
        pass  # (the message names the role needed: no --parent would help)
    elif exc.code is grpc.StatusCode.PERMISSION_DENIED \
            and getattr(args, "parent", "") == EVERY_PROJECT:
        advice = f" ({EVERY_PROJECT} is the default: --parent projects/PROJECT names one)"
    elif exc.code is grpc.StatusCode.PERMISSION_DENIED and args.command == "operations" \
            and args.parent == EVERY_OPERATION:
        advice = (" (every operation is the default: --parent names a catalog, location or "
                  "project, e.g. projects/PROJECT)")
    _say(f"the server answered {exc}{advice}")
    return 2 if exc.code in _CLIENT_CODES else 1


def _why_unreached(details: str, args: argparse.Namespace) -> str:
    """What most likely kept the call from the server, said from gRPC's `details`,
    and what to do about it."""
    tls = bool(getattr(args, "tls", False) or getattr(args, "tls_ca", None))
    # over TLS, an HTTP/1.1 server is one that offers no HTTP/2 (ALPN "h2")
    if "http1.x server" in details or "Failed parsing HTTP/2" in details \
            or (tls and "missing selected ALPN" in details):
        return ("it answers HTTP/1.1, not gRPC: --server takes the gRPC port (the server's "
                "'Footfall serving gRPC on' line names it; 50051 by default), not the HTTP one")
    # (an expired certificate, or one dialled by a name it does not list, was said
    # to be untrusted, or no connection at all: no --tls-ca helps either)
    if "certificate has expired" in details or "certificate is not yet valid" in details:
        return ("its TLS certificate is out of its dates (expired, or not valid yet): the "
                "server needs a new one (--tls-cert, then restart it), or this machine's "
                "clock is wrong")
    if "Hostname Verification" in details:
        return (f"its TLS certificate does not name {_host(args.server)}: dial a name the "
                "certificate lists (its subjectAltName), or give the server a certificate "
                "that names this one")
    if "CERTIFICATE_VERIFY_FAILED" in details:
        return ("its TLS certificate is not trusted: --tls-ca FILE names the authority (PEM) "
                "that signed it")
    if tls and "WRONG_VERSION_NUMBER" in details:
        return "it does not serve TLS: leave out --tls and --tls-ca"
    if not tls and "Socket closed" in details:
        return ("it closed the connection: if it serves TLS (--tls-cert), add --tls-ca FILE, "
                "or --tls if a public authority signed its certificate")
    if "Connection refused" in details:
        return ("nothing listens there: is the server running, and is that its gRPC port "
                "(50051 by default)?")
    if "resolv" in details or "DNS" in details:
        return "the host name does not resolve"
    return "no connection could be made"


def _host(address: str) -> str:
    """The host of a HOST:PORT (`[::1]:50051` -> `::1`)."""
    host = address.rpartition(":")[0] or address
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


class Source(Protocol):
    def rpc(self, name: str) -> Callable[[Any], Any]: ...

    def close(self) -> None: ...


class StoreSource:
    """The console's lists over the store itself: the messages a server answers."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def rpc(self, name: str) -> Callable[[Any], Any]:
        method: Callable[[Any], Any] = getattr(self, name)
        return method

    def close(self) -> None:
        self.store.close()

    def ListUserEvents(self, request: console_pb2.ListUserEventsRequest  # noqa: N802
                       ) -> console_pb2.ListUserEventsResponse:
        events = queries.parse_filter(request.filter, request.parent, "--filter")
        return queries.list_user_events(self.store, events, request.page_size,
                                        request.page_token)

    def CountUserEvents(self, request: console_pb2.CountUserEventsRequest  # noqa: N802
                        ) -> console_pb2.CountUserEventsResponse:
        events = queries.parse_filter(request.filter, request.parent, "--filter")
        return console_pb2.CountUserEventsResponse(
            count=queries.count_user_events(self.store, events))

    def ListClientEvents(self, request: console_pb2.ListClientEventsRequest  # noqa: N802
                         ) -> console_pb2.ListClientEventsResponse:
        from server.console import client_filter

        events = client_filter.parse(request.filter, request.parent, "--filter")
        return queries.list_client_events(self.store, events, request.page_size,
                                          request.page_token)

    def CountClientEvents(self, request: console_pb2.CountClientEventsRequest  # noqa: N802
                          ) -> console_pb2.CountClientEventsResponse:
        from server.console import client_filter

        events = client_filter.parse(request.filter, request.parent, "--filter")
        return console_pb2.CountClientEventsResponse(
            count=queries.count_client_events(self.store, events))

    def ListRejections(self, request: console_pb2.ListRejectionsRequest  # noqa: N802
                       ) -> console_pb2.ListRejectionsResponse:
        return queries.list_rejections(self.store, queries.parse_rejection_scope(request.parent),
                                       request.page_size, request.page_token)

    def ListCatalogs(self, request: console_pb2.ListCatalogsRequest  # noqa: N802
                     ) -> console_pb2.ListCatalogsResponse:
        return queries.list_catalogs(self.store, queries.parse_project(request.parent),
                                     queries.page_size(request.page_size), request.page_token,
                                     request.view != console_pb2.DATA_SET_VIEW_BASIC)

    def ListProducts(self, request: product_service_pb2.ListProductsRequest  # noqa: N802
                     ) -> product_service_pb2.ListProductsResponse:
        from server.retail.product_listing import ProductReads

        return ProductReads(self.store).page(request)


class _Remote:
    """A ServerSource seen as a Source."""

    def __init__(self, server: ServerSource) -> None:
        self.server = server

    def rpc(self, name: str) -> Callable[[Any], Any]:
        method = getattr(self.server.products if name == PRODUCTS.list_rpc
                         else self.server.console, name)
        return lambda request: self.server.call(method, request)

    def close(self) -> None:
        self.server.close()


def connection(args: argparse.Namespace) -> Connection:
    """The server, TLS and key the command line names; INVALID_ARGUMENT for a CA
    file that cannot be read."""
    problem = key_problem(args.key)
    if problem is not None:
        raise InvalidArgument.field("--key", problem)
    ca = None
    if args.tls_ca:
        try:
            with open(args.tls_ca, "rb") as file:
                ca = file.read()
        except OSError as exc:
            raise InvalidArgument.field("--tls-ca", f"cannot read {args.tls_ca}: "
                                                    f"{exc.strerror}") from None
        if not _holds_certificate(ca):  # (grpc wrote 8 lines of its own, then the call
            raise InvalidArgument.field(  # failed: "no connection could be made")
                "--tls-ca", f"{args.tls_ca} holds no PEM certificate (-----BEGIN "
                "CERTIFICATE-----): give the certificate of the authority that signed the "
                "server's (ca.pem), not a private key or a signing request")
    return Connection(args.server, args.key, args.tls, ca)


def _holds_certificate(pem: bytes) -> bool:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
            cadata=pem.decode("latin-1"))
    except ssl.SSLError:
        return False
    return True


def _reading(args: argparse.Namespace, body: Callable[[Source], int]) -> int:
    """`body` over the store or server the command names, closed after."""
    source: Source
    damage: tuple[type[sqlite3.DatabaseError], ...] = ()  # a damaged store's errors
    if getattr(args, "server", None):
        source = _Remote(ServerSource(connection(args)))
    else:
        import sqlite3

        from server.store import open_store
        from server.store.rows import StoreUnusable

        _message_types()
        try:
            source = StoreSource(open_store(args.store, read_only=True))
        except (FootfallError, ValueError, OSError, sqlite3.Error, StoreUnusable) as exc:
            said = str(getattr(exc, "message", exc))
            # Where to look instead, when no store was found where named (memory://'s
            # says to ask its server already); a store found but not usable (a file
            # damaged or not SQLite's, a database that refuses) was told to name the
            # store with --store, as if it had not been.
            if said.startswith(("no store at ", "unknown store URL")) \
                    and "--server" not in said:
                said += "; name the store with --store, or ask a running server with " \
                        "--server HOST:PORT"
            _say(f"cannot open the store: {said}")
            return 1
        damage = (sqlite3.DatabaseError,)  # past what opening the file reads
    try:
        return body(source)
    except damage as exc:
        from server.store import sqlite_checks

        path = getattr(getattr(source, "store", None), "path", None) or "the store"
        said = sqlite_checks.problem(path, exc)
        if " is damaged: " in said:
            said += f" (salvage it with sqlite3 {path} .recover)"
        _say(f"cannot read the store: {said}")
        return 1
    finally:
        source.close()


def _records(source: Source, kind: Kind, request: Any, limit: int | None) -> Iterator[Any]:
    """The records a list RPC answers, page after page, at most `limit`; stopped
    there while the server has more (or may have: a filtered page may end early
    with a token), it says so on stderr."""
    fetch = source.rpc(kind.list_rpc)
    left = sys.maxsize if limit is None else limit
    if left <= 0:
        return
    request.page_size = min(left + 1, PAGE)  # one more than shown tells whether there is
    for reply in pages(fetch, request):
        page = list(getattr(reply, kind.field))
        found = page[:left]
        yield from found
        left -= len(found)
        if left <= 0:
            # Otherwise `list | wc -l` in a test suite read 100 where 103 were stored.
            if len(page) > len(found) or reply.next_page_token:
                more = "are" if len(page) > len(found) else "may be"
                _say(f"only {limit} shown; more {more} stored (raise --limit; 0 shows all)")
            return
        request.page_size = min(left + 1, PAGE)


def _data_sets(fetch: Callable[[Any], Any], parent: str) -> Iterator[Any]:
    """The catalogs, then the tenants, of `parent`, page after page."""
    for reply in pages(fetch, console_pb2.ListCatalogsRequest(parent=parent, page_size=PAGE)):
        yield from reply.catalogs
        yield from reply.tenants


def _print(records: Iterator[Any], line: Callable[[Any], str], as_json: bool,
           none: str = "") -> int:
    """Each record on a line of its own; when there is none, `none` on stderr (an empty
    answer and a mistyped name look alike otherwise)."""
    printed = False
    for record in records:
        print(lines.as_json(record) if as_json else line(record), flush=True)
        printed = True
    if not printed and none:
        _say(none)
    return 0


def _list_or_tail(args: argparse.Namespace, verb: str, kind: Kind, listing: Any,
                  watching: Any, none: str) -> int:
    """`list`: the records `listing` selects, in its order (`none` on stderr if there
    are none); `tail`: what the watch `watching` sends, until Ctrl-C, after `--after`
    if given."""
    if verb == "list":
        return _reading(args, lambda source: _print(
            _records(source, kind, listing, args.limit), kind.line, args.json, none))
    if args.after is not None:
        watching.after_id = args.after

    def follow(source: Source) -> int:
        assert isinstance(source, _Remote)  # tail takes --server only
        server = source.server
        try:
            return _print(server.follow(getattr(server.console, kind.watch_rpc), watching,
                                        _say), kind.line, args.json)
        except KeyboardInterrupt:  # how a tail ends
            return 0

    return _reading(args, follow)


def _events(args: argparse.Namespace) -> int:
    """Count, print or follow the events of a catalog that a filter selects."""
    also = args.events_command if args.events_command == "tail" else "list"
    _not_of_the_other_api(args.parent, parse_tenant, "a talent tenant",
                          f"client events are `footfall talent-events {also}`")
    catalog = str(parse_catalog(args.parent, "--parent"))
    queries.parse_filter(args.filter, catalog, "--filter")  # refused before connecting
    listing = console_pb2.ListUserEventsRequest(parent=catalog, filter=args.filter)
    none = (f"no event of {catalog} matches --filter" if args.filter else
            f"no event in {catalog} (`footfall catalogs` lists those that hold events; "
            f"{_refused_named(catalog)})")
    if args.events_command != "count":
        return _list_or_tail(args, args.events_command, USER_EVENTS, listing,
                             console_pb2.WatchUserEventsRequest(parent=catalog,
                                                                filter=args.filter), none)
    return _reading(args, lambda source: _count(
        args, source.rpc("CountUserEvents"),
        console_pb2.CountUserEventsRequest(parent=catalog, filter=args.filter), none,
        "event"))


def _count(args: argparse.Namespace, ask: Callable[[Any], Any], request: Any,
           none: str, one: str) -> int:
    """Print how many events (`one`: "event", "client event") `request` counts (`none`
    on stderr when none, without a filter); with --at-least, asked again until it is
    reached or --timeout passes (then exit 3)."""
    counted = ask(request).count
    timeout = AT_LEAST_TIMEOUT if args.timeout is None else args.timeout
    if args.at_least is not None:  # (a test of an app that sends in the background)
        deadline = time.monotonic() + timeout
        while counted < args.at_least and time.monotonic() < deadline:
            time.sleep(min(WAIT_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
            counted = ask(request).count
    print(counted)  # a bare number (no thousands comma), for a script's $(...)
    if counted == 0 and not args.filter and args.at_least is None:
        _say(none)  # (a mistyped catalog counted 0 as an empty one does, without a word)
    if args.at_least is not None and counted < args.at_least:
        # (a job site's CI read "1 events, not 3": neither its grammar nor its kind)
        _say(f"{lines.counted(counted, one)}, not {args.at_least:,}, after waiting "
             f"{timeout:g} s (--timeout)")
        return 3
    return 0


def _not_of_the_other_api(parent: str, parse: Callable[[str, str], object], what: str,
                          instead: str) -> None:
    """InvalidArgument naming the command to use when `parent` is a name of the other
    API (`parse` takes it): a job site's `events list --parent projects/p/tenants/t`
    was told only the form of a catalog's name."""
    try:
        parse(parent, "--parent")
    except InvalidArgument:
        return
    raise InvalidArgument.field("--parent", f"{parent!r} is {what}: its {instead}")


def _talent_events(args: argparse.Namespace) -> int:
    """Print the client events of a tenant, latest create time first, or follow them
    as they are stored; a project alone names its default tenant, as talent
    v4beta1's parent does (a job site that wrote to projects/P was told only the
    form of a tenant's name)."""
    _not_of_the_other_api(args.parent, parse_catalog, "a retail catalog",
                          f"user events are `footfall events {args.talent_events_command}`")
    tenant = str(parse_tenant_or_project(args.parent, "--parent"))
    from server.console import client_filter

    client_filter.parse(args.filter, tenant, "--filter")  # refused before connecting
    none = (f"no client event of {tenant} matches --filter" if args.filter else
            f"no client event in {tenant} (`footfall catalogs` lists the tenants that hold "
            f"them; {_refused_named(tenant)})")
    if args.talent_events_command == "count":
        return _reading(args, lambda source: _count(
            args, source.rpc("CountClientEvents"),
            console_pb2.CountClientEventsRequest(parent=tenant, filter=args.filter), none,
            "client event"))
    return _list_or_tail(args, args.talent_events_command, CLIENT_EVENTS,
                         console_pb2.ListClientEventsRequest(parent=tenant, filter=args.filter),
                         console_pb2.WatchClientEventsRequest(parent=tenant, filter=args.filter),
                         none)


def _refused_named(parent: str) -> str:
    """Where the requests refused that named `parent` are: an app whose every event was
    refused found its catalog or tenant empty, and was told only where the names of
    those holding events are."""
    return f"`footfall rejections list --parent {parent}`, the requests refused that named it"


def _rejections(args: argparse.Namespace) -> int:
    """Print or follow the refused requests of a project (every project: projects/-),
    or of those the ones that named a catalog or tenant."""
    queries.parse_rejection_scope(args.parent, "--parent")
    return _list_or_tail(args, args.rejections_command, REJECTIONS,
                         console_pb2.ListRejectionsRequest(parent=args.parent),
                         console_pb2.WatchRejectionsRequest(parent=args.parent),
                         f"no refusal kept {_of(args.parent)}")


def _of(parent: str) -> str:
    """`parent` (projects/P, or projects/- for every project) as words."""
    return "in any project" if parent == EVERY_PROJECT else f"in {parent}"


def _catalogs(args: argparse.Namespace) -> int:
    """Print the catalogs, then the tenants, that hold events (or, a catalog,
    products), with their counts."""
    # refused naming the flag, before connecting (the server's answer named `parent`,
    # a field the command line does not have)
    queries.parse_project(args.parent, "--parent")

    def body(source: Source) -> int:
        return _print(_data_sets(source.rpc("ListCatalogs"), args.parent), lines.data_set,
                      args.json, f"no catalog or tenant holds events {_of(args.parent)}")

    return _reading(args, body)


def _products(args: argparse.Namespace) -> int:
    """Print the products of a branch (a catalog: its default branch) that the
    filter selects, by id."""
    from footfall.retail.v2 import product_service_pb2

    from server.retail import product_listing

    branch = _branch(args.parent)
    product_listing.parse_filter(args.filter, "--filter")  # refused before connecting
    # every field (Google's default set leaves out the type, categories, availability)
    listing = product_service_pb2.ListProductsRequest(parent=branch, filter=args.filter,
                                                      read_mask={"paths": ["*"]})
    none = (f"no product of {branch} matches --filter" if args.filter
            else f"no product in {branch}")
    return _list_or_tail(args, "list", PRODUCTS, listing, None, none)


def _branch(parent: str) -> str:
    """`parent` if it is a branch, a catalog's default branch if it is a catalog;
    INVALID_ARGUMENT naming --parent otherwise."""
    if "/branches/" in parent:
        names.parse_branch_key(parent, "--parent")
        return parent
    if "/catalogs/" in parent:
        return f"{parse_catalog(parent, '--parent')}/branches/{names.DEFAULT_BRANCH}"
    raise InvalidArgument.field("--parent", f"must be a branch "
                                            f"(projects/*/locations/*/catalogs/*/branches/*) or "
                                            f"a catalog (projects/*/locations/*/catalogs/*), got "
                                            f"{parent[:200]!r}")


def _operations(args: argparse.Namespace) -> int:
    """Print the operations under a parent, oldest first: state, kind, name, counts
    and error, or each Operation as proto3 JSON (--json)."""
    from server.operations.summary import summarize

    _message_types()
    done = None if args.done is None else args.done == "true"
    problem = names.operations_parent_problem(args.parent)
    if problem is not None:
        # (a store's read found no operation under a mistyped parent, exit 0, as if
        # there were none; a server refused it naming `name`, ListOperations' field)
        raise InvalidArgument.field("--parent", f"{problem}, got {args.parent[:200]!r}")

    def body(source: Source) -> int:
        ops = source.server.operations(args.parent, done) if isinstance(source, _Remote) \
            else _stored_operations(source, args.parent, done)
        which = {None: "", True: " that is done", False: " running"}[done]
        # (the default parent, every operation, was said as "under projects/")
        where = ("in the store" if isinstance(source, StoreSource) else "on the server") \
            if args.parent == EVERY_OPERATION else f"under {args.parent}"
        return _print(ops, lambda op: lines.printable(summarize(op).line()), args.json,
                      f"no operation{which} {where}")

    return _reading(args, body)


def _stored_operations(source: Source, parent: str,
                       done: bool | None) -> Iterator[operations_pb2.Operation]:
    """The operations under `parent` in the store, as ListOperations reads them: a
    name's segments whole (`projects/my-sh` listed those of projects/my-shop) and
    `branches/default_branch` as the store keeps it."""
    from server.operations.records import relabel

    assert isinstance(source, StoreSource)
    parent = names.resolve_default_branch(parent).rstrip("/") + "/"
    after = None
    while page := source.store.list_operations(parent, done, PAGE, after):
        for record in page:
            yield relabel(operations_pb2.Operation.FromString(record.operation))
        after = (page[-1].create_time_us, page[-1].name)


def _reset(args: argparse.Namespace) -> int:
    """ResetCatalog, ResetTenant or ResetProject of --parent on --server; one line
    saying what was deleted."""
    request: Any
    parent = args.parent
    if "/catalogs/" in parent:
        catalog = parse_catalog(parent, "--parent")
        _no_wildcard(parent, catalog.project, "catalog", catalog.location, catalog.catalog)
        name = str(catalog)
        rpc, request = "ResetCatalog", console_pb2.ResetCatalogRequest(name=name)
    elif "/tenants/" in parent:
        tenant = parse_tenant(parent, "--parent")
        _no_wildcard(parent, tenant.project, "tenant", tenant.tenant)
        name = str(tenant)
        rpc, request = "ResetTenant", console_pb2.ResetTenantRequest(name=name)
    else:
        try:
            name = f"projects/{parse_project(parent, '--parent')}"
        except InvalidArgument:
            if parent.startswith("projects/") and parent.count("/") == 1:
                raise  # a project's name, wrong in itself: its own reason ('-', spaces)
            raise InvalidArgument.field("--parent", f"must be a catalog "
                                                    f"(projects/*/locations/*/catalogs/*), a "
                                                    f"tenant (projects/*/tenants/*) or a "
                                                    f"project (projects/*: its every catalog "
                                                    f"and tenant), got {parent[:200]!r}"
                                        ) from None
        rpc, request = "ResetProject", console_pb2.ResetProjectRequest(name=name)

    def body(source: Source) -> int:
        print(lines.reset(name, source.rpc(rpc)(request)))
        return 0

    return _reading(args, body)


def _no_wildcard(parent: str, project: str, kind: str, *segments: str) -> None:
    """InvalidArgument, before any call, when a segment of the catalog or tenant to
    reset is `-`: the server's refusal pointed a shell at ResetProject's REST route,
    where `reset --parent projects/P` does it."""
    if "-" in segments:
        raise InvalidArgument.field(
            "--parent", f"'-' names no {kind} ({parent[:200]}): a reset takes no wildcard; "
                        f"--parent projects/{project} resets every catalog and tenant of the "
                        f"project")


def _backup(args: argparse.Namespace) -> int:
    """Copy the store to DEST; 2 (with advice) for a store this cannot copy."""
    import sqlite3

    from server.store.backup import BackupRefused, backup, backup_file

    try:
        dest = backup_file(args.dest)
        size = backup(args.store, dest)
    except (BackupRefused, FileExistsError) as exc:
        _say(str(exc))
        return 2
    except (FootfallError, ValueError, OSError, sqlite3.Error) as exc:
        _say(f"cannot back up: {getattr(exc, 'message', exc)}")
        return 1
    print(f"backed up to {dest} ({size:,} bytes)")
    return 0


def _restore(args: argparse.Namespace) -> int:
    """Put the backup in place of the store; 2 (with advice) for a restore refused."""
    import sqlite3

    from server.store.restore import RestoreRefused, restore

    try:
        target, replaced = restore(args.backup, args.store)
    except RestoreRefused as exc:
        _say(str(exc))
        return 2
    except (ValueError, OSError, sqlite3.Error) as exc:
        _say(f"cannot restore: {exc}")
        return 1
    kept = f"; what it replaced is kept as {', '.join(replaced)}" if replaced else ""
    print(f"restored {args.backup} to {target} (integrity checked){kept}")
    return 0


def _copy(args: argparse.Namespace) -> int:
    """Copy every row of the store into DEST; 2 for a copy that cannot be made as asked
    (a URL, a target that holds rows, a target database, role or password PostgreSQL
    refuses, as for `serve`), 1 for a store that cannot be used (a source that is not
    there, of either engine, as for the read commands)."""
    from server.store import located
    from server.store.copy import CopyFailed, CopyRefused, copied_text, copy_store
    from server.store.rows import StoreRefused, StoreUnavailable, StoreUnusable

    try:
        source, target = args.store, args.dest  # (URLs: see store_url_of)
        copied = copy_store(source, target)
    except (CopyRefused, ValueError) as exc:
        _say(str(exc))
        return 2
    except StoreRefused as exc:  # (before StoreUnavailable, which it is)
        _say(f"cannot copy: {exc.message}")
        return 2
    except (CopyFailed, FootfallError, OSError, StoreUnavailable, StoreUnusable) as exc:
        _say(f"cannot copy: {getattr(exc, 'message', exc)}")
        return 1
    except KeyboardInterrupt:  # (Ctrl-C: the target's transaction was rolled back)
        _say("stopped: nothing was copied (the target is as it was)")
        return 130
    print(f"copied {located(source)} to {located(target)}: {copied_text(copied)}")
    return 0
