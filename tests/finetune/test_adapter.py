"""Bottleneck adapters: identity at init, placement, effect once trained, size checks."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tokentune.errors import ConfigError
from tokentune.finetune.adapter.layer import AdapterLayer, BottleneckAdapter
from tokentune.finetune.adapter.model import inject_adapters
from tokentune.finetune.apply import apply
from tokentune.finetune.config import AdapterConfig
from tokentune.finetune.families import FAMILIES

from .models import SETUPS, batch


def _inputs(b: dict) -> dict:
    return {k: v for k, v in b.items() if k != "labels"}


@pytest.mark.parametrize("setup", sorted(SETUPS))
@pytest.mark.parametrize("placement", ["pfeiffer", "houlsby"])
def test_outputs_equal_base_model_at_init(setup, placement):
    family, task_kind, make = SETUPS[setup]
    base = make().eval()
    b = _inputs(batch(family, task_kind))
    with torch.no_grad():
        expected = base(**b).logits
        tuned = apply(
            {"method": "adapter", "placement": placement, "bottleneck": 8, "non_linearity": "gelu"},
            base,
            family=family,
            task_kind=task_kind,
        ).eval()
        got = tuned(**b).logits
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("setup", sorted(SETUPS))
@pytest.mark.parametrize("placement, sites", [("pfeiffer", ["ffn"]), ("houlsby", ["attention", "ffn"])])
def test_adapters_sit_where_the_placement_says_and_change_outputs_once_trained(setup, placement, sites):
    family, task_kind, make = SETUPS[setup]
    model = make().eval()
    b = _inputs(batch(family, task_kind))
    with torch.no_grad():
        before = model(**b, output_hidden_states=True).hidden_states[-1]
    wrapped = inject_adapters(model, AdapterConfig(placement=placement, bottleneck=4), FAMILIES[family])
    fam = FAMILIES[family]
    site_paths = {"attention": fam.attention_site, "ffn": fam.ffn_site}
    expected = [
        f"{model.base_model_prefix}.{fam.blocks}.{i}.{site_paths[s]}"
        for i in range(model.config.num_hidden_layers)
        for s in sites
    ]
    assert wrapped == expected
    assert all(isinstance(model.get_submodule(p), AdapterLayer) for p in expected)
    # Each adapter must be on the forward path: a non-zero up-projection moves the last hidden state.
    for path in expected:
        model.eval()
        with torch.no_grad():
            up = model.get_submodule(path).adapter.up
            up.weight.normal_(0, 0.5)
            moved = model(**b, output_hidden_states=True).hidden_states[-1]
            up.weight.zero_()
        assert not torch.allclose(moved, before, atol=1e-3), path


def test_bottleneck_size_from_reduction_factor():
    model = SETUPS["bert-cls"][2]()
    inject_adapters(model, AdapterConfig(reduction_factor=8), FAMILIES["bert"])
    adapter = model.get_submodule("bert.encoder.layer.0.output.dropout").adapter
    assert adapter.down.out_features == 32 // 8


def test_bottleneck_larger_than_hidden_size_is_refused():
    with pytest.raises(ConfigError) as info:
        apply({"method": "adapter", "bottleneck": 64}, SETUPS["bert-cls"][2](), family="bert", task_kind="classification")
    assert str(info.value) == (
        "finetune.bottleneck: 64 is larger than the model's hidden size 32; choose at most 32 "
        "(a bottleneck compresses), or set it to null and use finetune.reduction_factor"
    )


def test_reduction_factor_that_leaves_nothing_is_refused():
    with pytest.raises(ConfigError, match=r"^finetune.reduction_factor: 64 leaves no bottleneck for hidden size 32"):
        apply({"method": "adapter", "reduction_factor": 64}, SETUPS["gpt2-cls"][2](), family="gpt2", task_kind="classification")


def test_injecting_twice_is_refused():
    model = SETUPS["gpt2-cls"][2]()
    inject_adapters(model, AdapterConfig(), FAMILIES["gpt2"])
    with pytest.raises(Exception, match=r"cannot place an adapter at transformer.h.0.mlp.dropout"):
        inject_adapters(model, AdapterConfig(), FAMILIES["gpt2"])


@settings(max_examples=25, deadline=None)
@given(
    hidden=st.integers(1, 48),
    data=st.data(),
    act=st.sampled_from(["relu", "gelu", "swish", "tanh"]),
)
def test_bottleneck_adapter_adds_nothing_at_init_and_learns(hidden, data, act):
    bottleneck = data.draw(st.integers(1, hidden))
    adapter = BottleneckAdapter(hidden, bottleneck, act)
    x = torch.randn(3, 5, hidden, requires_grad=True)
    y = adapter(x)
    assert torch.equal(y, torch.zeros_like(x))
    (x + y).pow(2).sum().backward()
    # With the up-projection at zero, it is the up-projection's bias that learns first.
    assert adapter.up.bias.grad is not None and adapter.up.bias.grad.abs().sum() > 0
