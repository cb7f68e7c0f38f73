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
TRAIN ?= data
WORKERS ?=
EXECUTOR ?=
ADDRESS ?=
FORCE ?=
GRADEBOOK ?=
ROSTER ?=
ALL_COLUMNS ?=
REFERENCES ?= lenet5 resnet20
OFFLINE ?= 0
SANDBOX_IMAGE ?= lab8-grader-sandbox:latest

ISOLATION ?=
SANDBOX_OPTIONS = --rubric $(RUBRIC) $(if $(DATA),--data $(DATA)) $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(SANDBOX),--sandbox $(SANDBOX))
GRADING_OPTIONS = $(SANDBOX_OPTIONS) $(if $(ISOLATION),--isolation $(ISOLATION))

.PHONY: setup grade grade-all check pack validate import export review report reference bench bench-gpu bench-answers bench-review bench-integrity bench-report bench-warm stress-class sandbox-image sandbox-clean test test-fast test-docker lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,embeddings,cluster]"
	touch $(STAMP)

setup: $(STAMP)

grade: $(STAMP)
	$(BIN)/grader grade $(SUB) $(GRADING_OPTIONS)

grade-all: $(STAMP)
	$(BIN)/grader grade --all $(GRADING_OPTIONS) $(if $(WORKERS),--workers $(WORKERS)) $(if $(FORCE),--force) $(if $(EXECUTOR),--executor $(EXECUTOR)) $(if $(ADDRESS),--address $(ADDRESS))

import: $(STAMP)
	@test -n "$(ZIP)" || { echo "usage: make import ZIP=gradebook_....zip"; exit 2; }
	$(BIN)/grader import-bb $(ZIP) --rubric $(RUBRIC)

export: $(STAMP)
	$(BIN)/grader export --format $(FORMAT) --rubric $(RUBRIC) $(if $(GRADEBOOK),--gradebook $(GRADEBOOK)) $(if $(ROSTER),--roster $(ROSTER)) $(if $(ALL_COLUMNS),--all-columns)

# The TA's review app on 127.0.0.1 (prints its URL with the access token): answers grouped by meaning, decisions per answer.
review: $(STAMP)
	$(BIN)/grader review --rubric $(RUBRIC) $(if $(PORT),--port $(PORT)) $(if $(TA),--ta "$(TA)") $(if $(SEED),--seed-from "$(SEED)")

# The HTML pages from results/ (runs no model): results/report/index.html and results/report/students/<name>.html.
report: $(STAMP)
	$(BIN)/grader report --rubric $(RUBRIC)

# Students: check a submission folder the way grading runs it, then build the upload zip. QUICK=1 uses a fixed subset.
SUBMISSION = $(if $(wildcard $(SUB)/.),$(SUB),submissions/$(SUB))
check: $(STAMP)
	$(BIN)/grader check $(SUBMISSION) $(SANDBOX_OPTIONS) $(if $(QUICK),--quick)

pack: $(STAMP)
	$(BIN)/grader pack $(SUBMISSION) $(SANDBOX_OPTIONS) $(if $(QUICK),--quick) $(if $(OUT),--output $(OUT))

validate: $(STAMP)
	$(BIN)/grader validate $(RUBRIC)

test: $(STAMP)
	$(BIN)/python -m pytest

# The tier that starts no sandbox, browser or other slow process (a fake backend answers with the logits each
# test chooses); under a minute. `make test` runs every tier.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not integration and not docker and not browser and not slow"

test-docker: $(STAMP)
	$(BIN)/python -m pytest -m docker

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	QUICK=$(QUICK) $(BIN)/python -m benchmarks.harness $(if $(DATA),--data $(DATA)) $(if $(TRAIN_SPLIT),--train $(TRAIN_SPLIT)) $(if $(CLASS_SIZE),--class-size $(CLASS_SIZE))

# ResNet-18 on the GPU: a bare script, the harness (Docker, GPU lease) and a class of 100; says so and exits 0 without a GPU.
bench-gpu: $(STAMP)
	$(BIN)/python -m benchmarks.gpu $(if $(DATA),--data $(DATA)) $(if $(CLASS_SIZE),--class-size $(CLASS_SIZE))

# Cold against warm local sandboxes (sandbox.warm): the example graded as a class of 5 both ways; prints `overhead <cold> -> <warm> s per submission`.
bench-warm: $(STAMP)
	$(BIN)/python -m benchmarks.warm_sandbox $(if $(DATA),--data $(DATA))

# Trains each baseline (resuming from its checkpoint), then grades them all like students into reference/baselines.json.
reference: $(STAMP)
	for name in $(REFERENCES); do \
	  $(BIN)/grader reference train $$name --train-data $(TRAIN) --test-data $(or $(DATA),data) || exit 1; \
	done
	$(BIN)/grader reference grade --rubric $(RUBRIC) $(if $(DATA),--data $(DATA)) $(if $(SANDBOX),--sandbox $(SANDBOX))

# Grades a class of 20 ten times over with the answer model loaded; prints `stalls <n> of 10`.
stress-class: $(STAMP)
	$(BIN)/python -m benchmarks.stress_class $(if $(SANDBOX),--sandbox $(SANDBOX))

bench-answers: $(STAMP)
	$(BIN)/python -m benchmarks.answers $(if $(ASAG),--asag $(ASAG))

# Exercise 2 after a simulated TA grades the review queue's first 0, 10, 20 and 30% of the answers, one line per graded
# set (SET=DIR: that set alone, NAME/answers.md + grades.json or the lab's layout), and the queue's speed for 300 students.
bench-review: $(STAMP)
	$(BIN)/python -m benchmarks.bench_review $(SET)

# Integrity checks on real models: two honest CNNs and seven cheats (trained once into build/bench-integrity/) and the baselines, graded as a class.
bench-integrity: DATA = ../shared/data/cifar10/test.npz
bench-integrity: TRAIN = ../shared/data/cifar10/train.npz
bench-integrity: $(STAMP)
	$(BIN)/python -m benchmarks.integrity --data $(DATA) --train-data $(TRAIN)

# What `grader report` costs on a real split: N made-up results, built once, again unchanged, and with one changed.
bench-report: DATA = ../shared/data/cifar10/test.npz
bench-report: $(STAMP)
	$(BIN)/python -m benchmarks.report_pages --data $(DATA) $(if $(STUDENTS),--students $(STUDENTS))

# The Docker sandbox image: FROM a CUDA PyTorch image, or with OFFLINE=1 from a debootstrapped Debian and
# wheels fetched with pip (no registry needed). Inputs are hashed: an unchanged image is not rebuilt.
sandbox-image: $(STAMP)
	GRADER_SANDBOX_IMAGE=$(SANDBOX_IMAGE) PYTHON=$(BIN)/python bash sandbox-image/$(if $(filter 1,$(OFFLINE)),build-offline.sh,build.sh)

# Removes sandbox containers left by a grader that was killed outright (SIGKILL, power cut).
sandbox-clean: $(STAMP)
	$(BIN)/python -c "from grader.sandbox.docker_cleanup import remove_leftover_containers as r; print('removed', r())"

clean:
	rm -rf $(VENV) results exports .pytest_cache .ruff_cache
