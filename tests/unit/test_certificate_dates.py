"""A --tls-cert out of its dates, or about to be, is said at start."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.certificate_dates import dates, warn_if_out_of_dates

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def _certificate(folder: Path, not_before: datetime.datetime,
                 not_after: datetime.datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    path = folder / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.mark.parametrize(("not_before", "not_after", "said"), [
    (NOW - 90 * DAY, NOW - DAY,
     "--tls-cert {} expired on 2026-12-06T12:00:00Z: every client that checks it refuses "
     "the connection (certificate has expired); give the server a new one and restart it"),
    (NOW + DAY, NOW + 90 * DAY,
     "--tls-cert {} is not valid until 2026-12-08T12:00:00Z: every client that checks it "
     "refuses the connection until then (certificate is not yet valid); is this machine's "
     "clock right?"),
    (NOW - 80 * DAY, NOW + 3 * DAY,
     "--tls-cert {} expires on 2026-12-10T12:00:00Z, in 3 days: renew it and restart the "
     "server (it reads the certificate only at start)"),
    (NOW - 80 * DAY, NOW + datetime.timedelta(hours=5),
     "--tls-cert {} expires on 2026-12-07T17:00:00Z, in 5 hours: renew it and restart the "
     "server (it reads the certificate only at start)"),
    (NOW - 80 * DAY, NOW + datetime.timedelta(minutes=40),
     "--tls-cert {} expires on 2026-12-07T12:40:00Z, in 40 minutes: renew it and restart "
     "the server (it reads the certificate only at start)"),
    (NOW - DAY, NOW + 60 * DAY, None),
], ids=["expired", "not-yet-valid", "in-days", "in-hours", "in-minutes", "fine"])
def test_a_certificate_out_of_its_dates_is_warned_of(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, not_before: datetime.datetime,
        not_after: datetime.datetime, said: str | None) -> None:
    """The server started on an expired certificate and said `Footfall serving ...
    TLS`; every client then failed its handshake (`certificate has expired`), and
    nothing in the server's log said why."""
    caplog.set_level(logging.WARNING)
    path = _certificate(tmp_path, not_before, not_after)
    warn_if_out_of_dates(path, NOW)
    assert [r.getMessage() for r in caplog.records] == ([said.format(path)] if said else [])


def test_what_is_no_certificate_is_left_to_the_checks_that_name_it(tmp_path: Path) -> None:
    path = tmp_path / "cert.pem"
    path.write_text("not a certificate\n")
    assert dates(str(path)) is None
    assert dates(str(tmp_path / "missing.pem")) is None
