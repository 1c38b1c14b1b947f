"""The classification forward pass over a packed batch (see tokentune.data.packing).

transformers' *ForSequenceClassification heads pool one token per row; a packed row holds
several sequences, so this runs the model's own encoder with a block-diagonal attention mask
(each token sees only its own sequence; causal within it for a decoder family), takes each
sequence's pooled token from `pool_index` and applies the model's own head modules to those (the
family's `packed_head`). The loss is the one the model computes for an unpacked batch, over the
same sequences in the same order.
"""
from __future__ import annotations

from functools import reduce

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import SequenceClassifierOutput

from tokentune.compat.transformers import attn_implementation
from tokentune.model.families import get_family


def transformers_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a peft wrapper (LoRA, prefix), or the model itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def block_mask(sequence_ids: torch.Tensor, *, causal: bool, attn_implementation: str,
               dtype: torch.dtype) -> torch.Tensor:
    """(rows, 1, width, width) mask letting each token attend within its own sequence (padding,
    id -1, attends to padding, so no row of the softmax is empty). SDPA takes it as booleans
    (True = attend); eager attention adds it to the scores, so there it is 0 / dtype's minimum."""
    allowed = sequence_ids[:, :, None] == sequence_ids[:, None, :]
    if causal:
        width = sequence_ids.shape[1]
        allowed &= torch.ones(width, width, dtype=torch.bool, device=allowed.device).tril()
    allowed = allowed[:, None]
    if attn_implementation == "eager":
        return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
            ~allowed, torch.finfo(dtype).min)
    return allowed


def padding_block_mask(model: torch.nn.Module, attention_mask: torch.Tensor, *, family: str) -> torch.Tensor:
    """A padded batch's 4D mask: that of a packed batch with one sequence per row. Handed to the
    model ready-made because, given the 2D mask, transformers reads it back (`.all()` in
    masking_utils) to see whether any row is padded: a host-device sync in every forward pass,
    and outside the compiled blocks. Real tokens attend exactly as with the 2D mask. A family
    whose forward takes only a 2D mask (`block_mask` False: DeBERTa, ModernBERT) gets it as it is."""
    fam, hf = get_family(family), transformers_model(model)
    if not fam.block_mask:
        return attention_mask
    return block_mask(attention_mask.long() - 1, causal=fam.causal,
                      attn_implementation=attn_implementation(hf), dtype=hf.dtype)


def packed_forward(model: torch.nn.Module, batch: dict[str, torch.Tensor], *,
                   family: str) -> SequenceClassifierOutput:
    fam, hf = get_family(family), transformers_model(model)
    encoder = hf.base_model  # BertModel / GPT2Model, with any adapter or LoRA layers inside
    mask = block_mask(batch["sequence_ids"], causal=fam.causal,
                      attn_implementation=attn_implementation(hf), dtype=hf.dtype)
    # token types where the tokenizer gave them, as in a padded batch (GPT-2 adds them too, if given)
    types = {"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {}
    positions = batch["position_ids"] + (hf.config.pad_token_id + 1 if fam.position_offset else 0)
    hidden = encoder(input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions,
                     **types).last_hidden_state
    out = hidden.flatten(0, 1)[batch["pool_index"]][:, None]  # pooled tokens, (sequences, 1, hidden)
    for path in fam.packed_head:  # e.g. BERT's pooler (it reads the first token), dropout, classifier
        out = reduce(getattr, path.split("."), hf)(out)
    logits = out[:, 0] if out.dim() == 3 else out  # a per-token head (GPT-2's score) keeps the token axis
    loss = None
    if "labels" in batch:
        labels = batch["labels"]
        if hf.config.problem_type == "regression":
            loss = F.mse_loss(logits.squeeze(-1), labels)
        else:
            loss = F.cross_entropy(logits.view(-1, hf.config.num_labels), labels.view(-1))
    return SequenceClassifierOutput(loss=loss, logits=logits)
