"""Rebuild TensorFlow's SavedModel schema (`.proto` source) from a TensorFlow wheel.

TensorFlow's wheels ship compiled descriptors, not `.proto` files. This script runs
inside a venv holding the pinned `tensorflow-cpu` (`make protos` makes one), walks the
import closure of `saved_model.proto` and `fingerprint.proto`, and renders every
TensorFlow file of it back to `.proto` source under `protos/`. The well-known types
(`google/protobuf/any.proto`, `wrappers.proto`) come with protobuf itself and are not
written.

The rendering is checked, not trusted: `tools/protoschema.py check` compiles `protos/`
with protoc and requires descriptors identical to TensorFlow's (run by `make protos`
and by the test-suite's parity test).

Usage:
  python tools/extract_protos.py OUT_DIR                  # write the .proto files
  python tools/extract_protos.py --descriptors OUT_FILE   # TensorFlow's own FileDescriptorSet
"""

from __future__ import annotations

import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOTS = ("tensorflow.core.protobuf.saved_model_pb2", "tensorflow.core.protobuf.fingerprint_pb2")
FDP = descriptor_pb2.FieldDescriptorProto

SCALAR_NAMES = {
    FDP.TYPE_DOUBLE: "double",
    FDP.TYPE_FLOAT: "float",
    FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64",
    FDP.TYPE_INT32: "int32",
    FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32",
    FDP.TYPE_BOOL: "bool",
    FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes",
    FDP.TYPE_UINT32: "uint32",
    FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64",
    FDP.TYPE_SINT32: "sint32",
    FDP.TYPE_SINT64: "sint64",
}

HEADER = """\
// Rebuilt by tools/extract_protos.py from the compiled descriptor of
// tensorflow-cpu=={version}. Do not edit: run `make protos` to refresh.
// Copyright The TensorFlow Authors. Licensed under the Apache License 2.0
// (see LICENSE in this directory). Comments of the original are not kept.
"""


def closure() -> list[descriptor_pb2.FileDescriptorProto]:
    """The FileDescriptorProtos of the roots and everything they import, sorted by name."""
    import importlib

    seen: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def walk(fd: object) -> None:
        name = fd.name  # type: ignore[attr-defined]
        if name in seen:
            return
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)  # type: ignore[attr-defined]
        seen[name] = proto
        for dep in fd.dependencies:  # type: ignore[attr-defined]
            walk(dep)

    for module in ROOTS:
        walk(importlib.import_module(module).DESCRIPTOR)
    return [seen[k] for k in sorted(seen)]


def quote(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    out = []
    for byte in raw:
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def option_value(field: object, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, bytes)):
        return quote(value)
    enum_type = getattr(field, "enum_type", None)
    if enum_type is not None:
        return str(enum_type.values_by_number[value].name)
    return str(value)


def options_list(options: object) -> list[str]:
    return [f"{f.name} = {option_value(f, v)}" for f, v in options.ListFields()]  # type: ignore[attr-defined]


def type_name(field: descriptor_pb2.FieldDescriptorProto) -> str:
    if field.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM, FDP.TYPE_GROUP):
        return field.type_name
    return SCALAR_NAMES[field.type]


def default_literal(field: descriptor_pb2.FieldDescriptorProto) -> str:
    if field.type == FDP.TYPE_STRING:
        return quote(field.default_value)
    if field.type == FDP.TYPE_BYTES:
        # The descriptor holds bytes defaults C-escaped already.
        return '"' + field.default_value + '"'
    return field.default_value


