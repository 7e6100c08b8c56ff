"""Typed settings, read once from flags and FOOTFALL_* variables, then passed down.

Each setting is declared once, as a field of `Settings`:

    port: int = option(50051, INTEGER, "gRPC port; `0` picks a free one",
                       check=between(0, 65535))

That one line gives the flag `--port` (the field's name with `-` for `_`), the variable
`FOOTFALL_PORT` (its default), how both are parsed (`INTEGER`; a variable that does not
parse stops `footfall serve` with one line and exit code 2), the check made before the
server starts, the `--help` text and the row of the README's flag table. To add a flag,
add a field at the end of `Settings`, then paste `python -m server.config --readme-table`
over the table in README.md (tests/unit/test_readme_flags.py fails until you do). A check
that spans fields goes in `settings_from_args`.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Generic, TypeVar
from urllib.parse import urlparse

T = TypeVar("T")

DEFAULT_STORE = "sqlite:///./data/footfall.db"
DEFAULT_HTTP_PORT = 8080


@dataclass(frozen=True)
class Kind(Generic[T]):
    """How the text of a flag or of its variable becomes a value, and back for --help."""

    parse: Callable[[str], T]  # raises ValueError on text it refuses
    noun: str  # what the text is not: "FOOTFALL_PORT: not an integer: 'abc'"
    show: Callable[[T], str] = str
    code: bool = True  # the README shows the default as `code`


def _switch(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(text)


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


# The schemes of the store URLs server.store.open_store takes.
STORE_SCHEMES = frozenset({"sqlite", "memory", "postgres", "postgresql"})


def shown_store(url: str) -> str:
    """A store URL as --help may show it (a default from FOOTFALL_STORE, say): without
    its passwords (`serve --help` showed them as given). (server.url_passwords, not
    server.store: a command's parser is made before GRPC_VERBOSITY is set, and the
    store's package imports grpc, which reads it once.)"""
    from server.url_passwords import redacted  # (which imports this module)

    return redacted(url)


def store_url_of(given: str) -> str:
    """The store URL `given` names, where every command's --store (and `copy`'s DEST)
    takes a SQLite file's path as well as a URL: a URL as it is, anything else the
    file at that path, sqlite:///PATH (four slashes for an absolute one). `footfall
    copy ./x.db` was refused, told to write sqlite:///./x.db, where `footfall backup`
    took that path as it was; `events --store ./x.db` and `serve --store ./x.db` were
    refused so too, while `backup`, `restore` and `copy` took it."""
    if not given.strip() or "://" in given or urlparse(given).scheme in STORE_SCHEMES \
            or SERVER_ADDRESS.fullmatch(given) or CONNECTION_STRING.match(given):
        return given  # (nothing given, or an address, is left for open_store to refuse,
        # saying why)
    return f"sqlite:///{given}"


# HOST:PORT, what a PostgreSQL server is known by: `--store db.internal:5432` made a
# SQLite file of that name and served on it, empty. (./NAME is still that file.) So with
# a user before it or a database after it (a URL that lost its postgresql://:
# `localhost:5432/footfall` made a folder and a file), and a host named with an
# underscore (a compose service's, `shop_db_1`). A "database" named as a SQLite file is
# (`10:30/footfall.db`, a folder of a time of day: a path that served before this).
# libpq's KEY=VALUE connection string (`host=db dbname=shop user=me password=...`), a
# DSN psycopg takes: made a SQLite file of that name, the password in its name.
CONNECTION_STRING = re.compile(
    r"\s*(?:host|hostaddr|port|dbname|user|password|sslpassword|service)\s*=")
SERVER_ADDRESS = re.compile(r"(?:(?P<user>[^@/\s]+)@)?"
                            r"(?P<address>(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._-]*)"
                            r":[0-9]{1,5})(?:/(?P<database>"
                            r"(?![^/\s]*\.(?i:db|db3|sqlite|sqlite3)$)[^/\s]*))?")


# argparse also runs `parse` over a default that is a string, so a kind of text must
# accept its own output (str and _one_of's and STORE's do).
TEXT: Kind[str] = Kind(str, "text")
STORE: Kind[str] = Kind(store_url_of, "a store URL or a SQLite file's path", show=shown_store)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


def _one_of(name: str, values: tuple[str, ...], fold: Callable[[str], str]) -> Kind[str]:
    """A kind of text that is one of `values` once `fold`ed (upper or lower case),
    named `name` in argparse's refusal ("invalid log level value: 'VERBOSE'")."""
    def parse(text: str) -> str:
        value = fold(text.strip())
        if value not in values:
            raise ValueError(text)
        return value

    parse.__name__ = name
    return Kind(parse, "one of " + ", ".join(values))


LOG_LEVEL = _one_of("log level", LOG_LEVELS, str.upper)
LOG_FORM = _one_of("log format", LOG_FORMATS, str.lower)
INTEGER: Kind[int] = Kind(int, "an integer")  # `int` keeps argparse's "invalid int value"
NUMBER: Kind[float] = Kind(float, "a number", show=lambda value: f"{value:g}")
# A store_true flag; its variable takes 1/true/yes/on or 0/false/no/off.
SWITCH: Kind[bool] = Kind(_switch, "a boolean", show=lambda on: "on" if on else "off",
                          code=False)
COMMA_LIST: Kind[tuple[str, ...]] = Kind(_comma_list, "a list", show=",".join)


def cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0))


