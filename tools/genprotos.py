"""Regenerate generated/ from protos/ (run by `make protos`).

protoc needs every imported file under the name it is registered with. The
googleapis-common-protos wheel ships google/longrunning/operations.proto as
operations_proto.proto, so we stage a copy under the registered name in a
temporary include directory.
"""

from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile

import google.api  # for the location of googleapis-common-protos
import grpc_tools
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "generated"


def main() -> int:
    common_root = pathlib.Path(google.api.__path__[0]).parent.parent
    wkt_root = pathlib.Path(grpc_tools.__path__[0]) / "_proto"
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    if not sources:
        print("no .proto files under protos/", file=sys.stderr)
        return 1
    shutil.rmtree(OUT / "footfall", ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        lro = pathlib.Path(staging, "google", "longrunning")
        lro.mkdir(parents=True)
        shutil.copy(common_root / "google/longrunning/operations_proto.proto",
                    lro / "operations.proto")
        args = [
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{staging}",
            f"-I{common_root}",
            f"-I{wkt_root}",
            f"--python_out={OUT}",
            f"--pyi_out={OUT}",
            f"--grpc_python_out={OUT}",
            *sources,
        ]
        code = protoc.main(args)
    if code != 0:
        return code
    # protoc writes modules but not the packages that hold them.
    for folder in (OUT / "footfall").rglob("*"):
        if folder.is_dir():
            (folder / "__init__.py").touch()
    (OUT / "footfall" / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
