"""protojson.message_to_dict must make exactly what json_format.MessageToDict makes
(the same dict, keys in the same order, values of the same types) and fail exactly
as it fails, with each set of options: on a message of every field type and every
well-known type (made here, in a file of its own), on random retail UserEvents,
StoredUserEvents, Products, talent ClientEvents and Operations, and on edge values."""

from __future__ import annotations

import math
from typing import Any

import pytest
from footfall.console.v1 import console_pb2
from footfall.retail.v2 import import_config_pb2, product_pb2, user_event_pb2
from footfall.talent.v4 import event_pb2
from google.longrunning import operations_pb2
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    json_format,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from server import protojson

_F = FieldDescriptor
OPTIONS = [{}, {"use_integers_for_enums": True}, {"preserving_proto_field_name": True},
           {"use_integers_for_enums": True, "preserving_proto_field_name": True}]
SCALARS = {"double": _F.TYPE_DOUBLE, "float": _F.TYPE_FLOAT, "int64": _F.TYPE_INT64,
           "uint64": _F.TYPE_UINT64, "int32": _F.TYPE_INT32, "fixed64": _F.TYPE_FIXED64,
           "fixed32": _F.TYPE_FIXED32, "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING,
           "bytes": _F.TYPE_BYTES, "uint32": _F.TYPE_UINT32, "sfixed32": _F.TYPE_SFIXED32,
           "sfixed64": _F.TYPE_SFIXED64, "sint32": _F.TYPE_SINT32, "sint64": _F.TYPE_SINT64}
MAP_KEYS = [name for name in SCALARS if name not in ("double", "float", "bytes")]
WELL_KNOWN = {"timestamp": ".google.protobuf.Timestamp", "duration": ".google.protobuf.Duration",
              "field_mask": ".google.protobuf.FieldMask", "struct": ".google.protobuf.Struct",
              "value": ".google.protobuf.Value", "list_value": ".google.protobuf.ListValue",
              "any": ".google.protobuf.Any", "empty": ".google.protobuf.Empty",
              **{f"{w.lower()}_wrapper": f".google.protobuf.{w}Value"
                 for w in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool",
                           "String", "Bytes")}}
_WKT_FILES = [timestamp_pb2, duration_pb2, field_mask_pb2, struct_pb2, any_pb2, empty_pb2,
              wrappers_pb2]


