"""Typed settings, read once from flags and FOOTFALL_* variables, then passed down."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_STORE = "sqlite:///./data/footfall.db"
DEFAULT_HTTP_PORT = 8080


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 50051
    store: str = DEFAULT_STORE
    strict_event_types: bool = False
    workers: int = 32
    grace_seconds: float = 10.0
    max_request_bytes: int = 10 * 1024 * 1024
    log_level: str = "INFO"
    gcs_root: str = "./data/gcs"
    operation_workers: int = 1
    lease_seconds: float = 30.0
    # HTTP gateway (REST, pixel, /footfall.js): -1 picks a free port, 0 turns it
    # off. Off when Settings are built in code (tests); `serve` defaults to 8080.
    http_port: int = 0
    cors_origins: tuple[str, ...] = ("*",)
    trust_forwarded_for: bool = False
    # Trust (see README "Security and operations"): all off by default.
    auth_file: str = ""  # JSON keys and roles; "" = no keys needed
    tls_cert: str = ""  # PEM files; both or neither, for gRPC and HTTP alike
    tls_key: str = ""
    quota_writes_per_minute: int = 0  # per project; 0 = no quota
    allow_fault_injection: bool = False  # honour x-footfall-fail
    # HTTP connections and browsers (README "Limits" and "Browsers and other sites").
    http_header_timeout: float = 10.0  # seconds for a request head, from accept or idle
    http_body_timeout: float = 60.0  # seconds for a request body once its head is in
    http_max_connections: int = 1000  # open at once; more are refused with a 503
    http_allowed_hosts: tuple[str, ...] = ()  # Host names besides loopback ones


def _env_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {value!r}")


def add_serve_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Flags of `footfall serve`; each default comes from its FOOTFALL_* variable."""
    d = Settings()

    def env_or(name: str, default: object) -> object:
        return env.get(f"FOOTFALL_{name}", default)

    parser.add_argument("--host", default=env_or("HOST", d.host),
                        help="address to listen on (FOOTFALL_HOST; default %(default)s)")
    parser.add_argument("--port", type=int, default=int(env_or("PORT", d.port)),  # type: ignore[call-overload]
                        help="gRPC port, 0 picks a free one (FOOTFALL_PORT; default %(default)s)")
    parser.add_argument("--store", default=env_or("STORE", d.store),
                        help="sqlite:///PATH, memory:// or postgresql://... "
                             "(FOOTFALL_STORE; default %(default)s)")
    parser.add_argument("--strict-event-types", action="store_true",
                        default=_env_bool(str(env_or("STRICT_EVENT_TYPES", "false"))),
                        help="refuse event types Google's service does not know "
                             "(FOOTFALL_STRICT_EVENT_TYPES)")
    parser.add_argument("--workers", type=int, default=int(env_or("WORKERS", d.workers)),  # type: ignore[call-overload]
                        help="gRPC worker threads (FOOTFALL_WORKERS; default %(default)s)")
    parser.add_argument("--grace-seconds", type=float,
                        default=float(env_or("GRACE_SECONDS", d.grace_seconds)),  # type: ignore[arg-type]
                        help="how long in-flight calls may finish on shutdown "
                             "(FOOTFALL_GRACE_SECONDS; default %(default)s)")
    parser.add_argument("--gcs-root", default=env_or("GCS_ROOT", d.gcs_root),
                        help="folder that stands in for Cloud Storage: gs://b/x is "
                             "GCS_ROOT/b/x (FOOTFALL_GCS_ROOT; default %(default)s)")
    parser.add_argument("--operation-workers", type=int,
                        default=int(env_or("OPERATION_WORKERS", d.operation_workers)),  # type: ignore[call-overload]
                        help="threads running import/purge/rejoin jobs "
                             "(FOOTFALL_OPERATION_WORKERS; default %(default)s)")
    parser.add_argument("--lease-seconds", type=float,
                        default=float(env_or("LEASE_SECONDS", d.lease_seconds)),  # type: ignore[arg-type]
                        help="how long a job stays claimed without progress before another "
                             "replica may take it over (FOOTFALL_LEASE_SECONDS; "
                             "default %(default)s)")
    parser.add_argument("--http-port", type=int,
                        default=int(env_or("HTTP_PORT", DEFAULT_HTTP_PORT)),  # type: ignore[call-overload]
                        help="port of the HTTP/JSON gateway, the pixel and /footfall.js; 0 "
                             "turns it off, -1 picks a free one (the ready line says which) "
                             "(FOOTFALL_HTTP_PORT; default %(default)s)")
    parser.add_argument("--cors-origins", default=env_or("CORS_ORIGINS", "*"),
                        help="origins whose pages may call the REST routes: '*' (any), a "
                             "comma-separated list, or '' (none) "
                             "(FOOTFALL_CORS_ORIGINS; default %(default)s)")
    parser.add_argument("--trust-forwarded-for", action="store_true",
                        default=_env_bool(str(env_or("TRUST_FORWARDED_FOR", "false"))),
                        help="take a pixel's client address from X-Forwarded-For; only "
                             "behind a proxy that sets it (FOOTFALL_TRUST_FORWARDED_FOR)")
    parser.add_argument("--auth-file", default=env_or("AUTH_FILE", d.auth_file),
                        help="JSON file of API keys and their roles and projects; without "
                             "it no key is needed. Re-read on SIGHUP (FOOTFALL_AUTH_FILE)")
    parser.add_argument("--tls-cert", default=env_or("TLS_CERT", d.tls_cert),
                        help="PEM certificate (chain) for TLS on both ports; needs --tls-key "
                             "(FOOTFALL_TLS_CERT)")
    parser.add_argument("--tls-key", default=env_or("TLS_KEY", d.tls_key),
                        help="PEM private key of --tls-cert (FOOTFALL_TLS_KEY)")
    parser.add_argument("--quota-writes-per-minute", type=int,
                        default=int(env_or("QUOTA_WRITES_PER_MINUTE",  # type: ignore[call-overload]
                                           d.quota_writes_per_minute)),
                        help="event writes a project may make per minute (token bucket, a "
                             "minute's worth of burst); 0 = unlimited "
                             "(FOOTFALL_QUOTA_WRITES_PER_MINUTE; default %(default)s)")
    parser.add_argument("--max-request-bytes", type=int,
                        default=int(env_or("MAX_REQUEST_BYTES",  # type: ignore[call-overload]
                                           d.max_request_bytes)),
                        help="largest request accepted on either transport "
                             "(FOOTFALL_MAX_REQUEST_BYTES; default %(default)s)")
    parser.add_argument("--allow-fault-injection", action="store_true",
                        default=_env_bool(str(env_or("ALLOW_FAULT_INJECTION", "false"))),
                        help="let calls ask for failures with the x-footfall-fail header, to "
                             "test client retries; never in production "
                             "(FOOTFALL_ALLOW_FAULT_INJECTION)")
    parser.add_argument("--log-level", default=env_or("LOG_LEVEL", d.log_level),
                        help="DEBUG, INFO, WARNING or ERROR (FOOTFALL_LOG_LEVEL)")
    parser.add_argument("--http-header-timeout", type=float,
                        default=float(env_or("HTTP_HEADER_TIMEOUT",  # type: ignore[arg-type]
                                             d.http_header_timeout)),
                        help="seconds an HTTP connection has to send a complete request head, "
                             "from accept or from its previous answer "
                             "(FOOTFALL_HTTP_HEADER_TIMEOUT; default %(default)s)")
    parser.add_argument("--http-body-timeout", type=float,
                        default=float(env_or("HTTP_BODY_TIMEOUT",  # type: ignore[arg-type]
                                             d.http_body_timeout)),
                        help="seconds an HTTP request has to send its body "
                             "(FOOTFALL_HTTP_BODY_TIMEOUT; default %(default)s)")
    parser.add_argument("--http-max-connections", type=int,
                        default=int(env_or("HTTP_MAX_CONNECTIONS",  # type: ignore[call-overload]
                                           d.http_max_connections)),
                        help="HTTP connections open at once; more are refused (503). Kept "
                             "within 3/4 of the file descriptor limit "
                             "(FOOTFALL_HTTP_MAX_CONNECTIONS; default %(default)s)")
    parser.add_argument("--http-allowed-hosts", default=env_or("HTTP_ALLOWED_HOSTS", ""),
                        help="comma-separated Host names the HTTP port answers besides "
                             "loopback ones when listening on loopback, e.g. behind a proxy "
                             "that keeps the Host header (FOOTFALL_HTTP_ALLOWED_HOSTS)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    if not 0 <= args.port <= 65535:
        raise SystemExit(f"--port must be 0..65535, got {args.port}")
    if args.operation_workers < 1:
        raise SystemExit(f"--operation-workers must be at least 1, got {args.operation_workers}")
    if args.lease_seconds <= 0:
        raise SystemExit(f"--lease-seconds must be positive, got {args.lease_seconds}")
    if args.workers < 1:
        raise SystemExit(f"--workers must be at least 1, got {args.workers}")
    if not -1 <= args.http_port <= 65535:
        raise SystemExit(f"--http-port must be -1..65535, got {args.http_port}")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together: give both or neither")
    if args.quota_writes_per_minute < 0:
        raise SystemExit(f"--quota-writes-per-minute must not be negative, got "
                         f"{args.quota_writes_per_minute}")
    if args.max_request_bytes < 1024:
        raise SystemExit(f"--max-request-bytes must be at least 1024, got "
                         f"{args.max_request_bytes}")
    if args.http_header_timeout <= 0 or args.http_body_timeout <= 0:
        raise SystemExit("--http-header-timeout and --http-body-timeout must be positive")
    if args.http_max_connections < 1:
        raise SystemExit(f"--http-max-connections must be at least 1, got "
                         f"{args.http_max_connections}")
    return Settings(
        host=args.host,
        port=args.port,
        store=args.store,
        strict_event_types=args.strict_event_types,
        workers=args.workers,
        grace_seconds=args.grace_seconds,
        log_level=args.log_level.upper(),
        gcs_root=args.gcs_root,
        operation_workers=args.operation_workers,
        lease_seconds=args.lease_seconds,
        http_port=args.http_port,
        cors_origins=tuple(o.strip() for o in args.cors_origins.split(",") if o.strip()),
        trust_forwarded_for=args.trust_forwarded_for,
        auth_file=args.auth_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        quota_writes_per_minute=args.quota_writes_per_minute,
        max_request_bytes=args.max_request_bytes,
        allow_fault_injection=args.allow_fault_injection,
        http_header_timeout=args.http_header_timeout,
        http_body_timeout=args.http_body_timeout,
        http_max_connections=args.http_max_connections,
        http_allowed_hosts=tuple(h.strip() for h in args.http_allowed_hosts.split(",")
                                 if h.strip()),
    )


def environ() -> Mapping[str, str]:
    return os.environ
