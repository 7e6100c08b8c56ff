"""TLS on both ports with a certificate made here: the official gRPC client through
`client_options` with real channel credentials (and its API key sent by the
credentials plugin), the REST client over https verifying against the test CA."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from google.api_core import exceptions
from google.cloud import retail_v2
from google.cloud.retail_v2.services.user_event_service.transports import (
    UserEventServiceGrpcTransport,
    UserEventServiceRestTransport,
)

from .support import (
    CLI_DEADLINE,
    RPC_DEADLINE,
    ServerProcess,
    count_events,
    running_server,
    sqlite_url,
)
from .trust import Certificates, make_certificates, scrape, write_keys

KEY = "tls-writer-key-5e0c81f2"
READER = "tls-reader-key-93b1d0aa"
CATALOG = "projects/shop/locations/global/catalogs/tls"
EVENT = {"event_type": "home-page-view", "visitor_id": "tls-1"}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory,
               certificates: Certificates) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("tls")
    keys = write_keys(workdir / "keys.json", {KEY: ("writer", ["shop"]),
                                                  READER: ("reader", ["shop"])})
    with running_server(workdir, sqlite_url(workdir / "events.db"),
                        "--tls-cert", str(certificates.cert), "--tls-key", str(certificates.key),
                        "--auth-file", str(keys)) as server:
        yield server


def test_grpc_client_over_tls_with_the_key_in_its_credentials(
        tls_server: ServerProcess, certificates: Certificates) -> None:
    assert "TLS" in tls_server.log_text()
    channel_credentials = grpc.ssl_channel_credentials(
        root_certificates=certificates.ca.read_bytes())
    client = retail_v2.UserEventServiceClient(
        client_options={"api_endpoint": tls_server.address, "api_key": KEY},
        transport=functools.partial(UserEventServiceGrpcTransport,
                                    ssl_channel_credentials=channel_credentials))
    with client:
        written = client.write_user_event(request={"parent": CATALOG, "user_event": EVENT},
                                          timeout=RPC_DEADLINE)
    assert written.visitor_id == "tls-1"
    assert count_events(tls_server.store, CATALOG, tls_server.workdir,
                        'visitorId = "tls-1"') == 1


def test_an_untrusted_or_plaintext_client_gets_nowhere(tls_server: ServerProcess) -> None:
    untrusted = retail_v2.UserEventServiceClient(
        client_options={"api_endpoint": tls_server.address, "api_key": KEY},
        transport=functools.partial(UserEventServiceGrpcTransport,
                                    ssl_channel_credentials=grpc.ssl_channel_credentials()))
    with untrusted, pytest.raises(exceptions.ServiceUnavailable):
        untrusted.write_user_event(request={"parent": CATALOG, "user_event": EVENT}, timeout=3)
    # Plain http:// to the port that speaks TLS was an empty reply; it is told why,
    # and what it carried is not run.
    before = count_events(tls_server.store, CATALOG, tls_server.workdir)
    with requests.Session() as session:
        plain = session.post(f"http://{tls_server.http_address}/v2/{CATALOG}/userEvents:write",
                             json={"eventType": "home-page-view", "visitorId": "plain"},
                             headers={"x-goog-api-key": KEY}, timeout=3)
    assert plain.status_code == 400, plain.text
    assert "with https://, not http://" in plain.json()["error"]["message"], plain.text
    assert count_events(tls_server.store, CATALOG, tls_server.workdir) == before


def test_rest_client_over_https(tls_server: ServerProcess, certificates: Certificates,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.ca))
    client = retail_v2.UserEventServiceClient(
        client_options={"api_endpoint": tls_server.http_address, "api_key": KEY},
        transport=functools.partial(UserEventServiceRestTransport, url_scheme="https"))
    with client:
        written = client.write_user_event(
            request={"parent": CATALOG, "user_event": {**EVENT, "visitor_id": "tls-rest"}},
            timeout=RPC_DEADLINE)
    assert written.visitor_id == "tls-rest"
    samples = scrape(tls_server, "https", verify=str(certificates.ca))
    assert any(k.startswith("footfall_requests_total{") and 'transport="http"' in k
               for k in samples)


def footfall_reading(server: ServerProcess, *flags: str) -> subprocess.CompletedProcess[str]:
    """`footfall events list --server` as a user runs it, the reader key in FOOTFALL_KEY."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    return subprocess.run([sys.executable, "-m", "server", "events", "list", "--parent", CATALOG,
                           "--filter", 'visitorId = "tls-cli"', "--server", server.address,
                           *flags], cwd=server.workdir, env={**env, "FOOTFALL_KEY": READER},
                          capture_output=True, text=True, timeout=CLI_DEADLINE)


