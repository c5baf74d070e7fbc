# Quick start: `make demo` and `make test`. Each creates the virtualenv it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The official meshagent-api 0.56 client needs Python 3.13; it lives in its own virtualenv
# and is used by tests/interop and benchmarks/ when present.
OFFICIAL_VENV ?= .venv-official
# A checkout of the public meshagent/meshagent-ts repository for `make interop-ts`; empty: it skips.
TS_DIR ?=
# `make test-floors`: the suite with every dependency at its lower bound in pyproject.toml.
FLOORS_VENV ?= .venv-floors

.PHONY: demo test test-floors bench official-env interop-ts clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "meshagent-trio needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,server]'
	@touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m meshagent_trio demo

# The official client environment is best-effort: without Python 3.13 the interop tests skip
# and say why.
test: $(BIN)/.installed
	-@bash scripts/official-env.sh $(OFFICIAL_VENV)
	$(BIN)/python -m pytest

# The whole suite again, in its own virtualenv ($(FLOORS_VENV)) on the oldest Python that
# requires-python allows, with every runtime and test dependency pinned to its `>=` floor in
# pyproject.toml (transitive ones resolve normally): the floors must be versions that pass.
# The virtualenv is reused while pyproject.toml is unchanged. See scripts/floors.py.
test-floors:
	-@bash scripts/official-env.sh $(OFFICIAL_VENV)
	$(PYTHON) scripts/floors.py --venv $(FLOORS_VENV)

official-env:
	bash scripts/official-env.sh $(OFFICIAL_VENV)

# The official TypeScript client's own test suite against our server (needs node and npm).
interop-ts: $(BIN)/.installed
	MESHAGENT_TRIO_BIN=$(abspath $(BIN)) bash scripts/interop-ts.sh $(TS_DIR)

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/framing.py

clean:
	rm -rf $(VENV) $(OFFICIAL_VENV) $(FLOORS_VENV) .pytest_cache .hypothesis
