"""Every edit, declared once: its name, arguments, function, help and examples.

The plan schema (`plans.py`), the edit commands of the command line (`cli.py`), the docs' table
of edits and the tests' catalogue of edits are derived from `OPERATIONS`. Adding an edit is one
function (in `edits.py`, `tensor_edits.py` or `dtype_edits.py`) and one `Operation` here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from surgery import dtype_edits, edits, tensor_edits
from surgery.errors import EditError

if TYPE_CHECKING:
    from surgery.model import Model

Kind = Literal["text", "tags", "shape", "dtype", "flag"]
"""How an argument is spelled: `text` a string; `tags` comma-separated on the command line, a
list in a plan; `shape` the command line's SHAPE text, a list of dims (or null) in a plan;
`dtype` a dtype name; `flag` a boolean option."""


@dataclass(frozen=True)
class Argument:
    """One argument of an edit: a keyword of its function and a field of its plan entry."""

    name: str
    kind: Kind = "text"
    help: str = ""
    """For a flag: its `--help` line (arguments are described by the command's help)."""
    option: str = ""
    """For a flag: its spelling on the command line, when not `--NAME`."""
    pattern_flag: str | None = None
    """The flag that makes this argument a regular expression (in a plan: a field of that name
    holding the pattern, in place of this one)."""

    @property
    def metavar(self) -> str:
        """The command line's name for it (`OLD_TAGS`)."""
        return self.name.upper() + ("_TAGS" if self.kind == "tags" else "")


@dataclass(frozen=True)
class Operation:
    """One edit: what the plan entry `{op: NAME, ...}`, the command `NAME MODEL ARGS...` and the
    Python function share."""

    name: str
    function: Callable[..., Model]
    arguments: tuple[Argument, ...]
    help: str
    """The first line says what it does; the rest, how (the command's `--help`)."""
    examples: tuple[str, ...]
    """Command lines (without the program's name) that show it."""
    tag_set: bool = True
    """Whether it takes `tag_set` (`--tag-set`): edits of one meta graph's signatures do."""

    @property
    def positional(self) -> tuple[Argument, ...]:
        return tuple(a for a in self.arguments if a.kind != "flag")

    @property
    def flags(self) -> tuple[Argument, ...]:
        return tuple(a for a in self.arguments if a.kind == "flag")

    @property
    def summary(self) -> str:
        return self.help.split("\n", 1)[0]

    def apply(self, model: Model, values: Mapping[str, Any]) -> Model:
        """Run the edit on `model` with arguments by name (positional ones required; flags and
        `tag_set` optional), as the function takes them; a missing or unknown name is an `EditError`."""
        names = [a.name for a in self.arguments]
        unknown = sorted(set(values) - {*names, "tag_set"})
        missing = [a.name for a in self.positional if a.name not in values]
        if unknown or missing:
            wrong = f"no argument {unknown[0]!r}" if unknown else f"argument {missing[0]!r} is missing"
            raise EditError(f"{self.name}: {wrong}; it takes {', '.join(names)}")
        args = [values[a.name] for a in self.positional]
        options: dict[str, Any] = {a.name: bool(values.get(a.name, False)) for a in self.flags}
        if self.tag_set:
            options["tag_set"] = values.get("tag_set")
        return self.function(model, *args, **options)

    def usage(self) -> str:
        """`set-shape MODEL SIGNATURE KEY SHAPE [--output-key]`: the command's synopsis."""
        flags = "".join(f" [{a.option or '--' + a.name}]" for a in self.flags)
        return " ".join([self.name, "MODEL", *(a.metavar for a in self.positional)]) + flags

    def call(self) -> str:
        """`rename_input(model, signature, old, new)`: the function's synopsis."""
        names = ["model", *(a.name for a in self.positional)]
        names += [f"{a.name}=False" for a in self.flags]
        return f"{self.function.__name__}({', '.join(names)})"

    def entry(self) -> str:
        """`{op: rename-input, signature, old, new}`: the plan entry's fields."""
        fields = []
        for argument in self.arguments:
            if argument.pattern_flag:
                fields.append(f"{argument.name} or {argument.pattern_flag}")
            elif not any(a.pattern_flag == argument.name for a in self.arguments):
                fields.append(argument.name)
        return "{" + ", ".join([f"op: {self.name}", *fields]) + "}"


_OUTPUT = Argument("output", "flag", "KEY is an output, not an input.", option="--output-key")

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "rename-signature",
            edits.rename_signature,
            (
                Argument("old", pattern_flag="regex"),
                Argument("new"),
                Argument(
                    "regex",
                    "flag",
                    "OLD is a regular expression and NEW its replacement (\\1 for a group), applied to "
                    "every signature key but the reserved ones.",
                ),
            ),
            "Rename signature key OLD to NEW (for both the v1 and the TF2 loader).",
            (
                "rename-signature ./my_model serving_default predict -o ./renamed",
                "rename-signature ./my_model serving_default predict --dry-run",
                "rename-signature ./my_model '^(.+)$' 'v2_\\1' --regex -o ./versioned",
            ),
        ),
        Operation(
            "rename-input",
            edits.rename_input,
            (Argument("signature"), Argument("old"), Argument("new")),
            "Rename input key OLD of SIGNATURE to NEW.\n\n"
            "When the new key sorts elsewhere, the wrapper function's arguments and the call node's "
            "inputs are reordered to match, so both loaders keep handing each value to the right input.",
            ("rename-input ./my_model serving_default input_1 images -o ./fixed",),
        ),
        Operation(
            "rename-output",
            edits.rename_output,
            (Argument("signature"), Argument("old"), Argument("new")),
            "Rename output key OLD of SIGNATURE to NEW.\n\n"
            "When the new key sorts elsewhere, the wrapper's results, the call node's outputs and the "
            "`:i` tensor names are reordered to match.",
            ("rename-output ./my_model serving_default output_0 scores -o ./fixed",),
        ),
        Operation(
            "remove-signature",
            edits.remove_signature,
            (Argument("signature"),),
            "Delete SIGNATURE (for both loaders).",
            ("remove-signature ./my_model preprocess -o ./slim",),
        ),
        Operation(
            "copy-signature",
            edits.copy_signature,
            (Argument("src"), Argument("dst")),
            "Add DST as a second signature that serves exactly what SRC serves.",
            ("copy-signature ./my_model predict serving_default -o ./aliased",),
        ),
        Operation(
            "set-method",
            edits.set_method,
            (Argument("signature"), Argument("method")),
            "Set the method_name of SIGNATURE (e.g. tensorflow/serving/regress).",
            ("set-method ./my_model serving_default tensorflow/serving/predict --in-place",),
        ),
        Operation(
            "set-tags",
            edits.set_tags,
            (Argument("old", "tags"), Argument("new", "tags")),
            "Change the tag set OLD_TAGS of one meta graph to NEW_TAGS (comma-separated).",
            ("set-tags ./my_model serve,gpu serve,tpu -o ./tpu_model",),
            tag_set=False,
        ),
        Operation(
            "set-shape",
            tensor_edits.set_shape,
            (Argument("signature"), Argument("key"), Argument("shape", "shape"), _OUTPUT),
            "Set the shape of input KEY of SIGNATURE (of output KEY with --output-key).\n\n"
            'SHAPE is comma-separated dims, -1 or ? for an unknown dim, "" for a scalar, * for unknown '
            "rank. Every place that records the shape changes (TensorInfo, placeholder, wrapper "
            "function, object graph). A shape the graph contradicts is refused; a change whose effect "
            "cannot be verified is made with a one-line warning.",
            (
                "set-shape ./my_model fixed row -1,4 -o ./relaxed",
                "set-shape ./relaxed fixed out -1 --output-key --in-place",
            ),
        ),
        Operation(
            "set-dtype",
            dtype_edits.set_dtype,
            (Argument("signature"), Argument("key"), Argument("dtype", "dtype"), _OUTPUT),
            "Set the dtype of input KEY of SIGNATURE (of output KEY with --output-key), inserting a Cast.\n\n"
            "An input takes DTYPE and is cast to the old dtype where it enters the model; an output is "
            "cast to DTYPE where it leaves. Casts TensorFlow cannot do are refused; lossy ones warn.",
            ("set-dtype ./my_model preprocess as_float float16 --output-key -o ./half",),
        ),
        Operation(
            "rename-tensor",
            tensor_edits.rename_tensor,
            (Argument("old"), Argument("new")),
            "Rename graph tensor OLD to NEW (input_x:0 -> images:0) and every reference to it.\n\n"
            "The node is renamed in the v1 graph with its inputs, colocations, every signature's "
            "TensorInfo, collections and the saver; in a TF2 model only signature placeholders.",
            ("rename-tensor ./tf1_model input_x:0 images:0 -o ./renamed",),
        ),
    )
}
"""Every edit, by its name (the plan's `op`, the command's name)."""


def edits_table() -> str:
    """The docs' markdown table of edits, one row per operation: function, command, plan entry."""
    rows = ["| function | command | plan entry |", "|---|---|---|"]
    rows += [f"| `{op.call()}` | `{op.usage()}` | `{op.entry()}` |" for op in OPERATIONS.values()]
    return "\n".join(rows)
