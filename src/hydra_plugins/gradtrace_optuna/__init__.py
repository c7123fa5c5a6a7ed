"""gradtrace's Optuna sweeper for Hydra: hydra/sweeper=gradtrace_optuna (see sweeper.py)."""
