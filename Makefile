# Quick start: `make run` (local Kafka + one worker) and `make test` (the whole suite).
PY := .venv/bin/python
PORT ?= 6066

.PHONY: run worker test unit lint faults faults-report kafka stop status clean bench
STRICT := domain tables \
	streams/commands.py streams/events.py streams/envelopes.py streams/partitioning.py

.venv/.installed: pyproject.toml .ci/requirements.py
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	python3 .ci/requirements.py test > .venv/requirements.txt
	$(PY) -m pip install -q -r .venv/requirements.txt
	touch $@

# The benchmark's own dependencies (Quix Streams, psutil, py-spy), never installed by CI.
.venv/.bench-installed: .venv/.installed pyproject.toml .ci/requirements.py
	python3 .ci/requirements.py test bench > .venv/requirements-bench.txt
	$(PY) -m pip install -q -r .venv/requirements-bench.txt
	touch $@

# `make bench` measures 1,000,000 events (several minutes); `make bench QUICK=1` 50,000.
bench: .venv/.bench-installed
	$(PY) -m bench $(if $(QUICK),--quick)

kafka: .venv/.installed
	$(PY) broker/kafkalocal.py start

run: kafka worker

worker: .venv/.installed
	@echo "Shopstream worker on http://127.0.0.1:$(PORT)  (Ctrl-C stops it; 'make stop' stops Kafka)"
	@echo "  the dashboard:  http://127.0.0.1:$(PORT)/dashboard"
	@echo "  POST http://127.0.0.1:$(PORT)/commands"
	@echo "  GET  http://127.0.0.1:$(PORT)/views/{orders,products,customer-orders,sales}/{key}"
	@echo "  GET  http://127.0.0.1:$(PORT)/health  /ready"
	@echo "  Kafka on 127.0.0.1:9092, logs: $$($(PY) broker/kafkalocal.py logs)"
	SHOPSTREAM_WEB_PORT=$(PORT) $(PY) -m streams worker --loglevel info

test: .venv/.installed
	$(PY) -m pytest

# Every fault scenario (about 25 minutes), then docs/faults.md from the results file it wrote.
faults: .venv/.installed
	$(PY) -m tests.faults; status=$$?; $(PY) -m tests.faults.report; exit $$status

faults-report: .venv/.installed
	$(PY) -m tests.faults.report

lint: .venv/.installed
	$(PY) -m ruff check .
	$(PY) -m mypy $(STRICT)

unit: .venv/.installed
	$(PY) -m pytest tests/unit tests/agents

stop:
	$(PY) broker/kafkalocal.py stop

status:
	$(PY) broker/kafkalocal.py status

clean: stop
	rm -rf .kafka-local .shopstream-data
