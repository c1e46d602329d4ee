# Liandong (联动). `make run` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
LIANDONG := $(VENV)/bin/liandong
STAMP := $(VENV)/.installed-stamp
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PYTEST_ARGS ?=

.PHONY: install provision run up down test test-fast lint contracts bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

provision: install
	$(LIANDONG) provision

## run: set up, start the five cities, play the demo day, serve until Ctrl-C
run: provision
	$(LIANDONG) run

## up: the same, but return once everything serves in the background
up: provision
	$(LIANDONG) up

down: install
	$(LIANDONG) down

## test: the whole suite on real RabbitMQ and PostgreSQL
test: install
	$(LIANDONG) provision --servers-only
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q tests/unit tests/contract $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

## contracts: regenerate JSON Schemas, AsyncAPI, OpenAPI and broker definitions under contracts/
contracts: install
	$(PY) -m contracts.generate

bench: install
	$(LIANDONG) provision --servers-only
	$(PY) -m bench.leads
	$(PY) -m bench.supervision
	$(PY) -m bench.bridge
	$(PY) -m bench.transport

clean:
	rm -rf $(VENV) .run
