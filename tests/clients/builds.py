"""Generate the C++, Go and Ruby clients from protos/ with Debian's toolchains, and build them:
in each language `client` (Google's contracts) and `console` (Footfall's own).

Each build takes the services the clients call plus every file those import, as protoc
itself lists them (--include_imports), so a new import in protos/ needs no change here.
Nothing of ours is imported: only protoc reads the .proto files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google.api  # googleapis-common-protos: the google/api, rpc, type and longrunning protos
from google.protobuf import descriptor_pb2

HERE = Path(__file__).resolve().parent
PROTOS = HERE.parent.parent / "protos"
# The services the clients call and the error detail they read.
SERVICES = ("footfall/retail/v2/user_event_service.proto",
            "footfall/talent/v4/event_service.proto",
            "google/longrunning/operations.proto",
            "footfall/console/v1/console.proto",
            "footfall/insights/v1/insights.proto")
PROGRAMS = ("client", "console")  # each a source file here: client.go, console.rb...
Programs = dict[str, list[str]]  # the command that runs each built program, by name
ROOTS = (*SERVICES, "google/rpc/error_details.proto")
GO_SYSTEM_PATH = Path("/usr/share/gocode")  # where Debian's golang-*-dev put their sources
# Debian's genproto has no go_package matching the one googleapis-common-protos declares.
GO_LONGRUNNING = ("Mgoogle/longrunning/operations.proto="
                  "google.golang.org/genproto/googleapis/longrunning;longrunning")
BUILD_DEADLINE = 300.0  # seconds for one build step; a cold C++ compile is the longest


class Unavailable(Exception):
    """A toolchain this machine lacks: the test skips (or, in CI, fails) saying which."""


def _require(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        raise Unavailable(f"{', '.join(missing)} not installed")


def _run(command: Sequence[str | Path], cwd: Path | None = None,
         env: dict[str, str] | None = None) -> str:
    """Runs one build step; its stdout, or an error carrying all it said."""
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=BUILD_DEADLINE)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({done.returncode}):\n"
                           f"{done.stdout}{done.stderr}")
    return done.stdout


@dataclass(frozen=True)
class Protos:
    """protoc's include path and the files the clients need (none of google/protobuf:
    every protobuf runtime has those)."""

    includes: tuple[str, ...]
    files: tuple[str, ...]

    @property
    def ours(self) -> tuple[str, ...]:
        return tuple(f for f in self.files if f.startswith("footfall/"))

    @classmethod
    def stage(cls, staging: Path) -> Protos:
        """googleapis-common-protos ships google/longrunning/operations.proto as
        operations_proto.proto: it is copied under its registered name into `staging`."""
        _require("protoc")
        common = Path(google.api.__path__[0]).parent.parent
        longrunning = staging / "google" / "longrunning"
        longrunning.mkdir(parents=True)
        shutil.copy(common / "google/longrunning/operations_proto.proto",
                    longrunning / "operations.proto")
        # Debian's google/protobuf first: the ones its C++ runtime was built from.
        includes = ("-I/usr/include", f"-I{PROTOS}", f"-I{staging}", f"-I{common}")
        listed = staging / "imports.pb"
        _run(["protoc", *includes, "--include_imports", f"--descriptor_set_out={listed}",
              *ROOTS])
        found = descriptor_pb2.FileDescriptorSet.FromString(listed.read_bytes())
        return cls(includes, tuple(f.name for f in found.file
                                   if not f.name.startswith("google/protobuf/")))


def compile_cpp(out: Path, programs: Sequence[str], optimize: str = "-O0") -> dict[str, Path]:
    """Every .cc under `out` compiled (`optimize`), and each of `programs` (its main in
    `out`/<program>.cc) linked with the others that are no program's and with Debian's
    grpc++ and protobuf into the executable `out`/<program>."""
    _require("g++", "pkg-config")
    if subprocess.run(["pkg-config", "--exists", "grpc++", "protobuf"]).returncode != 0:
        raise Unavailable("pkg-config finds no grpc++ (libgrpc++-dev)")
    cflags = _run(["pkg-config", "--cflags", "grpc++", "protobuf"]).split()
    libs = _run(["pkg-config", "--libs", "grpc++", "protobuf"]).split()

    def compile_one(source: Path) -> Path:
        _run(["g++", "-std=c++17", optimize, "-c", f"-I{out}", *cflags, source,
              "-o", source.with_suffix(".o")])
        return source.with_suffix(".o")

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        objects = list(pool.map(compile_one, sorted(out.rglob("*.cc"))))
    mains = {out / f"{program}.o" for program in programs}
    shared = [o for o in objects if o not in mains]
    for program in programs:
        _run(["g++", "-o", out / program, out / f"{program}.o", *shared, *libs, "-pthread"])
    return {program: out / program for program in programs}


def build_cpp(protos: Protos, out: Path) -> Programs:
    """Debian ships no C++ for the googleapis protos, so google/* is generated too."""
    _require("protoc", "grpc_cpp_plugin", "g++", "pkg-config")
    _run(["protoc", *protos.includes, f"--cpp_out={out}", *protos.files])
    _run(["protoc", *protos.includes, f"--grpc_out={out}",
          f"--plugin=protoc-gen-grpc={shutil.which('grpc_cpp_plugin')}", *SERVICES])
    for program in PROGRAMS:
        shutil.copy(HERE / f"{program}.cc", out)
    # -O0: the slow part is parsing headers; the clients need no speed.
    return {program: [str(path)] for program, path in compile_cpp(out, PROGRAMS).items()}


def _go_package(proto: str) -> str:
    """footfall/retail/v2/x.proto -> M-option target `footfall.test/retail/v2;retailv2`:
    our files declare no go_package, so protoc-gen-go is told one."""
    folder = proto.removeprefix("footfall/").rpartition("/")[0]
    return f"footfall.test/{folder};{folder.replace('/', '')}"


def build_go(protos: Protos, gopath: Path) -> Programs:
    """GOPATH mode over Debian's sources; google/* is not generated (genproto registers it)."""
    _require("protoc", "protoc-gen-go", "protoc-gen-go-grpc", "go")
    if not (GO_SYSTEM_PATH / "src/google.golang.org/grpc").is_dir():
        raise Unavailable(f"no grpc-go under {GO_SYSTEM_PATH} (golang-google-grpc-dev)")
    mapping = ",".join([*(f"M{f}={_go_package(f)}" for f in protos.ours), GO_LONGRUNNING])
    src = gopath / "src"
    src.mkdir()
    _run(["protoc", *protos.includes, f"--go_out={src}", f"--go_opt={mapping}",
          f"--go-grpc_out={src}", f"--go-grpc_opt={mapping}", *protos.ours])
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{gopath}:{GO_SYSTEM_PATH}",
           "GOCACHE": str(gopath / "cache"), "GOFLAGS": ""}
    for program in PROGRAMS:  # (one after the other: the second reuses the first's cache)
        main = src / "footfall.test" / "cmd" / program  # (footfall.test/console is a package)
        main.mkdir(parents=True)
        shutil.copy(HERE / f"{program}.go", main / "main.go")
        _run(["go", "build", "-o", gopath / program, "."], cwd=main, env=env)
    built = {program: [str(gopath / program)] for program in PROGRAMS}
    return {**built, "beside_google": _build_go_beside_google(protos, gopath / "beside", env)}


def _build_go_beside_google(protos: Protos, gopath: Path, env: dict[str, str]) -> list[str]:
    """beside_google.go: the console's stubs in a program that also holds Google's Go
    retail messages, built as the README says (our retail files mapped to Google's
    package). Google's Go client is not in Debian: a stand-in package is generated from
    the descriptors google-cloud-retail (Python) registers, the same messages under
    the same names, as Google's retailpb registers them."""
    from google.cloud.retail_v2.types import user_event  # (the interop suite has it)

    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def take(file: Any) -> None:
        for imported in file.dependencies:
            take(imported)
        if file.name not in files:
            files[file.name] = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(files[file.name])

    take(user_event.UserEvent.pb().DESCRIPTOR.file)
    google_retail = [name for name in files if not name.startswith("google/protobuf/")]
    stand_in = "google.test/retailpb;retailpb"
    src = gopath / "src"
    src.mkdir(parents=True)
    descriptors = gopath / "google_retail.pb"
    descriptors.write_bytes(descriptor_pb2.FileDescriptorSet(
        file=list(files.values())).SerializeToString())
    _run(["protoc", f"--descriptor_set_in={descriptors}", f"--go_out={src}",
          "--go_opt=" + ",".join(f"M{name}={stand_in}" for name in google_retail),
          *google_retail])
    console = [f for f in protos.ours if not f.startswith("footfall/retail/")
               and f != "footfall/talent/v4/event_service.proto"]
    mapping = ",".join(f"M{f}={stand_in if f.startswith('footfall/retail/') else _go_package(f)}"
                       for f in protos.ours)
    _run(["protoc", *protos.includes, f"--go_out={src}", f"--go_opt={mapping}",
          f"--go-grpc_out={src}", f"--go-grpc_opt={mapping}", *console])
    main = src / "footfall.test" / "cmd" / "beside_google"
    main.mkdir(parents=True)
    shutil.copy(HERE / "beside_google.go", main / "main.go")
    _run(["go", "build", "-o", gopath / "beside_google", "."], cwd=main,
         env={**env, "GOPATH": f"{gopath}:{GO_SYSTEM_PATH}"})
    return [str(gopath / "beside_google")]


def build_ruby(protos: Protos, out: Path) -> Programs:
    """Debian's googleapis-common-protos-types already defines google/* messages, but
    not the Operations service: that one is generated as a stub only."""
    _require("ruby", "grpc_tools_ruby_protoc")
    if subprocess.run(["ruby", "-e", "require 'grpc'; require 'google/rpc/error_details_pb'"],
                      capture_output=True).returncode != 0:
        raise Unavailable("ruby cannot load grpc (ruby-grpc)")
    _run(["grpc_tools_ruby_protoc", *protos.includes, f"--ruby_out={out}", f"--grpc_out={out}",
          *protos.ours])
    _run(["grpc_tools_ruby_protoc", *protos.includes, f"--grpc_out={out}",
          "google/longrunning/operations.proto"])
    return {program: ["ruby", "-I", str(out), str(HERE / f"{program}.rb")]
            for program in PROGRAMS}
