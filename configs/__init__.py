"""gradtrace's configs, shipped inside the package as gradtrace.configs (Hydra: pkg://gradtrace.configs)."""
