"""Backbones, tokenizers of the backbones, metrics, and the LightningModule."""
