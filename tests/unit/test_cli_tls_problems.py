"""What the CLI says when a TLS server's certificate is out of its dates or names
another host: what to change, not "not trusted" (a --tls-ca that already names the
right authority) or "no connection could be made"."""

from __future__ import annotations

import datetime
import ipaddress
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.__main__ import main

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def authority() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("test CA")).issuer_name(_name("test CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _server_identity(authority: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
                     names: list[x509.GeneralName], not_before: datetime.datetime,
                     not_after: datetime.datetime) -> tuple[bytes, bytes]:
    ca_key, ca = authority
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("server")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()), _pem(cert))


def _serve(identity: tuple[bytes, bytes]) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([identity]))
    server.start()
    return server, port


LOCAL = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


@pytest.mark.parametrize(("names", "not_before", "not_after", "said"), [
    (LOCAL, NOW - 30 * DAY, NOW - DAY,
     "its TLS certificate is out of its dates (expired, or not valid yet): the server needs "
     "a new one (--tls-cert, then restart it), or this machine's clock is wrong"),
    (LOCAL, NOW + DAY, NOW + 30 * DAY,
     "its TLS certificate is out of its dates (expired, or not valid yet): the server needs "
     "a new one (--tls-cert, then restart it), or this machine's clock is wrong"),
    ([x509.DNSName("shop.internal")], NOW - DAY, NOW + DAY,
     "its TLS certificate does not name 127.0.0.1: dial a name the certificate lists (its "
     "subjectAltName), or give the server a certificate that names this one"),
], ids=["expired", "not-yet-valid", "another-host"])
def test_a_certificate_the_cli_refuses_is_said_with_what_to_change(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        authority: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
        names: list[x509.GeneralName], not_before: datetime.datetime,
        not_after: datetime.datetime, said: str) -> None:
    """Before, an expired certificate was `its TLS certificate is not trusted: --tls-ca
    FILE names the authority`, though the --tls-ca given named it, and one naming
    another host `no connection could be made`."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(_pem(authority[1]))
    server, port = _serve(_server_identity(authority, names, not_before, not_after))
    try:
        code = main(["catalogs", "--server", f"127.0.0.1:{port}", "--tls-ca", str(ca)])
    finally:
        server.stop(None)
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith(f"footfall: cannot reach a server at 127.0.0.1:{port}: {said} ("), err


@pytest.mark.parametrize("holds", ["key", "request", "json"])
def test_an_authority_file_that_holds_no_certificate_is_a_mistake_in_the_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], holds: str) -> None:
    """A key.pem given for ca.pem (they sit side by side) had grpc write eight lines of
    its own (`Could not load any root certificate`), then `cannot reach a server ...:
    no connection could be made` (exit 1), as if the server were at fault."""
    key = ec.generate_private_key(ec.SECP256R1())
    text = {
        "key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()),
        "request": x509.CertificateSigningRequestBuilder().subject_name(_name("localhost"))
        .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM),
        "json": b'{"keys": {}}\n'}[holds]
    ca = tmp_path / "ca.pem"
    ca.write_bytes(text)
    code = main(["catalogs", "--server", "127.0.0.1:1", "--tls-ca", str(ca)])
    assert (code, capsys.readouterr().err) == (2, (
        f"footfall: --tls-ca: {ca} holds no PEM certificate (-----BEGIN CERTIFICATE-----): "
        "give the certificate of the authority that signed the server's (ca.pem), not a "
        "private key or a signing request\n"))
