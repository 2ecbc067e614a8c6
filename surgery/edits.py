"""Edits: functions that take a model, change it in memory and return it.

Each edit validates everything before it touches anything, so a refused edit leaves the
model as it was. The CLI and plan runner are thin layers over these functions.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from surgery.errors import EditError, SurgeryWarning
from surgery.model import Model
from surgery.schema import (
    FunctionDef,
    MetaGraphDef,
    NodeDef,
    SavedBareConcreteFunction,
    SavedConcreteFunction,
    StructuredValue,
    TensorInfo,
    entry,
)
from surgery.signatures import (
    RESERVED_KEYS,
    argument_name,
    call_node,
    composite_inputs,
    flat_names,
    function_library,
    input_order,
    keras_io_names,
    signature_map_node,
    tensor_spec,
    user_specified_name,
)
from surgery.storage.readwrite import accepts_path

T = TypeVar("T")
M = TypeVar("M", bound=Message)


TagSet = str | Iterable[str]
"""A meta graph's tags: `"serve,gpu"` as the command line spells them, or an iterable of tags."""


def parse_tag_set(tags: TagSet) -> frozenset[str]:
    """`serve,gpu` (or a list of tags) to a tag set."""
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    tag_set = frozenset(t.strip() for t in items if t.strip())
    if not tag_set:
        raise EditError("empty tag set: give comma-separated tags such as serve or serve,gpu")
    return tag_set


def _tags(meta: MetaGraphDef) -> str:
    return ",".join(meta.meta_info_def.tags)


def select_meta_graphs(model: Model, tag_set: TagSet | None) -> list[MetaGraphDef]:
    """Every meta graph, or the one with exactly `tag_set` (a one-line refusal if none has it)."""
    metas = list(model.proto.meta_graphs)
    if tag_set is None:
        return metas
    tag_set = parse_tag_set(tag_set)
    chosen = [m for m in metas if frozenset(m.meta_info_def.tags) == tag_set]
    if not chosen:
        have = "; ".join(_tags(m) for m in metas)
        raise EditError(f"no meta graph has tag set {','.join(sorted(tag_set))!r} (the model has: {have})")
    return chosen


def meta_graphs_with(model: Model, signature: str, tag_set: TagSet | None) -> list[MetaGraphDef]:
    """The meta graphs an edit of `signature` applies to, or a one-line refusal.

    With a tag set: the meta graph with exactly that set, which must have the signature.
    Without: every meta graph that has the signature; at least one must.
    """
    metas = list(model.proto.meta_graphs)
    if tag_set is not None:
        tag_set = parse_tag_set(tag_set)
        chosen = [m for m in metas if frozenset(m.meta_info_def.tags) == tag_set]
        if not chosen:
            have = "; ".join(_tags(m) for m in metas)
            raise EditError(
                f"no meta graph has tag set {','.join(sorted(tag_set))!r} (the model has: {have})"
            )
        missing = [m for m in chosen if signature not in m.signature_def]
        if missing:
            raise EditError(
                f"meta graph {_tags(missing[0])!r} has no signature {signature!r}: "
                f"it has {', '.join(sorted(missing[0].signature_def)) or 'none'}"
            )
        return chosen
    chosen = [m for m in metas if signature in m.signature_def]
    if not chosen:
        keys = sorted({k for m in metas for k in m.signature_def if k not in RESERVED_KEYS})
        raise EditError(f"no signature {signature!r} in the model: it has {', '.join(keys) or 'none'}")
    return chosen


def refuse_reserved(*keys: str) -> None:
    for key in keys:
        if key in RESERVED_KEYS:
            raise EditError(
                f"{key!r} is a reserved signature key that TensorFlow manages: it cannot be edited"
            )


