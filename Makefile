# Two entry points, as the README says: `make run` and `make test`.
# Both create a local virtual environment in .venv and install what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIO ?= scenarios/reference_quarter.toml

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -c "import sim.warmup; sim.warmup.compile_kernels()"  # Numba compiles once, then caches
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run app.py --server.headless true --server.address 127.0.0.1 \
		--browser.gatherUsageStats false -- $(SCENARIO)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check sim ui tests app.py benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engines.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
