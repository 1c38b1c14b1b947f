"""tokentune: config-driven fine-tuning of Transformer language models.

Kept import-light on purpose: `python train.py --cfg job` must not pay for torch.
"""

__version__ = "0.1.0"
