"""What the retail v2beta and v2alpha contracts add to or change from v2, read from
the official packages' description (describe.py official).

    python tests/contract/retail_versions.py        # prints the differences

server.retail.surfaces converts the versions to v2 by wire bytes, which is right
only where the numbers agree; every difference listed here must be one it
handles by name (test_descriptors.py holds the list).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

RETAIL = "google.cloud.retail."
VERSIONS = ("v2beta", "v2alpha")


def _relative(name: str | None, version: str) -> str | None:
    """A type name with its retail version taken out (v2 and `version` alike)."""
    if name is None:
        return None
    for prefix in (f"{RETAIL}{version}.", f"{RETAIL}v2."):
        if name.startswith(prefix):
            return "retail." + name[len(prefix):]
    return name


def _shape(field: dict[str, Any], version: str) -> tuple[Any, ...]:
    return (field["type"], field["repeated"], _relative(field.get("type_name"), version),
            field.get("oneof"))


def differences(official: dict[str, Any], version: str) -> list[str]:
    """Every message, field, enum value and RPC of `version` that v2 lacks or types
    otherwise (and every field of v2 the version lacks), one line each, sorted."""
    out: list[str] = []
    messages = official["messages"]
    for name, described in messages.items():
        if described is None or not name.startswith(f"{RETAIL}{version}."):
            continue
        short = name[len(f"{RETAIL}{version}."):]
        base = messages.get(f"{RETAIL}v2.{short}")
        if base is None:
            out.append(f"message {short}: only in {version}")
            continue
        by_number = {f["number"]: (n, f) for n, f in base["fields"].items()}
        mine = {f["number"]: (n, f) for n, f in described["fields"].items()}
        for number, (field, spec) in mine.items():
            if number not in by_number:
                out.append(f"field {short}.{field} = {number}: only in {version}")
            elif by_number[number][0] != field or \
                    _shape(by_number[number][1], version) != _shape(spec, version):
                out.append(f"field {short}.{field} = {number}: differs from v2")
        out.extend(f"field {short}.{field} = {number}: only in v2"
                   for number, (field, _) in by_number.items() if number not in mine)
    for name, described in official["enums"].items():
        if described is None or not name.startswith(f"{RETAIL}{version}."):
            continue
        short = name[len(f"{RETAIL}{version}."):]
        base = official["enums"].get(f"{RETAIL}v2.{short}")
        if base is None:
            out.append(f"enum {short}: only in {version}")
        elif base != described:
            out.append(f"enum {short}: values differ from v2")
    for service in ("UserEventService", "ProductService"):
        mine = official["services"][f"{RETAIL}{version}.{service}"]
        base = official["services"][f"{RETAIL}v2.{service}"]
        out.extend(f"rpc {service}.{rpc}: only in {version}" for rpc in mine if rpc not in base)
        out.extend(f"rpc {service}.{rpc}: only in v2" for rpc in base if rpc not in mine)
    return sorted(out)


def main() -> int:
    describe = pathlib.Path(__file__).with_name("describe.py")
    text = subprocess.run([sys.executable, str(describe), "official"], check=True,
                          capture_output=True, text=True).stdout
    official = json.loads(text)
    for version in VERSIONS:
        print(f"{version} against v2:")
        for line in differences(official, version):
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
