"""peft's prefix tuning on models whose forward takes the per-layer key/values as `cache`.

transformers 5.24 renamed that argument of BERT's and GPT-2's forward from `past_key_values` to
`cache`; the old name survives only behind a shim that warns on every call. peft 0.21 passes
`past_key_values`, and for classification it first looks for that name in the model's forward
signature and refuses the model when it is missing.

Prefix tuning stays peft's rather than becoming our own: its prompt encoder, the reshaping into
per-layer key/values, the mask widening, the head it trains in full and the parameter names that
checkpoints are keyed by stay as they are, and only the two places where peft hands the prefix
over change, with the same forward computation, so speed and numbers stay peft's. Models that
still take `past_key_values` get peft untouched. Which name a model takes is read from its
encoder's signature, not from a version number.
"""
from __future__ import annotations

import inspect
from typing import Any

import peft
import torch
from transformers import PreTrainedModel

from tokentune.finetune.peft_model import get_peft_model


def _takes_cache(model: PreTrainedModel) -> bool:
    # The encoder's signature, not `model`'s: BERT's classification forward declares neither name
    # and passes its keyword arguments on to the encoder.
    return "cache" in inspect.signature(model.base_model.forward).parameters


def _rename_prefix(
    module: PreTrainedModel, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if "past_key_values" in kwargs:
        kwargs["cache"] = kwargs.pop("past_key_values")
    return args, kwargs


class PrefixForSequenceClassification(peft.PeftModelForSequenceClassification):
    """peft's classification model, handing the prefix to the whole transformers model.

    peft does so only when the model's signature names `past_key_values`, else it calls the
    encoder and redoes the head itself, and refuses the model when the encoder does not name it
    either. BERT's and GPT-2's classification forwards (transformers 5) pass their keyword
    arguments on to the encoder, so the check is dropped, as peft's causal LM model never had it.
    """

    def _prefix_tuning_forward(
        self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None, **kwargs: Any
    ) -> Any:
        rows = (input_ids if input_ids is not None else inputs_embeds).shape[0]
        prefix = self.get_prompt(rows)
        return self.base_model(input_ids=input_ids, inputs_embeds=inputs_embeds, past_key_values=prefix, **kwargs)


def get_prefix_model(model: PreTrainedModel, config: peft.PrefixTuningConfig) -> peft.PeftModel:
    """peft's prefix-tuning model for `model`, under whichever name `model` takes the prefix."""
    if not _takes_cache(model):
        return get_peft_model(model, config)
    classification = PrefixForSequenceClassification if config.task_type == peft.TaskType.SEQ_CLS else None
    tuned = get_peft_model(model, config, classification)
    model.register_forward_pre_hook(_rename_prefix, with_kwargs=True)
    return tuned
