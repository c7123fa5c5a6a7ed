"""gradtrace's grid sweeper for Hydra, the default one: hydra/sweeper=gradtrace_basic (see
sweeper.py)."""
