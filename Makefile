# Two commands set everything up on a fresh machine: `make drill` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: drill test unit venvs lint build bench clean

$(STAMP): requirements-dev.txt constraints.txt layers/livefire/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

drill: $(STAMP)
	$(VENV)/bin/livefire run drills/sandbox/active-passive.yaml

# Three stages, each always run. The workflow and e2e drills mostly wait on their phases: three run side by side
# (which also proves them on a busy machine) and use about one core. Beside them, on the other, run lint and then
# the unit and component tests (one worker); their output is kept in $(TEST_LOG) and printed when they end. Tests
# marked `alone` (data checks judged to 10 %, probe sends to milliseconds) then run one by one on a quiet machine.
# Ctrl-C stops the stage beside too (it has its own process group: a background job ignores SIGINT).
DRILL_WORKERS ?= 3
UNIT_WORKERS  ?= 1
TEST_LOG      := .test-logs/lint-unit-component.log
test: venvs
	@mkdir -p $(dir $(TEST_LOG)); status=0; \
	setsid $(MAKE) --no-print-directory -k lint unit > $(TEST_LOG) 2>&1 & beside=$$!; \
	trap 'kill -TERM -$$beside 2>/dev/null; exit 130' INT TERM; \
	$(PY) -m pytest -n $(DRILL_WORKERS) --durations=10 -m 'not alone' tests/workflow tests/e2e || status=1; \
	wait $$beside || status=1; \
	echo "---- lint, unit and component tests (run beside the drills; $(TEST_LOG)) ----"; cat $(TEST_LOG); \
	$(PY) -m pytest --durations=10 -m alone tests || status=1; \
	exit $$status

unit: $(STAMP)
	$(PY) -m pytest -n $(UNIT_WORKERS) -m 'not alone' tests/unit tests/component

# Both virtualenvs at once: pip spends much of its time waiting on downloads.
venvs:
	@$(MAKE) --no-print-directory -j2 $(STAMP) $(LINT_VENV)/.installed

# Infrastructure lint: cfn-lint (in .venv), the ASL validator (npm) on the state machine, and checkov on the
# templates, every skip with its reason in the template's Metadata. checkov's own pins clash with ours: own venv.
LINT_VENV := .venv-lint
CHECKOV := checkov==3.3.30
ASL_VALIDATOR := asl-validator@4.0.0
TEMPLATES := template.yaml probe-vantage.yaml target-account.yaml

$(LINT_VENV)/.installed:
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet --disable-pip-version-check $(CHECKOV)
	touch $@

lint: $(STAMP) $(LINT_VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint $(TEMPLATES)
	npx --yes $(ASL_VALIDATOR) --json-path statemachines/drill.asl.json
	npx --yes $(ASL_VALIDATOR) --json-path statemachines/campaign.asl.json
	$(LINT_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation $(addprefix -f ,$(TEMPLATES))

# `sam validate --lint` and `sam build` of both templates (the layer for python3.12 / arm64). aws-sam-cli is
# heavy (~340 MB): its own venv, installed only by this target. sam build needs python3.12 on PATH; on a pyenv
# machine without it selected, the first installed 3.12 is put in front.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_CLI := aws-sam-cli==1.170.0
export SAM_CLI_TELEMETRY ?= 0

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check $(SAM_CLI)
	touch $@

build: $(SAM_VENV)/.installed
	$(SAM) validate --lint --template template.yaml
	$(SAM) validate --lint --template probe-vantage.yaml
	@if ! python3.12 --version >/dev/null 2>&1 && command -v pyenv >/dev/null; then \
		export PYENV_VERSION="$$(pyenv versions --bare | grep -m1 '^3\.12'):$$(pyenv version-name)"; \
	fi; \
	set -x; \
	$(SAM) build --template template.yaml && \
	$(SAM) build --template probe-vantage.yaml --build-dir .aws-sam/probe-vantage

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
	rm -rf $(VENV) $(LINT_VENV) $(SAM_VENV) .test-logs .aws-sam .pytest_cache .mypy_cache .ruff_cache livefire-evidence
