"""Dump a canonical JSON description of the served contract.

Run as a script in its own process, because our generated modules and Google's
official client packages register the same full names in protobuf's default
descriptor pool and cannot be imported together:

    python tests/contract/describe.py ours       # generated/footfall/... (our .proto files)
    python tests/contract/describe.py official   # google-cloud-retail / google-cloud-talent
    python tests/contract/describe.py ours --samples FILE

The description covers every service method (input/output types, google.api.http
rules, long-running operation types) and every message and enum reachable from
them. `official` also emits sample messages with every field set (binary and
JSON); `ours --samples FILE` parses those samples with our classes and reports
how they round-trip, so wire compatibility is checked end to end.
"""

from __future__ import annotations

import base64
import importlib
import json
import pathlib
import re
import sys
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

SERVICES = {
    "google.cloud.retail.v2.UserEventService": "google.cloud.retail_v2.services.user_event_service",
    "google.cloud.retail.v2.ProductService": "google.cloud.retail_v2.services.product_service",
    "google.cloud.talent.v4.EventService": "google.cloud.talent_v4.services.event_service",
    "google.cloud.talent.v4beta1.EventService":
        "google.cloud.talent_v4beta1.services.event_service",
    **{
        f"google.cloud.retail.{version}.{service}":
            f"google.cloud.retail_{version}.services.{module}"
        for version in ("v2beta", "v2alpha")
        for service, module in (("UserEventService", "user_event_service"),
                                ("ProductService", "product_service"))
    },
}
# Messages under these packages are described field by field; anything else
# (google.protobuf, google.rpc, google.type, google.longrunning, google.api)
# comes from shared libraries and is only checked for presence.
OWNED_PREFIXES = ("google.cloud.retail.v2.", "google.cloud.retail.v2beta.",
                  "google.cloud.retail.v2alpha.", "google.cloud.talent.v4.",
                  "google.cloud.talent.v4beta1.")

FDP = descriptor_pb2.FieldDescriptorProto
ROOT = pathlib.Path(__file__).resolve().parents[2]


def field_name(name: str) -> str:
    # proto-plus renames fields that clash with Python names (`type` -> `type_`)
    # inside the descriptors it builds; the wire name has no underscore.
    return name[:-1] if name.endswith("_") else name


def owned(full_name: str) -> bool:
    return full_name.startswith(OWNED_PREFIXES)


def describe_field(f: Any, proto: descriptor_pb2.FieldDescriptorProto) -> dict[str, Any]:
    out: dict[str, Any] = {
        "number": f.number,
        "type": FDP.Type.Name(f.type),
        "json_name": f.json_name,
        "repeated": bool(f.is_repeated),
        "proto3_optional": bool(proto.proto3_optional),
    }
    if f.message_type is not None:
        out["type_name"] = f.message_type.full_name
        if f.message_type.GetOptions().map_entry:
            key, value = (f.message_type.fields_by_number[i] for i in (1, 2))
            out["map"] = {
                "key": FDP.Type.Name(key.type),
                "value": FDP.Type.Name(value.type),
                "value_type_name": (value.message_type or value.enum_type).full_name
                if (value.message_type or value.enum_type)
                else None,
            }
    elif f.enum_type is not None:
        out["type_name"] = f.enum_type.full_name
    oneof = f.containing_oneof
    if oneof is not None and not proto.proto3_optional:
        out["oneof"] = oneof.name
    return out


def describe_message(d: Any) -> dict[str, Any]:
    proto = descriptor_pb2.DescriptorProto()
    d.CopyToProto(proto)
    protos = {p.number: p for p in proto.field}
    fields = {field_name(f.name): describe_field(f, protos[f.number]) for f in d.fields}
    oneofs = {}
    for o in d.oneofs:
        members = [field_name(f.name) for f in o.fields]
        if len(members) == 1 and protos[o.fields[0].number].proto3_optional:
            continue  # synthetic oneof of a proto3 `optional` field
        oneofs[o.name] = sorted(members)
    return {
        "fields": fields,
        "oneofs": oneofs,
        "nested_messages": sorted(n.name for n in d.nested_types),
        "nested_enums": sorted(e.name for e in d.enum_types),
        "map_entry": bool(d.GetOptions().map_entry),
    }


def describe_enum(e: Any) -> dict[str, Any]:
    return {"values": {v.name: v.number for v in e.values}}


class Walker:
    def __init__(self) -> None:
        self.messages: dict[str, Any] = {}
        self.enums: dict[str, Any] = {}
        self.descriptors: dict[str, Any] = {}

    def message(self, d: Any) -> None:
        if d.full_name in self.messages:
            return
        self.descriptors[d.full_name] = d
        self.messages[d.full_name] = describe_message(d) if owned(d.full_name) else None
        if not owned(d.full_name):
            return
        for n in d.nested_types:
            self.message(n)
        for e in d.enum_types:
            self.enum(e)
        for f in d.fields:
            if f.message_type is not None:
                self.message(f.message_type)
            elif f.enum_type is not None:
                self.enum(f.enum_type)

    def enum(self, e: Any) -> None:
        if e.full_name not in self.enums:
            self.enums[e.full_name] = describe_enum(e) if owned(e.full_name) else None


