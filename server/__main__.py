"""`footfall` / `python -m server`: serve, inspect what was recorded, reset it, back it up,
copy it into another store.

Exit codes: 0 done; 1 the environment failed (a port in use, a database that
does not answer, a store that cannot be opened); 2 a mistake in the command
line, a FOOTFALL_* variable or the configuration it names; 3 `events count
--at-least` (or `talent-events count --at-least`) waited its --timeout in vain.
"""

from __future__ import annotations

import os
import signal
import sys

# Read before anything else is imported (the imports below take some 50 ms):
# --stop-with-parent watches this parent, and one that ended before it was read is
# never seen to end (--parent-pid names the process to watch instead).
STARTED_BY = os.getppid()
# A SIGHUP (re-read the keys) that comes while `serve` starts (its imports, the store,
# the processes of --processes: seconds under load) waits, and is taken once it serves
# (app.serve and processes.run take it with sigwait). Its default action ended the
# server there, exit 129 with not a line said: a service manager's reload sent as it
# started, or a key file written beside its start, stopped it.
if sys.argv[1:2] == ["serve"]:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})

import argparse  # noqa: E402
import difflib  # noqa: E402
import io  # noqa: E402
from collections.abc import Mapping, Sequence  # noqa: E402
from typing import Any, NoReturn, TextIO  # noqa: E402

from server.cli_args import (  # noqa: E402
    AT_LEAST_TIMEOUT,
    EVERY_OPERATION,
    StoreArgument,
    add_source_arguments,
    names_a_store,
    row_limit,
    store_url_problem,
    whole_number,
)
from server.config import (  # noqa: E402
    DEFAULT_STORE,
    add_serve_arguments,
    settings_from_args,
    shown_store,
    store_url_of,
)
from server.insights import cli as insights_cli  # noqa: E402

CATALOG_EXAMPLE = "projects/p/locations/global/catalogs/default_catalog"


def _version() -> str:
    # importlib.metadata, and its read of every installed package's metadata, only
    # for --version: some 15 ms of each start otherwise (bench/startup.py).
    from importlib import metadata

    try:
        return metadata.version("footfall")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


