"""savedmodel-surgery: edit TensorFlow SavedModels on disk with protobuf alone.

The public API (docs/api.md): read a model with `load` (alias `open`), edit it in memory with
the edit functions, verify it with `check`, write it with `save`; `diff` compares two models,
`convert` writes a text or binary copy, `explain` walks each signature through the places that
define it. Errors are `SurgeryError`s; an edit done with a caveat warns with a `SurgeryWarning`.

    >>> import surgery
    >>> model = surgery.load("my_model")
    >>> model = surgery.rename_signature(model, "serving_default", "predict")
    >>> surgery.check(model).ok
    True
"""

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

from surgery.errors import (
    ConsistencyError,
    EditError,
    SavedModelIOError,
    SchemaError,
    SurgeryError,
    SurgeryWarning,
)

if TYPE_CHECKING:
    from surgery.check import check
    from surgery.convert import convert
    from surgery.diff import diff
    from surgery.dtype_edits import set_dtype
    from surgery.edits import (
        copy_signature,
        remove_signature,
        rename_input,
        rename_output,
        rename_signature,
        set_method,
        set_tags,
    )
    from surgery.explain import explain, explain_dot, explain_html, explain_text
    from surgery.explain.build import Explanation
    from surgery.graph_changes import graph_diff
    from surgery.model import Model
    from surgery.plans import Plan, load_plan
    from surgery.reports import Change, CheckReport, ConvertResult, Finding, GraphChange
    from surgery.runner import EditResult, Job, OperationCall, execute, run
    from surgery.storage import load, save
    from surgery.tensor_edits import rename_tensor, set_shape

    open = load

# Every public name is imported on first use, so that `import surgery` (and the command line's
# start, which a Ctrl-C may interrupt) costs next to nothing, and each command loads only what it
# needs: an edit needs neither YAML and the plan models nor pydantic (the reports).
_LAZY = {
    "check": "surgery.check",
    "convert": "surgery.convert",
    "diff": "surgery.diff",
    "set_dtype": "surgery.dtype_edits",
    **dict.fromkeys(
        (
            "copy_signature",
            "remove_signature",
            "rename_input",
            "rename_output",
            "rename_signature",
            "set_method",
            "set_tags",
        ),
        "surgery.edits",
    ),
    **dict.fromkeys(("explain", "explain_dot", "explain_html", "explain_text"), "surgery.explain"),
    "Explanation": "surgery.explain.build",
    "graph_diff": "surgery.graph_changes",
    "Model": "surgery.model",
    "Plan": "surgery.plans",
    "load_plan": "surgery.plans",
    **dict.fromkeys(("Change", "CheckReport", "ConvertResult", "GraphChange"), "surgery.reports"),
    "Finding": "surgery.findings",
    **dict.fromkeys(("EditResult", "Job", "OperationCall", "execute", "run"), "surgery.runner"),
    **dict.fromkeys(("load", "save"), "surgery.storage"),
    **dict.fromkeys(("rename_tensor", "set_shape"), "surgery.tensor_edits"),
}
_ALIASES = {"open": "load"}

_NAMED_LIKE_MODULES = frozenset({"check", "convert", "diff", "explain"})
"""Functions named like the module that holds them: importing the module must not rebind them."""


def __getattr__(name: str) -> Any:
    target = _ALIASES.get(name, name)
    if target in _LAZY:
        value = getattr(importlib.import_module(_LAZY[target]), target)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # a submodule not imported yet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package, keeping `surgery.check` (and the others named like their module) the function
    when the module is imported: the import system binds the submodule's name on its package."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _NAMED_LIKE_MODULES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__version__ = "0.1.0"

# `open` is public too (`surgery.open(path)` is `load`), but left out of `__all__` so that
# `from surgery import *` never shadows the builtin.
__all__ = [
    "Change",
    "CheckReport",
    "ConsistencyError",
    "ConvertResult",
    "EditError",
    "EditResult",
    "Explanation",
    "Finding",
    "GraphChange",
    "Job",
    "Model",
    "OperationCall",
    "Plan",
    "SavedModelIOError",
    "SchemaError",
    "SurgeryError",
    "SurgeryWarning",
    "__version__",
    "check",
    "convert",
    "copy_signature",
    "diff",
    "execute",
    "explain",
    "explain_dot",
    "explain_html",
    "explain_text",
    "graph_diff",
    "load",
    "load_plan",
    "remove_signature",
    "rename_input",
    "rename_output",
    "rename_signature",
    "rename_tensor",
    "run",
    "save",
    "set_dtype",
    "set_method",
    "set_shape",
    "set_tags",
]
