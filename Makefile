# savedmodel-surgery: every target sets up what it needs on a fresh machine.
#   make demo       show, edit and check a bundled example model (creates .venv/)
#   make test       lint, types and the whole test-suite, TensorFlow oracle tier included
#                   (and, through apt-get where it can, Graphviz and Chromium for the explain tests)
#   make fuzz       long fuzz runs (hypothesis, then atheris), with a fixed budget
#   make generated  recompile generated/ from protos/
#   make docs       regenerate the tables derived from the code (docs/api.md, README.md)
#   make protos     re-extract protos/ and the op registry from the pinned TensorFlow, then regenerate
#   make fixtures   rebuild tests/fixtures/ with real TensorFlow
#   make bench      the performance targets on a 1 GiB saved_model.pb (benchmarks/; builds the models once)
#   make bench-quick  the same on a 64 MiB model, 3 runs

PYTHON ?= python3
VENV := .venv
TFVENV := .venv-tf
BIN := $(VENV)/bin
TFBIN := $(TFVENV)/bin
DEMO := demo-out
FIXTURES := tests/fixtures/models
PIP_QUIET := --quiet --disable-pip-version-check --no-input

.PHONY: demo test fuzz lint typecheck unit oracle generated protos fixtures bench bench-quick clean browser-deps docs

$(VENV)/.installed: pyproject.toml setup.py surgery/_farmhash.c surgery/_wire.c surgery/_textformat.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip
	$(BIN)/pip install $(PIP_QUIET) -e ".[dev]"
	touch $@

# The TensorFlow oracle: fixture maker and correctness oracle. Never part of .venv.
$(TFVENV)/.installed: requirements-tf.txt pyproject.toml
	$(PYTHON) -m venv $(TFVENV)
	$(TFBIN)/pip install $(PIP_QUIET) --upgrade pip
	$(TFBIN)/pip install $(PIP_QUIET) -r requirements-tf.txt
	$(TFBIN)/pip install $(PIP_QUIET) -e .
	touch $@

demo: $(VENV)/.installed
	rm -rf $(DEMO)
	$(BIN)/savedmodel-surgery show $(FIXTURES)/module_multi
	$(BIN)/savedmodel-surgery rename-signature $(FIXTURES)/module_multi serving_default predict -o $(DEMO)
	$(BIN)/savedmodel-surgery set-shape $(DEMO) fixed row -1,4 --in-place
	$(BIN)/savedmodel-surgery check $(DEMO)
	$(BIN)/savedmodel-surgery diff $(FIXTURES)/module_multi $(DEMO) || test $$? -eq 1
	$(BIN)/savedmodel-surgery show $(DEMO) --json

lint: $(VENV)/.installed
	$(BIN)/ruff check surgery tests tools
	$(BIN)/ruff format --check surgery tests tools

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# Graphviz's dot and Chromium for the explain SVG and headless-browser tests: installed with
# apt-get when missing and apt-get is usable (root or passwordless sudo); otherwise one line says
# those tests will skip. Never fails.
browser-deps:
	@bash tools/browser_deps.sh

test: $(VENV)/.installed $(TFVENV)/.installed lint typecheck browser-deps
	$(BIN)/pytest -n 2 --dist loadgroup

# The fuzz budget: FUZZ_EXAMPLES hypothesis examples per property, then atheris for FUZZ_RUNS inputs
# or FUZZ_SECONDS, whichever ends first. Failures are shrunk into tests/fuzz_corpus/.
FUZZ_EXAMPLES ?= 1000
FUZZ_RUNS ?= 20000
FUZZ_SECONDS ?= 900

$(VENV)/.fuzz-installed: $(VENV)/.installed
	$(BIN)/pip install $(PIP_QUIET) -e ".[dev,fuzz]"
	touch $@

fuzz: $(VENV)/.fuzz-installed
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q tests/test_fuzz.py
	$(BIN)/python tests/fuzz_atheris.py -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS)

generated: $(VENV)/.installed
	$(BIN)/python tools/gen_bindings.py generate

protos: $(TFVENV)/.installed $(VENV)/.installed
	rm -rf protos/tensorflow
	$(TFBIN)/python tools/extract_protos.py protos
	$(TFBIN)/python -c "import tensorflow as tf; print(tf.__version__)" 2>/dev/null > protos/TENSORFLOW_VERSION
	$(TFBIN)/python tools/extract_ops.py surgery/data/tensorflow_ops.binpb
	$(MAKE) generated

fixtures: $(TFVENV)/.installed
	$(TFBIN)/python tests/fixtures/make_fixtures.py

# Benchmarks: TensorFlow (.venv-tf) builds the large models, else protobuf inflates a fixture
# (BENCH_ROUTE=protobuf). An existing .venv-tf is used as it is; a missing one is built. BENCH_ARGS passes more options to run.py, such as
# BENCH_ARGS="--with-tensorflow". `make bench` writes its table to benchmarks/RESULTS.md (every sample
# in benchmarks/results-latest.json), the one place the numbers live; `make bench-quick` only prints.
BENCH_ROUTE ?= auto
BENCH_ARGS ?=
BENCH_TF := $(if $(filter protobuf,$(BENCH_ROUTE)),,$(if $(wildcard $(TFBIN)/python),,$(TFVENV)/.installed))
BENCH_DEPS := $(VENV)/.installed $(BENCH_TF)

bench: $(BENCH_DEPS)
	$(BIN)/python benchmarks/build_models.py --size-mb 1024 --route $(BENCH_ROUTE) > /dev/null
	$(BIN)/python benchmarks/run.py --size-mb 1024 --route $(BENCH_ROUTE) \
		--markdown benchmarks/RESULTS.md --json benchmarks/results-latest.json $(BENCH_ARGS)

bench-quick: $(BENCH_DEPS)
	$(BIN)/python benchmarks/build_models.py --size-mb 64 --route $(BENCH_ROUTE) > /dev/null
	$(BIN)/python benchmarks/run.py --quick --route $(BENCH_ROUTE) $(BENCH_ARGS)

clean:
	rm -rf $(DEMO) .pytest_cache .mypy_cache .ruff_cache

# The docs' parts derived from the code (the table of edits in docs/api.md); tests/test_docs.py checks them.
docs: $(VENV)/.installed
	$(BIN)/python tools/gen_docs.py
