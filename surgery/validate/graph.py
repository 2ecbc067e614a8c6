"""The v1 graph (`MetaGraphDef.graph_def`), as the v1 session loader and TensorFlow Serving's C++
loader import it, and which of its findings each loader meets.

`ImportGraphDef` imports the graph node by node: each node's op looked up, its attrs completed
with the op's defaults and validated, its inputs (`node:index`, `^node`) counted and typed, the
op's deprecation checked against `GraphDef.versions.producer`; the placer parses its devices.
Some findings fail only the C++ or only the Python loader, and some only running the node: those
are errors only for the nodes a signature, init or restore op runs, which `Graph.issues` works out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator

from surgery.schema import MetaGraphDef, NodeDef, TensorInfo
from surgery.validate.inputs import ScopeNodes
from surgery.validate.nodes import CC_ONLY, PRUNED, PY_ONLY, RUN_ONLY
from surgery.validate.results import SEVERITIES, Issue

_GRAPH_TAILS = {
    CC_ONLY: "; the C++ loader (TensorFlow Serving) refuses the graph (the Python v1 loader reads it)",
    PY_ONLY: "; the Python v1 loader refuses the graph (TensorFlow Serving's C++ loader reads it)",
    RUN_ONLY: "; the v1 and C++ loaders (TensorFlow Serving) fail running it",
    PRUNED: (
        "; the TF2 loader fails running it (it prunes the signature into a function, which cannot "
        "bind the attr); the v1 and C++ loaders (TensorFlow Serving) read it"
    ),
}


def _graph_input(text: str) -> tuple[str, int]:
    """A v1 graph input as TensorFlow's ParseTensorName reads it: (node, index), index -1 for `^node`."""
    if text.startswith("^"):
        return text[1:], -1
    node, colon, index = text.rpartition(":")
    if colon and node and index.isascii() and index.isdigit():
        return node, int(index)
    return text, 0


def _tensor_names(info: TensorInfo) -> Iterator[str]:
    """The graph tensors a TensorInfo names: dense, COO sparse or composite."""
    sparse = info.coo_sparse
    names = (info.name, sparse.values_tensor_name, sparse.indices_tensor_name, sparse.dense_shape_tensor_name)
    yield from (name for name in names if name)
    yield from (component.name for component in info.composite_tensor.components if component.name)


class Graph(ScopeNodes):
    """The v1 graph's nodes, checked one by one and then by their inputs."""

    def validate(self) -> None:
        checker, scope, nodes = self.checker, self.scope, self.nodes
        graph = checker.meta.graph_def
        for node in graph.node:
            if node.name in nodes:
                scope.add("duplicate-node", node.name, "another node of the graph has this name: rename one")
                continue
            nodes[node.name] = checker.node_header(scope, node, in_function=False)
        for info in nodes.values():
            self.inputs(info)
        self.read_constants()
        for gradient in graph.library.gradient:
            for name in (gradient.function_name, gradient.gradient_func):
                if name not in checker.library:
                    scope.add(
                        "unknown-function",
                        None,
                        f"the library's gradient entry names function {name!r}, which the library does not "
                        "have: remove the entry or add the function",
                        PY_ONLY,
                        name,
                    )

    def control_input(self, node: NodeDef, text: str) -> None:
        source = text[1:]
        if ":" in source:
            self.scope.add(
                "input-form",
                node.name,
                f"control input {text!r} has an output index; a control input is '^node'",
            )
        elif source not in self.nodes:
            self.scope.add("missing-input", node.name, f"control input {text!r} names no node of the graph")

    def data_input(self, node: NodeDef, text: str) -> int | None:
        scope = self.scope
        source, index = _graph_input(text)
        producer = self.nodes.get(source)
        if producer is None:
            scope.add("missing-input", node.name, f"input {text!r} names no node of the graph")
            return None
        scope.consumed.add(source)
        flat = producer.flat
        if flat is None:
            return None
        if index >= len(flat):
            scope.add(
                "input-index",
                node.name,
                f"input {text!r} reads output {index} of {source!r}, which has {len(flat)} output(s)",
            )
            return None
        return flat[index]

    def default_source(self, text: str) -> NodeDef | None:
        return self.nodes[_graph_input(text)[0]].node

    def issues(self) -> list[Issue]:
        """The graph's findings, each error saying which loaders refuse the model for it; an error
        met only running a node that nothing the loaders run reaches is an `unrun-node` warning."""
        checker, graph = self.checker, self.scope
        tail = (
            "; the v1 and C++ loaders (TensorFlow Serving) refuse the graph"
            if checker.tf2
            else "; TensorFlow's loaders refuse the graph"
        )
        issues = []
        found = graph.found
        run = (
            _run_nodes(checker.meta) if any(flags & (RUN_ONLY | PRUNED) for *_, flags, _ in found) else set()
        )
        for code, node, message, flags, subject in found:
            if flags & PRUNED and checker.tf2:
                continue  # the TF2 loader runs a TF2 model's functions, never its v1 graph
            if flags & (RUN_ONLY | PRUNED) and node not in run:
                message += (
                    f" ({code}); no signature, init or restore op runs this node, so every loader loads "
                    "the model: fix it before anything runs it (a v1 Saver's save runs the save call)"
                )
                code = "unrun-node"
            elif SEVERITIES[code] == "error":
                message += _GRAPH_TAILS.get(flags & (CC_ONLY | PY_ONLY | RUN_ONLY | PRUNED), tail)
            issues.append(Issue(code, None, node, f"{graph.where(node)}: {message}", subject or node))
        return issues


def _run_nodes(meta: MetaGraphDef) -> set[str]:
    """The v1 graph's nodes the loaders run: what each signature's outputs need short of the
    tensors it feeds, and what the saver's restore and the collections' ops (init ops, table
    initializers) need, through data and control inputs."""
    nodes = {node.name: node for node in meta.graph_def.node}
    seen: set[str] = set()

    def walk(start: Iterable[str], fed: Collection[str]) -> None:
        stack = [name.partition(":")[0].lstrip("^") for name in start if name]
        while stack:
            name = stack.pop()
            node = nodes.get(name)
            if node is None or name in seen:
                continue
            seen.add(name)
            for text in node.input:
                if text[:1] == "^":
                    stack.append(text[1:])
                    continue
                source, index = _graph_input(text)
                if f"{source}:{index}" not in fed:
                    stack.append(source)

    for signature in meta.signature_def.values():
        fed = {
            "{}:{}".format(*_graph_input(name))
            for info in signature.inputs.values()
            for name in _tensor_names(info)
        }
        walk((name for info in signature.outputs.values() for name in _tensor_names(info)), fed)
    walk((meta.saver_def.restore_op_name, meta.saver_def.filename_tensor_name), ())
    walk((n for c in meta.collection_def.values() for n in c.node_list.value), ())
    return seen
