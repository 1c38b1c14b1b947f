"""Hydra multirun sweeps: collect a sweep folder's runs into one table (`tokentune-collect`)."""
