"""Hydra sweeper `hydra/sweeper=tokentune_optuna`: Bayesian search with a current Optuna.

Hydra imports every public module of a `hydra_plugins` package at start-up, for every command:
`config.py` and `sweeper.py` import only hydra, omegaconf and tokentune.errors; Optuna and
SQLAlchemy are imported from the `_`-prefixed modules (which Hydra's scan skips) once a sweep
starts.
"""