@accepts_path
def rename_signature(
    model: Model, old: str, new: str, *, regex: bool = False, tag_set: TagSet | None = None
) -> Model:
    """Rename signature key `old` to `new`, in `signature_def` and in the object graph's signature map.

    With `regex`, `old` is a regular expression and `new` its replacement (`re.sub`, `\\1` for a
    group) over every key but the reserved ones; keys it leaves unchanged stay, and a rename onto
    another key is refused.

    Like every edit: changes `model` in memory and returns it; `tag_set` limits it to the meta
    graph with exactly those tags; a refusal raises `EditError` and leaves the model as it was.

    Example:
        >>> model = surgery.rename_signature(surgery.load("my_model"), "serving_default", "predict")
        >>> sorted(model.proto.meta_graphs[0].signature_def)
        ['__saved_model_init_op', 'fixed', 'masked', 'predict', 'preprocess']
        >>> model = surgery.rename_signature(model, "^(fixed|masked)$", r"v2_\\1", regex=True)
        >>> sorted(model.proto.meta_graphs[0].signature_def)
        ['__saved_model_init_op', 'predict', 'preprocess', 'v2_fixed', 'v2_masked']
    """
    if regex:
        return _rename_matching(model, old, new, tag_set)
    refuse_reserved(old, new)
    if not new:
        raise EditError("the new signature key is empty: give a name such as serving_default")
    metas = meta_graphs_with(model, old, tag_set)
    if old == new:
        return model
    for meta in metas:
        if new in meta.signature_def:
            raise EditError(
                f"meta graph {_tags(meta)!r} already has a signature {new!r}: remove or rename it first"
            )
    for meta in metas:
        meta.signature_def[new].CopyFrom(entry(meta.signature_def, old))
        del meta.signature_def[old]
        graph = meta.object_graph_def
        map_id = signature_map_node(graph)
        if map_id is not None and 0 <= map_id < len(graph.nodes):
            for child in graph.nodes[map_id].children:
                if child.local_name == old:
                    child.local_name = new
    return model


def _rename_matching(model: Model, pattern: str, replacement: str, tag_set: TagSet | None) -> Model:
    """rename_signature with `regex`: every non-reserved key through `re.sub`, checked first."""
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise EditError(f"regex does not compile: {err}") from None
    metas = select_meta_graphs(model, tag_set)
    keys = sorted({k for m in metas for k in m.signature_def if k not in RESERVED_KEYS})
    try:
        renames = {key: compiled.sub(replacement, key) for key in keys}
    except (re.error, IndexError) as err:
        raise EditError(f"regex replacement {replacement!r} does not fit the pattern: {err}") from None
    renames = {key: target for key, target in renames.items() if target != key}
    targets: dict[str, str] = {}
    for key, target in renames.items():
        if target in RESERVED_KEYS or not target:
            raise EditError(f"regex maps {key!r} to {target!r}, which is not a usable signature key")
        if target in targets:
            raise EditError(f"regex maps both {targets[target]!r} and {key!r} to {target!r}")
        targets[target] = key
    for meta in metas:
        clash = [t for t in targets if t in meta.signature_def and t not in renames]
        if clash:
            raise EditError(f"regex maps {targets[clash[0]]!r} onto the existing signature {clash[0]!r}")
    # Two steps, through unique temporary keys, so that `a->b, b->c` chains work.
    staged = {key: f"\0surgery-{i}" for i, key in enumerate(renames)}
    for key, temp in staged.items():
        rename_signature(model, key, temp, tag_set=tag_set)
    for key, temp in staged.items():
        rename_signature(model, temp, renames[key], tag_set=tag_set)
    return model


def _signature_child(meta: MetaGraphDef, key: str) -> tuple[int, int] | None:
    """(index in the signature map's children, node id) of signature `key` on the TF2 side."""
    graph = meta.object_graph_def
    map_id = signature_map_node(graph)
    if map_id is None or not 0 <= map_id < len(graph.nodes):
        return None
    for index, child in enumerate(graph.nodes[map_id].children):
        if child.local_name == key:
            return index, child.node_id
    return None


