"""Plan files: a list of edits validated whole, then applied in order as one edit.

The field names are the command's argument names (docs/api.md). Validation is pydantic's: an
unknown op or field, a missing field or a bad value is reported with its position
(`operations[2].shape: ...`) before anything is touched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from surgery import edits, tensor_edits
from surgery.errors import EditError
from surgery.io import Model
from surgery.signatures import RESERVED_KEYS
from surgery.tensors import parse_dtype


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    tag_set: list[str] | None = None

    def tags(self) -> frozenset[str] | None:
        return edits.parse_tag_set(self.tag_set) if self.tag_set is not None else None


class RenameSignature(_Op):
    op: Literal["rename-signature"]
    old: str | None = None
    regex: str | None = None
    new: str

    @model_validator(mode="after")
    def _old_or_regex(self) -> RenameSignature:
        if (self.old is None) == (self.regex is None):
            raise ValueError("give exactly one of old (a key) or regex (re.sub over every non-reserved key)")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as err:
                raise ValueError(f"regex does not compile: {err}") from None
        return self

    def apply(self, model: Model) -> None:
        if self.old is not None:
            edits.rename_signature(model, self.old, self.new, tag_set=self.tags())
            return
        assert self.regex is not None
        metas = edits.select_meta_graphs(model, self.tags())
        keys = sorted({k for m in metas for k in m.signature_def if k not in RESERVED_KEYS})
        renames = {k: re.sub(self.regex, self.new, k) for k in keys}
        renames = {k: v for k, v in renames.items() if v != k}
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
            edits.rename_signature(model, key, temp, tag_set=self.tags())
        for key, temp in staged.items():
            edits.rename_signature(model, temp, renames[key], tag_set=self.tags())


class RenameInput(_Op):
    op: Literal["rename-input"]
    signature: str
    old: str
    new: str

    def apply(self, model: Model) -> None:
        edits.rename_input(model, self.signature, self.old, self.new, tag_set=self.tags())


class RenameOutput(_Op):
    op: Literal["rename-output"]
    signature: str
    old: str
    new: str

    def apply(self, model: Model) -> None:
        edits.rename_output(model, self.signature, self.old, self.new, tag_set=self.tags())


class RemoveSignature(_Op):
    op: Literal["remove-signature"]
    signature: str

    def apply(self, model: Model) -> None:
        edits.remove_signature(model, self.signature, tag_set=self.tags())


class CopySignature(_Op):
    op: Literal["copy-signature"]
    src: str
    dst: str

    def apply(self, model: Model) -> None:
        edits.copy_signature(model, self.src, self.dst, tag_set=self.tags())


class SetMethod(_Op):
    op: Literal["set-method"]
    signature: str
    method: str

    def apply(self, model: Model) -> None:
        edits.set_method(model, self.signature, self.method, tag_set=self.tags())


class SetTags(_Op):
    op: Literal["set-tags"]
    old: list[str] = Field(min_length=1)
    new: list[str] = Field(min_length=1)

    def apply(self, model: Model) -> None:
        edits.set_tags(model, self.old, self.new)


class SetShape(_Op):
    op: Literal["set-shape"]
    signature: str
    key: str
    shape: list[Annotated[int, Field(ge=-1, lt=2**63)]] | None
    output: bool = False

    def apply(self, model: Model) -> None:
        shape = None if self.shape is None else tuple(self.shape)
        tensor_edits.set_shape(
            model, self.signature, self.key, shape, output=self.output, tag_set=self.tags()
        )


class SetDtype(_Op):
    op: Literal["set-dtype"]
    signature: str
    key: str
    dtype: str
    output: bool = False

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        try:
            parse_dtype(value)
        except EditError as err:
            raise ValueError(str(err)) from None
        return value

    def apply(self, model: Model) -> None:
        dtype = parse_dtype(self.dtype)
        tensor_edits.set_dtype(
            model, self.signature, self.key, dtype, output=self.output, tag_set=self.tags()
        )


class RenameTensor(_Op):
    op: Literal["rename-tensor"]
    old: str
    new: str

    def apply(self, model: Model) -> None:
        tensor_edits.rename_tensor(model, self.old, self.new, tag_set=self.tags())


Operation = Annotated[
    RenameSignature
    | RenameInput
    | RenameOutput
    | RemoveSignature
    | CopySignature
    | SetMethod
    | SetTags
    | SetShape
    | SetDtype
    | RenameTensor,
    Field(discriminator="op"),
]


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    operations: list[Operation]

    def apply(self, model: Model) -> Model:
        """Apply every operation in order; the first refusal stops the plan (nothing is written)."""
        for index, operation in enumerate(self.operations):
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


_OP_NAMES = {
    "rename-signature",
    "rename-input",
    "rename-output",
    "remove-signature",
    "copy-signature",
    "set-method",
    "set-tags",
    "set-shape",
    "set-dtype",
    "rename-tensor",
}


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
        data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise EditError(f"plan {file} is not valid {kind}: {_parse_error(err)}") from None
    except RecursionError:
        raise EditError(f"plan {file} is nested too deeply: a plan is a list of operations") from None
    if data is None:
        data = {"operations": []}
    return parse_plan(data)


def _parse_error(err: json.JSONDecodeError | yaml.YAMLError) -> str:
    """The parser's complaint in one line (PyYAML's spans several, with a quote of the input)."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{err.problem}{where}"
    return " ".join(str(err).split())
