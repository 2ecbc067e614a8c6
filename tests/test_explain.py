"""`explain`: the five places of a signature, walked for any model, as text, DOT, SVG, HTML and JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import surgery
from conftest import FIXTURE_NAMES, FIXTURES, ROOT, TF2_FIXTURES, copy_fixture, run_cli
from surgery.explain import explain, explain_dot, explain_html, explain_text
from surgery.signatures import user_keys

GOLDEN = ROOT / "tests" / "golden"
WALK = [
    "signature_def",
    "call_node",
    "wrapper_function",
    "function",
    "bare_concrete_function",
    "concrete_function",
]
DOT = shutil.which("dot")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _golden(name: str, text: str) -> None:
    """Set UPDATE_GOLDEN=1 to rewrite the golden files after rebuilding the fixtures."""
    if os.environ.get("UPDATE_GOLDEN"):
        (GOLDEN / name).write_text(text)
    assert text == (GOLDEN / name).read_text()


def _keys(name: str) -> set[str]:
    return {
        k for meta in surgery.load(FIXTURES / name).proto.meta_graphs for k in user_keys(meta.signature_def)
    }


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_text_matches_golden(name: str) -> None:
    _golden(f"explain_{name}.txt", explain_text(explain(surgery.load(FIXTURES / name))))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_dot_matches_golden(name: str) -> None:
    _golden(f"explain_{name}.dot", explain_dot(explain(surgery.load(FIXTURES / name))))


def test_every_golden_file_has_its_fixture() -> None:
    """No golden file is left over from a fixture that is gone (and none is missing)."""
    found = sorted(p.name for p in GOLDEN.glob("explain_*"))
    assert found == sorted(f"explain_{n}.{ext}" for n in FIXTURE_NAMES for ext in ("dot", "txt"))


@pytest.mark.parametrize("name", TF2_FIXTURES)
def test_tf2_signatures_walk_the_five_places(name: str) -> None:
    """Each signature: SignatureDef, call node, wrapper, what it calls, bare and concrete function.

    The call node calls the wrapper the object graph names, and the wrapper calls the function
    that a saved tf.function holds.
    """
    for meta in explain(surgery.load(FIXTURES / name)).meta_graphs:
        assert [p.key for p in meta.signatures] == sorted(_keys(name))
        for path in meta.signatures:
            kinds = [p.kind for p in path.places]
            assert kinds == WALK, (path.key, kinds)
            _, call, wrapper, called, bare, concrete = path.places
            assert not any(p.missing for p in path.places)
            assert [link.to for link in call.links] == [wrapper.id]
            assert [link.to for link in bare.links] == [concrete.id]
            assert [link.to for link in concrete.links] == [wrapper.id]
            assert [link.to for link in wrapper.links] == [called.id]
            (saved,) = [d for d in called.details if "saved as" in d]
            if name == "keras2_legacy":  # Keras 2's _wrapped_model is on no object
                assert saved == "not saved as a tf.function: reached through the wrapper only"
            else:
                assert saved.startswith("saved as tf.function '") and saved.endswith(" (option 1 of 1)")


def test_tf1_signatures_run_the_graph() -> None:
    explanation = explain(surgery.load(FIXTURES / "tf1_two_metagraphs"))
    assert [m.tags for m in explanation.meta_graphs] == [["serve"], ["serve", "gpu"]]
    for meta in explanation.meta_graphs:
        assert not meta.object_graph and meta.functions == []
        for path in meta.signatures:
            assert [p.kind for p in path.places] == ["signature_def", "graph_nodes"]
    sparse = explanation.meta_graphs[0].signatures[2]
    assert sparse.key == "sparse_sum"
    assert "feeds sp: input_sparse/indices:0 (Placeholder)" in sparse.places[1].details


def test_polymorphic_function_lists_each_concrete_signature() -> None:
    (meta,) = explain(surgery.load(FIXTURES / "example_model")).meta_graphs
    functions = {f.path: f for f in meta.functions}
    assert [c.inputs for c in functions["polymorphic_fn"].concrete_functions] == [
        "((TensorSpec(shape=(3,), dtype=tf.float32, name='x'),), {})",
        "((TensorSpec(shape=(2, 2), dtype=tf.float32, name='x'),), {})",
    ]
    text = explain_text(explain(surgery.load(FIXTURES / "example_model")))
    assert "SavedFunction 'polymorphic_fn' (2 concrete, polymorphic)" in text
    assert "bound_inputs: weight (node 1, variable)" in text


def test_one_signature(tmp_path: Path) -> None:
    result = run_cli("explain", FIXTURES / "module_multi", "masked", check=True)
    assert result.stdout.count("  signature '") == 1
    assert "  signature 'masked'" in result.stdout
    assert "SavedFunction 'masked'" in result.stdout


def test_the_init_op_is_explained_on_the_v1_side_only() -> None:
    result = run_cli("explain", FIXTURES / "example_model", "__saved_model_init_op", check=True)
    assert "2. graph nodes (no call node: the signature runs the graph itself)" in result.stdout
    assert "fetches __saved_model_init_op: NoOp (NoOp)" in result.stdout
    assert "missing" not in result.stdout and "3." not in result.stdout


def test_unknown_signature_is_one_line() -> None:
    result = run_cli("explain", FIXTURES / "module_multi", "nope")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "savedmodel-surgery: error: no signature 'nope' in the model: it has fixed, masked, preprocess, "
        "serving_default; give one of those, or no SIGNATURE for all\n"
    )


def test_broken_model_is_explained_with_what_is_missing(tmp_path: Path) -> None:
    """A model check finds broken still explains, marking the place that is gone."""
    model = copy_fixture("module_multi", tmp_path)
    loaded = surgery.load(model)
    library = loaded.proto.meta_graphs[0].graph_def.library.function
    (index,) = [
        i for i, f in enumerate(library) if f.signature.name == "__inference_signature_wrapper_fixed_74"
    ]
    del library[index]
    surgery.save(loaded, tmp_path / "broken")
    result = run_cli("explain", tmp_path / "broken", "fixed", check=True)
    assert (
        "3. wrapper FunctionDef __inference_signature_wrapper_fixed_74: missing from the function library"
        in (result.stdout)
    )
    assert run_cli("check", tmp_path / "broken").returncode == 1


def test_the_call_node_is_the_one_check_finds() -> None:
    """explain finds a signature's call node by check's rule (`surgery.signatures.call_node`): every
    tensor of its outputs, a composite's components too, read from one call node, each tensor
    name parsed as TensorFlow parses it."""
    model = surgery.load(FIXTURES / "module_multi")
    outputs = model.proto.meta_graphs[0].signature_def["masked"].outputs
    alpha, beta = outputs["alpha"].name, outputs["beta"].name
    outputs["alpha"].coo_sparse.indices_tensor_name = beta
    outputs["alpha"].coo_sparse.values_tensor_name = alpha
    outputs["alpha"].coo_sparse.dense_shape_tensor_name = beta
    (path,) = explain(model, "masked").meta_graphs[0].signatures
    assert path.places[1].kind == "call_node"
    outputs["beta"].name = beta + ":0"  # `node:0:0` is output 0 of a node `node:0`, which is not there
    (path,) = explain(model, "masked").meta_graphs[0].signatures
    assert path.places[1].kind == "graph_nodes"
    assert f"fetches beta: {beta}:0 (missing from graph_def)" in path.places[1].details
    assert "missing-tensor" in {f.code for f in surgery.check(model).findings}


def test_json_is_the_tree() -> None:
    result = run_cli("explain", FIXTURES / "example_model", "--json", check=True)
    data = json.loads(result.stdout)
    (meta,) = data["meta_graphs"]
    (path,) = meta["signatures"]
    assert path["key"] == "capture_fn"
    assert [p["kind"] for p in path["places"]] == WALK
    assert path["places"][1]["links"] == [
        {"to": "function:__inference_signature_wrapper_capture_fn_456", "label": "f"}
    ]
    assert [f["path"] for f in meta["functions"]] == ["capture_fn", "polymorphic_fn"]


def test_json_with_another_format_is_refused() -> None:
    result = run_cli("explain", FIXTURES / "example_model", "--json", "--format", "dot")
    assert result.returncode == 2
    assert "--json is the tree as JSON: give it without --format dot" in result.stderr


# --- HTML ------------------------------------------------------------------------------------------

VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source", "track"}


class _Checker(HTMLParser):
    """Balanced tags, and every URL-bearing attribute local."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset") and value and "://" in value:
                self.errors.append(f"<{tag} {name}={value!r}> loads an external resource")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_html_is_well_formed_self_contained_and_names_every_signature(name: str) -> None:
    page = explain_html(explain(surgery.load(FIXTURES / name)), name)
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert page.startswith("<!DOCTYPE html>\n")
    assert "script" not in checker.tags and "link" not in checker.tags and "@import" not in page
    assert "url(" not in page
    text = "".join(checker.text)
    for key in _keys(name):
        assert f"signature {key!r}" in text


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (Debian's chromium package renders the page)")
def test_html_renders_in_a_headless_browser(tmp_path: Path) -> None:
    """Chromium renders the page without console errors, with every signature in the DOM."""
    assert CHROMIUM is not None
    page = tmp_path / "module_multi.html"
    result = run_cli("explain", FIXTURES / "module_multi", "--format", "html", check=True)
    page.write_text(result.stdout)
    common = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    )
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    for key in _keys("module_multi"):
        assert f"signature '{key}'</summary>" in dom.stdout
    shot = tmp_path / "page.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- DOT and SVG -----------------------------------------------------------------------------------


@pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_dot_renders_to_svg(name: str) -> None:
    result = run_cli("explain", FIXTURES / name, "--format", "svg", check=True)
    assert result.stdout.startswith("<?xml") and result.stdout.rstrip().endswith("</svg>")
    for key in _keys(name):
        assert f">{key}</text>" in result.stdout


def test_svg_without_graphviz_says_so(tmp_path: Path) -> None:
    """With no `dot` on PATH: one line naming what is missing and the way around it."""
    env = {**os.environ, "PATH": str(tmp_path)}
    python = sys.executable
    result = subprocess.run(
        [python, "-m", "surgery", "explain", FIXTURES / "example_model", "--format", "svg"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "savedmodel-surgery: error: svg needs Graphviz's 'dot' program, which is not installed: install "
        "graphviz (apt-get install graphviz), or use --format dot and render it elsewhere\n"
    )
