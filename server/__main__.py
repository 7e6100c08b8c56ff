"""`footfall` / `python -m server`: serve, inspect what was recorded, back it up.

Exit codes: 0 done; 1 the environment failed (a port in use, a database that
does not answer, a store that cannot be opened); 2 a mistake in the command
line, a FOOTFALL_* variable or the configuration it names.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata

from server.config import DEFAULT_STORE, add_serve_arguments, environ, settings_from_args

CATALOG_EXAMPLE = "projects/p/locations/global/catalogs/default_catalog"


def _version() -> str:
    try:
        return metadata.version("footfall")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _add_source_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Where a read command reads: the store itself (read-only) or a running server."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", default=env.get("FOOTFALL_STORE", DEFAULT_STORE),
                       help="read this store directly, read-only; it must exist "
                            "(FOOTFALL_STORE; default %(default)s)")
    where.add_argument("--server", metavar="HOST:PORT",
                       help="ask a running server instead, through its public gRPC API "
                            "(a memory:// store can only be read this way)")
    parser.add_argument("--key", default=env.get("FOOTFALL_KEY", ""),
                        help="API key sent to --server as x-goog-api-key (FOOTFALL_KEY)")


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="footfall", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"footfall {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(commands.add_parser("serve", help="run the server"), env)

    events = commands.add_parser("events", help="read stored retail user events")
    events_commands = events.add_subparsers(dest="events_command", required=True)
    for name, text in (("count", "count events"), ("list", "print events")):
        sub = events_commands.add_parser(name, help=text)
        sub.add_argument("--parent", required=True, help=f"catalog, e.g. {CATALOG_EXAMPLE}")
        _add_source_arguments(sub, env)
        sub.add_argument("--filter", default="",
                         help='purge filter grammar, e.g. eventType = "search" '
                              'eventTime > "2024-01-01T00:00:00Z"')
        if name == "list":
            sub.add_argument("--limit", type=int, default=100)
            sub.add_argument("--json", action="store_true", help="one JSON object per line")

    operations = commands.add_parser("operations", help="read long-running operations")
    operations_commands = operations.add_subparsers(dest="operations_command", required=True)
    listing = operations_commands.add_parser(
        "list", help="print operations: state, kind, name, counts and error")
    listing.add_argument("--parent", default="projects/",
                         help="catalog, location or project whose operations to list")
    _add_source_arguments(listing, env)
    listing.add_argument("--done", choices=("true", "false"), help="only done or running ones")
    listing.add_argument("--json", action="store_true",
                         help="each google.longrunning.Operation as one line of JSON")

    copy = commands.add_parser("backup", help="copy a SQLite store consistently, also while "
                                              "it serves")
    copy.add_argument("dest", metavar="DEST", help="the new file to write")
    copy.add_argument("--store", default=env.get("FOOTFALL_STORE", DEFAULT_STORE),
                      help="the store to copy (FOOTFALL_STORE; default %(default)s)")
    return parser


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except SystemExit as exc:  # a bad value, said in one line as argparse would
        if not isinstance(exc.code, str):
            raise
        print(f"footfall serve: error: {exc.code}", file=sys.stderr)
        return 2
    from server.processes import LOG_FORMAT, run

    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
    return run(settings)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = _parser(environ())
    except (ValueError, argparse.ArgumentTypeError) as exc:  # a flag converting its variable
        print(f"footfall: error: a FOOTFALL_* variable: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    from server import inspect

    if args.command == "operations":
        return inspect.run_operations(args)
    if args.command == "backup":
        return inspect.run_backup(args)
    return inspect.run_events(args)


if __name__ == "__main__":
    sys.exit(main())
