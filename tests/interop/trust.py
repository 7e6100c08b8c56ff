"""Helpers for the trust tests: API key files, a throwaway certificate
authority, the Prometheus page, raw HTTP. Imports nothing of ours."""

from __future__ import annotations

import collections
import datetime
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.api_core import exceptions
from google.rpc import error_details_pb2
from prometheus_client.parser import text_string_to_metric_families

from .support import RPC_DEADLINE, ServerProcess

API_KEY = "x-goog-api-key"


def write_keys(path: Path, keys: dict[str, tuple[str, list[str]]]) -> Path:
    """An auth file: key -> (role, projects)."""
    path.write_text(json.dumps({"keys": {
        key: {"role": role, "projects": projects, "name": f"{role}-{i}"}
        for i, (key, (role, projects)) in enumerate(keys.items())}}), encoding="utf-8")
    return path


def with_key(key: str) -> list[tuple[str, str]]:
    """The `metadata=` argument of a GAPIC call that carries `key`."""
    return [(API_KEY, key)]


class _CallDetails(collections.namedtuple("_CallDetails", (
        "method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
        grpc.ClientCallDetails):
    pass


class KeyInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Adds the key to every unary call on a plaintext channel, including the
    GetOperation polls a client makes for `op.result()`, which `metadata=` never
    reaches (and grpc sends call credentials only over TLS)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def intercept_unary_unary(self, continuation: Callable[..., Any],
                              details: grpc.ClientCallDetails, request: Any) -> Any:
        metadata = [*(details.metadata or ()), (API_KEY, self.key)]
        return continuation(_CallDetails(details.method, details.timeout, metadata,
                                         details.credentials, details.wait_for_ready,
                                         getattr(details, "compression", None)), request)


class AsyncKeyInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """KeyInterceptor for `grpc.aio.insecure_channel(address, interceptors=[...])`."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def intercept_unary_unary(self, continuation: Callable[..., Any],
                                    details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), (API_KEY, self.key))
        return await continuation(details._replace(metadata=metadata), request)


# -- TLS -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca: Path  # PEM of the authority clients trust
    cert: Path  # the server's certificate (localhost, 127.0.0.1)
    key: Path  # its private key


def make_certificates(folder: Path, expired: bool = False) -> Certificates:
    """A fresh CA and a server certificate it signed, valid for a day (`expired`: the
    server's ended a minute ago)."""
    now = datetime.datetime.now(datetime.UTC)
    until = now - datetime.timedelta(minutes=1) if expired else now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Footfall test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(until)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    found = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    found.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return found


# -- metrics ---------------------------------------------------------------------------


def scrape(server: ServerProcess, scheme: str = "http", **kwargs: Any) -> dict[str, float]:
    """Every sample of /metrics: `name{label="value",...}` (labels sorted) -> value."""
    reply = requests.get(f"{scheme}://{server.http_address}/metrics", timeout=RPC_DEADLINE,
                         **kwargs)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def calls(samples: dict[str, float], rpc: str, code: str, transport: str = "grpc") -> float:
    """footfall_requests_total of one RPC ("google.cloud.retail.v2.UserEventService/
    WriteUserEvent") with one code on one transport (0 when never counted)."""
    service, _, method = rpc.rpartition("/")
    key = (f'footfall_requests_total{{code="{code}",method="{method}",service="{service}",'
           f'transport="{transport}"}}')
    return samples.get(key, 0.0)


# -- errors ----------------------------------------------------------------------------


def retry_delay(error: exceptions.GoogleAPICallError) -> float:
    """Seconds of the one google.rpc.RetryInfo detail of a gRPC error."""
    found = [d for d in error.details if isinstance(d, error_details_pb2.RetryInfo)]
    assert len(found) == 1, error.details
    return float(found[0].retry_delay.ToNanoseconds() / 1e9)
