"""Plan files: a list of edits validated whole, then applied in order as one edit.

The field names are the command's argument names (docs/api.md). Validation is pydantic's: an
unknown op or field, a missing field or a bad value is reported with its position
(`operations[2].shape: ...`) before anything is touched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from surgery.errors import EditError
from surgery.model import Model
from surgery.operations import OPERATIONS, Operation
from surgery.tensors import parse_dtype, to_shape


class _Op(BaseModel):
    """A plan entry: its fields are the arguments of `operation` (built per operation below)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, strict=True)
    operation: ClassVar[Operation]

    op: str
    tag_set: list[str] | None = None

    @model_validator(mode="after")
    def _key_or_pattern(self) -> _Op:
        if self.tag_set is not None and not self.operation.tag_set:
            raise ValueError(
                f"{self.operation.name} takes no tag_set (its arguments name the meta graph it edits): "
                "remove it"
            )
        for argument in self.operation.arguments:
            if argument.pattern_flag is None:
                continue
            key, pattern = getattr(self, argument.name), getattr(self, argument.pattern_flag)
            if (key is None) == (pattern is None):
                raise ValueError(
                    f"give exactly one of {argument.name} (a key) or {argument.pattern_flag} "
                    "(re.sub over every non-reserved key)"
                )
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as err:
                    raise ValueError(f"{argument.pattern_flag} does not compile: {err}") from None
        return self

    def apply(self, model: Model) -> Model:
        """Run this entry's edit on `model`."""
        values = {name: getattr(self, name) for name in type(self).model_fields if name != "op"}
        for argument in self.operation.arguments:
            pattern = values.get(argument.pattern_flag) if argument.pattern_flag else None
            if pattern is not None:
                values[argument.name], values[argument.pattern_flag or ""] = pattern, True
        return self.operation.apply(model, values)


def _dtype_name(value: str) -> str:
    try:
        parse_dtype(value)
    except EditError as err:
        raise ValueError(str(err)) from None
    return value


def _shape(value: list[int] | None) -> list[int] | None:
    try:
        to_shape(value)
    except EditError as err:
        raise ValueError(str(err)) from None
    return value


_TYPES: dict[str, Any] = {
    "text": str,
    "tags": Annotated[list[str], Field(min_length=1)],
    "shape": Annotated[list[Annotated[int, Field(ge=-1, lt=2**63)]] | None, AfterValidator(_shape)],
    "dtype": Annotated[str, AfterValidator(_dtype_name)],
}


def _entry_model(operation: Operation) -> type[_Op]:
    """The pydantic model of a plan entry `{op: NAME, ...}` for one operation."""
    patterns = {a.pattern_flag for a in operation.arguments if a.pattern_flag}
    fields: dict[str, Any] = {"op": (Literal[operation.name], ...)}
    for argument in operation.arguments:
        if argument.name in patterns or argument.pattern_flag:
            fields[argument.name] = (str | None, None)
        elif argument.kind == "flag":
            fields[argument.name] = (bool, False)
        else:
            fields[argument.name] = (_TYPES[argument.kind], ...)
    name = "".join(part.title() for part in operation.name.split("-"))
    model = create_model(name, __base__=_Op, **fields)
    model.operation = operation
    return model


_ENTRIES = [_entry_model(operation) for operation in OPERATIONS.values()]

PlanEntry = Annotated[Union[tuple(_ENTRIES)], Field(discriminator="op")]  # type: ignore[valid-type]  # noqa: UP007


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    operations: list[PlanEntry]  # type: ignore[valid-type]

    def entries(self) -> list[_Op]:
        """The operations, typed as the base of every plan entry."""
        return list(self.operations)

    def apply(self, model: Model) -> Model:
        """Apply every operation in order; the first refusal stops the plan (nothing is written)."""
        for index, operation in enumerate(self.entries()):
            try:
                operation.apply(model)
            except EditError as err:
                raise EditError(f"operations[{index}] ({operation.op}): {err}") from None
        return model


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _OP_NAMES:
            continue  # pydantic's discriminator tag: not part of the user's path
        else:
            out += f".{part}" if out else part
    return out


_OP_NAMES = set(OPERATIONS)


def parse_plan(data: object) -> Plan:
    """Validate a parsed plan document; errors name the operation and field."""
    try:
        return Plan.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {err.error_count() - 1} more problem(s))" if err.error_count() > 1 else ""
        raise EditError(f"bad plan: {_location(first['loc']) or 'plan'}: {message}{more}") from None


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file (JSON or YAML); `EditError` names the bad field's position.

    Example:
        >>> plan = surgery.load_plan("plan.yaml")
        >>> model = plan.apply(surgery.load("my_model"))
        >>> sorted(model.proto.meta_graphs[0].signature_def)[1:]
        ['v2_fixed', 'v2_masked', 'v2_preprocess', 'v2_serving_default']
    """
    file = Path(path)
    kind = "JSON" if file.suffix == ".json" else "YAML"
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise EditError(f"cannot read plan {file}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise EditError(f"plan {file} is not UTF-8 text (byte {err.start}): save it as UTF-8") from None
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys) if kind == "JSON" else _load_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise EditError(f"plan {file} is not valid {kind}: {_parse_error(err)}") from None
    except _DuplicateKey as err:
        raise EditError(
            f"plan {file}: the key {err.key!r} is given twice in one mapping{err.where}: keep one"
        ) from None
    except RecursionError:
        raise EditError(f"plan {file} is nested too deeply: a plan is a list of operations") from None
    if data is None:
        data = {"operations": []}
    return parse_plan(data)


class _DuplicateKey(Exception):
    def __init__(self, key: object, where: str = "") -> None:
        super().__init__(key)
        self.key, self.where = key, where


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (the last would silently win)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


_MERGE = "tag:yaml.org,2002:merge"
_YamlBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _PlanLoader(_YamlBase):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader (the C one where PyYAML has it), refusing a key given twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        own = node.value[:]  # before `<<` merge keys are flattened into it
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        merges = any(key_node.tag == _MERGE for key_node, _ in own)
        if not merges and len(mapping) == len(own):  # each key once: nothing more to look at
            return mapping
        seen: set[object] = set()
        for key_node, _ in own:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                mark = key_node.start_mark
                raise _DuplicateKey(key, f" (line {mark.line + 1})")
            seen.add(key)
        return mapping


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_PlanLoader)


def _parse_error(err: json.JSONDecodeError | yaml.YAMLError) -> str:
    """The parser's complaint in one line (PyYAML's spans several, with a quote of the input)."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{err.problem}{where}"
    return " ".join(str(err).split())
