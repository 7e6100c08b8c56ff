"""Our .proto files must match Google's published contract, field for field.

Two subprocesses describe the contract (see describe.py): one from our generated
modules, one from the official google-cloud-retail / google-cloud-talent
packages. They cannot share a process (same full names in the default
descriptor pool). The tests below compare the two descriptions and list every
difference.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DESCRIBE = HERE / "describe.py"


def _run(*args: str, generated: bool) -> dict[str, Any]:
    env = dict(os.environ)
    if generated:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "generated"), env.get("PYTHONPATH", "")) if p
        )
    proc = subprocess.run(
        [sys.executable, str(DESCRIBE), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=90,
    )
    if proc.returncode != 0:
        pytest.fail(f"describe.py {' '.join(args)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def official() -> dict[str, Any]:
    # Only look the packages up: importing them here would register Google's
    # descriptors in this pytest process and clash with anything importing ours.
    for name in ("google.cloud.retail_v2", "google.cloud.retail_v2beta",
                 "google.cloud.retail_v2alpha", "google.cloud.talent_v4",
                 "google.cloud.talent_v4beta1"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return _run("official", generated=False)


@pytest.fixture(scope="module")
def ours(official: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    samples = tmp_path_factory.mktemp("contract") / "samples.json"
    samples.write_text(json.dumps(official["samples"]))
    return _run("ours", "--samples", str(samples), generated=True)


def _diff(path: str, want: Any, got: Any, out: list[str]) -> None:
    """Recursive structural diff; `want` is official, `got` is ours."""
    if isinstance(want, dict) and isinstance(got, dict):
        for key in sorted(set(want) | set(got)):
            if key not in got:
                out.append(f"{path}.{key}: missing in ours (official: {want[key]!r})")
            elif key not in want:
                out.append(f"{path}.{key}: not in the official contract (ours: {got[key]!r})")
            else:
                _diff(f"{path}.{key}", want[key], got[key], out)
    elif want != got:
        out.append(f"{path}: official {want!r} != ours {got!r}")


def _fail_on(problems: list[str]) -> None:
    if problems:
        pytest.fail(
            f"{len(problems)} contract difference(s):\n  " + "\n  ".join(problems), pytrace=False
        )


def test_contract_is_not_trivially_small(official: dict[str, Any]) -> None:
    owned = [n for n, v in official["messages"].items() if v is not None]
    # retail v2 (5 + 12 RPCs), talent v4 and v4beta1 (1 each), retail v2beta and
    # v2alpha (6 + 13 each)
    assert len(official["services"]) == 8
    assert sum(len(m) for m in official["services"].values()) == 19 + 2 * 19
    assert len(owned) >= 60, owned
    assert "google.cloud.retail.v2.UserEvent" in owned
    assert "google.cloud.talent.v4.ClientEvent" in owned
    assert "google.cloud.talent.v4beta1.ClientEvent" in owned


def test_every_reachable_message_and_enum_exists(
    official: dict[str, Any], ours: dict[str, Any]
) -> None:
    problems = [f"message {n} missing" for n in official["messages"] if n not in ours["messages"]]
    problems += [f"enum {n} missing" for n in official["enums"] if n not in ours["enums"]]
    problems += [
        f"message {n} reachable in ours but not in the official contract"
        for n in ours["messages"]
        if n not in official["messages"]
    ]
    problems += [
        f"enum {n} reachable in ours but not in the official contract"
        for n in ours["enums"]
        if n not in official["enums"]
    ]
    _fail_on(problems)


def test_message_fields_match(official: dict[str, Any], ours: dict[str, Any]) -> None:
    problems: list[str] = []
    for name, want in sorted(official["messages"].items()):
        if name in ours["messages"]:
            _diff(name, want, ours["messages"][name], problems)
    _fail_on(problems)


def test_enum_values_match(official: dict[str, Any], ours: dict[str, Any]) -> None:
    problems: list[str] = []
    for name, want in sorted(official["enums"].items()):
        if name in ours["enums"]:
            _diff(name, want, ours["enums"][name], problems)
    _fail_on(problems)


def test_service_methods_match(official: dict[str, Any], ours: dict[str, Any]) -> None:
    problems: list[str] = []
    for service, methods in sorted(official["services"].items()):
        got = ours["services"].get(service)
        if got is None:
            problems.append(f"service {service} missing")
            continue
        for name in sorted(set(methods) | set(got)):
            if name not in got:
                problems.append(f"{service}.{name}: missing in ours")
                continue
            if name not in methods:
                problems.append(f"{service}.{name}: not in the official contract")
                continue
            want = {
                k: methods[name][k]
                for k in ("input", "output", "client_streaming", "server_streaming")
            }
            have = {k: got[name][k] for k in want}
            _diff(f"{service}.{name}", want, have, problems)
    _fail_on(problems)


def test_http_rules_match(official: dict[str, Any], ours: dict[str, Any]) -> None:
    problems: list[str] = []
    for service, methods in sorted(official["services"].items()):
        for name, want in sorted(methods.items()):
            got = ours["services"].get(service, {}).get(name)
            if got is None:
                continue  # reported by test_service_methods_match
            if got["http"] != want["http"]:
                problems.append(
                    f"{service}.{name} google.api.http:\n"
                    f"      official {want['http']}\n      ours     {got['http']}"
                )
    _fail_on(problems)


def test_long_running_operation_types_match(official: dict[str, Any], ours: dict[str, Any]) -> None:
    problems: list[str] = []
    for service, methods in sorted(official["services"].items()):
        for name, want in sorted(methods.items()):
            got = ours["services"].get(service, {}).get(name)
            if got is not None and got["lro"] != want["lro"]:
                problems.append(
                    f"{service}.{name} operation_info: official {want['lro']} != ours {got['lro']}"
                )
    _fail_on(problems)


def test_fully_populated_messages_round_trip(ours: dict[str, Any]) -> None:
    """Every official message with every field set decodes in ours without loss,
    in binary and in JSON."""
    problems = [
        f"{name}: {issue}"
        for name, issues in sorted(ours["sample_problems"].items())
        for issue in issues
    ]
    _fail_on(problems)


# What server.retail.surfaces handles by name; any other difference between v2 and
# v2beta/v2alpha would be converted by wire bytes unseen, so it fails here first.
EXPORT_DIFFERENCES = [
    *(f"message {m}: only in {{v}}" for m in (
        "BigQueryOutputResult", "ExportErrorsConfig", "ExportMetadata", "ExportProductsRequest",
        "ExportProductsResponse", "ExportUserEventsRequest", "ExportUserEventsResponse",
        "GcsOutputResult", "OutputConfig", "OutputConfig.BigQueryDestination",
        "OutputConfig.GcsDestination", "OutputResult")),
    "rpc ProductService.ExportProducts: only in {v}",
    "rpc UserEventService.ExportUserEvents: only in {v}",
]
V2ALPHA_DIFFERENCES = [
    "enum LocalInventory.Availability: only in v2alpha",
    "field DeleteProductRequest.force = 4: only in v2alpha",
    "field ImportMetadata.transformed_user_events_metadata = 7: only in v2alpha",
    "field ImportProductsRequest.skip_default_branch_protection = 8: only in v2alpha",
    "field ListProductsRequest.require_total_size = 6: only in v2alpha",
    "field ListProductsResponse.total_size = 3: only in v2alpha",
    "field LocalInventory.availability = 5: only in v2alpha",
    "message TransformedUserEventsMetadata: only in v2alpha",
]


@pytest.mark.parametrize("version", ["v2beta", "v2alpha"])
def test_versions_differ_from_v2_only_where_the_surfaces_say(official: dict[str, Any],
                                                             version: str) -> None:
    from retail_versions import differences

    expected = [line.format(v=version) for line in EXPORT_DIFFERENCES]
    if version == "v2alpha":
        expected += V2ALPHA_DIFFERENCES
    assert differences(official, version) == sorted(expected)
