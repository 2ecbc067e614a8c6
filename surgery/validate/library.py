"""The library as a whole: which functions a loader instantiates, and what no single body shows.

A problem in a function body fails the TF2 loader, which imports every function at load, and the
v1 and C++ loaders only when their v1 graph calls the function (they instantiate what it
reaches): each function finding says which loaders refuse the model, and one that no loader meets
is an `unused-function` warning. What only the library shows is checked here too: a function
named like a registered op, a function that calls itself, two functions of one name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from surgery.validate.nodes import CALL, CC, TF2, NodeChecker, Scope
from surgery.validate.registry import op_spec
from surgery.validate.results import SEVERITIES, Issue


def library_issues(
    checker: NodeChecker, graph_calls: Iterable[str], bodies: Mapping[str, Scope]
) -> list[Issue]:
    """The findings of every function body (`bodies`, by name; `graph_calls`: the functions the v1
    graph calls), then of the library: recursion, duplicate functions."""
    reached = _closure(graph_calls, {name: scope.calls for name, scope in bodies.items()})
    issues = []
    for name, scope in bodies.items():
        issues += _function_issues(name, scope, called=name in reached)
    issues += _recursion(checker, {name: scope.refs for name, scope in bodies.items()})
    for name, differs in checker.duplicates:
        if differs:
            refusers = "every loader refuses the model (a different function with the same name)"
        elif checker.tf2:
            refusers = "the TF2 loader refuses the model (the v1 and C++ loaders take an identical copy)"
        else:
            continue  # an identical copy in a TF1 model: every loader takes it
        issues.append(
            Issue(
                "duplicate-function",
                name,
                None,
                f"function {name!r}: the library has another function of this name, and {refusers}: "
                "remove the copy, or rename it and its callers",
            )
        )
    return issues


def _function_issues(name: str, scope: Scope, *, called: bool) -> list[Issue]:
    """A function's findings, each error saying which loaders refuse the model for it; an error
    no loader meets (the function is never instantiated) is an `unused-function` warning."""
    issues: list[Issue] = []
    if op_spec(name) is not None:
        issues.append(
            Issue(
                "function-name",
                name,
                None,
                f"function {name!r}: TensorFlow registers an op of this name, so its loaders cannot add "
                "the library to a graph: rename the function and its callers",
            )
        )
    for code, node, message, flags, subject in scope.found:
        text = f"{scope.where(node)}: {message}"
        if SEVERITIES[code] != "error":
            issues.append(Issue(code, name, node, text, subject or node))
            continue
        tail = _refusal(flags, called)
        if tail:
            issues.append(Issue(code, name, node, f"{text}; {tail}", subject or node))
            continue
        why = (
            "no call of the v1 graph reaches this function and the TF2 loader does not check this at "
            "load, so every loader loads the model: fix it before anything calls the function, or "
            "remove it"
        )
        issues.append(Issue("unused-function", name, node, f"{text} ({code}); {why}", subject or node))
    return issues


def _refusal(flags: int, called: bool) -> str:
    """Which loaders refuse a model for a function problem with these flags ("": none)."""
    refusers = []
    if flags & TF2:
        refusers.append("the TF2 loader refuses the model")
    if flags & CALL and called:
        refusers.append("the v1 and C++ loaders fail instantiating it")
    elif flags & CC:
        refusers.append("the C++ loader (TensorFlow Serving) refuses the model at load")
    if flags & CALL and flags & TF2 and not called and not flags & CC:
        refusers.append("the v1 and C++ loaders (TensorFlow Serving) never run this function")
    return "; ".join(refusers)


def _recursion(checker: NodeChecker, calls: Mapping[str, set[str]]) -> list[Issue]:
    """Functions that call themselves: by name (the C++ loader's load-time check refuses it) or
    through func attrs and other functions (the TF2 loader refuses the cycle)."""
    issues = []
    for name in _cyclic(calls):
        function = checker.library.get(name)
        by_name = function is not None and any(n.op == name for n in function.node_def)
        refusers = ["the C++ loader (TensorFlow Serving) refuses the model at load"] if by_name else []
        if checker.tf2:
            refusers.append("the TF2 loader refuses it (a cyclic dependency between functions)")
        refusers = refusers or ["TensorFlow cannot instantiate it"]
        how = "calls itself by name" if by_name else "calls itself through func attrs or other functions"
        issues.append(
            Issue(
                "recursive-function",
                name,
                None,
                f"function {name!r} {how}, and a TensorFlow function cannot recurse: write a loop; "
                + "; ".join(refusers),
            )
        )
    return issues


def _closure(start: Iterable[str], calls: Mapping[str, set[str]]) -> set[str]:
    """The functions `start` reach through `calls`, themselves included."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(calls.get(name, ()))
    return seen


def _cyclic(calls: Mapping[str, set[str]]) -> list[str]:
    """The functions on a cycle of `calls` (those that reach themselves), in name order."""
    return [name for name in sorted(calls) if name in _closure(calls.get(name, ()), calls)]
