"""The graph validator: every node checked against TensorFlow's op registry, as its loaders do.

`check` compares the places that define a signature; this package checks what TensorFlow's loaders
check when they import a graph, so that a model they refuse is not called consistent:

- the v1 graph (`MetaGraphDef.graph_def`), which the v1 session loader and TensorFlow Serving's C++
  loader import node by node (`ImportGraphDef`: each node's op looked up, its attrs completed
  with the op's defaults and validated, its inputs counted and typed, the op's deprecation
  checked against `GraphDef.versions.producer`), and whose devices the placer parses;
- every function of the library (`FunctionDef.node_def`), which the TF2 loader imports one by one
  at load (`function_def_to_graph`: the same import, `node:output_arg:index` input names) and the
  v1 and C++ loaders instantiate when their graph calls it (`InstantiateFunction`);
- what the C++ loader checks of every node's constant at load (`ValidateSavedTensors`).

Each finding is an `Issue` with a code; `SEVERITIES` gives each code's severity, by `check`'s
rule: an error when a loader refuses the model (or fails running what the model's graph calls),
a warning when TensorFlow ignores it. A problem in a function body carries who meets it (`TF2`,
`CALL`, `CC`); one that no loader meets, in a function nothing the v1 graph calls, is an
`unused-function` warning. Validation reads no bulk bytes: a constant whose contents were left on
disk (`surgery.lazy`) is checked by its dtype and shape only.

The modules: `results` (codes, severities, `Issue`), `registry` (what the op registry says of an
op), `attrs` (attr values and device strings), `nodes` (a node by itself), `inputs` (a node's
inputs), `graph` (the v1 graph), `body` (a function body) and `library` (the library as a whole).
"""

from __future__ import annotations

from collections.abc import Collection

from surgery.schema import MetaGraphDef
from surgery.validate.body import Body
from surgery.validate.graph import Graph
from surgery.validate.library import library_issues
from surgery.validate.nodes import NodeChecker, Scope
from surgery.validate.registry import custom_op_library
from surgery.validate.results import SEVERITIES, Issue

__all__ = ["SEVERITIES", "Issue", "custom_op_library", "validate"]


def validate(meta: MetaGraphDef, *, allow_ops: Collection[str] = ()) -> list[Issue]:
    """Every problem TensorFlow's loaders find in the v1 graph and the function library of `meta`.

    `allow_ops` are ops the caller's server registers although TensorFlow does not (a custom-op
    library's): their nodes are accepted as they are.
    """
    checker = NodeChecker(meta, allow_ops)
    graph = Graph(checker, Scope(None))
    graph.validate()
    issues = graph.issues()
    bodies = {}
    for name, function in checker.library.items():
        scope = Scope(function)
        Body(checker, scope, function).validate()
        bodies[name] = scope
    return issues + library_issues(checker, graph.scope.calls, bodies)
