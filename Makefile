# OKR suite. `make run` serves the embedded default; `make test` is what CI runs; `make unit` runs
# the tests that need no server, in seconds.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
ORG ?= demo
MEMBER ?= admin
ROLES ?=
# Which goals store `make token` and `make demo` talk to: auto = the distributed stack's
# (PostgreSQL, its JWT secret) while `make up` has it running, else the embedded default;
# on = always the stack's; off = always the embedded default.
STACK ?= auto
STACK_ENV = stack_env="$$(deploy/local/stack.sh env $(STACK))" && eval "$$stack_env" &&

.PHONY: install run demo token up down ps notifier-rebuild pg pg-down pg-restart kafka kafka-down \
	kafka-restart infra-up infra-down infra-status kcat schemas lint format unit test bench clean

# shared/testkit (okr_testkit) is development only: installed here with the dev requirements,
# never a dependency of a runtime package nor in an image.
$(STAMP): services/goals/pyproject.toml services/notifier/pyproject.toml shared/events/pyproject.toml \
	shared/platform/pyproject.toml suite/pyproject.toml shared/testkit/pyproject.toml requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e shared/events -e shared/platform -e services/goals -e services/notifier -e suite \
		-e shared/testkit -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP) ## virtual environment with every package and tool

run: install ## serve every context on http://127.0.0.1:8000 (SQLite under data/)
	$(BIN)/uvicorn --factory okr_suite.main:create_app --host $(HOST) --port $(PORT)

demo: install ## load the seed's organisation and board into org "demo" (the stack's while it runs)
	@$(STACK_ENV) $(BIN)/okr demo --org $(ORG)

token: install ## print a development token: make token MEMBER=bailu [ROLES=admin] (valid for the stack while it runs)
	@$(STACK_ENV) $(BIN)/okr token $(MEMBER) --org $(ORG) $(foreach r,$(ROLES),--role $(r))

up: install ## the distributed stack on this checkout's own PostgreSQL and Kafka: goals API :8001, relay, ledger :8090, notifier :8002 (idempotent; restarts what is down or not ready)
	deploy/local/stack.sh up

down: ## stop the stack's processes, then PostgreSQL and Kafka (data stays)
	deploy/local/stack.sh down

ps: ## what of the stack runs and whether it is ready: process, state, pid, address, log, ready
	deploy/local/stack.sh status || true

# Always the stack's settings (the embedded notifier is fed in process, not from Kafka). The
# rebuild refuses while the notifier's consumer group has live members, so the stack's notifier
# is stopped first and started again afterwards if it was running.
notifier-rebuild: install ## replay Kafka into the stack's notifier tables (its notifier paused meanwhile)
	@stack_env="$$(deploy/local/stack.sh env on)" || exit 1; eval "$$stack_env"; \
	was=$$(deploy/local/stack.sh status 2>/dev/null | awk '$$1 == "notifier" { print $$2 }'); \
	if [ "$$was" = up ]; then deploy/local/stack.sh down notifier || exit 1; fi; \
	rc=0; $(BIN)/okr-notifier rebuild || rc=$$?; \
	if [ "$$was" = up ]; then deploy/local/stack.sh up >/dev/null || rc=1; fi; \
	exit $$rc

pg: ## start this checkout's own PostgreSQL 15 (data/postgres, port in data/ports.env) with database okr (idempotent)
	deploy/local/pg.sh up

pg-down:
	deploy/local/pg.sh down

pg-restart: ## restart this checkout's PostgreSQL (the stack rides it out)
	deploy/local/pg.sh restart

kafka: ## start this checkout's own Apache Kafka 4 broker (KRaft; data/kafka, port in data/ports.env) (idempotent)
	deploy/local/kafka.sh up

kafka-down:
	deploy/local/kafka.sh down

kafka-restart: ## restart this checkout's Kafka broker (the stack rides it out)
	deploy/local/kafka.sh restart

infra-up: ## start PostgreSQL and Kafka together (idempotent)
	deploy/local/infra.sh up

infra-down:
	deploy/local/infra.sh down

infra-status: ## print whether PostgreSQL and Kafka are up
	deploy/local/infra.sh status

kcat: ## install kcat (Debian package) to inspect the local Kafka: kcat -b "$(deploy/local/kafka.sh bootstrap)" -L
	deploy/local/tools.sh kcat

schemas: install ## regenerate the JSON Schemas of the event contracts
	$(BIN)/python -m okr_events.schemas write

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m okr_events.schemas check

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The unit tier: pure domain rules, the event contracts, the service kit's web layer. No
# PostgreSQL, no Kafka (--no-servers fails a test that asks for one); services/*/tests/unit/
# folders hold the services' own. The OpenAPI fuzz run (about a minute) is left to make test.
UNIT_TESTS := services/goals/tests/unit tests/contract shared/platform/tests

unit: install ## the tests that need no server (no PostgreSQL, no Kafka), in seconds
	$(BIN)/python -m pytest -q --no-servers -m "not postgres and not kafka" \
		--ignore=tests/contract/test_openapi_fuzz.py $(UNIT_TESTS)

test: install infra-up lint ## lint, then every test with PostgreSQL and Kafka really running
	$(BIN)/python -m pytest

bench: install infra-up ## benchmarks; figures into bench/results/latest.json
	eval "$$(deploy/local/infra.sh env)" && $(BIN)/python bench/bench_goals.py
	eval "$$(deploy/local/infra.sh env)" && $(BIN)/python bench/bench_backbone.py
	eval "$$(deploy/local/infra.sh env)" && $(BIN)/python bench/bench_notifier.py

clean:  # data/ holds this checkout's live servers: stop them first
	deploy/local/stack.sh down || true
	deploy/local/infra.sh down || true
	rm -rf $(VENV) data .pytest_cache .ruff_cache