# --processes and --import-processes beyond this many per core are refused: 1,000
# processes on 2 cores started and brought the machine to a load of 500.
MAX_PROCESSES_PER_CORE = 4
# The most a grpc option takes: its options are C ints (a flag past it ended the
# start in an OverflowError's traceback, exit 1).
GRPC_OPTION_MAX = 2**31 - 1


def _count_or_auto(text: str) -> int:
    return cores() if text.strip().lower() == "auto" else int(text)


# A number, or `auto` for one per core.
COUNT_OR_AUTO: Kind[int] = Kind(_count_or_auto, "an integer or auto")


@dataclass(frozen=True)
class Check:
    """A rule a value must keep: "--port must be 0..65535, got 70000"."""

    rule: str
    ok: Callable[[float], bool]


def between(low: int, high: int) -> Check:
    return Check(f"must be {low}..{high}", lambda value: low <= value <= high)


def at_least(low: int) -> Check:
    rule = "must not be negative" if low == 0 else f"must be at least {low}"
    return Check(rule, lambda value: value >= low)


POSITIVE = Check("must be positive", lambda value: value > 0)


@dataclass(frozen=True)
class Option:
    """One flag of `footfall serve`, as declared on its Settings field."""

    name: str  # of the Settings field
    default: Any  # of `footfall serve`, before its variable is read
    kind: Kind[Any]
    meaning: str  # Markdown, for the README; --help shows it without the backticks
    check: Check | None
    readme_default: str  # "" shows the default as its kind does

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        return "FOOTFALL_" + self.name.upper()


_OPTION = "footfall.option"


def option(default: T, kind: Kind[T], meaning: str, *, check: Check | None = None,
           serve_default: T | None = None, readme_default: str = "") -> T:
    """A Settings field with a default for code (tests) and a flag for `footfall serve`,
    whose default is `serve_default` when given."""
    served = default if serve_default is None else serve_default
    declared = Option("", served, kind, meaning, check, readme_default)
    return field(default=default, metadata={_OPTION: declared})


