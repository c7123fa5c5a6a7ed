# Set-up and everyday commands. `make train` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The torch that set-up installs. The package itself accepts any torch >= 2.1; this default is the
# CPU build that installs in seconds. Another release: make TORCH='torch==2.5.1' (or 'torch').
TORCH  ?= torch==2.13.0
ARGS   ?=

.PHONY: setup train test test-fast bench clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test,sweeps,data]"
	touch $@

train: setup    ## a default training run (the scalar worked example); pass overrides with ARGS="..."
	$(BIN)/gradtrace train $(ARGS)

test: setup     ## the whole test suite: the quick tier and the slow one (processes, servers)
	$(BIN)/python -m pytest $(ARGS)

test-fast: setup  ## the quick tier while editing: in-process tests only, under a minute
	$(BIN)/python -m pytest -m "not slow" --dist load $(ARGS)

bench: setup    ## every figure of README's benchmark table, in one run (many minutes)
	$(BIN)/python scripts/bench.py --all $(ARGS)

clean:
	rm -rf $(VENV) outputs/*/
