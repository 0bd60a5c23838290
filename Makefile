# SplitLab: one command runs it (make run), one tests it (make test). See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
UV_VERSION := 0.13.9
UV := python3 -m uv
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help tools doctor install env stack-up stack-down migrate topics services-up services-down \
        up down stop run status test test-unit lint format bench study compose-config clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.synced: uv.lock pyproject.toml shared/pyproject.toml client/pyproject.toml services/*/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen --python python3.11
	@touch $@

tools: ## Install the missing system tools of infra/tools.txt (apt-get; nothing when none is missing)
	@bash infra/tools.sh install

doctor: ## Each system tool with its version, what is missing and how to install it, what answers
	@bash infra/tools.sh check

install: tools $(VENV)/.synced ## System tools (infra/tools.txt) and the Python 3.11 dependencies from uv.lock into .venv

.env:
	@sed "s|^SPLITLAB_ADMIN_API_KEY=.*|SPLITLAB_ADMIN_API_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')|" .env.example > .env
	@echo "created .env with a random SPLITLAB_ADMIN_API_KEY"

env: .env ## Create .env from .env.example (once)

stack-up: env ## Install and start Redis, Postgres, Kafka, Prometheus, Alertmanager (infra/stack.sh)
	bash infra/stack.sh up

stack-down: ## Stop the native stack (data stays in .stack/)
	bash infra/stack.sh down

migrate: install stack-up ## Migrate the database to head
	$(BIN)/splitlab db upgrade

topics: install stack-up ## Create the Kafka topics where missing
	$(BIN)/splitlab kafka create-topics

services-up: install ## Start the four services and the Celery worker, wait for /readyz
	bash infra/services.sh up

services-down: ## Stop the services (by pid)
	bash infra/services.sh down

up: install stack-up migrate topics services-up ## Everything in the background; returns when all /readyz are 200
	@echo
	@echo "SplitLab is up:"
	@bash infra/services.sh urls

down: services-down stack-down ## Stop everything make up started

stop: down ## Same as make down

SPLITLAB_DEMO ?= 1
run: up ## make up, then the live demo (SPLITLAB_DEMO=0 skips it): models, an experiment, simulated traffic
	@bash infra/services.sh status
	@bash infra/stack.sh status
	@if [ "$(SPLITLAB_DEMO)" != "0" ]; then $(BIN)/splitlab demo; fi

status: ## What is running
	@bash infra/services.sh status
	@bash infra/stack.sh status

lint: install ## ruff (lint and format check), the floors (import-linter) and mypy strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: install ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install stack-up lint ## The whole suite against the real stack (brings it up if needed)
	$(BIN)/splitlab kafka create-topics
	$(BIN)/pytest -m "not slow" --durations=25 $(PYTEST_ARGS)

test-unit: install ## Only the tests that need no server
	$(BIN)/pytest -m "not slow and not integration" $(PYTEST_ARGS)

bench: install stack-up ## Run the benchmarks (make bench ONLY="stats synth"); results in bench/results/
	$(BIN)/python bench/run.py $(ONLY)

study: install ## The slow statistical studies (results in docs/studies/)
	@for s in studies/*.py; do echo "== $$s"; $(BIN)/python "$$s" || exit 1; done

compose-config: tools ## Validate docker-compose.yml without a Docker engine
	docker-compose -f docker-compose.yml config --quiet

clean: down ## Stop everything and delete .stack/ (all local data)
	rm -rf .stack
