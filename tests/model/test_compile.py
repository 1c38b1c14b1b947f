"""model.compile: per transformer block, in place, one graph for every shape, a clear failure."""
import copy

import pytest
import torch

from tokentune.config import ModelConfig, TaskConfig, validate
from tokentune.data.batching import collate
from tokentune.data.packing import pack
from tokentune.errors import UserError
from tokentune.finetune.apply import apply
from tokentune.finetune.config import AdapterConfig, FullConfig, LoraConfig
from tokentune.model import compile as compile_mod
from tokentune.model.backbone import load_backbone
from tokentune.model.compile import compile_blocks, fixed_widths, repeated_blocks
from tokentune.model.packed import block_mask, transformers_model

TINY = {"vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 64}


def inductor_works() -> bool:
    try:
        compile_mod.check_compiler(torch.device("cpu"))
        return torch._dynamo.is_dynamo_supported()
    except (UserError, RuntimeError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not inductor_works(), reason="torch.compile unavailable here (dynamo or a C++ compiler)")
def test_inductor_compiled_blocks_match_eager_with_one_graph_for_all_widths():
    """Inductor's CPU code (about 30 s to build): same loss and gradients, same parameter names,
    and one graph that both blocks and all three bucket widths reuse. On a GPU the same call emits
    Triton kernels and, with mode=reduce-overhead, CUDA graphs (tests/run/test_speed.py, GPU-marked)."""
    from torch._dynamo.utils import counters

    task = TaskConfig(name="t", splits={"train": {"path": "x"}}, labels=["a", "b"])
    eager = load_backbone(ModelConfig(name="tiny", family="bert", config=TINY), task, pad_token_id=0,
                          seed=0).eval()
    compiled = copy.deepcopy(eager)
    torch._dynamo.reset()
    counters.clear()
    compile_blocks(compiled, "default", family="bert", method="full", widths=[16, 24, 40],
                   device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    try:
        # no width equal to a weight's size (32): dynamo would give both one symbol, a static one
        for width, lengths in ((40, (5, 17, 30, 9, 22, 3, 12, 38)), (16, (5, 15, 3, 9)), (24, (20, 2))):
            feats = [{"input_ids": torch.randint(1, 300, (n,), generator=gen), "labels": torch.tensor(n % 2)}
                     for n in lengths]
            batch = collate(feats, pad_id=0, widths=[width])
            results = []
            for m in (eager, compiled):
                m.zero_grad()
                out = m(**batch)
                out.loss.backward()
                results.append((out.loss.detach(), {k: p.grad for k, p in m.named_parameters()}))
            (loss_e, grads_e), (loss_c, grads_c) = results
            assert loss_c.item() == pytest.approx(loss_e.item(), rel=1e-5)
            for name in grads_e:
                torch.testing.assert_close(grads_c[name], grads_e[name], rtol=1e-4, atol=1e-5, msg=name)
        assert counters["stats"]["unique_graphs"] == 1  # one block graph, symbolic in batch and width
        assert list(compiled.state_dict()) == list(eager.state_dict())  # no `_orig_mod.` prefix
    finally:
        torch._dynamo.reset()


def tuned_tiny(family: str, method: str) -> torch.nn.Module:
    """A tiny random BERT or GPT-2 classifier with a fine-tuning method applied."""
    config = TINY if family == "bert" else {"vocab_size": 300, "n_embd": 32, "n_layer": 2, "n_head": 2,
                                            "n_positions": 64}
    task = TaskConfig(name="t", splits={"train": {"path": "x"}}, labels=["a", "b"])
    model = load_backbone(ModelConfig(name="tiny", family=family, config=config), task, pad_token_id=0,
                          seed=0)
    cfg = {"full": FullConfig, "lora": LoraConfig, "adapter": AdapterConfig}[method]()
    return apply(cfg, model, family=family, task_kind="classification")


@pytest.mark.parametrize("family,block", [("bert", "BertLayer"), ("gpt2", "GPT2Block")])
@pytest.mark.parametrize("method", ["full", "lora", "adapter"])
def test_blocks_are_compiled_one_by_one(family, method, block):
    model = tuned_tiny(family, method)
    blocks = repeated_blocks(model, family)
    assert [type(b).__name__ for b in blocks] == [block, block]
    compile_blocks(model, "default", family=family, method=method, widths=[32], device=torch.device("cpu"))
    compiled = [m for m in model.modules() if m._compiled_call_impl is not None]
    assert compiled == blocks  # the blocks, and nothing around them


@pytest.mark.skipif(not torch._dynamo.is_dynamo_supported(), reason="dynamo unsupported on this Python")
@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_a_block_that_fails_to_compile_runs_eager_with_one_warning(monkeypatch, caplog, method):
    # inductor's entry point raising stands for any compile-time failure: dynamo wraps it in
    # BackendCompilerFailed, as it does a C++ or Triton build error; no compiler is needed to see it
    def broken(*args, **kwargs):
        raise RuntimeError("lowering aten.weird failed")

    monkeypatch.setattr("torch._inductor.compile_fx.compile_fx", broken)
    monkeypatch.setattr(compile_mod, "check_compiler", lambda device: None)
    eager = tuned_tiny("gpt2", method).eval()
    model = copy.deepcopy(eager)
    compile_blocks(model, "default", family="gpt2", method=method, widths=None, device=torch.device("cpu"))
    ids = torch.randint(1, 300, (3, 9), generator=torch.Generator().manual_seed(0))
    torch._dynamo.reset()
    try:
        with caplog.at_level("WARNING", logger="tokentune.model.compile"):
            with torch.no_grad():
                first, again = model(input_ids=ids).logits, model(input_ids=ids).logits
                expected = eager(input_ids=ids).logits
    finally:
        torch._dynamo.reset()
    assert torch.equal(first, expected) and torch.equal(again, expected)
    assert [m for m in model.modules() if m._compiled_call_impl is not None] == []
    assert [r.getMessage() for r in caplog.records] == [
        f"model.compile=default of gpt2 blocks under finetune={method} failed to compile "
        "(RuntimeError: lowering aten.weird failed); running eager"]


@pytest.mark.parametrize("overrides,widths", [
    ((), None),
    (("data.buckets=[16,32,64,128]",), [16, 32, 64, 128]),
    (("data.buckets=[16,32,64,128]", "data.max_length=48"), [16, 32, 48]),
    (("data.buckets=[16,32]", "data.packing=true"), None),  # the number of packed rows varies
    (("model=gpt2_tiny", "task=shakespeare", "task.block_size=64"), [64]),
])
def test_fixed_widths(compose, overrides, widths):
    assert fixed_widths(validate(compose(*overrides))) == widths


def test_no_cpp_compiler_fails_with_the_fix(monkeypatch):
    def missing():
        raise RuntimeError("no working C++ compiler found")

    monkeypatch.setattr("torch._inductor.cpp_builder.get_cpp_compiler", missing)
    with pytest.raises(UserError, match="needs a C\\+\\+ compiler .* or set model.compile=null"):
        compile_mod.check_compiler(torch.device("cpu"))
    compile_mod.check_compiler(torch.device("cuda"))  # Triton, not C++, on a GPU


@pytest.mark.parametrize("family", ["bert", "gpt2"])
@pytest.mark.parametrize("method", ["full", "lora", "adapter"])
def test_encoder_traces_to_one_graph(family, method):
    """No graph breaks, padded or packed: under reduce-overhead each break would split the step
    into several CUDA graphs with Python between them."""
    encoder = transformers_model(tuned_tiny(family, method)).base_model
    feats = [{"input_ids": torch.arange(1, n + 1), "token_type_ids": torch.zeros(n, dtype=torch.long)}
             for n in (5, 17, 30)]
    padded = collate(feats, pad_id=0, widths=[32])
    packed = pack(feats, pad_id=0, budget=64, pool="first", widths=[64])
    mask = block_mask(packed["sequence_ids"], causal=family == "gpt2", attn_implementation="sdpa",
                      dtype=torch.float32)
    packed_inputs = {"input_ids": packed["input_ids"], "attention_mask": mask,
                     "token_type_ids": packed["token_type_ids"], "position_ids": packed["position_ids"]}
    try:
        for inputs in (padded, packed_inputs):
            explained = torch._dynamo.explain(encoder)(**inputs)
            assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    finally:
        torch._dynamo.reset()
