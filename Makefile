# The first two targets are all a new machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Conveyor with the dev tools (test, lint); Conveyor alone, all the demo needs
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test fuzz lint format bench bench-full clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# the dev extras include everything the demo needs, so they stamp the demo's install too
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

# four small dependencies, not the dev tools: seconds instead of ~40 s, with pip's progress shown
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	@echo "installing Conveyor into $(VENV) (first run only)..."
	$(BIN)/python -m pip install --disable-pip-version-check -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m conveyor.demo

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

# the payload fuzzing suite with many more examples than `make test` runs, and a fresh seed
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} FUZZ_RANDOM=1 $(BIN)/python -m pytest -q tests/fuzz

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/python tools/check_imports.py src/conveyor

format: $(STAMP)
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

bench: $(STAMP)
	$(BIN)/python bench/run.py --quick

bench-full: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
