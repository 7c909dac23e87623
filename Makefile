# CSMS: `make run` starts it on this machine, `make test` runs the whole suite. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
FTP_PORT ?= 2121
PYTEST_ARGS ?=
# TLS=1: daphne also serves wss:// and https:// itself on TLS_PORT (self-signed certificate under var/tls/ unless
# CSMS_TLS_CERT_FILE/CSMS_TLS_KEY_FILE name one).
TLS ?=
TLS_PORT ?= 8443
# make cluster: daphne processes behind the one port PORT (one per core is the recommendation).
WEB_PROCESSES ?= 2

.PHONY: help run embedded-redis cluster cluster-env worker beat test lint migrate bench clean

help:
	@echo "make run     - install, migrate, ensure the admin user, serve on http://$(HOST):$(PORT)"
	@echo "make test    - the whole test suite on real PostgreSQL and Redis (started here when none runs)"
	@echo "make cluster - production topology, no Docker: WEB_PROCESSES (2) daphne behind PORT, worker, beat, ftp;"
	@echo "               needs DATABASE_URL and REDIS_URL; SIGHUP = rolling restart (scripts/run_cluster.py)"
	@echo "make worker  - Celery worker (with REDIS_URL); make beat - Celery beat"
	@echo "make lint    - ruff check, ruff format --check, mypy (with the Django and DRF plugins)"
	@echo "make bench   - benchmark vs bare baselines (~20 min; QUICK=1: a few minutes); results in bench/results/"

# A venv of our own; Debian's python3 needs python3-venv for it.
$(PY):
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
		echo "installing python3-venv"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.deps-run: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.deps-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@ $(VENV)/.deps-run

migrate: $(VENV)/.deps-run
	$(PY) manage.py migrate --noinput

# Embedded default (no REDIS_URL): a private Redis, a Celery worker and beat beside daphne (scripts/run_embedded.py).
DAPHNE_ARGS := --websocket_timeout -1 --websocket_connect_timeout 30 csms.asgi:application

# First, before any install: without REDIS_URL, redis-server must be there or installable (one line if not).
embedded-redis:
	@[ -n "$$REDIS_URL" ] || scripts/ensure-redis-server.sh >/dev/null

run: embedded-redis migrate
	@$(PY) manage.py ensure_admin
	@$(PY) manage.py collectstatic --noinput -v0
	@echo ""
	@echo "  CSMS on http://$(HOST):$(PORT)/"
	@echo "    dashboard:        http://$(HOST):$(PORT)/  (user: admin)"
	@echo "    admin:            http://$(HOST):$(PORT)/admin/"
	@echo "    station endpoint: ws://$(HOST):$(PORT)/ocpp/<identity>  (subprotocol ocpp2.0.1)"
	@echo "    health:           http://$(HOST):$(PORT)/healthz  /readyz  /metrics"
	@echo "    FTP uploads:      ftp://$(HOST):$(FTP_PORT)/  (stations' log uploads, per-request credentials)"
	@if [ -z "$$REDIS_URL" ]; then echo "    mode: embedded (SQLite under var/, private Redis under var/redis/, Celery worker and beat)"; \
		else echo "    mode: $${DATABASE_URL:+PostgreSQL + }Redis; start 'make worker' and 'make beat' beside it"; fi
	@echo ""
	@if [ -n "$(TLS)" ]; then echo "    TLS:              wss://$(HOST):$(TLS_PORT)/ocpp/<identity>  https://$(HOST):$(TLS_PORT)/"; echo ""; fi
	@export CSMS_FTP_PORT=$${CSMS_FTP_PORT:-$(FTP_PORT)} CSMS_FILE_SERVER_BASE_URL=$${CSMS_FILE_SERVER_BASE_URL:-http://$(HOST):$(PORT)}; \
	tls_endpoint="$(if $(TLS),-e $$($(PY) manage.py tls_selfsigned --endpoint $(TLS_PORT) --interface $(HOST)))"; \
	if [ -z "$$REDIS_URL" ]; then exec $(PY) scripts/run_embedded.py --host $(HOST) --port $(PORT) -- $$tls_endpoint $(DAPHNE_ARGS); \
		else $(PY) manage.py fileserver_ftp & ftp=$$!; trap 'kill $$ftp 2>/dev/null' EXIT; \
		$(VENV)/bin/daphne -b $(HOST) -p $(PORT) $$tls_endpoint $(DAPHNE_ARGS); fi

# The production topology on this machine (scripts/run_cluster.py): one listening socket on HOST:PORT shared by
# WEB_PROCESSES daphne processes, a Celery worker, beat and the FTP file server; migrates first.
cluster-env:
	@[ -n "$$DATABASE_URL" ] && [ -n "$$REDIS_URL" ] || { \
		echo "make cluster: DATABASE_URL and REDIS_URL are required (PostgreSQL and Redis)"; exit 2; }

cluster: cluster-env $(VENV)/.deps-run
	@$(PY) manage.py collectstatic --noinput -v0
	@echo ""
	@echo "  CSMS cluster on http://$(HOST):$(PORT)/ ($(WEB_PROCESSES) daphne processes, Celery worker and beat)"
	@echo "    station endpoint: ws://$(HOST):$(PORT)/ocpp/<identity>  (subprotocol ocpp2.0.1)"
	@echo "    FTP uploads:      ftp://$(HOST):$${CSMS_FTP_PORT:-$(FTP_PORT)}/"
	@echo "    state:            $${CSMS_VAR_DIR:-var}/cluster/state.json; kill -HUP <supervisor> = rolling restart"
	@echo ""
	@export CSMS_FTP_PORT=$${CSMS_FTP_PORT:-$(FTP_PORT)}; \
	exec $(PY) scripts/run_cluster.py --host $(HOST) --port $(PORT) --web-processes $(WEB_PROCESSES) -- $(DAPHNE_ARGS)

worker: $(VENV)/.deps-run
	$(VENV)/bin/celery -A csms worker -l INFO

beat: $(VENV)/.deps-run
	$(VENV)/bin/celery -A csms beat -l INFO

test: $(VENV)/.deps-dev
	@eval "$$(PY=$(PY) scripts/test-services.sh)" && $(PY) -m pytest $(PYTEST_ARGS)

# All three run even when one fails, so one pass shows every finding.
lint: $(VENV)/.deps-dev
	@rc=0; \
	for check in "ruff check ." "ruff format --check ." "mypy"; do \
		echo "$(VENV)/bin/$$check"; $(VENV)/bin/$$check || rc=1; \
	done; exit $$rc

# Needs PostgreSQL and Redis on 127.0.0.1 (BENCH_PG_URL / BENCH_REDIS_URL override); creates and drops its own database.
QUICK ?=
BENCH_ARGS ?=
bench: $(VENV)/.deps-dev
	@eval "$$(PY=$(PY) scripts/test-services.sh)" && \
		BENCH_PG_URL="$${BENCH_PG_URL:-$$DATABASE_URL}" BENCH_REDIS_URL="$${BENCH_REDIS_URL:-$$REDIS_URL}" \
		$(PY) -m bench.harness $(if $(QUICK),--quick) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var/test-logs .pytest_cache .mypy_cache
