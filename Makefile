# Every target sets up .venv on first use (pinned torch and the rest), then calls the `grader` command.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SUB ?= example
RUBRIC ?= rubric.yaml
DATA ?=
TIMEOUT ?=
SANDBOX ?=
ZIP ?=
FORMAT ?= bb

GRADING_OPTIONS = --rubric $(RUBRIC) $(if $(DATA),--data $(DATA)) $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(SANDBOX),--sandbox $(SANDBOX))

.PHONY: setup grade grade-all check pack validate import export reference bench bench-answers sandbox-image test test-docker lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,embeddings]"
	touch $(STAMP)

setup: $(STAMP)

grade: $(STAMP)
	$(BIN)/grader grade $(SUB) $(GRADING_OPTIONS)

validate: $(STAMP)
	$(BIN)/grader validate $(RUBRIC)

test: $(STAMP)
	$(BIN)/python -m pytest

test-docker: $(STAMP)
	$(BIN)/python -m pytest -m docker

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m grader.bench $(if $(DATA),--data $(DATA))

bench-answers: $(STAMP)
	$(BIN)/python -m grader.answers.bench $(if $(ASAG),--asag $(ASAG))

clean:
	rm -rf $(VENV) results exports .pytest_cache .ruff_cache