def _every_type_file() -> descriptor_pb2.FileDescriptorProto:
    """A proto3 file whose message `Every` has a field of every type, repeated and
    optional ones, maps of every key type, a oneof, an enum, and every well-known type;
    and a proto2 file (closed enums, an extension)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="footfall_test/every_type.proto", package="footfall_test", syntax="proto3",
        dependency=[m.DESCRIPTOR.name for m in _WKT_FILES])
    file.enum_type.add(name="Color", value=[
        descriptor_pb2.EnumValueDescriptorProto(name=n, number=i)
        for i, n in enumerate(("COLOR_UNSPECIFIED", "RED", "GREEN"))])
    every = file.message_type.add(name="Every")
    number = iter(range(1, 1000))
    label = descriptor_pb2.FieldDescriptorProto

    def add(name: str, kind: int, type_name: str = "", repeated: bool = False,
            **more: Any) -> None:
        field = every.field.add(name=name, number=next(number), type=kind,
                                label=label.LABEL_REPEATED if repeated else label.LABEL_OPTIONAL,
                                json_name=protojson_json_name(name), **more)
        if type_name:
            field.type_name = type_name

    for name, kind in SCALARS.items():
        add(f"{name}_value", kind)
        add(f"repeated_{name}", kind, repeated=True)
    add("color", _F.TYPE_ENUM, ".footfall_test.Color")
    add("colors", _F.TYPE_ENUM, ".footfall_test.Color", repeated=True)
    add("child", _F.TYPE_MESSAGE, ".footfall_test.Every")
    add("children", _F.TYPE_MESSAGE, ".footfall_test.Every", repeated=True)
    for name, type_name in WELL_KNOWN.items():
        add(name, _F.TYPE_MESSAGE, type_name)
        add(f"repeated_{name}", _F.TYPE_MESSAGE, type_name, repeated=True)
    every.oneof_decl.add(name="choice")
    add("choice_string", _F.TYPE_STRING, oneof_index=0)
    add("choice_int", _F.TYPE_INT32, oneof_index=0)
    add("choice_child", _F.TYPE_MESSAGE, ".footfall_test.Every", oneof_index=0)
    for i, (name, kind) in enumerate([("double", _F.TYPE_DOUBLE), ("string", _F.TYPE_STRING),
                                      ("int64", _F.TYPE_INT64)]):
        every.oneof_decl.add(name=f"_optional_{name}")
        add(f"optional_{name}", kind, oneof_index=i + 1, proto3_optional=True)
    map_values = {"string": (_F.TYPE_STRING, ""), "int64": (_F.TYPE_INT64, ""),
                  "color": (_F.TYPE_ENUM, ".footfall_test.Color"),
                  "every": (_F.TYPE_MESSAGE, ".footfall_test.Every"),
                  "timestamp": (_F.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
                  "value": (_F.TYPE_MESSAGE, ".google.protobuf.Value"),
                  "int32_wrapper": (_F.TYPE_MESSAGE, ".google.protobuf.Int32Value"),
                  "double": (_F.TYPE_DOUBLE, ""), "bytes": (_F.TYPE_BYTES, "")}
    for key in MAP_KEYS:
        for value_name, (value_kind, value_type) in map_values.items():
            if key not in ("string", "int64", "bool") and value_name != "string":
                continue  # (every key type with one value; every value with three keys)
            entry = every.nested_type.add(name=f"Map{key.title()}{value_name.title()}Entry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=SCALARS[key], json_name="key",
                            label=label.LABEL_OPTIONAL)
            value = entry.field.add(name="value", number=2, type=value_kind,
                                    json_name="value", label=label.LABEL_OPTIONAL)
            if value_type:
                value.type_name = value_type
            add(f"map_{key}_{value_name}", _F.TYPE_MESSAGE,
                f".footfall_test.Every.{entry.name}", repeated=True)
    return file


def _closed_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="footfall_test/closed.proto", package="footfall_test", syntax="proto2")
    file.enum_type.add(name="Closed", value=[
        descriptor_pb2.EnumValueDescriptorProto(name="ONE", number=1)])
    holder = file.message_type.add(name="Holder")
    holder.extension_range.add(start=100, end=200)
    holder.field.add(name="closed", number=1, type=_F.TYPE_ENUM, type_name=".footfall_test.Closed",
                     label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="closed")
    holder.field.add(name="count", number=2, type=_F.TYPE_INT32, json_name="count",
                     label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    file.extension.add(name="extra", number=100, type=_F.TYPE_STRING, json_name="extra",
                       extendee=".footfall_test.Holder",
                       label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    return file


def protojson_json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _added(file: descriptor_pb2.FileDescriptorProto) -> Any:
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(file.name)
    except KeyError:
        return pool.Add(file)


_added(_every_type_file())
_added(_closed_file())
Every: Any = message_factory.GetMessageClass(
    descriptor_pool.Default().FindMessageTypeByName("footfall_test.Every"))
Holder: Any = message_factory.GetMessageClass(
    descriptor_pool.Default().FindMessageTypeByName("footfall_test.Holder"))


def outcome(write: Any, message: Message, options: dict[str, bool]) -> tuple[str, str]:
    """What `write` makes of `message`, as a text that shows every type and key order
    (repr: 1, 1.0 and True differ, and so do -0.0 and 0.0), or its error."""
    try:
        return "ok", repr(write(message, **options))
    except Exception as error:
        return type(error).__name__, str(error)


def assert_same(message: Message) -> None:
    for options in OPTIONS:
        assert outcome(protojson.message_to_dict, message, options) == \
            outcome(json_format.MessageToDict, message, options), options


# -- random messages of any type -------------------------------------------------------

_EDGE_INTS = {_F.CPPTYPE_INT32: [0, 1, -1, 2**31 - 1, -(2**31)],
              _F.CPPTYPE_UINT32: [0, 1, 2**32 - 1],
              _F.CPPTYPE_INT64: [0, 1, -1, 2**53 + 1, 2**63 - 1, -(2**63)],
              _F.CPPTYPE_UINT64: [0, 1, 2**64 - 1]}
_RANGES = {_F.CPPTYPE_INT32: (-(2**31), 2**31 - 1), _F.CPPTYPE_UINT32: (0, 2**32 - 1),
           _F.CPPTYPE_INT64: (-(2**63), 2**63 - 1), _F.CPPTYPE_UINT64: (0, 2**64 - 1)}
_EDGE_FLOATS = [0.0, -0.0, 1.0, 0.1, 1e-45, 3.4028234663852886e38, math.inf, -math.inf,
                math.nan, 59.9, 1e300, -2.5e-300]
TEXTS = st.text(max_size=6) | st.sampled_from(["", "é", "\u2028", "\x00", "a\"b\\", "😀"])


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.cpp_type
    if kind in _RANGES:
        low, high = _RANGES[kind]
        return st.sampled_from(_EDGE_INTS[kind]) | st.integers(low, high)
    if kind == _F.CPPTYPE_DOUBLE:
        return st.sampled_from(_EDGE_FLOATS) | st.floats()
    if kind == _F.CPPTYPE_FLOAT:
        return st.sampled_from(_EDGE_FLOATS) | st.floats(width=32)
    if kind == _F.CPPTYPE_BOOL:
        return st.booleans()
    if kind == _F.CPPTYPE_ENUM:
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        if field.enum_type.is_closed:
            return st.sampled_from(known)
        return st.sampled_from(known) | st.integers(-3, 40)  # unknown numbers too
    if field.type == _F.TYPE_BYTES:
        return st.binary(max_size=8)
    return TEXTS


def _well_known(name: str, depth: int) -> st.SearchStrategy[Message] | None:
    if name == "google.protobuf.Timestamp":
        return st.builds(timestamp_pb2.Timestamp,
                         seconds=st.sampled_from([0, 1_700_000_000, -62_135_596_800,
                                                  253_402_300_799, 253_402_300_800, -1])
                         | st.integers(-62_135_596_801, 253_402_300_800),
                         nanos=st.sampled_from([0, 1, 123_000_000, 123_456_000, 999_999_999,
                                                1_000_000_000, -1]))
    if name == "google.protobuf.Duration":
        return st.builds(duration_pb2.Duration, seconds=st.integers(-400_000, 400_000),
                         nanos=st.sampled_from([0, 5_000_000, -5_000_000, 1]))
    if name == "google.protobuf.FieldMask":
        return st.builds(field_mask_pb2.FieldMask, paths=st.lists(st.sampled_from(
            ["title", "price_info.price", "a_b", "aB", "a__b", "x_", ""]), max_size=3))
    if name in ("google.protobuf.Value", "google.protobuf.Struct",
                "google.protobuf.ListValue"):
        leaf = st.one_of(st.none(), st.booleans(), TEXTS,
                         st.sampled_from(_EDGE_FLOATS) | st.floats())
        value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3)
                             | st.dictionaries(TEXTS, inner, max_size=3), max_leaves=6)
        if name == "google.protobuf.Value":
            return value.map(_as_value)
        if name == "google.protobuf.Struct":
            return st.dictionaries(TEXTS, value, max_size=3).map(_as_struct)
        return st.lists(value, max_size=3).map(_as_list)
    if name == "google.protobuf.Any":
        inner = st.one_of(messages(user_event_pb2.UserEvent.DESCRIPTOR, depth + 1),
                          messages(timestamp_pb2.Timestamp.DESCRIPTOR, depth + 1),
                          messages(wrappers_pb2.Int64Value.DESCRIPTOR, depth + 1),
                          st.just(empty_pb2.Empty()))
        return inner.map(_packed) | st.just(any_pb2.Any())
    return None


def _as_value(data: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    if data is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(data, bool):
        value.bool_value = data
    elif isinstance(data, float):
        value.number_value = data
    elif isinstance(data, str):
        value.string_value = data
    elif isinstance(data, list):
        value.list_value.CopyFrom(_as_list(data))
    else:
        value.struct_value.CopyFrom(_as_struct(data))
    return value


def _as_list(data: list[Any]) -> struct_pb2.ListValue:
    return struct_pb2.ListValue(values=[_as_value(item) for item in data])


def _as_struct(data: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    for key, item in data.items():
        struct.fields[key].CopyFrom(_as_value(item))
    return struct


def _packed(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Random messages of `descriptor`'s type: a few fields each (edge values often),
    nested at most 3 deep."""
    known = _well_known(descriptor.full_name, depth)
    if known is not None:
        return known
    cls = message_factory.GetMessageClass(descriptor)
    fields = [f for f in descriptor.fields
              if depth < 3 or f.message_type is None or protojson.is_map_entry(f.message_type)
              and f.message_type.fields_by_name["value"].message_type is None]

    @st.composite
    def build(draw: Any) -> Message:
        message = cls()
        for field in draw(st.lists(st.sampled_from(fields), unique=True, max_size=6)
                          if fields else st.just([])):
            _set(draw, message, field, depth)
        return message

    return build()


