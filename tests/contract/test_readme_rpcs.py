"""README's RPC table names every RPC of the official retail v2, v2beta and v2alpha
packages and talent v4 and v4beta1, each under the versions that have it, and says
whether it is served or UNIMPLEMENTED; what it calls served is what our contracts
define. (Talent's other services were not in it: a job site's TenantService call was
answered "not served: ... the README's RPC table lists every RPC", and it did not.)

The official RPC names are read from the packages' gRPC transports as text: nothing
of Google's is imported into this process (see test_descriptors.py).
"""

from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# the API of each version, as the official packages and our protos/ name it
APIS = {"v2": "retail", "v2beta": "retail", "v2alpha": "retail", "v4": "talent",
        "v4beta1": "talent"}
VERSIONS = tuple(APIS)
_RPC = re.compile(r'"/google\.cloud\.(?:retail|talent)\.(v\d\w*)\.(\w+)/(\w+)"')


def official_rpcs() -> set[tuple[str, str, str]]:
    """(version, service, rpc) of every RPC of the installed official packages."""
    found: set[tuple[str, str, str]] = set()
    for version in VERSIONS:
        package = f"google.cloud.{APIS[version]}_{version}"
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            pytest.skip(f"{package} is not installed")
        services = pathlib.Path(next(iter(spec.submodule_search_locations))) / "services"
        for transport in sorted(services.glob("*/transports/grpc.py")):
            found.update(m.groups() for m in _RPC.finditer(transport.read_text()))
    return found


def readme_rows() -> dict[tuple[str, str, str], str]:
    """(version, service, rpc) -> status, from the README's "## RPCs" table."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## RPCs\n"):text.index("## Validation\n")]
    rows: dict[tuple[str, str, str], str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([\w.]+)`", cells[0])
        service, _, first = names[0].rpartition(".")
        service = service.rpartition(".")[2]  # (`talent.v4.EventService`: its version)
        versions = [v.strip() for v in cells[1].split(",") if v.strip() in VERSIONS]
        status = "UNIMPLEMENTED" if cells[2].startswith("UNIMPLEMENTED") else "served"
        for rpc in (first, *names[1:]):
            for version in versions:
                key = (version, service, rpc)
                assert key not in rows, f"README lists {key} twice"
                rows[key] = status
    return rows


def test_the_rpc_table_lists_every_official_rpc_once() -> None:
    official = official_rpcs()
    listed = readme_rows()
    assert len(official) > 190  # every service of three retail and two talent versions
    assert sorted(official - set(listed)) == []
    assert sorted(set(listed) - official) == []


def test_served_rpcs_are_those_our_contracts_define() -> None:
    ours: set[tuple[str, str, str]] = set()
    for version in VERSIONS:
        for proto in (ROOT / "protos/footfall" / APIS[version] / version).glob(
                "*_service.proto"):
            text = proto.read_text()
            service = re.search(r"^service (\w+) \{", text, re.M)
            assert service is not None, proto
            ours.update((version, service[1], rpc) for rpc in re.findall(r"^  rpc (\w+)\(",
                                                                          text, re.M))
    served = {key for key, status in readme_rows().items() if status == "served"}
    assert served == ours


def test_the_rpc_table_names_footfalls_own_services() -> None:
    """Footfall's own services (protos/footfall/*/ beside retail and talent) are rows of
    the table too: InsightsService was served and reflected, and missing from it."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## RPCs\n"):text.index("## Validation\n")]
    rows = set(re.findall(r"^\| `(footfall\.[\w.]+)`", section, re.M))
    ours: set[str] = set()
    for proto in sorted((ROOT / "protos/footfall").glob("*/*/*.proto")):
        if proto.parts[-3] in APIS.values():
            continue
        source = proto.read_text()
        package = re.search(r"^package ([\w.]+);", source, re.M)
        assert package is not None, proto
        ours.update(f"{package[1]}.{name}" for name in re.findall(r"^service (\w+) \{",
                                                                   source, re.M))
    assert ours >= {"footfall.console.v1.ConsoleService"}, ours  # the glob still finds them
    assert sorted(ours - rows) == []
