# Two commands a new user needs: `make demo` (the main job) and `make test`.
# Both set up .venv and the npm packages of the TypeScript sandboxes on their
# own, idempotently.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= serve,train,dev
# Re-install only when the dependency files change.
STAMP := $(VENV)/.stamp-$(shell cat pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -c1-12)
PYTEST_WORKERS ?= 2
DEMO_DIR ?= runs/demo

.PHONY: setup setup-node demo test lint format bench clean lock stack-doctor-baselines

setup: $(STAMP) setup-node

# Cheap when nothing changed: the script only checks the lockfile's hash.
setup-node:
	@scripts/setup-node.sh

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.stamp-*
	@touch $@

# Offline, end to end: a dataset and its ground truth, the `quick` experiment
# (baselines on every environment; re-running resumes), its report, and the
# training audit of its traces.
demo: setup
	$(BIN)/stackgym data generate --seed 0 --out $(DEMO_DIR)/data
	$(BIN)/stackgym data truth $(DEMO_DIR)/data
	$(BIN)/stackgym experiment run quick --out $(DEMO_DIR)/quick
	$(BIN)/stackgym report $(DEMO_DIR)/quick --out $(DEMO_DIR)/report
	$(BIN)/stackgym train audit $(DEMO_DIR)/quick --out $(DEMO_DIR)/train-audit.md

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: setup
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: setup
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Regenerate the Stack Doctor baseline table (README.md, docs/stack_doctor.md).
STACK_DOCTOR_METRICS := fix_accuracy,rc_accuracy,avg_steps,avg_reward,evidence_precision,justification_pass_rate,bad_intervention_rate
stack-doctor-baselines: setup
	$(BIN)/stackgym eval stack_doctor --split eval --table --episodes 500 --metrics $(STACK_DOCTOR_METRICS)

# Refresh the lock after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/stackgym-lock && $(PYTHON) -m venv /tmp/stackgym-lock
	/tmp/stackgym-lock/bin/python -m pip install --quiet --upgrade "pip>=24"
	/tmp/stackgym-lock/bin/python -m pip install --quiet -e ".[$(EXTRAS)]"
	/tmp/stackgym-lock/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