def _set(draw: Any, message: Message, field: FieldDescriptor, depth: int) -> None:
    kind = field.message_type
    if kind is not None and protojson.is_map_entry(kind):
        key_field, value_field = kind.fields_by_name["key"], kind.fields_by_name["value"]
        target = getattr(message, field.name)
        for _ in range(draw(st.integers(0, 3))):
            key = draw(_scalar(key_field))
            if value_field.message_type is None:
                target[key] = draw(_scalar(value_field))
            else:
                target[key].CopyFrom(draw(messages(value_field.message_type, depth + 1)))
        return
    single = messages(kind, depth + 1) if kind is not None else _scalar(field)
    if field.is_repeated:
        values = draw(st.lists(single, max_size=3))
        getattr(message, field.name).extend(values)
    elif kind is not None:
        getattr(message, field.name).CopyFrom(draw(single))
    else:
        setattr(message, field.name, draw(single))


@pytest.mark.parametrize("message_class", [
    Every, user_event_pb2.UserEvent, console_pb2.StoredUserEvent, product_pb2.Product,
    event_pb2.ClientEvent, console_pb2.ListUserEventsResponse],
    ids=lambda c: c.DESCRIPTOR.name)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_messages_are_written_as_json_format_writes_them(message_class: Any,
                                                                data: Any) -> None:
    assert_same(data.draw(messages(message_class.DESCRIPTOR)))