def test_the_cli_reads_over_tls_with_the_authority_it_is_given(
        tls_server: ServerProcess, certificates: Certificates) -> None:
    client = retail_v2.UserEventServiceClient(
        client_options={"api_endpoint": tls_server.address, "api_key": KEY},
        transport=functools.partial(UserEventServiceGrpcTransport,
                                    ssl_channel_credentials=grpc.ssl_channel_credentials(
                                        root_certificates=certificates.ca.read_bytes())))
    with client:
        client.write_user_event(request={"parent": CATALOG, "user_event": {
            **EVENT, "visitor_id": "tls-cli"}}, timeout=RPC_DEADLINE)
    trusted = footfall_reading(tls_server, "--tls-ca", str(certificates.ca))
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.split()[1:3] == ["home-page-view", "visitor=tls-cli"]
    for flags, said in (
            # the system's authorities do not know the test CA
            (["--tls"], "its TLS certificate is not trusted: --tls-ca FILE names the authority "
                        "(PEM) that signed it"),
            ([], "it closed the connection: if it serves TLS (--tls-cert), add --tls-ca FILE, "
                 "or --tls if a public authority signed its certificate")):
        refused = footfall_reading(tls_server, *flags)
        assert refused.returncode == 1, refused.stderr
        assert refused.stderr.startswith(
            f"footfall: cannot reach a server at {tls_server.address}: {said} (UNAVAILABLE: "), \
            refused.stderr
        assert len(refused.stderr.splitlines()) == 1 and READER not in refused.stderr


def test_the_cli_at_the_https_port_says_it_takes_the_grpc_one(
        tls_server: ServerProcess, certificates: Certificates) -> None:
    # It said "no connection could be made", where over plaintext it names the port.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    out = subprocess.run([sys.executable, "-m", "server", "catalogs", "--server",
                          tls_server.http_address, "--tls-ca", str(certificates.ca)],
                         cwd=tls_server.workdir, env={**env, "FOOTFALL_KEY": READER},
                         capture_output=True, text=True, timeout=CLI_DEADLINE)
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith(
        f"footfall: cannot reach a server at {tls_server.http_address}: it answers HTTP/1.1, "
        "not gRPC: --server takes the gRPC port "), out.stderr


def test_insights_over_tls_with_the_authority_it_is_given(
        tls_server: ServerProcess, certificates: Certificates) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}

    def totals(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "server", "insights", "totals", "--parent",
                               CATALOG, "--server", tls_server.address, "--json", *flags],
                              cwd=tls_server.workdir, env={**env, "FOOTFALL_KEY": READER},
                              capture_output=True, text=True, timeout=CLI_DEADLINE)

    trusted = totals("--tls-ca", str(certificates.ca))
    assert trusted.returncode == 0, trusted.stderr
    assert isinstance(json.loads(trusted.stdout), dict)
    plaintext = totals()
    assert plaintext.returncode == 1
    assert "it closed the connection: if it serves TLS" in plaintext.stderr


@pytest.mark.parametrize("case", ["not-pem", "swapped", "another-key", "missing", "encrypted"])
def test_a_certificate_and_key_that_make_no_identity_stop_the_start_saying_why(
        tmp_path_factory: pytest.TempPathFactory, certificates: Certificates, case: str) -> None:
    """grpc said only that it could not listen on the port (exit 1, with three lines of
    its own): a configuration mistake, said as one (exit 2) naming the files."""
    folder = tmp_path_factory.mktemp("bad-tls")
    cert, key = certificates.cert, certificates.key
    if case == "not-pem":
        cert = folder / "cert.txt"
        cert.write_text("not a certificate\n")
    elif case == "swapped":
        cert, key = key, cert
    elif case == "another-key":
        key = make_certificates(folder).key
    elif case == "encrypted":  # (OpenSSL asked for its pass phrase, or failed: Errno 22)
        key = folder / "encrypted.pem"
        key.write_bytes(serialization.load_pem_private_key(
            certificates.key.read_bytes(), None).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"a pass phrase")))
    else:
        cert = folder / "gone.pem"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    done = subprocess.run([sys.executable, "-m", "server", "serve", "--port", "0",
                           "--http-port", "0", "--store", "memory://", "--tls-cert", str(cert),
                           "--tls-key", str(key)], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    said = {"not-pem": "make no TLS identity: each must be PEM",
            "swapped": "make no TLS identity: each must be PEM",
            "another-key": "make no TLS identity: the key is not the certificate's",
            "encrypted": "make no TLS identity: the key is encrypted (it has a pass phrase)",
            "missing": "cannot read the TLS certificate or key"}[case]
    assert said in done.stderr
    assert "cannot listen" not in done.stderr


def test_an_expired_certificate_is_said_by_the_server_and_by_the_cli(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The server started on it saying only `serving ... TLS`, and the CLI, given the
    authority that signed it, said `its TLS certificate is not trusted: --tls-ca FILE
    names the authority`: nothing said that the certificate had expired."""
    workdir = tmp_path_factory.mktemp("expired")
    expired = make_certificates(workdir, expired=True)
    with running_server(workdir, "memory://", "--tls-cert", str(expired.cert),
                        "--tls-key", str(expired.key)) as server:
        assert f"--tls-cert {expired.cert} expired on " in server.log_text()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
        out = subprocess.run([sys.executable, "-m", "server", "catalogs", "--server",
                              server.address, "--tls-ca", str(expired.ca)], cwd=workdir,
                             env=env, capture_output=True, text=True, timeout=CLI_DEADLINE)
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith(
        f"footfall: cannot reach a server at {server.address}: its TLS certificate is out of "
        "its dates (expired, or not valid yet): "), out.stderr
