"""`footfall` / `python -m server`: serve, and inspect what was recorded."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from server.config import DEFAULT_STORE, add_serve_arguments, environ, settings_from_args


def _parser() -> argparse.ArgumentParser:
    env = environ()
    parser = argparse.ArgumentParser(prog="footfall", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(commands.add_parser("serve", help="run the server"), env)

    events = commands.add_parser("events", help="read stored retail user events")
    events_commands = events.add_subparsers(dest="events_command", required=True)
    for name, text in (("count", "count events"), ("list", "print events")):
        sub = events_commands.add_parser(name, help=text)
        sub.add_argument("--parent", required=True,
                         help="catalog, e.g. projects/p/locations/global/catalogs/default_catalog")
        sub.add_argument("--store", default=env.get("FOOTFALL_STORE", DEFAULT_STORE))
        sub.add_argument("--filter", default="",
                         help='purge filter grammar, e.g. eventType = "search" '
                              'eventTime > "2024-01-01T00:00:00Z"')
        if name == "list":
            sub.add_argument("--limit", type=int, default=100)
            sub.add_argument("--json", action="store_true", help="one JSON object per line")

    operations = commands.add_parser("operations", help="read long-running operations")
    operations_commands = operations.add_subparsers(dest="operations_command", required=True)
    listing = operations_commands.add_parser("list", help="print operations")
    listing.add_argument("--parent", default="projects/",
                         help="catalog, location or project whose operations to list")
    listing.add_argument("--store", default=env.get("FOOTFALL_STORE", DEFAULT_STORE))
    listing.add_argument("--done", choices=("true", "false"), help="only done or running ones")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        settings = settings_from_args(args)
        logging.basicConfig(level=settings.log_level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from server.app import serve
        from server.store.rows import StoreUnavailable, StoreUnusable

        try:
            return serve(settings)
        except (OSError, ValueError, StoreUnusable, StoreUnavailable) as exc:
            # a port in use, an unreadable store URL, a damaged or read-only database
            # file, a PostgreSQL that does not answer: say it in one line
            logging.getLogger("footfall").error("cannot start: %s", exc)
            return 1
    from server import inspect

    if args.command == "operations":
        return inspect.run_operations(args)
    return inspect.run_events(args)


if __name__ == "__main__":
    sys.exit(main())