@settings(max_examples=100, deadline=None)
@given(metadata=messages(import_config_pb2.ImportMetadata.DESCRIPTOR),
       response=messages(import_config_pb2.ImportUserEventsResponse.DESCRIPTOR),
       done=st.booleans(), name=TEXTS)
def test_random_operations_are_written_as_json_format_writes_them(
        metadata: Message, response: Message, done: bool, name: str) -> None:
    operation = operations_pb2.Operation(name=name, done=done)
    operation.metadata.Pack(metadata)
    if done:
        operation.response.Pack(response)
    assert_same(operation)


# -- edge values, one by one -----------------------------------------------------------

def _every(**fields: Any) -> Message:
    return Every(**fields)


def _with(setter: Any) -> Message:
    message = Every()
    setter(message)
    return message


EDGES: dict[str, Message] = {
    "empty": Every(),
    "every scalar at its default (left out)": _every(
        **{f"{name}_value": {"string": "", "bytes": b"", "bool": False}.get(name, 0)
           for name in SCALARS}),
    "negative zero": _every(double_value=-0.0, float_value=-0.0),
    "NaN and infinities": _every(double_value=math.nan, float_value=math.inf,
                                 repeated_double=[math.inf, -math.inf, math.nan],
                                 repeated_float=[-math.inf, 0.1, 3.4028234663852886e38]),
    "float written shortest": _every(float_value=0.1, repeated_float=[59.9, 1e-45, 16777217]),
    "64-bit integers as strings": _every(int64_value=-(2**63), uint64_value=2**64 - 1,
                                         sint64_value=-1, fixed64_value=7, sfixed64_value=-7),
    "bytes in base64": _every(bytes_value=b"\x00\xff\xfe", repeated_bytes=[b"", b"a"]),
    "unknown enum numbers": _every(color=7, colors=[1, 99, 0]),
    "oneof set to its default": _every(choice_int=0),
    "oneof message, empty": _with(lambda m: m.choice_child.SetInParent()),
    "optional fields at their default": _every(optional_double=0.0, optional_string="",
                                               optional_int64=0),
    "wrappers at their default": _with(lambda m: [
        getattr(m, f"{w}_wrapper").SetInParent()
        for w in ("double", "float", "int64", "uint64", "int32", "uint32", "bool", "string",
                  "bytes")]),
    "wrappers set": _with(lambda m: (
        m.int64_wrapper.__setattr__("value", 2**62), m.float_wrapper.__setattr__("value", 0.1),
        m.bytes_wrapper.__setattr__("value", b"\x01"), m.double_wrapper.__setattr__(
            "value", math.nan), m.repeated_uint64_wrapper.add(value=5))),
    "timestamps": _with(lambda m: (
        m.timestamp.FromSeconds(0), m.repeated_timestamp.add(seconds=1, nanos=1),
        m.repeated_timestamp.add(seconds=-62_135_596_800, nanos=120_000),
        m.repeated_timestamp.add(seconds=253_402_300_799, nanos=999_999_999),
        m.repeated_timestamp.add(seconds=-1, nanos=500_000_000))),
    "timestamp out of range": _with(lambda m: m.timestamp.__setattr__("seconds", 253_402_300_800)),
    "timestamp of negative nanos": _with(lambda m: m.repeated_timestamp.add(nanos=-1)),
    "durations": _with(lambda m: (m.duration.__setattr__("seconds", -1),
                                  m.repeated_duration.add(seconds=1, nanos=500_000_000),
                                  m.repeated_duration.add(nanos=-1_000))),
    "duration out of range": _with(lambda m: m.repeated_duration.add(seconds=315_576_000_001)),
    "field masks": _with(lambda m: (m.field_mask.paths.extend(["price_info.price", "a_b"]),
                                    m.repeated_field_mask.add(paths=["x"]))),
    "field mask of a trailing _": _with(lambda m: m.repeated_field_mask.add(paths=["x_"])),
    "field mask json_format cannot write": _with(lambda m: m.field_mask.paths.append("aB")),
    "struct, value and list": _with(lambda m: (
        m.struct.CopyFrom(_as_struct({"a": [1.0, None, {"b": "c"}], "t": True})),
        m.value.CopyFrom(_as_value(None)), m.list_value.CopyFrom(_as_list([]))),
    ),
    "value NaN": _with(lambda m: m.value.CopyFrom(_as_value(math.nan))),
    "empty value": _with(lambda m: m.value.SetInParent()),
    "any": _with(lambda m: (m.any.Pack(user_event_pb2.UserEvent(event_type="x")),
                            m.repeated_any.add().Pack(duration_pb2.Duration(seconds=1)))),
    "any of an unknown type": _with(lambda m: m.any.__setattr__(
        "type_url", "type.googleapis.com/no.Such")),
    "empty message": _with(lambda m: m.empty.SetInParent()),
    "maps of every key type": _with(lambda m: [
        getattr(m, f"map_{key}_string").__setitem__(k, "v") for key in MAP_KEYS
        for k in ((True, False) if key == "bool" else ("", "k") if key == "string"
                  else (0, 1, 2**31 - 1))]),
    "maps of messages": _with(lambda m: (
        m.map_string_every["a"].int64_value.__int__(), m.map_string_every["b"].CopyFrom(
            Every(color=2)), m.map_int64_timestamp[-5].FromSeconds(3),
        m.map_bool_value[True].CopyFrom(_as_value("x")),
        m.map_string_int32_wrapper["w"].SetInParent(), m.map_string_color.__setitem__("c", 9),
        m.map_string_double.__setitem__("d", math.nan),
        m.map_string_bytes.__setitem__("b", b"\x00"))),
    "a message holding itself": _every(child=Every(child=Every(int32_value=1)),
                                       children=[Every(), Every(string_value="s")]),
    "a closed enum's known number": Holder(closed=1, count=0),
    "a proto2 field set to its default": Holder(count=0),
}