@dataclass(frozen=True)
class Settings:
    host: str = option("127.0.0.1", TEXT, "address to listen on")
    port: int = option(50051, INTEGER,
                       "gRPC port; `0` picks a free one (the ready line says which)",
                       check=between(0, 65535))
    store: str = option(DEFAULT_STORE, STORE,
                        "`sqlite:///PATH`, `sqlite:////abs/path`, `memory://`, "
                        "`postgresql://USER@HOST:PORT/DB`, or a SQLite file's path "
                        "(`./data/footfall.db`, as every command's `--store` takes; "
                        "`HOST:PORT` alone, or as `USER@HOST:PORT/DB`, is refused as a "
                        "server's address, `./HOST:PORT` is that file)")
    strict_event_types: bool = option(False, SWITCH,
                                      "refuse event types outside Google's list")
    strict_names: bool = option(False, SWITCH,
                                "refuse retail calls on a catalog other than Google's one, "
                                "`default_catalog` in location `global`")
    workers: int = option(8, INTEGER, "threads for the store calls that block (reads, products, "
                          "operations); calls themselves are served on one event loop",
                          check=at_least(1))
    grace_seconds: float = option(10.0, NUMBER,
                                  "how long in-flight calls may finish on shutdown")
    max_request_bytes: int = option(10 * 1024 * 1024, INTEGER,
                                    "largest request on either transport",
                                    check=between(1024, GRPC_OPTION_MAX),
                                    readme_default="10 MiB")
    log_level: str = option("INFO", LOG_LEVEL, "`DEBUG`, `INFO`, `WARNING` or `ERROR`")
    log_format: str = option("text", LOG_FORM,
                             "`text` (`TIME LEVEL LOGGER: MESSAGE`) or `json`: one object a "
                             "line, with `time`, `level`, `logger`, `message`, a call's "
                             "fields as `call`, a traceback as `exception` and a stack as "
                             "`stack`; grpc's own lines and others' on stderr too (see "
                             "\"Metrics and logs\")")
    gcs_root: str = option("./data/gcs", TEXT, "folder that stands in for Cloud Storage: "
                           "`gs://b/x` is `GCS_ROOT/b/x`; made when a `gs://` file is "
                           "first written, not at start")
    operation_workers: int = option(1, INTEGER, "threads running import/purge/rejoin jobs",
                                    check=at_least(1))
    lease_seconds: float = option(30.0, NUMBER,
                                  "how long a job stays claimed without progress before "
                                  "another replica may take it over", check=POSITIVE)
    # Off when Settings are built in code (tests), on for `footfall serve`.
    http_port: int = option(0, INTEGER,
                            "HTTP/JSON gateway, pixel and `/footfall.js`; `0` turns it off, "
                            "`-1` picks a free one", check=between(-1, 65535),
                            serve_default=DEFAULT_HTTP_PORT)
    cors_origins: tuple[str, ...] = option(("*",), COMMA_LIST,
                                           "origins whose pages may call the REST routes "
                                           "(comma-separated; empty for none); `*` lets "
                                           "every page record events, and only that")
    trust_forwarded_for: bool = option(False, SWITCH,
                                       "take a pixel's client address from `X-Forwarded-For` "
                                       "(only behind a proxy that sets it)")
    # Trust (see README "Security and operations"): all off by default.
    auth_file: str = option("", TEXT, "JSON file of API keys and their roles, re-read on "
                            "SIGHUP; see \"Security and operations\"",
                            readme_default="none (auth off)")
    tls_cert: str = option("", TEXT, "PEM certificate (chain): serve both ports over TLS; "
                           "needs `--tls-key`", readme_default="none (plaintext)")
    tls_key: str = option("", TEXT, "PEM private key of `--tls-cert`",
                          readme_default="none (plaintext)")
    quota_writes_per_minute: int = option(0, INTEGER,
                                          "event writes per project per minute (a token "
                                          "bucket with a minute's worth of burst)",
                                          check=at_least(0), readme_default="off")
    allow_fault_injection: bool = option(False, SWITCH,
                                         "honour `x-footfall-fail` (tests of client retry "
                                         "logic; never in production)")
    retain_days: int = option(0, INTEGER,
                              "purge retail user events older than this many days, at "
                              "start and then every `--retention-interval-seconds`, as "
                              "ordinary purge operations (talent client events are kept); "
                              "`0` keeps everything",
                              check=at_least(0), readme_default="off")
    retention_interval_seconds: float = option(3600.0, NUMBER,
                                               "how often `--retain-days` looks for old events",
                                               check=POSITIVE)
    max_event_bytes: int = option(2 * 1024 * 1024, INTEGER,
                                  "largest event (serialized) a write, pixel, client event or "
                                  "import line may carry", check=at_least(1024),
                                  readme_default="2 MiB")
    quota_bytes_per_minute: int = option(0, INTEGER,
                                         "request bytes of event writes per project per minute",
                                         check=at_least(0), readme_default="off")
    max_pending_operations: int = option(100, INTEGER,
                                         "operations not done yet (imports, purges, rejoins, "
                                         "exports) that one project may have; more are "
                                         "RESOURCE_EXHAUSTED; `0`: no bound", check=at_least(0))
    max_wait_operations: int = option(64, INTEGER,
                                      "WaitOperation calls that may wait at once (each costs "
                                      "no thread); more answer at once with the operation "
                                      "as it is", check=at_least(1))
    http_header_timeout: float = option(10.0, NUMBER,
                                        "seconds an HTTP connection has to send a complete "
                                        "request head, from accept or from its previous answer",
                                        check=POSITIVE)
    http_body_timeout: float = option(60.0, NUMBER,
                                      "seconds an HTTP request has to send its body (then 408)",
                                      check=POSITIVE)
    http_send_timeout: float = option(30.0, NUMBER,
                                      "seconds an HTTP client has to take each 64 KiB of an "
                                      "answer (then its connection is closed and the answer "
                                      "let go)", check=POSITIVE)
    http_max_connections: int = option(1000, INTEGER,
                                       "HTTP connections open at once; more are refused (503). "
                                       "With --grpc-max-connections, kept within 3/4 of the "
                                       "file descriptor limit",
                                       check=at_least(1))
    grpc_max_connections: int = option(1000, INTEGER,
                                       "gRPC connections open at once; more are closed as "
                                       "they come (before any call)",
                                       check=at_least(1))
    http_allowed_hosts: tuple[str, ...] = option((), COMMA_LIST,
                                                 "Host names the HTTP port answers besides "
                                                 "loopback ones (behind a proxy that keeps "
                                                 "the Host header); listening beyond "
                                                 "loopback, set it to answer only these",
                                                 readme_default="none")
    processes: int = option(1, COUNT_OR_AUTO,
                            "server processes sharing the ports and one store (`auto`: one "
                            "per core); needs a SQLite or PostgreSQL store",
                            check=at_least(1))
    share_cores: bool = option(False, SWITCH,
                               "under --processes, leave every server process free to run "
                               "on every core (the kernel places them) instead of keeping "
                               "each to a core of its own: for a machine whose cores other "
                               "servers use too (see \"Scaling out\")")
    rejections_keep: int = option(10_000, INTEGER,
                                  "refused event writes, pixels, client events, product "
                                  "writes, import, purge and rejoin calls, and failed import "
                                  "lines (events and products) kept for the console (the "
                                  "latest ones; see \"Refusals\"); `0` keeps none",
                                  check=at_least(0))
    rejections_keep_per_project: int = option(2_000, INTEGER,
                                              "of those, the most kept of one project (the "
                                              "latest), so that one project's refused "
                                              "requests cannot push out all the others'; "
                                              "given, at most `--rejections-keep`",
                                              check=at_least(1))
    rejections_keep_hours: float = option(168.0, NUMBER,
                                          "how long a kept refusal stays (hours)",
                                          check=POSITIVE)
    max_watches: int = option(1_000, INTEGER,
                              "console watch streams (gRPC and server-sent events) open at "
                              "once in this process; more are refused RESOURCE_EXHAUSTED",
                              check=at_least(1))
    max_watches_per_project: int = option(-1, INTEGER,
                                          "of those, the most one project's may take, so "
                                          "that one project's reader key cannot take them "
                                          "all (`projects/-` counts as one project); `-1` "
                                          "half of --max-watches; a server of one project "
                                          "may give --max-watches",
                                          check=Check("must be -1 or at least 1",
                                                      lambda value: value == -1 or value >= 1),
                                          readme_default="`-1`")
    watch_messages: int = option(4_000, INTEGER,
                                 "messages a second that the console's watches of single "
                                 "rows (WatchUserEvents, WatchClientEvents, WatchRejections "
                                 "and their server-sent events) send together in this "
                                 "process; past it they fall behind, and slow the writes "
                                 "less (see \"The console API\"); `0` no bound. Not "
                                 "counted: WatchUserEventBatches", check=at_least(0))
    watch_read_ms: int = option(200, INTEGER,
                                "milliseconds a second (of the reading threads' CPU) that "
                                "the console's watches take together in this process to "
                                "read the store (each distinct filter watched reads after "
                                "each commit, and so does a watch catching up); past it "
                                "they read later, falling behind and missing nothing, and "
                                "the writes keep their pace (see \"The console API\"); "
                                "`0` no bound", check=at_least(0))
    watch_send_ms: int = option(100, INTEGER,
                                "milliseconds a second (of the event loop) that the "
                                "console's watches of single rows take together in this "
                                "process to make and send their messages (their JSON, "
                                "mostly), beside --watch-messages; past it they fall "
                                "behind, missing nothing, and the writes keep their pace "
                                "(see \"The console API\"); `0` no bound, `1000` (the most) "
                                "the whole loop", check=Check(
                                    "must be 0..1000 (milliseconds of each second of the "
                                    "event loop, which has 1,000)",
                                    lambda value: 0 <= value <= 1000))
    list_read_ms: int = option(200, INTEGER,
                               "milliseconds a second (of the reading threads' CPU) that the "
                               "pages of the console's lists (ListUserEvents, ListClientEvents, "
                               "ListRejections) and of ListProducts "
                               "take together in this process to read the "
                               "store while events are written or imported (within 2 s, looked "
                               "at between a read's pages); past it a "
                               "read waits for its turn, the turns fair "
                               "between keys (with auth off, between client addresses), and "
                               "the writes keep their pace (see \"Limits\"); the insights and "
                               "the counts (CountUserEvents, CountClientEvents, ListCatalogs', "
                               "v2alpha total_size) take a budget of their own as large; `0` no "
                               "bound",
                               check=at_least(0))
    durable_pixels: bool = option(False, SWITCH,
                                  "answer a browser's pixel (GET collect) only once its event "
                                  "is committed; off: once it is valid and queued, committed "
                                  "with the next group (see \"Pixels and kill -9\")")
    import_processes: int = option(-1, INTEGER,
                                   "worker processes that decode and check the lines of "
                                   "`gs://` imports (files of 1 MiB or more), shared by the "
                                   "jobs of this server process; `-1` one per core, `0` none "
                                   "(the job's own thread)", check=at_least(-1),
                                   readme_default="`-1`")
    max_concurrent_rpcs: int = option(10_000, INTEGER,
                                      "gRPC calls in progress at once, open streams "
                                      "included; more are refused at once with "
                                      "RESOURCE_EXHAUSTED (bounds the calls, not the "
                                      "memory their unfinished requests hold: see Limits); "
                                      "must exceed --max-watches plus "
                                      "--max-streams", check=at_least(1))
    max_streams: int = option(1_000, INTEGER,
                              "gRPC streams other than console watches (health watches, "
                              "server reflection) open at once; more are refused "
                              "RESOURCE_EXHAUSTED", check=at_least(1))
    operations_keep_days: int = option(30, INTEGER,
                                       "ended long-running operations (imports, purges, "
                                       "exports, ...) are deleted this many days after they "
                                       "end, at start and then every hour (running ones "
                                       "never are); `0` keeps them all",
                                       check=at_least(0))
    stop_with_parent: bool = option(False, SWITCH,
                                    "stop, as on SIGTERM, once the process that started "
                                    "`footfall serve` has ended (a test suite's fixture: "
                                    "a runner killed outright leaves no server behind); "
                                    "one already ended stops the start")
    parent_pid: int = option(0, INTEGER,
                             "with `--stop-with-parent` (which it turns on), the process "
                             "to watch instead of the parent: the starter's own pid, seen "
                             "ended however soon it ends, and through a wrapper "
                             "(`sh -c`, `uv run`); `0` the parent",
                             check=at_least(0))
    ready_file: str = option("", TEXT,
                             "once serving, write this JSON file with the addresses bound, "
                             "for a test fixture on free ports: "
                             "`{\"grpc\": \"127.0.0.1:41234\", \"http\": \"127.0.0.1:45678\", "
                             "\"grpcPort\": 41234, \"httpPort\": 45678, \"pid\": 4242}` "
                             "(`http` and `httpPort` null when HTTP is off); removed at the "
                             "start unless the server it names runs, and at a clean stop",
                             readme_default="none")
    max_keyless_streams: int = option(-1, INTEGER,
                                      "with `--auth-file`, of --max-streams the most that "
                                      "callers without a known API key may hold at once; the "
                                      "rest stay for callers with one (a key at most a "
                                      "quarter of them); `-1` half of --max-streams",
                                      check=at_least(-1))
    max_keyless_streams_per_address: int = option(16, INTEGER,
                                                  "of those, the most one client address "
                                                  "(an IPv6 client's /64) may hold",
                                                  check=at_least(1))
    keyless_stream_seconds: float = option(300.0, NUMBER,
                                           "with `--auth-file`, a health watch or reflection "
                                           "stream without a known API key is ended "
                                           "UNAVAILABLE after this long (a client watches "
                                           "again); `0` never", check=at_least(0))
    http_max_connections_per_address: int = option(
        -1, INTEGER, "of --http-max-connections, the most one client address (an IPv6 "
        "client's /64) may hold; more from it are refused (503); `-1` a quarter of them (at "
        "least 16), or "
        "no bound with `--trust-forwarded-for` (every connection is the proxy's); `0` no "
        "bound", check=at_least(-1))
    grpc_max_calls_per_connection: int = option(
        1000, INTEGER, "gRPC calls open at once on one connection (HTTP/2 "
        "`MAX_CONCURRENT_STREAMS`; a client queues the rest). A call the client cancelled "
        "counts until the server lets it go: a connection opening calls and cancelling "
        "them at once, in a loop (\"rapid reset\"), has those past it refused "
        "`UNAVAILABLE`, at a quarter of the CPU. Lower bounds such a flood more, and refuses "
        "some calls of a client sending many together, which most clients do not send "
        "again (see \"Limits\"); `0` no bound",
        check=between(0, GRPC_OPTION_MAX))
    max_request_bytes_held: int = option(
        -1, INTEGER, "bytes the gRPC requests being read or served hold together: a call's "
        "request is read once there is room for one of --max-request-bytes, and holds its "
        "size until the call ends; a call that finds no room within 10 s is refused "
        "`RESOURCE_EXHAUSTED` (see \"Limits\"); `-1` 16 × --max-request-bytes (HTTP "
        "bodies have as much room of their own); less than --max-request-bytes is taken "
        "as it", check=at_least(-1), readme_default="`-1`")