@accepts_path
def remove_signature(model: Model, signature: str, *, tag_set: TagSet | None = None) -> Model:
    """Delete a signature from `signature_def` and from the object graph's signature map.

    The signature's object-graph node and functions stay (unreferenced): node ids are what the
    checkpoint is restored by, so nodes are never renumbered.

    Example:
        >>> model = surgery.remove_signature(surgery.load("my_model"), "preprocess")
        >>> "preprocess" in model.proto.meta_graphs[0].signature_def
        False
    """
    refuse_reserved(signature)
    for meta in meta_graphs_with(model, signature, tag_set):
        del meta.signature_def[signature]
        found = _signature_child(meta, signature)
        if found is not None:
            map_id = signature_map_node(meta.object_graph_def)
            assert map_id is not None
            del meta.object_graph_def.nodes[map_id].children[found[0]]
    return model


@accepts_path
def copy_signature(model: Model, src: str, dst: str, *, tag_set: TagSet | None = None) -> Model:
    """Add `dst` serving exactly what `src` serves, sharing its tensors, wrapper and object-graph node.

    Example:
        >>> model = surgery.copy_signature(surgery.load("my_model"), "masked", "masked_alias")
        >>> signatures = model.proto.meta_graphs[0].signature_def
        >>> signatures["masked_alias"] == signatures["masked"]
        True
    """
    refuse_reserved(src, dst)
    if not dst:
        raise EditError("the new signature key is empty")
    metas = meta_graphs_with(model, src, tag_set)
    for meta in metas:
        if dst in meta.signature_def:
            raise EditError(f"meta graph {_tags(meta)!r} already has a signature {dst!r}: choose another key")
    for meta in metas:
        meta.signature_def[dst].CopyFrom(entry(meta.signature_def, src))
        found = _signature_child(meta, src)
        if found is not None:
            map_id = signature_map_node(meta.object_graph_def)
            assert map_id is not None
            meta.object_graph_def.nodes[map_id].children.add(node_id=found[1], local_name=dst)
    return model


@accepts_path
def set_method(model: Model, signature: str, method: str, *, tag_set: TagSet | None = None) -> Model:
    """Set a signature's `method_name` (e.g. tensorflow/serving/regress); only the v1 side has one.

    Example:
        >>> model = surgery.set_method(surgery.load("my_model"), "preprocess", "tensorflow/serving/regress")
        >>> model.proto.meta_graphs[0].signature_def["preprocess"].method_name
        'tensorflow/serving/regress'
    """
    refuse_reserved(signature)
    if not method.strip():
        raise EditError("the method name is empty: give one such as tensorflow/serving/predict")
    metas = meta_graphs_with(model, signature, tag_set)
    near = _near_misses(method)
    if near:
        warnings.warn(
            SurgeryWarning(
                f"method {method!r} is not one of TensorFlow Serving's (did you mean {near[0]}?); a "
                "custom method name is legal, but TF Serving's classify and regress APIs will not serve it"
            ),
            stacklevel=3,
        )
    for meta in metas:
        meta.signature_def[signature].method_name = method
    return model


SERVING_METHODS = (
    "tensorflow/serving/predict",
    "tensorflow/serving/classify",
    "tensorflow/serving/regress",
)
"""The method names TensorFlow Serving's APIs route by."""


@functools.lru_cache(maxsize=64)
def _near_misses(method: str) -> list[str]:
    """TF Serving's method names `method` is a typo of (none when it is one of them); a plan
    setting one name many times pays for it once."""
    if method in SERVING_METHODS:
        return []
    return [name for name in SERVING_METHODS if _within_two_edits(name, method)]


def _within_two_edits(a: str, b: str) -> bool:
    """Whether `a` becomes `b` with at most two insertions, deletions or substitutions."""
    if abs(len(a) - len(b)) > 2:
        return False
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1] <= 2


