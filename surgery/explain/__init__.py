"""`explain`: the path from a signature key to the function that runs, place by place.

TensorFlow defines a signature's inputs in five places; this walks any model through them,
read from the `surgery.signatures` views:

1. the `SignatureDef` (what the v1 loader and TensorFlow Serving feed and fetch),
2. the v1 graph's call node that those tensors belong to,
3. the signature-wrapper `FunctionDef` it calls (outputs as a dict, as v1 expects),
4. the function the wrapper calls (the traced `tf.function`, also saved on its object),
5. the object graph's `SavedBareConcreteFunction` under `signatures` (what the TF2 loader finds),
6. its `SavedConcreteFunction`: the input and output TensorSpecs and the bound variables;

then every saved `tf.function` with each of its concrete signatures (several when polymorphic).
Rendered as an indented text tree, Graphviz DOT, a self-contained HTML page, or JSON.

`build` holds the explanation's pydantic models and the walk that makes them, imported on first
use (by `explain`, or by asking this package for a model such as `Explanation`); `render` draws
an explanation and imports no pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from surgery.explain.render import FORMATS, Style, explain_dot, explain_html, explain_text, plain, render_svg
from surgery.storage.readwrite import accepts_path

if TYPE_CHECKING:
    from surgery.explain.build import (
        Explanation,
        Link,
        MetaGraphExplanation,
        Place,
        PlaceKind,
        SignaturePath,
    )
    from surgery.model import Model


@accepts_path
def explain(model: Model, signature: str | None = None) -> Explanation:
    """The walkthrough of every meta graph; with `signature`, of that key only (an error if no meta
    graph has it).

    Render it with `explain_text`, `explain_dot` or `explain_html`, or `model_dump()` it.

    Example:
        >>> explanation = surgery.explain(surgery.load("my_model"), "masked")
        >>> [p.key for p in explanation.meta_graphs[0].signatures]
        ['masked']
        >>> print(surgery.explain_text(explanation).splitlines()[1])
          signature 'masked'
    """
    from surgery.explain.build import build

    return build(model, signature)


# The models of `build`, imported on first use: pydantic only when an explanation is wanted.
_BUILT = ("Explanation", "Link", "MetaGraphExplanation", "Place", "PlaceKind", "SignaturePath")


def __getattr__(name: str) -> Any:
    if name not in _BUILT:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("surgery.explain.build"), name)
    globals()[name] = value
    return value


__all__ = [
    "FORMATS",
    "Explanation",
    "Link",
    "MetaGraphExplanation",
    "Place",
    "PlaceKind",
    "SignaturePath",
    "Style",
    "explain",
    "explain_dot",
    "explain_html",
    "explain_text",
    "plain",
    "render_svg",
]
