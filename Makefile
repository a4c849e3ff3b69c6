# The two commands a newcomer runs: `make run` and `make test`. Both set up .venv first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# python3.10 on PATH if it runs (a pyenv shim may not), else the newest pyenv 3.10.
PYTHON310 := $(shell for p in python3.10 $$(ls -d $$HOME/.pyenv/versions/3.10*/bin/python 2>/dev/null | sort -V -r); do \
	$$p -c "import sys; assert sys.version_info[:2] == (3, 10)" 2>/dev/null && { command -v $$p; break; }; done)
DATA ?= data/demo
OUT ?= out/demo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup redis-server run test lock clean

setup: $(STAMP) redis-server

# The Redis state store (and its tests, which start their own server) need redis-server.
redis-server:
	@command -v redis-server >/dev/null || { \
	  echo "make setup: installing redis-server (Debian package) for the Redis state store"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }

$(STAMP): pyproject.toml constraints.txt
	@if [ -z "$(PYTHON310)" ]; then echo "make setup: Python 3.10 not found: install it (e.g. 'pyenv install 3.10.13') so that python3.10 is on PATH" >&2; exit 1; fi
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==24.2"
	$(PY) -m pip install --quiet --constraint constraints.txt --editable ".[test]"
	@touch $(STAMP)

run: setup
	@test -f $(DATA)/events.parquet || $(VENV)/bin/ctxrec generate --profile demo --seed 1 --out $(DATA)
	$(VENV)/bin/ctxrec run --data $(DATA) --out $(OUT)
	@if ls -d $(OUT)/serving/ctxrec/[0-9]*/ >/dev/null 2>&1; then \
	  $(VENV)/bin/ctxrec daily --data $(DATA) --out $(OUT) && \
	  $(VENV)/bin/ctxrec ask --data $(DATA) --out $(OUT); \
	else echo "make run: no model was pushed (not blessed), so no daily states; see $(OUT)/report/report.md"; fi

test: setup
	$(PY) -m pytest

# Regenerates constraints.txt (the full resolved environment) from the pins in pyproject.toml.
lock:
	rm -rf /tmp/ctxrec-lock && $(PYTHON310) -m venv /tmp/ctxrec-lock
	/tmp/ctxrec-lock/bin/pip install --quiet "pip==24.2" && /tmp/ctxrec-lock/bin/pip install --quiet ".[test]"
	/tmp/ctxrec-lock/bin/pip freeze --exclude-editable | grep -v '^ctxrec' > constraints.txt

clean:
	rm -rf $(VENV) out data