@accepts_path
def set_tags(model: Model, old: TagSet, new: TagSet) -> Model:
    """Give the meta graph with tag set `old` the tags `new` (in the order given; a string is
    comma-separated, as on the command line).

    Example:
        >>> model = surgery.set_tags(surgery.load("my_model"), ["serve"], ["serve", "gpu"])
        >>> list(model.proto.meta_graphs[0].meta_info_def.tags)
        ['serve', 'gpu']
    """
    old_set = parse_tag_set(old)
    items = new.split(",") if isinstance(new, str) else new
    new_tags = list(dict.fromkeys(t.strip() for t in items if t.strip()))
    if not new_tags:
        raise EditError("empty new tag set: give comma-separated tags such as serve,tpu")
    metas = list(model.proto.meta_graphs)
    chosen = [m for m in metas if frozenset(m.meta_info_def.tags) == old_set]
    if not chosen:
        have = "; ".join(_tags(m) for m in metas)
        raise EditError(f"no meta graph has tag set {','.join(sorted(old_set))!r} (the model has: {have})")
    if frozenset(new_tags) != old_set and any(
        frozenset(m.meta_info_def.tags) == frozenset(new_tags) for m in metas
    ):
        raise EditError(
            f"another meta graph already has tag set {','.join(new_tags)!r}: "
            "the loaders could not tell them apart"
        )
    for meta in chosen:
        del meta.meta_info_def.tags[:]
        meta.meta_info_def.tags.extend(new_tags)
    return model


@dataclass
class SignatureParts:
    """The places a TF2-saved signature lives, found once and edited together."""

    bare: SavedBareConcreteFunction
    concrete: SavedConcreteFunction
    wrapper: FunctionDef
    call: NodeDef | None  # the v1 graph's node that calls `wrapper` (`call_node(meta, calling=...)`)


def signature_parts(meta: MetaGraphDef, key: str) -> SignatureParts | None:
    """The TF2 side of `key`; None for a TF1-style model. Refuses a wrapper shared with another signature."""
    found = _signature_child(meta, key)
    if found is None:
        return None
    graph = meta.object_graph_def
    if not 0 <= found[1] < len(graph.nodes):
        raise EditError(
            f"signature {key!r}: object graph node {found[1]} does not exist; run check to see what is broken"
        )
    node = graph.nodes[found[1]]
    if node.WhichOneof("kind") != "bare_concrete_function":
        raise EditError(f"signature {key!r}: object graph node {found[1]} is not a signature function")
    name = node.bare_concrete_function.concrete_function_name
    map_id = signature_map_node(graph)
    assert map_id is not None
    sharing = [
        c.local_name
        for c in graph.nodes[map_id].children
        if c.local_name != key
        and 0 <= c.node_id < len(graph.nodes)
        and graph.nodes[c.node_id].bare_concrete_function.concrete_function_name == name
    ]
    if sharing:
        raise EditError(
            f"signature {key!r} shares its function with {sharing[0]!r} (a copy-signature): their "
            "input and output keys, shapes and dtypes cannot differ; edit before copying"
        )
    library = function_library(meta)
    saved = graph.concrete_functions.get(name)
    if name not in library or saved is None:
        raise EditError(f"signature {key!r}: function {name} is missing; run check to see what is broken")
    return SignatureParts(node.bare_concrete_function, saved, library[name], call_node(meta, calling=name))


def _permutation(
    before: list[str],
    renames: dict[str, str],
    sizes: dict[str, int],
    order: Callable[[Iterable[str]], list[str]],
) -> tuple[list[str], list[int]]:
    """New keys in `order`, and for each new flat position the old flat position whose value moves there.

    Keys are flattened in `order` (sorted, or `input_order` for inputs), each over `sizes[key]`
    positions (a composite output spans several).
    """
    starts: dict[str, int] = {}
    offset = 0
    for key in before:
        starts[key] = offset
        offset += sizes[key]
    source = {renames.get(key, key): key for key in before}
    after = order(source)
    return after, [starts[source[key]] + j for key in after for j in range(sizes[source[key]])]


def _copy(message: M) -> M:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def _permute(items: list[T], perm: list[int]) -> list[T]:
    if len(items) < len(perm):
        raise EditError(
            f"{len(items)} function arguments or results for {len(perm)} signature keys: the model is "
            "inconsistent; run check to see what is broken"
        )
    return [items[i] for i in perm] + items[len(perm) :]


