# Set-up and everyday commands. `make train` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The torch that set-up installs. The package itself accepts any torch >= 2.1; this default is the
# CPU build that installs in seconds. Another release: make TORCH='torch==2.5.1' (or 'torch').
TORCH  ?= torch==2.13.0
ARGS   ?=

.PHONY: setup train test bench clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test,sweeps]"
	touch $@

train: setup    ## a default training run (the scalar worked example); pass overrides with ARGS="..."
	$(BIN)/python scripts/train.py $(ARGS)

test: setup     ## the whole test suite
	$(BIN)/python -m pytest $(ARGS)

bench: setup    ## every figure of README's benchmark table, in one run (many minutes)
	$(BIN)/python scripts/bench.py --all $(ARGS)

clean:
	rm -rf $(VENV) outputs/*/