class _Version(argparse.Action):
    """--version: argparse's, with the version read only when it is asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "show program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"footfall {_version()}")  # (on stdout, as argparse's own)
        parser.exit()


def _add_output(parser: argparse.ArgumentParser, follow: bool = False) -> None:
    parser.add_argument("--json", action="store_true",
                        help="each record as one line of proto3 JSON")
    if follow:
        parser.add_argument("--after", type=_position, metavar="POSITION",
                            help="first those stored after this position (the id in --json; "
                                 "0: from the first one stored)")


def _limit(text: str) -> int | None:
    """argparse type of a list's --limit: a whole number; 0 is no limit (None), as
    for the insights tables."""
    return row_limit(text) or None


def _position(text: str) -> int:
    """argparse type of --after: a position (0 or a stored row's id, an int64)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value < 2 ** 63:
        raise argparse.ArgumentTypeError(f"must be 0 or a stored row's id, got {value}")
    return value


def _seconds(text: str) -> float:
    """argparse type of --timeout: seconds, 0 or more (not inf nor nan)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"must be 0..86400 seconds, got {text}")
    return value


def _add_reads(commands: Any, name: str, text: str, env: Mapping[str, str],
               parent: dict[str, Any]) -> None:
    """`name list` (from the store or a server) and `name tail` (a server's watch)."""
    group = commands.add_parser(name, help=text)
    verbs = group.add_subparsers(dest=f"{name.replace('-', '_')}_command", required=True)
    listing = verbs.add_parser("list", help="print them, newest first")
    listing.add_argument("--parent", **parent)
    add_source_arguments(listing, env)
    listing.add_argument("--limit", type=_limit, default=100,
                         help="at most so many (%(default)s; all: 0)")
    _add_output(listing)
    tail = verbs.add_parser("tail", help="print each one the server keeps from now on, "
                                         "until Ctrl-C")
    tail.add_argument("--parent", **parent)
    add_source_arguments(tail, env, store=False)
    _add_output(tail, follow=True)


def _add_event_reads(commands: Any, name: str, text: str, env: Mapping[str, str],
                     parent: dict[str, Any], filter_help: str) -> None:
    """`name count`, `name list` (from the store or a server) and `name tail` (a
    server's watch), each with --filter."""
    group = commands.add_parser(name, help=text)
    verbs = group.add_subparsers(dest=f"{name.replace('-', '_')}_command", required=True)
    time = "event time" if name == "events" else "create time"
    for verb, about in (("count", "count events"), ("list", f"print events, latest {time} "
                                                          "first"),
                        ("tail", "print each event the server stores from now on, until "
                                 "Ctrl-C")):
        sub = verbs.add_parser(verb, help=about)
        sub.add_argument("--parent", **parent)
        add_source_arguments(sub, env, store=verb != "tail")
        sub.add_argument("--filter", default="", help=filter_help)
        if verb == "list":
            sub.add_argument("--limit", type=_limit, default=100,
                             help="at most so many (%(default)s; all: 0)")
        if verb == "count":
            sub.add_argument("--at-least", type=whole_number, metavar="N",
                             help="wait until the filter selects N events or more (what "
                                  "an app sent in the background); exit 3 if --timeout "
                                  "passes first")
            sub.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                             help=f"how long --at-least waits ({AT_LEAST_TIMEOUT:g})")
            # (alone it was taken and never waited for: a script's `count --timeout 3`
            # read the count at once, as if it had waited)
            sub.needs = [("--timeout", "--at-least", "is how long --at-least waits: give "
                                                     "--at-least N too (without it the "
                                                     "count is read once, not waited for)")]
        if verb != "count":
            _add_output(sub, follow=verb == "tail")


class _Command(argparse.ArgumentParser):
    """The parser of a command (`events list`): an argument it does not know is
    refused with its own usage and name, not the top-level one's (`footfall: error:
    unrecognized arguments`, which listed the commands, not the flags). Every
    argument after a command's name is the command's: a flag of `footfall` itself
    comes before it."""

    has_commands = False
    # Flags that mean something only beside another: (flag, the flag it needs, what
    # the refusal says), each refused when given alone.
    needs: list[tuple[str, str, str]] = []
    # The arguments that name a store (see cli_args.names_a_store): --store, copy's DEST.
    stores: list[StoreArgument] = []

    def add_subparsers(self, **kwargs: Any) -> Any:
        self.has_commands = True
        return super().add_subparsers(**kwargs)

    def error(self, message: str) -> NoReturn:
        """A known flag's bad value is said in one line (its usage, 33 lines for
        `serve`, told nothing more); anything else with the command's usage."""
        if message.startswith("argument "):  # (argparse: "argument --port: ...")
            self.exit(2, f"{self.prog}: error: {message}\n")
        super().error(message)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and not self.has_commands:  # (one with commands of its own: the
            # inner command, which took them, said so already)
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._near(extras)}")
        for flag, needed, why in self.needs:
            dest, needed_dest = (self._option_string_actions[f].dest for f in (flag, needed))
            if getattr(parsed, dest, None) is not None \
                    and getattr(parsed, needed_dest, None) is None:
                self.error(f"argument {flag}: {why}")
        for store in self.stores:
            problem = store.problem(parsed)
            if problem is not None:  # (in one line, as a bad value of any flag)
                self.exit(2, f"{self.prog}: error: {problem}\n")
        return parsed, extras

    def _near(self, extras: list[str]) -> str:
        """` (did you mean --processes?)` for the flags among `extras` that look like
        one of this command's (its usage lists some 50 for `serve`: `--procesess` was
        told only `unrecognized arguments`); else nothing."""
        flags = sorted(option for option in self._option_string_actions
                       if option.startswith("--"))
        near = [match for extra in extras if extra.startswith("--")
                for match in difflib.get_close_matches(extra.split("=", 1)[0], flags, n=1)]
        if near:
            return f" (did you mean {', '.join(near)}?)"
        # `footfall copy SOURCE DEST`, as cp takes them, was told only "unrecognized
        # arguments: DEST", SOURCE taken for the target: say where the other store goes.
        target = next((action for action in self._actions if not action.option_strings
                       and action.dest in ("dest", "backup")), None)
        if target is not None and "--store" in self._option_string_actions \
                and any(not extra.startswith("-") for extra in extras):
            return (f" ({self.prog} takes one {target.metavar}; the other store is named "
                    f"by --store: {self.prog} --store STORE {target.metavar})")
        return ""


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="footfall", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Command)
    add_serve_arguments(commands.add_parser("serve", help="run the server"), env)

    _add_event_reads(commands, "events", "read stored retail user events", env,
                     {"required": True, "help": f"catalog, e.g. {CATALOG_EXAMPLE}"},
                     'e.g. eventType = "search" eventTime > "2024-01-01T00:00:00Z": the purge '
                     "filter grammar, plus sessionId, productId, joined and transport")
    _add_reads(commands, "rejections", "read the requests the server refused", env,
               {"default": "projects/-",
                "help": "projects/PROJECT, or projects/- (the default) for every project; "
                        "or a catalog or tenant: the requests that named it"})
    _add_event_reads(commands, "talent-events", "read stored talent client events", env,
                     {"required": True, "help": "tenant, e.g. projects/p/tenants/t; or a "
                                               "project alone, projects/p, for its default "
                                               "tenant (where talent v4beta1 keeps a "
                                               "project's events)"},
                     'e.g. eventType = VIEW job = "projects/p/tenants/t/jobs/j": terms on '
                     "eventType, job, requestId, eventId and createTime (> >= < <=), all of "
                     "which must hold")
    catalogs = commands.add_parser("catalogs", help="print the catalogs and tenants that "
                                                    "hold events, with their counts")
    catalogs.add_argument("--parent", default="projects/-",
                          help="projects/PROJECT, or projects/- (the default) for every "
                               "project")
    add_source_arguments(catalogs, env)
    _add_output(catalogs)

    products = commands.add_parser("products", help="read the products of a catalog")
    products_commands = products.add_subparsers(dest="products_command", required=True)
    listing = products_commands.add_parser("list", help="print the products of a branch, by "
                                                        "id")
    listing.add_argument("--parent", required=True,
                         help=f"branch (e.g. {CATALOG_EXAMPLE}/branches/default_branch), or a "
                              f"catalog for its default branch")
    add_source_arguments(listing, env)
    listing.add_argument("--filter", default="",
                         help='as ListProducts: type = "PRIMARY" (or "VARIANT", "COLLECTION"), '
                              'primary_product_id = "ID" or collection_product_id = "ID"')
    listing.add_argument("--limit", type=_limit, default=100,
                         help="at most so many (%(default)s; all: 0)")
    _add_output(listing)

    operations = commands.add_parser("operations", help="read long-running operations")
    operations_commands = operations.add_subparsers(dest="operations_command", required=True)
    listing = operations_commands.add_parser(
        "list", help="print operations: state, kind, name, counts and error")
    listing.add_argument("--parent", default=EVERY_OPERATION,
                         help="catalog, location or project whose operations to list "
                              "(default: every one; a server that checks keys needs one "
                              "named)")
    add_source_arguments(listing, env)
    listing.add_argument("--done", choices=("true", "false"), help="only done or running ones")
    _add_output(listing)

    reset = commands.add_parser(
        "reset", help="delete what a running server holds of a catalog (events, products, "
                      "refusals, finished operations; running ones are cancelled), a tenant "
                      "(client events, refusals) or a project (its every catalog and tenant, "
                      "and its refusals): a test suite's clean start")
    reset.add_argument("--parent", required=True,
                       help=f"catalog (e.g. {CATALOG_EXAMPLE}), tenant (projects/p/tenants/t) "
                            f"or project (projects/p)")
    add_source_arguments(reset, env, store=False)

    insights_cli.add_parser(commands, env)

    # (a default from FOOTFALL_STORE shown without its passwords, its % written %%)
    shown_default = shown_store(env.get("FOOTFALL_STORE", DEFAULT_STORE)).replace("%", "%%")
    backup = commands.add_parser("backup", help="copy a SQLite store consistently, also "
                                                "while it serves")
    backup.add_argument("dest", metavar="DEST",
                        help="the new file to write (its path, or sqlite:///PATH)")
    backup.add_argument("--store", default=env.get("FOOTFALL_STORE", DEFAULT_STORE),
                        type=store_url_of,
                        help="the store to copy, a URL or a SQLite file's path "
                             f"(FOOTFALL_STORE; default {shown_default})")
    names_a_store(backup, "--store", own_memory_refusal=True)
    restore = commands.add_parser(
        "restore", help="put a SQLite backup in place of a stopped SQLite store, checked, "
                        "the store it replaces kept aside with its WAL")
    restore.add_argument("backup", metavar="BACKUP", help="the backup file (its path)")
    restore.add_argument("--store", default=env.get("FOOTFALL_STORE", DEFAULT_STORE),
                         type=store_url_of,
                         help="the store to replace, a URL or a SQLite file's path "
                              f"(FOOTFALL_STORE; default {shown_default})")
    names_a_store(restore, "--store", own_memory_refusal=True)
    move = commands.add_parser(
        "copy", help="copy every row of a store (events, products, client events, refusals, "
                     "operations, rollups) into an empty one, of either engine: SQLite to "
                     "PostgreSQL, say")
    move.add_argument("dest", metavar="DEST", type=store_url_of,
                      help="the store to copy into, made if new, empty (a store URL, or "
                           "a SQLite file's path)")
    move.add_argument("--store", default=env.get("FOOTFALL_STORE", DEFAULT_STORE),
                      type=store_url_of,
                      help="the store to copy, a URL or a SQLite file's path "
                           f"(FOOTFALL_STORE; default {shown_default})")
    names_a_store(move, "--store", own_memory_refusal=True)
    names_a_store(move, "dest", own_memory_refusal=True)
    _name_verbs(parser)
    return parser


