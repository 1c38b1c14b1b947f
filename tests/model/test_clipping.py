"""The module clips its own gradients (Lightning refuses to clip for fused AdamW under bf16)."""
import pytest
import pytorch_lightning as pl
import torch

from tokentune.run.fit import fit


class GradNorms(pl.Callback):
    """The gradients' total norm as the optimizer used them (after clipping, before zeroing)."""

    def __init__(self):
        self.norms = []

    def on_before_zero_grad(self, trainer, module, optimizer):
        grads = [p.grad.norm() for p in module.parameters() if p.grad is not None]
        if grads:
            self.norms.append(torch.linalg.vector_norm(torch.stack(grads)).item())


@pytest.mark.parametrize("limit", [1e-3, None])
def test_each_step_uses_gradients_clipped_to_the_limit(compose, limit):
    seen = GradNorms()
    fit(compose("model=bert_tiny", "trainer.max_steps=4", "trainer.limit_val_batches=1",
                f"trainer.gradient_clip_val={'null' if limit is None else limit}"), extra_callbacks=[seen])
    # Lightning zeroes the gradients at the start of each step's closure: steps 1-3 are seen there
    assert len(seen.norms) == 3
    if limit is None:  # unclipped, the tiny model's gradients are far larger
        assert min(seen.norms) > 100 * 1e-3
    else:
        assert seen.norms == pytest.approx([limit] * 3, rel=1e-4)
