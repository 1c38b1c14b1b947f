"""The adapter schema lives with the other schemas (import-light); re-exported here so the
adapter package reads like a peft tuner: config, layer, model."""
from tokentune.finetune.config import ADAPTER_NON_LINEARITIES, ADAPTER_PLACEMENTS, AdapterConfig

__all__ = ["ADAPTER_NON_LINEARITIES", "ADAPTER_PLACEMENTS", "AdapterConfig"]
