"""A function of the library, as the TF2 loader imports it and the v1 and C++ loaders instantiate it.

The TF2 loader imports every function at load (`function_def_to_graph`: the v1 graph's import,
with `node:output_arg:index` input names), and the v1 and C++ loaders instantiate the functions
their graph calls (`InstantiateFunction`). A function body names an argument by its name and a
node's output `node:output_arg:index`, the only forms both read; its `ret` and `control_ret` map
its outputs to values of the body. Which loaders a finding here fails depends on who calls the
function, which `surgery.validate.library` works out.
"""

from __future__ import annotations

from surgery.schema import FunctionDef, NodeDef
from surgery.tensors import dtype_name
from surgery.validate.inputs import ScopeNodes
from surgery.validate.nodes import CALL, TF2, NodeChecker, Scope
from surgery.validate.registry import REF, Types


class Body(ScopeNodes):
    """One function body, its arguments and nodes named as InstantiateFunction and the TF2 loader's
    `function_def_to_graph` name them: `arg` for an argument, `node:output_arg:index` for a node's
    output (the only forms both read)."""

    def __init__(self, checker: NodeChecker, scope: Scope, function: FunctionDef) -> None:
        super().__init__(checker, scope)
        self.function = function
        self.args: dict[str, Types | None] = {}

    def validate(self) -> None:
        checker, scope, function = self.checker, self.scope, self.function
        signature = function.signature
        for arg in signature.input_arg:
            if arg.name in self.args:
                scope.add("duplicate-node", None, f"two arguments are named {arg.name!r}: rename one")
            fixed = arg.type and not (arg.number_attr or arg.type_list_attr)
            self.args[arg.name] = [arg.type + REF if arg.is_ref else arg.type] if fixed else None
        nodes, args = self.nodes, self.args
        for node in function.node_def:
            name = node.name
            if name in nodes or name in args:
                scope.add(
                    "duplicate-node",
                    name,
                    "another node or argument of the function has this name: rename one",
                )
                continue
            nodes[name] = checker.node_header(scope, node, in_function=True)
        for info in nodes.values():
            self.inputs(info)
        self.returns()
        self.read_constants()

    def resolve(self, text: str) -> tuple[NodeDef | None, Types | None] | None:
        """What a value name reads: (its node, None for an argument; its dtypes); None: nothing."""
        if text in self.args:
            return None, self.args[text]
        parts = text.split(":")
        if len(parts) != 3 or not (parts[2].isascii() and parts[2].isdigit()):
            return None
        info = self.nodes.get(parts[0])
        if info is None or info.spec is None:
            return (info.node, None) if info is not None else None
        position = info.spec.output_index.get(parts[1])
        if position is None:
            return None
        if info.out_types is None:
            return info.node, None
        types = info.out_types[position]
        index = int(parts[2])
        return (info.node, [types[index]]) if index < len(types) else None

    def control_input(self, node: NodeDef, text: str) -> None:
        name = text[1:]
        if name not in self.nodes and name not in self.args:
            self.scope.add(
                "missing-input", node.name, f"control input {text!r} names no node of the function"
            )

    def default_source(self, text: str) -> NodeDef | None:
        source = self.nodes.get(text.partition(":")[0])
        return source.node if source is not None else None

    def cc_reads(self, name: str, suffix: str) -> bool:
        """Whether TensorFlow's C++ function instantiation reads `name:suffix`: an argument's
        element (`arg:0`) or a node's whole output argument (`node:output_arg`)."""
        if name in self.args:
            return suffix.isascii() and suffix.isdigit()
        info = self.nodes.get(name)
        return info is not None and info.spec is not None and suffix in info.spec.output_index

    def data_input(self, node: NodeDef, text: str) -> int | None:
        scope = self.scope
        if text in self.args:
            types = self.args[text]
            return types[0] if types is not None and len(types) == 1 else None
        parts = text.split(":")
        if len(parts) == 1 and text not in self.nodes:
            scope.add("missing-input", node.name, f"input {text!r} names no argument of the function")
            return None
        if len(parts) != 3 or not (parts[2].isascii() and parts[2].isdigit()):
            known = len(parts) == 2 and self.cc_reads(parts[0], parts[1])
            scope.add(
                "input-form",
                node.name,
                f"input {text!r} is neither an argument of the function nor 'node:output_arg:index', the "
                "forms the TF2 loader reads in a function body"
                + (" (TensorFlow's C++ runtime reads it too)" if known else ""),
                TF2 if known else TF2 | CALL,
            )
            return None
        source, output, index_text = parts
        info = self.nodes.get(source)
        if info is None:
            scope.add("missing-input", node.name, f"input {text!r} names no node of the function")
            return None
        scope.consumed.add(source)
        spec = info.spec
        if spec is None:
            return None
        position = spec.output_index.get(output)
        if position is None:
            names = ", ".join(a.name for a in spec.outputs) or "none"
            scope.add(
                "missing-input",
                node.name,
                f"input {text!r}: op {spec.name!r} of {source!r} has no output {output!r} "
                f"(its outputs: {names})",
            )
            return None
        if info.out_types is None:
            return None
        types = info.out_types[position]
        index = int(index_text)
        if index >= len(types):
            scope.add(
                "input-index",
                node.name,
                f"input {text!r} reads element {index} of output {output!r} of {source!r}, which has "
                f"{len(types)}",
            )
            return None
        return types[index]

    def returns(self) -> None:
        """Every output argument has a `ret` naming a value of its dtype; control returns resolve."""
        scope, function = self.scope, self.function
        signature = function.signature
        for arg in signature.output_arg:
            value = function.ret.get(arg.name)
            if value is None:
                scope.add(
                    "function-ret", None, f"output {arg.name!r} has no ret: map it to a value of the body"
                )
                continue
            resolved = self.resolve(value)
            if resolved is not None and resolved[0] is not None:
                scope.consumed.add(resolved[0].name)
            if resolved is None:
                scope.add(
                    "function-ret", None, f"ret {arg.name!r} is {value!r}, which names no value of the body"
                )
                continue
            types = resolved[1]
            if types is not None and arg.type and types != [arg.type]:
                scope.add(
                    "function-ret",
                    None,
                    f"ret {arg.name!r} is {value!r}, a {dtype_name(types[0])}, where the output is declared "
                    f"{dtype_name(arg.type)}: return a {dtype_name(arg.type)}",
                    CALL,
                )
        for name in signature.control_output:
            target = function.control_ret.get(name)
            if target is None:
                scope.add("function-ret", None, f"control output {name!r} has no control_ret: add one", TF2)
            elif target not in self.nodes:
                scope.add(
                    "function-ret",
                    None,
                    f"control_ret {name!r} is {target!r}, which names no node of the body",
                    TF2,
                )
