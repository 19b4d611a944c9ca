# todo-operator — the two commands a newcomer needs are `make demo` and `make test`.
# Both create .venv with a Python >= 3.12 found on this machine and install
# the project with the pinned dependency set (constraints.txt).

PYTHON_FOUND := $(shell scripts/find-python.sh)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins many packages of its own: it gets a virtual environment to itself.
CHECKOV_VENV := .venv-checkov
# So does the OpenAPI client generator (and the clients it generates: httpx, attrs), which
# tests/api/test_generated_client.py runs against our own openapi.json.
OPENAPI_VENV := .venv-openapi

# The recurrence oracle (tests/oracle): rrule-temporal from the npm registry, run by Node.js, which
# tests/domain/recurrence/test_oracle.py checks our engine against. `npm ci` installs exactly the
# versions package-lock.json pins.
ORACLE := tests/oracle
ORACLE_STAMP := $(ORACLE)/node_modules/.package-lock.json

.PHONY: all venv test lint typecheck unit soak demo crds clean checkov openapi-client oracle

all: test

$(STAMP): pyproject.toml constraints.txt packages/kube-emulator/pyproject.toml packages/todo-devstack/pyproject.toml
	@test -n "$(PYTHON_FOUND)" || { echo "make: no Python >= 3.12 found (see scripts/find-python.sh)"; exit 1; }
	$(PYTHON_FOUND) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]' -e packages/kube-emulator -e packages/todo-devstack
	touch $(STAMP)

venv: $(STAMP)

checkov: $(CHECKOV_VENV)/bin/checkov

openapi-client: $(OPENAPI_VENV)/bin/openapi-python-client

$(OPENAPI_VENV)/bin/openapi-python-client: $(STAMP)
	$(PY) -m venv $(OPENAPI_VENV)
	$(OPENAPI_VENV)/bin/pip install --quiet openapi-python-client==0.29.1

$(CHECKOV_VENV)/bin/checkov: $(STAMP)
	$(PY) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==3.3.30

oracle: $(ORACLE_STAMP)

$(ORACLE_STAMP): $(ORACLE)/package.json $(ORACLE)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "make: Node.js and npm are needed for the recurrence oracle (Debian: apt-get install nodejs npm; .ci/run does)"; exit 1; }
	npm ci --prefix $(ORACLE) --no-audit --no-fund --loglevel=error
	touch $(ORACLE_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check todo_operator packages tests benchmarks
	$(VENV)/bin/ruff format --check todo_operator packages tests benchmarks
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# pytest exits 5 when it collected no test: that is a broken set-up, not a pass.
test: lint typecheck checkov openapi-client oracle
	$(PY) -m pytest -p no:cacheprovider --basetemp=.pytest-tmp; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests — the set-up is broken"; exit 1; fi; \
	  exit $$rc

unit: $(STAMP)
	$(PY) -m pytest -m unit -q -p no:cacheprovider

# The model-based test of recurring series (tests/faults/lifecycle/test_model.py), long: new examples
# each run, a failing one shrunk to its fewest steps; it prints how many examples and steps ran.
# SOAK_EXAMPLES and SOAK_STEPS set the size.
SOAK_EXAMPLES ?= 200
SOAK_STEPS ?= 12
soak: $(STAMP)
	LIFECYCLE_MODEL_EXAMPLES=$(SOAK_EXAMPLES) LIFECYCLE_MODEL_STEPS=$(SOAK_STEPS) LIFECYCLE_MODEL_DERANDOMIZE=0 \
	  LIFECYCLE_MODEL_SHRINK=1 LIFECYCLE_MODEL_TIMEOUT=0 \
	  $(PY) -m pytest tests/faults/lifecycle/test_model.py -p no:cacheprovider --basetemp=.pytest-tmp \
	  -s -q

crds: $(STAMP)
	$(VENV)/bin/todo-operator crds --output-dir crds

demo: $(STAMP)
	$(VENV)/bin/todo-operator demo $(ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(OPENAPI_VENV) $(ORACLE)/node_modules .pytest-tmp .demo .mypy_cache .ruff_cache
