"""Runs: building the Lightning Trainer, fitting, evaluating, predicting, writing results."""