def _rename_struct_keys(value: StructuredValue, renames: dict[str, str], *, arguments: bool = False) -> None:
    """Rename keys of a StructuredValue dict together, and the names of the TensorSpecs under them.

    With `arguments`, the dict is a TF2 input signature's: it is keyed by `argument_name(key)`
    (TensorFlow's sanitized keyword), while its TensorSpecs may keep the key itself.
    """
    fields = value.dict_value.fields
    moved: dict[str, tuple[StructuredValue, dict[str, str]]] = {}
    for old, new in renames.items():
        names = {old: new}
        if arguments:
            names[argument_name(old)] = argument_name(new)
        field_key = next((k for k in names if k in fields), None)
        field = fields.get(field_key) if field_key is not None else None
        if field_key is not None and field is not None:
            moved[names[field_key]] = (_copy(field), names)
            del fields[field_key]
    for key, (field, names) in moved.items():
        fields[key].CopyFrom(field)
        spec = (
            fields[key].tensor_spec_value if fields[key].WhichOneof("kind") == "tensor_spec_value" else None
        )
        if spec is not None:
            spec.name = names.get(spec.name, key)


_ARG_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _rename_wrapper_arg(wrapper: FunctionDef, index: int, new: str) -> None:
    """Name argument `index` after its new key, where that is a valid, unused argument name."""
    if index >= len(wrapper.signature.input_arg):
        raise EditError(
            f"function {wrapper.signature.name} has fewer arguments than its signature has inputs: the model "
            "is inconsistent; run check to see what is broken"
        )
    arg = wrapper.signature.input_arg[index]
    taken = {a.name for a in wrapper.signature.input_arg} | {n.name for n in wrapper.node_def}
    if user_specified_name(wrapper, index) is not None:
        wrapper.arg_attr[index].attr["_user_specified_name"].s = new.encode()
    if not _ARG_NAME.match(new) or new in taken:
        return
    old = arg.name
    arg.name = new
    for node in wrapper.node_def:
        for i, ref in enumerate(node.input):
            if ref == old or ref.startswith(old + ":"):
                node.input[i] = new + ref[len(old) :]
    for key, ref in list(wrapper.ret.items()):
        if ref == old or ref.startswith(old + ":"):
            wrapper.ret[key] = new + ref[len(old) :]


def _permute_list_attr(node: NodeDef | FunctionDef, name: str, field: str, perm: list[int]) -> None:
    attr = node.attr.get(name)
    if attr is not None:
        values = getattr(attr.list, field)
        reordered = _permute(list(values), perm)
        del values[:]
        values.extend(reordered)


def _permute_inputs(parts: SignatureParts, after: list[str], perm: list[int]) -> None:
    wrapper = parts.wrapper
    args = _permute([_copy(a) for a in wrapper.signature.input_arg], perm)
    del wrapper.signature.input_arg[:]
    wrapper.signature.input_arg.extend(args)
    attrs = {i: a.SerializeToString() for i in range(len(perm)) if (a := wrapper.arg_attr.get(i)) is not None}
    for i in range(len(perm)):
        if i in wrapper.arg_attr:
            del wrapper.arg_attr[i]
    for new_index, old_index in enumerate(perm):
        if old_index in attrs:
            wrapper.arg_attr[new_index].ParseFromString(attrs[old_index])
    if "_input_shapes" in wrapper.attr:
        _permute_list_attr(wrapper, "_input_shapes", "shape", perm)
    del parts.bare.argument_keywords[:]
    parts.bare.argument_keywords.extend(after)
    if parts.call is not None:
        call = parts.call
        feeds = _permute(list(call.input), perm)
        del call.input[:]
        call.input.extend(feeds)
        _permute_list_attr(call, "Tin", "type", perm)


