# Two commands set everything up on a fresh machine: `make drill` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: drill test lint build bench clean

$(STAMP): requirements-dev.txt layers/livefire/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

drill: $(STAMP)
	$(VENV)/bin/livefire run drills/sandbox/active-passive.yaml

test: lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml

# Benchmarks (bench/results.md). Chaos Toolkit, the baseline, lives in its own venv; if it cannot be installed
# the bench says so and measures a re-implementation of its loop instead.
BENCH_VENV := bench/.work/venv

$(BENCH_VENV)/.installed: bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt && touch $@ \
		|| echo "bench: chaostoolkit could not be installed; the baseline will be a re-implementation of its loop"

bench: $(STAMP) $(BENCH_VENV)/.installed
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache livefire-evidence
