"""IA3 through peft: peft's own count on MiniLM, the family's targets, merging, refusals."""
from __future__ import annotations

import copy

import peft
import pytest
import torch

from tokentune.config import validate
from tokentune.errors import ConfigError
from tokentune.finetune import get_method
from tokentune.finetune.apply import apply
from tokentune.finetune.report import parameter_report
from tokentune.model.families import FAMILIES

from .models import SETUPS, batch
from .reference import minilm, peft_count


def test_minilm_trainable_count_is_peft_s_own():
    report = parameter_report(apply({"method": "ia3"}, minilm(), family="bert", task_kind="classification"))
    want = peft_count(peft.IA3Config(task_type="SEQ_CLS"))  # peft's own targets for BERT
    # per layer: key 384 + value 384 + both output.dense (feed-forward: their inputs, 384 and 1536); head 770
    assert report["trainable"] == want == (384 + 384 + 384 + 1536) * 6 + 770
    assert report["groups"]["method"]["trainable"] == want - 770


@pytest.mark.parametrize("name", [n for n in sorted(FAMILIES) if FAMILIES[n].ia3_targets])
def test_the_family_targets_are_peft_s_for_its_model_type(name):
    from peft.utils.constants import (TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD,
                                      TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS)

    fam = FAMILIES[name]
    assert (list(fam.ia3_targets), list(fam.ia3_feedforward)) == (TARGETS[fam.model_type], FEEDFORWARD[fam.model_type])


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_merged_and_unmerged_give_the_same_logits(setup):
    family, task_kind, make = SETUPS[setup]
    model = apply({"method": "ia3"}, make(), family=family, task_kind=task_kind).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ia3_" in name:
                p.uniform_(0.5, 1.5)  # IA3 starts at ones: the identity
        b = {k: v for k, v in batch(family, task_kind).items() if k != "labels"}
        unmerged = model(**b).logits
        merged = get_method("ia3").merged(copy.deepcopy(model))(**b).logits
    assert not isinstance(merged, peft.PeftModel)
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", [n for n in sorted(FAMILIES) if not FAMILIES[n].ia3_targets])
def test_a_family_peft_names_no_targets_for_is_refused_in_one_line(compose, name):
    with pytest.raises(ConfigError) as err:
        validate(compose(f"model={name}_tiny", "finetune=ia3"))
    assert str(err.value) == (f"finetune: peft's IA3 names no modules to rescale in {name} models "
                              "(ia3_targets in tokentune/model/families.py); use finetune=lora, adapter or full")