def _remap_tensor_info(info: TensorInfo, remap: Callable[[str], str]) -> None:
    """Apply `remap` to every tensor name a TensorInfo holds (composite components included)."""
    encoding = info.WhichOneof("encoding")
    if encoding == "name":
        info.name = remap(info.name)
    elif encoding == "coo_sparse":
        coo = info.coo_sparse
        coo.values_tensor_name = remap(coo.values_tensor_name)
        coo.indices_tensor_name = remap(coo.indices_tensor_name)
        coo.dense_shape_tensor_name = remap(coo.dense_shape_tensor_name)
    elif encoding == "composite_tensor":
        for component in info.composite_tensor.components:
            _remap_tensor_info(component, remap)


def _permute_outputs(meta: MetaGraphDef, parts: SignatureParts, perm: list[int]) -> None:
    """Reorder the wrapper's flat results; the call node's outputs and every `call:i` reference follow."""
    wrapper = parts.wrapper
    results = _permute([_copy(a) for a in wrapper.signature.output_arg], perm)
    del wrapper.signature.output_arg[:]
    wrapper.signature.output_arg.extend(results)
    call = parts.call
    if call is None:
        return
    _permute_list_attr(call, "Tout", "type", perm)
    _permute_list_attr(call, "_output_shapes", "shape", perm)
    moved = {old: new for new, old in enumerate(perm)}

    def remap(ref: str) -> str:
        node, _, index = ref.partition(":")
        if node == call.name and index.isdigit() and int(index) in moved:
            return f"{node}:{moved[int(index)]}"
        return ref

    for node in meta.graph_def.node:
        for i, ref in enumerate(node.input):
            node.input[i] = remap(ref)
    for sig in meta.signature_def.values():
        for info in [*sig.inputs.values(), *sig.outputs.values()]:
            _remap_tensor_info(info, remap)


def _rename_fullargspec(spec_value: StructuredValue, before: list[str], after: list[str]) -> None:
    """FunctionSpec's FullArgSpec lists the keyword names (as keys or as `argument_name`s) in flat
    order: follow the rename."""
    for pair in spec_value.named_tuple_value.values:
        if pair.key in ("args", "kwonlyargs"):
            names = [v.string_value for v in pair.value.list_value.values]
            for old, new in (
                (before, after),
                ([argument_name(k) for k in before], [argument_name(k) for k in after]),
            ):
                if names == old:
                    for value, name in zip(pair.value.list_value.values, new, strict=True):
                        value.string_value = name
                    break


def _composite_renames(
    meta: MetaGraphDef, parts: SignatureParts, signature: str, old: str, new: str
) -> dict[str, str]:
    """The input keys a rename of `old` moves: a composite's components go with it (sp_1 -> new_1)."""
    for group in composite_inputs(meta, parts.wrapper, entry(meta.signature_def, signature).inputs):
        if old == group[0]:
            return {key: new if i == 0 else f"{new}_{i}" for i, key in enumerate(group)}
        if old in group:
            raise EditError(
                f"input {old!r} of signature {signature!r} is component {group.index(old)} of the composite "
                f"input {group[0]!r} ({', '.join(group)}): rename {group[0]!r}, which renames them together"
            )
    return {old: new}


def _refuse_argument_clash(signature: str, kept: list[str], renames: dict[str, str]) -> None:
    """TensorFlow makes one keyword argument of every input key (`argument_name`): two keys that
    make the same one cannot both be inputs."""
    taken = {argument_name(k): k for k in kept}
    for new in renames.values():
        other = taken.get(argument_name(new))
        if other is not None:
            raise EditError(
                f"input {new!r} of signature {signature!r} would be TensorFlow's keyword argument "
                f"{argument_name(new)!r}, as {other!r} is already: choose another key"
            )
        taken[argument_name(new)] = new