OPTIONS: tuple[Option, ...] = tuple(
    replace(f.metadata[_OPTION], name=f.name) for f in fields(Settings) if _OPTION in f.metadata)


@dataclass(frozen=True)
class _BadVariable:
    """The default of a flag whose variable does not parse: the flag may still be given;
    if it is not, settings_from_args stops the start."""

    variable: str
    text: str
    noun: str

    def __str__(self) -> str:
        return self.text


def _default(opt: Option, env: Mapping[str, str]) -> Any:
    text = env.get(opt.variable)
    if text is None:
        return opt.default
    try:
        return opt.kind.parse(text)
    except ValueError:
        return _BadVariable(opt.variable, text, opt.kind.noun)


def _help(opt: Option, default: Any) -> str:
    shown = str(default) if isinstance(default, _BadVariable) else opt.kind.show(default)
    where = f"{opt.variable}; default {shown}" if shown else opt.variable
    return f"{opt.meaning.replace('`', '')} ({where})".replace("%", "%%")


# The attribute of parsed `serve` flags naming the options given, by flag or by variable
# (a check between two flags may hold only for a value someone chose).
_GIVEN = "footfall_given"


class _Given(argparse.Action):
    """Stores a flag's value (`const` for a switch) and notes that the flag was given."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        setattr(namespace, _GIVEN, getattr(namespace, _GIVEN, frozenset()) | {self.dest})


def _flag_type(kind: Kind[T]) -> Callable[[str], T]:
    """argparse type of a flag of `kind`: what it refuses is said as its variable's is
    ("not an integer or auto: 'two'"); argparse said "invalid _count_or_auto value"."""
    def parse(text: str) -> T:
        try:
            return kind.parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind.noun}: {text!r}") from None
    return parse


def add_serve_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Flags of `footfall serve`; each default comes from its FOOTFALL_* variable."""
    parser.set_defaults(**{_GIVEN: frozenset(o.name for o in OPTIONS if o.variable in env)})
    for opt in OPTIONS:
        default = _default(opt, env)
        if opt.kind is SWITCH:
            parser.add_argument(opt.flag, action=_Given, nargs=0, const=True, default=default,
                                help=_help(opt, default))
        else:
            parser.add_argument(opt.flag, action=_Given, type=_flag_type(opt.kind),
                                default=default, help=_help(opt, default))


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from parsed `serve` flags. A FOOTFALL_* variable that did not parse (and
    whose flag was not given) exits 2 with one line per variable; a value its check
    refuses exits 2 with one line. Each such line says `error:` as argparse's do (what
    stderr_json relays as ERROR under --log-format json: the start stops for it)."""
    _warn_of_unknown_variables()
    values = {opt.name: getattr(args, opt.name) for opt in OPTIONS}
    bad = [value for value in values.values() if isinstance(value, _BadVariable)]
    if bad:
        for value in bad:
            # (`footfall: ...` alone was relayed as a WARNING, as the unknown variable's
            # line that stops nothing: a collector alerting on ERROR never heard why)
            print(f"footfall serve: error: {value.variable}: not {value.noun}: {value.text!r}",
                  file=sys.stderr)
        raise SystemExit(2)
    for opt in OPTIONS:
        value = values[opt.name]
        if opt.check is not None and not opt.check.ok(value):
            raise SystemExit(f"{opt.flag} {opt.check.rule}, got {value}")
    if bool(values["tls_cert"]) != bool(values["tls_key"]):
        raise SystemExit("--tls-cert and --tls-key go together: give both or neither")
    if values["port"] > 0 and values["http_port"] == values["port"]:
        # (said as the HTTP port being "already in use": by the gRPC port, just bound)
        raise SystemExit(f"--port and --http-port are both {values['port']}: gRPC and HTTP "
                         "each need a port of their own")
    quota_bytes, max_event = values["quota_bytes_per_minute"], values["max_event_bytes"]
    if 0 < quota_bytes <= max_event:
        # The quota counts the whole request (the event, its parent and their tags).
        raise SystemExit(f"--quota-bytes-per-minute ({quota_bytes}) must be more than "
                         f"--max-event-bytes ({max_event}): it counts the whole request, so "
                         f"an event of the largest size could never be written")
    keep, per_project = values["rejections_keep"], values["rejections_keep_per_project"]
    # Unless given, the per-project bound's default is no reason to refuse a lower
    # --rejections-keep (nor is any bound when none is kept).
    if "rejections_keep_per_project" in getattr(args, _GIVEN, ()) and 0 < keep < per_project:
        raise SystemExit(f"--rejections-keep-per-project ({per_project}) is more than "
                         f"--rejections-keep ({keep}): only the latest {keep} of every project "
                         f"are kept, so it could never bind; give at most {keep}, or leave it "
                         f"out")
    calls, watches, streams = (values["max_concurrent_rpcs"], values["max_watches"],
                               values["max_streams"])
    if calls <= watches + streams:
        raise SystemExit(f"--max-concurrent-rpcs ({calls}) must exceed --max-watches "
                         f"({watches}) plus --max-streams ({streams}): else open streams "
                         f"alone could take every call, writes and health checks included")
    keyless = values["max_keyless_streams"]
    if keyless >= streams:
        raise SystemExit(f"--max-keyless-streams ({keyless}) must be less than --max-streams "
                         f"({streams}): else callers without a key could take every stream, "
                         f"and leave none for those with one")
    for flag, name in (("--processes", "processes"), ("--import-processes", "import_processes")):
        if values[name] > MAX_PROCESSES_PER_CORE * cores():
            raise SystemExit(f"{flag} {values[name]} is more than {MAX_PROCESSES_PER_CORE} per "
                             f"core ({cores()} here): each is a whole process, and past one "
                             f"per core they only take turns")
    if values["processes"] > 1 and values["store"].startswith("memory:"):
        raise SystemExit(f"--processes {values['processes']} needs a store the processes "
                         f"share: memory:// lives inside one process; use sqlite:/// or "
                         f"postgresql://")
    return Settings(**values)


# FOOTFALL_* variables that are no setting of `serve`, yet are not mistakes: the key
# the read commands send, and those of the test suites and benchmarks.
OTHER_VARIABLES = frozenset({"FOOTFALL_KEY"})
OTHER_PREFIXES = ("FOOTFALL_TEST_", "FOOTFALL_BENCH_", "FOOTFALL_FUZZ_")


def _warn_of_unknown_variables() -> None:
    """One line on stderr for each FOOTFALL_* variable `serve` does not read (a typo
    such as FOOTFALL_STORRE was ignored in silence, and the server used ./data while
    a misspelled flag is refused), naming the setting it most looks like."""
    known = {opt.variable for opt in OPTIONS}
    for name in sorted(os.environ):
        if name.startswith("FOOTFALL_") and name not in known | OTHER_VARIABLES \
                and not name.startswith(OTHER_PREFIXES):
            near = difflib.get_close_matches(name, sorted(known), n=1)
            print(f"footfall: {name[:100]} is no setting of footfall serve"
                  + (f" (did you mean {near[0]}?)" if near else "") + ": it is not used",
                  file=sys.stderr)


def readme_table() -> str:
    """The flag table of README.md ("## Running"), one row per option."""
    rows = ["| flag | variable | default | meaning |", "|---|---|---|---|"]
    for opt in OPTIONS:
        default = opt.readme_default
        if not default:
            shown = opt.kind.show(opt.default)
            default = "none" if not shown else f"`{shown}`" if opt.kind.code else shown
        meaning = opt.meaning.replace("|", "\\|")  # a bare | would end the cell
        rows.append(f"| `{opt.flag}` | `{opt.variable}` | {default} | {meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    tool = argparse.ArgumentParser(prog="python -m server.config",
                                   description="Print what README.md shows of the flags.")
    tool.add_argument("--readme-table", action="store_true", required=True,
                      help="the flag table of README.md (## Running), to paste over it")
    tool.parse_args()
    print(readme_table())