@pytest.mark.parametrize("message", EDGES.values(), ids=EDGES.keys())
def test_edge_values_are_written_as_json_format_writes_them(message: Message) -> None:
    assert_same(message)


def test_an_extension_and_an_unknown_closed_enum_number_are_json_formats() -> None:
    holder = Holder()
    holder.Extensions[descriptor_pool.Default().FindExtensionByName("footfall_test.extra")] = "e"
    assert_same(holder)
    unknown = Holder()
    unknown.ParseFromString(b"\x08\x05")  # closed=5, kept as an unknown field
    assert_same(unknown)


def test_a_well_known_type_alone_is_written_as_json_format_writes_it() -> None:
    for message in (timestamp_pb2.Timestamp(seconds=5, nanos=5_000),
                    wrappers_pb2.UInt64Value(value=3), duration_pb2.Duration(seconds=-1),
                    _as_struct({"a": 1.0}), _as_value([1.0]), empty_pb2.Empty(),
                    _packed(wrappers_pb2.StringValue(value="s"))):
        assert_same(message)


def test_the_plan_writes_the_common_messages_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path is taken (json_format is not called) for a console page of events
    and for a product: what made them worth a plan."""
    event = user_event_pb2.UserEvent(event_type="add-to-cart", visitor_id="v", attributes={
        "k": {"text": ["a"], "numbers": [1.5]}}, product_details=[{
            "product": {"id": "p", "price_info": {"price": 59.9, "currency_code": "USD"}},
            "quantity": {"value": 2}}])
    event.event_time.FromSeconds(1_700_000_000)
    page = console_pb2.ListUserEventsResponse(user_events=[console_pb2.StoredUserEvent(
        id=2**40, user_event=event, joined=True, transport=1)])
    product = json_format.ParseDict({
        "name": "projects/p/locations/global/catalogs/c/branches/0/products/p", "id": "p",
        "type": "PRIMARY", "title": "Tent", "categories": ["Outdoor > Tents"],
        "availability": "IN_STOCK", "availableQuantity": 3, "priceInfo": {
            "price": 59.9, "originalPrice": 79.9, "currencyCode": "USD"},
        "attributes": {"color": {"text": ["red"], "indexable": True}},
        "images": [{"uri": "https://x/i.jpg", "height": 10}], "rating": {
            "ratingCount": 3, "averageRating": 4.5}, "retrievableFields": "title",
        "fulfillmentInfo": [{"type": "pickup-in-store", "placeIds": ["s1"]}],
        "localInventories": [{"placeId": "s1", "priceInfo": {"price": 1.0}}],
        "publishTime": "2024-01-01T00:00:00Z", "ttl": "5s"}, product_pb2.Product())
    expected = [json_format.MessageToDict(page), json_format.MessageToDict(product)]
    monkeypatch.setattr(json_format, "MessageToDict", None)
    assert [protojson.message_to_dict(page), protojson.message_to_dict(product)] == expected