def _name_verbs(parser: argparse.ArgumentParser) -> None:
    """A command given without its verb (`footfall events`) is told the verbs, as its
    usage line names them (`{count,list,tail}`): argparse named the attribute it
    keeps the verb in (`the following arguments are required: events_command`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if action.metavar is None:
                action.metavar = "{" + ",".join(action.choices) + "}"
            for command in action.choices.values():
                _name_verbs(command)


def _serve(args: argparse.Namespace, parent: int) -> int:
    # Before any line: the checks of settings_from_args print some. (Text too: the
    # relay bounds the lines grpc writes for what clients send; see stderr_json.)
    from server.stderr_json import Relay

    try:
        relay = Relay(json_lines=args.log_format == "json")
    except OSError:  # no stderr to relay to (closed: `2>&-`), or no process to be had
        return _serve_logging(args, parent, None)
    try:
        return _serve_logging(args, parent, relay.stream)
    finally:
        relay.close()


def _serve_logging(args: argparse.Namespace, parent: int, stream: TextIO | None) -> int:
    """`serve`, its log written to `stream` (None: stderr)."""
    try:
        settings = settings_from_args(args)
    except SystemExit as exc:  # a bad value, said in one line as argparse would
        if not isinstance(exc.code, str):
            raise
        print(f"footfall serve: error: {exc.code}", file=sys.stderr)
        return 2
    # (as every command's --store: said naming the flag, before anything starts)
    problem = store_url_problem(settings.store, "--store", store_url_of(
        os.environ.get("FOOTFALL_STORE", DEFAULT_STORE)), read_only=False)
    if problem is not None:
        print(f"footfall serve: error: {problem}", file=sys.stderr)
        return 2
    from server.logsink import logging_to_stderr
    from server.processes import run
    from server.server_process import LOG_FORMAT

    with logging_to_stderr(settings.log_level, LOG_FORMAT, stream,
                           json_lines=settings.log_format == "json"):
        if settings.stop_with_parent or settings.parent_pid:
            from server.parent_watch import Parent, log, stop_with_parent

            watched = Parent(settings.parent_pid or parent, named=bool(settings.parent_pid))
            if watched.ended():  # during start-up: nothing is opened or bound
                log.warning("not starting: %s has ended (--stop-with-parent)", watched.said())
                return 0
            stop_with_parent(watched)
        return run(settings)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = _parser(os.environ)
    except (ValueError, argparse.ArgumentTypeError) as exc:  # a flag converting its variable
        print(f"footfall: error: a FOOTFALL_* variable: {exc}", file=sys.stderr)
        return 2
    if (sys.argv[1:] if argv is None else list(argv))[:1] != ["serve"]:
        # grpc's core logs each failed TLS handshake on stderr; a read command says why
        # it failed in one line of its own. Read once, when grpc is first imported: by
        # the parser already, which checks a --store's URL with the stores' module.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args, STARTED_BY)
    # A line's `sku-1×2` or `–` on an output that cannot encode them (PYTHONIOENCODING=ascii,
    # a latin-1 locale) ended the command in a traceback: escaped instead, as
    # lines.printable escapes what a terminal would act on.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    if args.command == "insights":
        return insights_cli.run(args)
    from server import inspect

    try:
        return inspect.run(args)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush
        return 0


if __name__ == "__main__":
    sys.exit(main())
