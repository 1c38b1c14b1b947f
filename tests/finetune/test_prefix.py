"""Prefix tuning through peft: padding invariance under eager and SDPA, position budget, the same
logits as the model given the prefix as its key/value cache, and the transformers bound it needs."""
from __future__ import annotations

import warnings

import peft
import pytest
import torch

from tokentune.errors import ConfigError
from tokentune.finetune.apply import apply
from tokentune.finetune.config import PrefixConfig
from tokentune.finetune.prefix.model import check_prefix_fits

from .models import PAD, SETUPS, batch

SENTENCE = [5, 17, 42, 8, 23]
VIRTUAL_TOKENS = 6
OTHERS = [[7] * 3, [9] * 12]  # shorter and longer neighbours force 0 and 7 pad positions


def _padded(rows: list[list[int]], family: str) -> dict[str, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [PAD] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    out = {"input_ids": ids, "attention_mask": mask}
    if family == "bert":
        out["token_type_ids"] = torch.zeros_like(ids)
    return out


def _as_if_trained(model):
    # A prefix and head of unit scale, so that attending to a pad token would move the logits
    # far beyond the tolerance (random-init heads are tiny).
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 1.0)
    return model


def _prefix_model(setup: str, attn: str, projection: bool = False):
    family, task_kind, make = SETUPS[setup]
    base = make(attn=attn).eval()
    with torch.no_grad():
        alone = base(**_padded([SENTENCE], family)).logits
    model = apply(
        {"method": "prefix", "num_virtual_tokens": VIRTUAL_TOKENS, "prefix_projection": projection},
        base,
        family=family,
        task_kind=task_kind,
        max_length=16,
    )
    return _as_if_trained(model).eval(), family, alone


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("setup", ["bert-cls", "gpt2-cls"])
@pytest.mark.parametrize("projection", [False, True])
def test_logits_do_not_depend_on_the_batch_padding(setup, attn, projection):
    model, family, base_logits = _prefix_model(setup, attn, projection)
    with torch.no_grad():
        alone = model(**_padded([SENTENCE], family)).logits[0]
        padded = model(**_padded([SENTENCE, *OTHERS], family)).logits[0]
        padded_more = model(**_padded([OTHERS[1], SENTENCE], family)).logits[1]
    assert not torch.allclose(alone, base_logits[0], atol=1e-4)  # the prefix is in play
    assert torch.allclose(padded, alone, atol=1e-5, rtol=0)
    assert torch.allclose(padded_more, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_gpt2_lm_logits_of_real_tokens_do_not_depend_on_padding(attn):
    model, family, base_logits = _prefix_model("gpt2-lm", attn)
    n = len(SENTENCE)
    with torch.no_grad():
        alone = model(**_padded([SENTENCE], family)).logits[0]
        padded = model(**_padded([OTHERS[1], SENTENCE], family)).logits[1, :n]
    assert alone.shape[0] == n  # peft returns logits for the real tokens only
    assert not torch.allclose(alone, base_logits[0], atol=1e-4)
    assert torch.allclose(padded, alone, atol=1e-5)


def test_prefix_plus_max_length_beyond_positions_is_refused():
    family, task_kind, make = SETUPS["bert-cls"]
    with pytest.raises(ConfigError) as info:
        apply({"method": "prefix", "num_virtual_tokens": 20}, make(), family=family, task_kind=task_kind, max_length=60)
    assert str(info.value) == (
        "finetune.num_virtual_tokens: 20 virtual tokens + max length 60 = 80 positions, but the model has 64; "
        "lower finetune.num_virtual_tokens to at most 4 or the task's max length to at most 44"
    )


def test_prefix_alone_beyond_positions_is_refused():
    family, task_kind, make = SETUPS["gpt2-lm"]
    with pytest.raises(ConfigError, match=r"^finetune.num_virtual_tokens: 64 virtual tokens leave no room for text"):
        apply({"method": "prefix", "num_virtual_tokens": 64}, make(), family=family, task_kind=task_kind)


def test_prefix_that_just_fits_runs():
    family, task_kind, make = SETUPS["gpt2-cls"]
    model = make()
    check_prefix_fits(PrefixConfig(num_virtual_tokens=4), model.config, 60)
    tuned = apply({"method": "prefix", "num_virtual_tokens": 4}, model, family=family, task_kind=task_kind, max_length=60)
    ids = torch.randint(2, 100, (2, 60))
    out = tuned(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([0, 1]))
    assert out.logits.shape == (2, 2) and torch.isfinite(out.loss)


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_logits_equal_the_model_called_directly_with_the_prefix_as_its_cache(setup):
    # The reference passes peft's per-layer key/values straight to the transformers model: no peft
    # forward and nothing of tokentune's in between.
    model, family, _ = _prefix_model(setup, "eager")
    inputs = _padded([SENTENCE, *OTHERS], family)
    base = model.get_base_model()
    rows = inputs["input_ids"].shape[0]
    prefix_mask = torch.ones(rows, VIRTUAL_TOKENS, dtype=torch.long)
    mask = torch.cat([prefix_mask, inputs["attention_mask"]], dim=1)
    with torch.no_grad():
        expected = base(**{**inputs, "attention_mask": mask, "past_key_values": model.get_prompt(rows)}).logits
        assert torch.allclose(model(**inputs).logits, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_a_training_step_passes_the_prefix_without_deprecation_warnings(setup):
    model, family, _ = _prefix_model(setup, "eager")
    _, task_kind, _ = SETUPS[setup]
    model.train()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model(**batch(family, task_kind)).loss.backward()
    assert [str(w.message) for w in caught if "past_key_values" in str(w.message)] == []


def test_the_transformers_bound_is_where_prefix_tuning_breaks():
    # pyproject's upper bound and the composition check name the same release: moving one alone fails
    from packaging.version import Version

    from lockfile import declared
    from tokentune.compat.transformers import CACHE_RENAMED

    (req,) = [r for r in declared([]) if r.name == "transformers"]
    first_refused = Version(".".join(map(str, CACHE_RENAMED)))
    assert first_refused not in req.specifier and Version(f"{CACHE_RENAMED[0]}.{CACHE_RENAMED[1] - 1}") in req.specifier


def test_a_transformers_past_the_bound_refuses_prefix_tuning_at_composition(compose, monkeypatch):
    from tokentune.compat import transformers as compat
    from tokentune.config import validate

    assert validate(compose("model=bert_tiny", "finetune=prefix")).finetune.method == "prefix"
    monkeypatch.setattr(compat, "installed_version", lambda: (5, 24))
    with pytest.raises(ConfigError) as err:
        validate(compose("model=bert_tiny", "finetune=prefix"))
    assert str(err.value) == ("finetune: prefix tuning: transformers 5.24 models take `cache`, where peft passes "
                              "prefix tuning's `past_key_values`; install 'transformers<5.24' (tokentune's bound) "
                              "or use finetune=lora or adapter")
    assert validate(compose("model=bert_tiny", "finetune=lora")).finetune.method == "lora"