# ---------------------------------------------------------------- ours


def load_ours() -> dict[str, Any]:
    from google.api import annotations_pb2
    from google.longrunning import operations_pb2

    generated = ROOT / "generated"
    for path in sorted((generated / "footfall").rglob("*_pb2.py")):
        importlib.import_module(".".join(path.relative_to(generated).with_suffix("").parts))
    pool = descriptor_pool.Default()
    walker = Walker()
    services: dict[str, Any] = {}
    for service_name in SERVICES:
        service = pool.FindServiceByName(service_name)
        package = service.full_name.rsplit(".", 1)[0]
        methods = {}
        for m in service.methods:
            options = m.GetOptions()
            rule = options.Extensions[annotations_pb2.http]
            rules = [http_rule(rule)] + [http_rule(r) for r in rule.additional_bindings]
            lro = None
            if options.HasExtension(operations_pb2.operation_info):
                info = options.Extensions[operations_pb2.operation_info]
                lro = {
                    "response": qualify(info.response_type, package),
                    "metadata": qualify(info.metadata_type, package),
                }
                for name in lro.values():
                    walker.message(pool.FindMessageTypeByName(name))
            methods[m.name] = {
                "input": m.input_type.full_name,
                "output": m.output_type.full_name,
                "client_streaming": bool(m.client_streaming),
                "server_streaming": bool(m.server_streaming),
                "http": rules,
                "lro": lro,
            }
            walker.message(m.input_type)
            walker.message(m.output_type)
        services[service_name] = methods
    return {
        "services": services,
        "messages": walker.messages,
        "enums": walker.enums,
        "_walker": walker,
    }


def qualify(name: str, package: str) -> str:
    name = name.lstrip(".")
    return name if "." in name else f"{package}.{name}"


def http_rule(rule: Any) -> dict[str, str]:
    # Same shape as the official REST transports' _get_http_options().
    pattern = rule.WhichOneof("pattern")
    if pattern == "custom":
        out = {"method": rule.custom.kind.lower(), "uri": rule.custom.path}
    else:
        out = {"method": pattern, "uri": getattr(rule, pattern)}
    if rule.body:
        out["body"] = rule.body
    if rule.response_body:
        out["response_body"] = rule.response_body
    return out


# ---------------------------------------------------------------- official


def official_descriptor(obj: Any) -> Any:
    pb = getattr(obj, "pb", None)
    return pb().DESCRIPTOR if callable(pb) else obj.DESCRIPTOR


def resolve(module: Any, dotted: str) -> Any:
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def load_official() -> dict[str, Any]:
    walker = Walker()
    services: dict[str, Any] = {}
    stub = re.compile(
        r'"/(?P<service>[\w.]+)/(?P<method>\w+)",\s*'
        r"request_serializer=(?P<req>[\w.]+)\.\w+,\s*"
        r"response_deserializer=(?P<resp>[\w.]+)\.\w+,"
    )
    lro_call = re.compile(
        r"operation(?:_async)?\.from_gapic\(\s*response,\s*self\._transport\.operations_client,"
        r"\s*(?P<resp>[\w.]+),\s*metadata_type=(?P<meta>[\w.]+),"
    )
    for service_name, module_name in SERVICES.items():
        grpc_mod = importlib.import_module(module_name + ".transports.grpc")
        rest_mod = importlib.import_module(module_name + ".transports.rest_base")
        client_mod = importlib.import_module(module_name + ".client")
        base = next(
            v
            for k, v in vars(rest_mod).items()
            if k.startswith("_Base") and k.endswith("RestTransport")
        )
        lros: dict[str, Any] = {}
        client_src = pathlib.Path(client_mod.__file__).read_text()
        for chunk in client_src.split("\n    def ")[1:]:
            found = lro_call.search(chunk)
            if found:
                rpc = "".join(w.title() for w in chunk.split("(", 1)[0].split("_"))
                lros[rpc] = {
                    "response": official_descriptor(resolve(client_mod, found["resp"])).full_name,
                    "metadata": official_descriptor(resolve(client_mod, found["meta"])).full_name,
                }
                walker.message(official_descriptor(resolve(client_mod, found["resp"])))
                walker.message(official_descriptor(resolve(client_mod, found["meta"])))
        methods = {}
        for found in stub.finditer(pathlib.Path(grpc_mod.__file__).read_text()):
            if found["service"] != service_name:
                continue  # google.longrunning.Operations mixins
            name = found["method"]
            request = official_descriptor(resolve(grpc_mod, found["req"]))
            response = official_descriptor(resolve(grpc_mod, found["resp"]))
            inner = getattr(base, f"_Base{name}")
            methods[name] = {
                "input": request.full_name,
                "output": response.full_name,
                "client_streaming": False,
                "server_streaming": False,
                "http": inner._get_http_options(),
                "lro": lros.get(name),
            }
            walker.message(request)
            walker.message(response)
        services[service_name] = methods
    return {
        "services": services,
        "messages": walker.messages,
        "enums": walker.enums,
        "_walker": walker,
    }


