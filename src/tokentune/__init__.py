"""tokentune: config-driven fine-tuning of Transformer language models.

Kept import-light on purpose: `python train.py --cfg job` must not pay for torch.
"""

__version__ = "0.1.0"


def load_model(folder):
    """The model a run exported to `<run>/model` (any fine-tuning method), in eval mode; see
    tokentune.run.export."""
    from tokentune.run.export import load_model as load

    return load(folder)
