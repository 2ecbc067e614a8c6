"""What the graph validator reports: the codes it finds and their severities, and the findings.

Each finding is an `Issue` with a code; `SEVERITIES` gives each code's severity, by `check`'s
rule: an error when a loader refuses the model (or fails running what the model's graph calls), a
warning when TensorFlow ignores it. They sit apart from the checks so that `check` and the tests
read the table without the validator's machinery.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

SEVERITIES: dict[str, Literal["error", "warning"]] = {
    # The op is neither registered in TensorFlow nor a function of the library: every loader
    # refuses the graph (`Op type not registered`), unless the server loads the op's library.
    "unknown-op": "error",
    # An attr the OpDef declares, without a default, is not set (`NodeDef missing attr`).
    "missing-attr": "error",
    # An attr holds no value (`<Unknown AttrValue type>`; an empty list is fine in the v1 graph)
    # or a value of another type than the OpDef declares, or an invalid or ref DataType.
    "attr-type": "error",
    # An attr's value is not among the OpDef's allowed values, or is below its minimum.
    "attr-value": "error",
    # A placeholder attr (`$T`) outside a function body, or one its function does not bind.
    "attr-placeholder": "error",
    # An attr the OpDef does not declare (and not `_`-prefixed): TensorFlow 2 logs it and ignores it.
    "unknown-attr": "warning",
    # An attr of a function body's node with no value set, declared or not: instantiating the
    # function fails (`Failed to bind all placeholders in <Unknown AttrValue type>`).
    "empty-attr": "error",
    # Another number of data inputs than the OpDef (and its number and type-list attrs) says.
    "input-count": "error",
    # A data input after a control input.
    "input-order": "error",
    # An input TensorFlow cannot parse: a control input with an output index, a function-body
    # input that is not `node:output_arg:index` or an argument name.
    "input-form": "error",
    # An input naming a node (or function argument, or output argument) that does not exist.
    "missing-input": "error",
    # An input reading an output index the source node does not have.
    "input-index": "error",
    # An edge whose dtype the consuming input does not accept.
    "edge-dtype": "error",
    # Two nodes (or a node and a function argument) with one name.
    "duplicate-node": "error",
    # A node name TensorFlow's importer refuses (characters, leading `_`).
    "node-name": "error",
    # A function output without a `ret`, a `ret` or `control_ret` naming nothing, a `ret` of
    # another dtype than its output argument.
    "function-ret": "error",
    # A call node whose `Tin`/`Tout` are not the types its function takes and returns.
    "call-types": "error",
    # A function attr (or gradient) naming a function the library does not have.
    "unknown-function": "error",
    # A function calling itself, directly (the C++ loader refuses) or through others (the TF2 loader).
    "recursive-function": "error",
    # A library function named like a registered op: the library cannot be added to a graph.
    "function-name": "error",
    # Two functions of the library with one name: the TF2 loader refuses the library; the C++
    # runtime takes an identical copy and refuses a different one.
    "duplicate-function": "error",
    # A PlaceholderWithDefault whose default has another dtype or an incompatible shape.
    "placeholder-default": "error",
    # A constant with a negative dim (the C++ loader refuses it at load), or one something reads
    # whose value has another dtype than the node says or another size than its shape.
    "const-value": "error",
    # `_output_shapes` listing fewer shapes than the node has outputs: the importer refuses it.
    "output-shapes": "error",
    # A device string TensorFlow's device parser refuses.
    "device": "error",
    # An op removed at the GraphDef version that produced the graph (`OpDef.deprecation`).
    "deprecated-op": "error",
    # An error in a function no loader instantiates (no call of the v1 graph reaches it, and the
    # TF2 loader does not check that problem at load): every loader loads the model.
    "unused-function": "warning",
    # An error TensorFlow meets only running the node (a call's types), in a v1 graph node no
    # signature, init or restore op runs: every loader loads the model.
    "unrun-node": "warning",
}
"""Every code the validator reports, and its severity."""


class Issue(NamedTuple):
    """One problem: a code of `SEVERITIES`, where (function and node, None for the graph or the
    function itself) and a message that says what is wrong and what to do. `subject`: what the
    finding is about, for a caller that may have said it already (the node; for `unknown-function`
    the function named)."""

    code: str
    function: str | None
    node: str | None
    message: str
    subject: str | None = None