# ---------------------------------------------------------------- samples


def fill(msg: Any, depth: int = 0) -> None:
    """Set every field of `msg` (first member of each real oneof) to a non-default value."""
    d = msg.DESCRIPTOR
    if d.full_name == "google.protobuf.FieldMask":
        msg.paths.extend(["title", "price_info.price"])
        return
    if d.full_name == "google.protobuf.Any":
        return  # would need a resolvable type URL in JSON; covered by the descriptor diff
    taken_oneofs = set()
    for f in d.fields:
        oneof = f.containing_oneof
        if oneof is not None and len(oneof.fields) > 1:
            if oneof.name in taken_oneofs:
                continue
            taken_oneofs.add(oneof.name)
        if f.message_type is not None:
            if f.message_type.GetOptions().map_entry:
                key_f, val_f = (f.message_type.fields_by_number[i] for i in (1, 2))
                container = getattr(msg, f.name)
                key = scalar(key_f)
                if val_f.message_type is not None:
                    if depth < 3:
                        fill(container[key], depth + 1)
                else:
                    container[key] = scalar(val_f)
                continue
            if depth >= 3:
                continue
            if f.is_repeated:
                fill(getattr(msg, f.name).add(), depth + 1)
            else:
                fill(getattr(msg, f.name), depth + 1)
                if not msg.HasField(f.name):
                    getattr(msg, f.name).SetInParent()
        elif f.is_repeated:
            getattr(msg, f.name).append(scalar(f))
        else:
            setattr(msg, f.name, scalar(f))


def scalar(f: Any) -> Any:
    t = f.type
    if f.enum_type is not None:
        return f.enum_type.values[-1].number
    if t in (FDP.TYPE_STRING,):
        return f"v{f.number}-{f.name}"
    if t == FDP.TYPE_BYTES:
        return b"\x01\x02"
    if t == FDP.TYPE_BOOL:
        return True
    if t in (FDP.TYPE_DOUBLE, FDP.TYPE_FLOAT):
        return f.number + 0.5
    return f.number + 100


def make_samples(walker: Walker) -> dict[str, Any]:
    samples = {}
    for name, d in walker.descriptors.items():
        if not owned(name) or d.GetOptions().map_entry:
            continue
        msg = message_factory.GetMessageClass(d)()
        fill(msg)
        samples[name] = {
            "binary": base64.b64encode(msg.SerializeToString(deterministic=True)).decode(),
            "json": json_format.MessageToJson(msg, sort_keys=True),
        }
    return samples


def json_paths_differing(want: Any, got: Any, path: str) -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for key in sorted(set(want) | set(got)):
            out += json_paths_differing(want.get(key), got.get(key), f"{path}.{key}")
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        out = []
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            out += json_paths_differing(w, g, f"{path}[{i}]")
        return out
    return [] if want == got else [f"{path or '.'} (official {want!r:.60}, ours {got!r:.60})"]


def check_samples(samples: dict[str, Any]) -> dict[str, list[str]]:
    """Parse official samples with our classes; report anything lost or changed."""
    pool = descriptor_pool.Default()
    problems: dict[str, list[str]] = {}
    for name, sample in samples.items():
        issues = []
        try:
            cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        except KeyError:
            problems[name] = ["message missing"]
            continue
        raw = base64.b64decode(sample["binary"])
        from_binary = cls.FromString(raw)
        ours_json = json.loads(json_format.MessageToJson(from_binary, sort_keys=True))
        changed = json_paths_differing(json.loads(sample["json"]), ours_json, "")
        if changed:
            issues.append("binary sample decodes differently at " + ", ".join(changed[:10]))
        try:
            from_json = json_format.Parse(sample["json"], cls())
        except json_format.ParseError as exc:
            issues.append(f"official JSON rejected: {exc}")
        else:
            if from_json.SerializeToString(deterministic=True) != raw:
                issues.append("official JSON re-encodes to different bytes")
        if issues:
            problems[name] = issues
    return problems


def main(argv: list[str]) -> int:
    mode = argv[1]
    if mode == "ours":
        data = load_ours()
        if len(argv) > 3 and argv[2] == "--samples":
            samples = json.loads(pathlib.Path(argv[3]).read_text())
            data["sample_problems"] = check_samples(samples)
    elif mode == "official":
        data = load_official()
        data["samples"] = make_samples(data["_walker"])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    data.pop("_walker")
    json.dump(data, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