def _rename_key(
    model: Model, signature: str, old: str, new: str, *, side: str, tag_set: TagSet | None
) -> Model:
    refuse_reserved(signature)
    kind = side[:-1]
    if not new:
        raise EditError(f"the new {kind} key is empty")
    metas = meta_graphs_with(model, signature, tag_set)
    plans = []
    for meta in metas:
        keys = getattr(entry(meta.signature_def, signature), side)
        if old not in keys:
            raise EditError(
                f"signature {signature!r} has no {kind} {old!r}: it has {', '.join(sorted(keys)) or 'none'}"
            )
        parts = signature_parts(meta, signature)
        renames = {old: new}
        if side == "inputs" and parts is not None:
            renames = _composite_renames(meta, parts, signature, old, new)
        clash = [target for target in renames.values() if target in keys and target not in renames]
        if clash:
            raise EditError(f"signature {signature!r} already has an {kind} {clash[0]!r}: choose another key")
        if side == "inputs":
            _refuse_argument_clash(signature, [k for k in keys if k not in renames], renames)
        plans.append((meta, parts, renames))
    if old == new:
        return model
    for meta, parts, renames in plans:
        keys = getattr(entry(meta.signature_def, signature), side)
        order = input_order if side == "inputs" else sorted
        before = order(keys)
        sizes = {key: len(flat_names(tensor_spec(keys[key]))) if side == "outputs" else 1 for key in before}
        after, perm = _permutation(before, renames, sizes, order)
        moved = {target: _copy(keys[key]) for key, target in renames.items()}
        for key in renames:
            del keys[key]
        for target, info in moved.items():
            keys[target].CopyFrom(info)
        if parts is None:
            continue
        reorder = perm != list(range(len(perm)))
        if side == "inputs":
            signature_args = parts.concrete.canonicalized_input_signature.tuple_value.values
            if len(signature_args) == 2:
                _rename_struct_keys(signature_args[1], renames, arguments=True)
            _rename_fullargspec(parts.bare.function_spec.fullargspec, before, after)
            if reorder:
                _permute_inputs(parts, after, perm)
            else:
                del parts.bare.argument_keywords[:]
                parts.bare.argument_keywords.extend(after)
            for target in renames.values():
                _rename_wrapper_arg(parts.wrapper, after.index(target), target)
        else:
            _rename_struct_keys(parts.concrete.output_signature, renames)
            if reorder:
                _permute_outputs(meta, parts, perm)
    _warn_keras(model, side, old, new)
    return model


def _warn_keras(model: Model, side: str, old: str, new: str) -> None:
    """A Keras 2 model keeps its own input/output names in keras_metadata.pb, which no edit changes."""
    names = keras_io_names(model.path)
    if names is None or old not in names[0 if side == "inputs" else 1]:
        return
    kind, attr = ("input", "input_names") if side == "inputs" else ("output", "output_names")
    warning = (
        f"keras_metadata.pb still names the Keras model {kind} {old!r}: tf_keras.models.load_model "
        f"keeps it in model.{attr} (and a Keras re-save writes serving_default with it), not {new!r}"
    )
    warnings.warn(SurgeryWarning(warning), stacklevel=3)


@accepts_path
def rename_input(model: Model, signature: str, old: str, new: str, *, tag_set: TagSet | None = None) -> Model:
    """Rename input key `old` of `signature`; moving its sorted position permutes what is positional.

    Example:
        >>> model = surgery.rename_input(surgery.load("my_model"), "masked", "a_dense", "z_dense")
        >>> sorted(model.proto.meta_graphs[0].signature_def["masked"].inputs)
        ['b_dense', 'z_dense']
    """
    return _rename_key(model, signature, old, new, side="inputs", tag_set=tag_set)


@accepts_path
def rename_output(
    model: Model, signature: str, old: str, new: str, *, tag_set: TagSet | None = None
) -> Model:
    """Rename output key `old` of `signature`; moving its sorted position permutes what is positional.

    Example:
        >>> model = surgery.rename_output(surgery.load("my_model"), "masked", "alpha", "zeta")
        >>> outputs = model.proto.meta_graphs[0].signature_def["masked"].outputs
        >>> outputs["zeta"].name, outputs["beta"].name
        ('StatefulPartitionedCall_1:1', 'StatefulPartitionedCall_1:0')
    """
    return _rename_key(model, signature, old, new, side="outputs", tag_set=tag_set)
