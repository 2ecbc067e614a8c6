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

from typing import TYPE_CHECKING, Any

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
from surgery.errors import (
    ConsistencyError,
    EditError,
    SavedModelIOError,
    SchemaError,
    SurgeryError,
    SurgeryWarning,
)
from surgery.explain import explain, explain_dot, explain_html, explain_text
from surgery.graph_changes import graph_diff
from surgery.model import Model
from surgery.runner import EditResult, Job, OperationCall, execute, run
from surgery.storage import load, save
from surgery.tensor_edits import rename_tensor, set_shape

if TYPE_CHECKING:
    from surgery.explain.build import Explanation
    from surgery.plans import Plan, load_plan
    from surgery.reports import Change, CheckReport, ConvertResult, Finding, GraphChange

# Imported on first use: an edit on the command line needs neither YAML and the plan models nor
# pydantic (the reports). (Only names unlike their module's: importing `surgery.convert` binds
# that name to the module, so the functions named like their modules are imported above.)
_LAZY = {
    "Plan": "surgery.plans",
    "load_plan": "surgery.plans",
    "Change": "surgery.reports",
    "CheckReport": "surgery.reports",
    "ConvertResult": "surgery.reports",
    "Finding": "surgery.findings",
    "GraphChange": "surgery.reports",
    "Explanation": "surgery.explain.build",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

# `open` is public too (`surgery.open(path)` is `load`), but left out of `__all__` so that
# `from surgery import *` never shadows the builtin.
open = load
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
