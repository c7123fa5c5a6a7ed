"""Sweeps: each job's result.json, the summary written at the end of every multirun (a Hydra
callback) or on demand, its plot, and the commands that rerun failed jobs."""
