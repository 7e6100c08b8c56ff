"""The dates of the --tls-cert served: a certificate out of them is refused by every
client that checks it, while the server starts and says it serves over TLS."""

from __future__ import annotations

import datetime
import logging
import ssl
from typing import Any

log = logging.getLogger("footfall")

SOON = datetime.timedelta(days=14)  # a renewal missed (certbot renews at 30 days left)


def dates(path: str) -> tuple[datetime.datetime, datetime.datetime] | None:
    """(not before, not after) of the first certificate of the PEM file at `path` (the
    server's own, before its chain), or None when they cannot be read."""
    decode: Any = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:  # (CPython's; another Python serves without the check)
        return None
    try:
        fields = decode(path)
        return (_time(fields["notBefore"]), _time(fields["notAfter"]))
    except (ssl.SSLError, OSError, KeyError, ValueError):
        return None


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(text), datetime.UTC)


def warn_if_out_of_dates(path: str, now: datetime.datetime) -> None:
    """A certificate expired, not valid yet, or expiring within SOON is said at start
    (served all the same, as a key open to others is): before, the server said it
    served over TLS, and every client failed its handshake (`certificate has
    expired`) with nothing in the server's log."""
    found = dates(path)
    if found is None:
        return
    not_before, not_after = found
    if now >= not_after:
        log.warning("--tls-cert %s expired on %s: every client that checks it refuses the "
                    "connection (certificate has expired); give the server a new one and "
                    "restart it", path, _day(not_after))
    elif now < not_before:
        log.warning("--tls-cert %s is not valid until %s: every client that checks it "
                    "refuses the connection until then (certificate is not yet valid); is "
                    "this machine's clock right?", path, _day(not_before))
    elif not_after - now < SOON:
        log.warning("--tls-cert %s expires on %s, in %s: renew it and restart the server "
                    "(it reads the certificate only at start)", path, _day(not_after),
                    _left(not_after - now))


def _day(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _left(span: datetime.timedelta) -> str:
    days = span.days
    if days >= 1:
        return f"{days} day{'s' if days > 1 else ''}"
    hours, minutes = span.seconds // 3600, span.seconds // 60
    if not hours:  # (under an hour left: "in 0 hours" said it had none)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{hours} hour{'s' if hours != 1 else ''}"