class Renderer:
    """Renders one FileDescriptorProto as `.proto` source."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self.file = file
        self.proto3 = file.syntax == "proto3"
        self.lines: list[str] = []
        self._scope_stack: list[str] = []

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("  " * depth + text if text else "")

    def render(self, version: str) -> str:
        f = self.file
        self.lines = HEADER.format(version=version).splitlines()
        self.emit(0, "")
        self.emit(0, f'syntax = "{f.syntax or "proto2"}";')
        self.emit(0, "")
        self.emit(0, f"package {f.package};")
        self.emit(0, "")
        for i, dep in enumerate(f.dependency):
            kind = "public " if i in f.public_dependency else "weak " if i in f.weak_dependency else ""
            self.emit(0, f"import {kind}{quote(dep)};")
        if f.dependency:
            self.emit(0, "")
        for opt in options_list(f.options):
            self.emit(0, f"option {opt};")
        for enum in f.enum_type:
            self.emit(0, "")
            self.render_enum(0, enum)
        for msg in f.message_type:
            self.emit(0, "")
            self.render_message(0, msg)
        if f.extension or f.service:
            raise SystemExit(f"{f.name}: extensions and services are not supported by this renderer")
        return "\n".join(self.lines) + "\n"

    def render_enum(self, depth: int, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        self.emit(depth, f"enum {enum.name} {{")
        for opt in options_list(enum.options):
            self.emit(depth + 1, f"option {opt};")
        for value in enum.value:
            opts = options_list(value.options)
            suffix = f" [{', '.join(opts)}]" if opts else ""
            self.emit(depth + 1, f"{value.name} = {value.number}{suffix};")
        self.render_reserved(depth + 1, enum.reserved_range, enum.reserved_name, inclusive_end=True)
        self.emit(depth, "}")

    def render_reserved(self, depth: int, ranges: object, names: object, *, inclusive_end: bool) -> None:
        parts = []
        for r in ranges:  # type: ignore[attr-defined]
            end = r.end if inclusive_end else r.end - 1
            parts.append(
                str(r.start) if end == r.start else f"{r.start} to {'max' if end >= 536870911 else end}"
            )
        if parts:
            self.emit(depth, f"reserved {', '.join(parts)};")
        if names:
            self.emit(depth, f"reserved {', '.join(quote(n) for n in names)};")  # type: ignore[attr-defined]

    def render_message(self, depth: int, msg: descriptor_pb2.DescriptorProto) -> None:
        self.emit(depth, f"message {msg.name} {{")
        for opt in options_list(msg.options):
            self.emit(depth + 1, f"option {opt};")
        map_entries = {
            f".{self.scope(msg)}.{nested.name}": nested
            for nested in msg.nested_type
            if nested.options.map_entry
        }
        synthetic = {f.oneof_index for f in msg.field if f.HasField("oneof_index") and f.proto3_optional}
        # protoc lists nested types in declaration order, with a map field's synthetic
        # entry type where the field is declared: interleave to reproduce that order.
        entry_field = {f.type_name: i for i, f in enumerate(msg.field) if f.type_name in map_entries}
        next_field = 0
        done_oneofs: set[int] = set()

        def emit_fields_through(last: int) -> None:
            nonlocal next_field
            while next_field <= last:
                self.render_member(depth + 1, msg, msg.field[next_field], map_entries, synthetic, done_oneofs)
                next_field += 1

        for enum in msg.enum_type:
            self.render_enum(depth + 1, enum)
        for nested in msg.nested_type:
            if nested.options.map_entry:
                emit_fields_through(entry_field[f".{self.scope(msg)}.{nested.name}"])
            else:
                self.render_message_nested(depth + 1, msg, nested)
        emit_fields_through(len(msg.field) - 1)
        if msg.extension_range:
            parts = [
                f"{r.start} to {'max' if r.end - 1 >= 536870911 else r.end - 1}" for r in msg.extension_range
            ]
            self.emit(depth + 1, f"extensions {', '.join(parts)};")
        self.render_reserved(depth + 1, msg.reserved_range, msg.reserved_name, inclusive_end=False)
        self.emit(depth, "}")

    def render_member(
        self,
        depth: int,
        msg: descriptor_pb2.DescriptorProto,
        field: descriptor_pb2.FieldDescriptorProto,
        map_entries: dict[str, descriptor_pb2.DescriptorProto],
        synthetic: set[int],
        done_oneofs: set[int],
    ) -> None:
        """A plain field, or the whole oneof block at its first member."""
        if not field.HasField("oneof_index") or field.oneof_index in synthetic:
            self.render_field(depth, field, map_entries, in_oneof=False)
            return
        index = field.oneof_index
        if index in done_oneofs:
            return
        done_oneofs.add(index)
        self.emit(depth, f"oneof {msg.oneof_decl[index].name} {{")
        for member in msg.field:
            if member.HasField("oneof_index") and member.oneof_index == index:
                self.render_field(depth + 1, member, map_entries, in_oneof=True)
        self.emit(depth, "}")

    def render_message_nested(
        self, depth: int, parent: descriptor_pb2.DescriptorProto, msg: descriptor_pb2.DescriptorProto
    ) -> None:
        self._scope_stack.append(parent.name)
        try:
            self.render_message(depth, msg)
        finally:
            self._scope_stack.pop()

    def scope(self, msg: descriptor_pb2.DescriptorProto) -> str:
        return ".".join([self.file.package, *self._scope_stack, msg.name])

    def render_field(
        self,
        depth: int,
        field: descriptor_pb2.FieldDescriptorProto,
        map_entries: dict[str, descriptor_pb2.DescriptorProto],
        *,
        in_oneof: bool,
    ) -> None:
        opts = options_list(field.options)
        if field.HasField("default_value"):
            opts.insert(0, f"default = {default_literal(field)}")
        if field.HasField("json_name") and field.json_name != default_json_name(field.name):
            opts.append(f"json_name = {quote(field.json_name)}")
        suffix = f" [{', '.join(opts)}]" if opts else ""
        entry = map_entries.get(field.type_name) if field.label == FDP.LABEL_REPEATED else None
        if entry is not None:
            key, value = entry.field[0], entry.field[1]
            decl = f"map<{type_name(key)}, {type_name(value)}> {field.name}"
        else:
            if in_oneof:
                label = ""
            elif field.label == FDP.LABEL_REPEATED:
                label = "repeated "
            elif field.label == FDP.LABEL_REQUIRED:
                label = "required "
            elif not self.proto3 or field.proto3_optional:
                label = "optional "
            else:
                label = ""
            decl = f"{label}{type_name(field)} {field.name}"
        self.emit(depth, f"{decl} = {field.number}{suffix};")


def default_json_name(name: str) -> str:
    parts = name.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--descriptors":
        descriptor_set = descriptor_pb2.FileDescriptorSet(file=closure())
        Path(argv[2]).write_bytes(descriptor_set.SerializeToString(deterministic=True))
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    import tensorflow as tf

    written = []
    for file in closure():
        if file.name.startswith("google/protobuf/"):
            continue
        path = out / file.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Renderer(file).render(tf.__version__))
        written.append(file.name)
    print(f"wrote {len(written)} files for tensorflow {tf.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
