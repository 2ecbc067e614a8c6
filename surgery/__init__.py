"""savedmodel-surgery: edit TensorFlow SavedModels on disk with protobuf alone."""

from surgery.check import CheckReport, Finding, check
from surgery.convert import ConvertResult, convert
from surgery.errors import (
    ConsistencyError,
    EditError,
    SavedModelIOError,
    SchemaError,
    SurgeryError,
    SurgeryWarning,
)
from surgery.explain import Explanation, explain
from surgery.io import Model, load, save

__version__ = "0.1.0"

__all__ = [
    "CheckReport",
    "ConsistencyError",
    "ConvertResult",
    "EditError",
    "Explanation",
    "Finding",
    "Model",
    "SavedModelIOError",
    "SchemaError",
    "SurgeryError",
    "SurgeryWarning",
    "__version__",
    "check",
    "convert",
    "explain",
    "load",
    "save",
]
