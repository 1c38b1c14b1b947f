"""Embedding induction: exact copies, exact means of pieces, special roles, random draws, both
families, replace and extend, tied heads, and embeddings that train under PEFT."""
from __future__ import annotations

import peft
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from tokentune.vocab.induction import _rows, induce_embeddings, set_embeddings_trainable

from .helpers import EOT

BERT_SPECIALS = dict(cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]", unk_token="[UNK]")


pytestmark = pytest.mark.usefixtures("single_thread")  # exact float comparisons


def tiny_bert(vocab_size: int) -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, pad_token_id=0))


def tiny_gpt2(vocab_size: int) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=1, n_head=2, n_positions=64,
                                      bos_token_id=0, eos_token_id=0))


def wrap(model, pre_tokenizer=None, **specials) -> PreTrainedTokenizerFast:
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizer
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials)


def mean_of(weight: torch.Tensor, ids: list[int]) -> torch.Tensor:
    """The exact mean, as induction promises it: float64 sum / count, cast once."""
    return weight[ids].double().mean(0).to(weight.dtype)


def row(model, tok, token: str) -> torch.Tensor:
    return model.get_input_embeddings().weight[tok.convert_tokens_to_ids(token)].detach()


def old_row(old_w: torch.Tensor, old_tok, token: str) -> torch.Tensor:
    return old_w[old_tok.convert_tokens_to_ids(token)]


# -- old = MiniLM's WordPiece ---------------------------------------------------------------------

def test_wordpiece_to_wordpiece_copies_and_averages_exactly(minilm):
    # the new ids are in another order than MiniLM's, specials included
    vocab = ["[SEP]", "[CLS]", "[MASK]", "[UNK]", "[PAD]", "the", "##ing", "moviegoers", "##goers", "😀"]
    new = wrap(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"),
               pre_tokenizers.BertPreTokenizer(), **BERT_SPECIALS)
    model = tiny_bert(len(minilm))
    old_w = model.get_input_embeddings().weight.detach().clone()
    stats = induce_embeddings(model, minilm, new, "fvt")

    assert model.get_input_embeddings().weight.shape == (len(vocab), 32)
    assert stats == dict(method="fvt", old_size=30522, new_size=10, kept=0, special=5, copied=2, fvt=2, random=1)
    for special in ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"]:
        assert torch.equal(row(model, new, special), old_row(old_w, minilm, special))
    assert torch.equal(row(model, new, "the"), old_row(old_w, minilm, "the"))
    assert torch.equal(row(model, new, "##ing"), old_row(old_w, minilm, "##ing"))
    assert minilm.tokenize("moviegoers") == ["movie", "##go", "##ers"]
    assert torch.equal(row(model, new, "moviegoers"),
                       mean_of(old_w, minilm.convert_tokens_to_ids(["movie", "##go", "##ers"])))
    # a continuation is spelled as one: ##go ##ers, not go ##ers
    assert torch.equal(row(model, new, "##goers"), mean_of(old_w, minilm.convert_tokens_to_ids(["##go", "##ers"])))
    assert minilm.tokenize("😀") == ["[UNK]"]  # nothing usable: a draw, not the [UNK] row
    emoji = row(model, new, "😀")
    assert torch.isfinite(emoji).all() and not (old_w == emoji).all(1).any()
    assert model.config.pad_token_id == 4 and model.get_input_embeddings().padding_idx == 4


def test_byte_level_new_vocabulary_from_wordpiece(minilm):
    b = {c: c for c in "abcdefghijklmnopqrstuvwxyz"}
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Ġthe", "the", "Ġmoviegoers", "goers", "ð", *b]
    new = wrap(models.BPE({t: i for i, t in enumerate(dict.fromkeys(vocab))}, merges=[], unk_token="[UNK]"),
               pre_tokenizers.ByteLevel(add_prefix_space=False), **BERT_SPECIALS)
    model = tiny_bert(len(minilm))
    old_w = model.get_input_embeddings().weight.detach().clone()
    stats = induce_embeddings(model, minilm, new, "fvt")
    assert torch.equal(row(model, new, "Ġthe"), old_row(old_w, minilm, "the"))  # Ġ = a word start
    assert torch.equal(row(model, new, "the"), old_row(old_w, minilm, "the"))
    assert torch.equal(row(model, new, "Ġmoviegoers"),
                       mean_of(old_w, minilm.convert_tokens_to_ids(["movie", "##go", "##ers"])))
    assert torch.equal(row(model, new, "goers"), mean_of(old_w, minilm.convert_tokens_to_ids(minilm.tokenize("goers"))))
    assert stats["random"] == 1  # "ð" is the first byte of an emoji: no WordPiece spells it


@pytest.mark.parametrize("scheme", ["metaspace", "suffix"])
def test_metaspace_and_suffix_markers_are_undone(minilm, scheme):
    if scheme == "metaspace":
        pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "▁the", "ing", "▁moviegoers"]
        new = wrap(models.Unigram([(p, -1.0) for p in pieces], unk_id=1),
                   pre_tokenizers.Metaspace(prepend_scheme="always"), **BERT_SPECIALS)
        word_start, inside, long = "▁the", "ing", "▁moviegoers"
    else:
        pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the</w>", "##ing", "moviegoers</w>"]
        new = wrap(models.BPE({p: i for i, p in enumerate(pieces)}, merges=[], unk_token="[UNK]",
                              continuing_subword_prefix="##", end_of_word_suffix="</w>"),
                   pre_tokenizers.BertPreTokenizer(), **BERT_SPECIALS)
        word_start, inside, long = "the</w>", "##ing", "moviegoers</w>"
    model = tiny_bert(len(minilm))
    old_w = model.get_input_embeddings().weight.detach().clone()
    induce_embeddings(model, minilm, new, "fvt")
    assert torch.equal(row(model, new, word_start), old_row(old_w, minilm, "the"))
    assert torch.equal(row(model, new, inside), old_row(old_w, minilm, "##ing"))  # inside a word
    assert torch.equal(row(model, new, long), mean_of(old_w, minilm.convert_tokens_to_ids(["movie", "##go", "##ers"])))


@pytest.mark.parametrize("kind", ["bpe", "wordpiece", "unigram", "byte_bpe"])
def test_built_vocabularies_copy_every_shared_token_exactly(build, minilm, kind):
    new, _ = build("bert", kind=kind, vocab_size=600)
    model = tiny_bert(len(minilm))
    old_w = model.get_input_embeddings().weight.detach().clone()
    stats = induce_embeddings(model, minilm, new, "fvt")
    assert sum(stats[k] for k in ("kept", "special", "copied", "fvt", "random")) == len(new) == stats["new_size"]
    assert stats["copied"] > 100 and stats["fvt"] > 10
    w = model.get_input_embeddings().weight.detach()
    old = minilm.get_vocab()
    if kind == "wordpiece":  # same marker scheme: the same string is the same token
        shared = [(i, old[t]) for t, i in new.get_vocab().items() if t in old]
        assert len(shared) > 100 and all(torch.equal(w[i], old_w[j]) for i, j in shared)
    # a new unmarked token not in MiniLM's vocabulary: its ## form if MiniLM has that (plain BPE
    # and Unigram pieces may sit anywhere in a word), else the mean of MiniLM's pieces
    words = [t for t in new.get_vocab() if t.isalpha() and t.isascii() and t not in old]
    assert len(words) > 5
    for t in words:
        expected = old_w[old["##" + t]] if kind != "wordpiece" and "##" + t in old else \
            mean_of(old_w, minilm(t, add_special_tokens=False)["input_ids"])
        assert torch.equal(w[new.convert_tokens_to_ids(t)], expected)


def test_extend_keeps_old_rows_verbatim_and_induces_the_new(build, minilm, corpus):
    new, info = build("bert", mode="extend", extend_tokens=40)
    model = tiny_bert(len(minilm))
    old_w = model.get_input_embeddings().weight.detach().clone()
    stats = induce_embeddings(model, minilm, new, "fvt")
    w = model.get_input_embeddings().weight.detach()
    assert stats["kept"] == len(minilm) and stats["fvt"] == info.added == 40
    assert torch.equal(w[: len(minilm)], old_w)
    for word, i in new.get_vocab().items():
        if i >= len(minilm):
            assert torch.equal(w[i], mean_of(old_w, minilm(word, add_special_tokens=False)["input_ids"]))


@pytest.mark.parametrize("method", ["copy", "random"])
def test_copy_and_random_methods(build, minilm, method):
    new, _ = build("bert", kind="bpe", vocab_size=600)
    model = tiny_bert(len(minilm))
    old_w = model.get_input_embeddings().weight.detach().clone()
    stats = induce_embeddings(model, minilm, new, method, seed=3)
    assert stats["fvt"] == 0 and stats["special"] + stats["kept"] == 5
    assert stats["copied"] > 100 if method == "copy" else stats["copied"] == 0
    assert torch.equal(row(model, new, "[CLS]"), old_row(old_w, minilm, "[CLS]"))


def test_random_draws_match_the_old_spread_and_follow_the_seed(build, minilm):
    new, _ = build("bert", kind="bpe", vocab_size=2000)
    draws = []
    for seed in (1, 1, 2):
        model = tiny_bert(len(minilm))
        old_w = model.get_input_embeddings().weight.detach().clone()
        induce_embeddings(model, minilm, new, "random", seed=seed)
        draws.append(model.get_input_embeddings().weight.detach()[5:].clone())
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    x, ref = draws[0].double(), old_w.double()
    n = x.shape[0]
    assert ((x.mean(0) - ref.mean(0)).abs() < 5 * ref.std(0) / n ** 0.5).all()
    assert ((x.std(0) / ref.std(0) - 1).abs() < 0.15).all()
    # covariance, not just per-dimension spread: the strongest old correlation is reproduced
    c_old, c_new = torch.corrcoef(ref.T), torch.corrcoef(x.T)
    i, j = divmod(int((c_old - torch.eye(32, dtype=c_old.dtype)).abs().argmax()), 32)
    assert abs(c_new[i, j] - c_old[i, j]) < 0.15


def test_rows_are_built_on_the_cpu_inside_a_default_device_context():
    # Lightning may call configure_model inside a device context; nothing may land there
    torch.manual_seed(0)
    old = torch.randn(50, 4)
    plan = [("copied", 3), ("fvt", [1, 2, 7]), ("random",), ("special", 0)]
    with torch.device("meta"):
        new = _rows(old, plan, torch.Generator().manual_seed(0))
    assert new.device.type == "cpu" and torch.isfinite(new).all()
    assert torch.equal(new[0], old[3]) and torch.equal(new[1], mean_of(old, [1, 2, 7])) and torch.equal(new[3], old[0])


# -- old = GPT-2-style byte-level BPE ------------------------------------------------------------

def test_gpt2_replace_keeps_the_head_tied_and_averages_byte_pieces(build, gpt2_old):
    new, _ = build("gpt2", kind="bpe", vocab_size=800)
    model = tiny_gpt2(len(gpt2_old))
    old_w = model.get_input_embeddings().weight.detach().clone()
    stats = induce_embeddings(model, gpt2_old, new, "fvt")
    w = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight is w and w.shape[0] == len(new)
    assert model.lm_head(torch.zeros(32)).shape == (len(new),)
    assert torch.equal(w[new.pad_token_id], old_w[gpt2_old.eos_token_id])  # old has no pad: eos
    assert torch.equal(w[new.eos_token_id], old_w[gpt2_old.eos_token_id])
    assert model.config.pad_token_id == new.pad_token_id and model.config.eos_token_id == new.eos_token_id
    old = gpt2_old.get_vocab()
    shared = [(i, old[t]) for t, i in new.get_vocab().items() if t in old]
    assert len(shared) > 300 and all(torch.equal(w[i].detach(), old_w[j]) for i, j in shared)
    fresh = [(t, i) for t, i in new.get_vocab().items() if t not in old and t not in new.all_special_tokens]
    assert stats["fvt"] > 20
    for t, i in fresh:
        if not t.startswith("Ġ") and "Ġ" + t in old:  # unmarked: a word start or not, either form fits
            assert torch.equal(w[i].detach(), old_w[old["Ġ" + t]])
        else:  # the true text (Ġ back to a space) spelled by the old tokenizer
            text = new.convert_tokens_to_string([t])
            assert torch.equal(w[i].detach(), mean_of(old_w, gpt2_old(text)["input_ids"]))


def test_gpt2_extend_keeps_old_rows_and_ties(build, gpt2_old, corpus):
    new, info = build("gpt2", mode="extend", extend_tokens=30,
                      corpus_texts=corpus + ["the zorblaxian zorblaxian film"] * 30)
    model = tiny_gpt2(len(gpt2_old))
    old_w = model.get_input_embeddings().weight.detach().clone()
    stats = induce_embeddings(model, gpt2_old, new, "fvt")
    w = model.get_input_embeddings().weight.detach()
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert stats["kept"] == len(gpt2_old) and torch.equal(w[: len(gpt2_old)], old_w)
    assert stats["fvt"] + stats["copied"] == info.added == 30 and stats["fvt"] > 20
    i = new.convert_tokens_to_ids("Ġzorblaxian")
    assert torch.equal(w[i], mean_of(old_w, gpt2_old(" zorblaxian")["input_ids"]))


def test_gpt2_old_to_wordpiece_new_maps_roles_and_markers(gpt2_old):
    old = gpt2_old.get_vocab()
    assert "Ġthe" in old and "the" not in old and "ing" in old and "Ġing" not in old
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##ing"]
    new = wrap(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"),
               pre_tokenizers.BertPreTokenizer(), **BERT_SPECIALS)
    model = tiny_gpt2(len(gpt2_old))
    old_w = model.get_input_embeddings().weight.detach().clone()
    stats = induce_embeddings(model, gpt2_old, new, "fvt")
    w = model.get_input_embeddings().weight.detach()
    eot = old_w[old[EOT]]
    for role in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):  # bos, eos, eos (no pad), unk: all <|endoftext|>
        assert torch.equal(w[new.convert_tokens_to_ids(role)], eot)
    assert torch.equal(w[5], old_w[old["Ġthe"]])  # a word start is the spaced form
    assert torch.equal(w[6], old_w[old["ing"]])  # a continuation is the bare form
    assert stats["random"] == 1  # [MASK]: no counterpart


# -- training the rows under PEFT -----------------------------------------------------------------

def test_embeddings_train_when_peft_froze_the_rest(build, minilm):
    new, _ = build("bert", kind="bpe", vocab_size=600)
    model = tiny_bert(len(minilm))
    induce_embeddings(model, minilm, new, "fvt")
    model = peft.get_peft_model(model, peft.LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query", "value"]))
    emb = model.get_input_embeddings().weight
    assert not emb.requires_grad
    n = set_embeddings_trainable(model, True)
    assert emb.requires_grad and n == emb.numel()
    batch = new(["the film", "boring"], padding=True, return_tensors="pt")
    model(**batch, labels=torch.tensor([0, 1])).loss.backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    frozen = [p for name, p in model.named_parameters() if "lora_" not in name and "classifier" not in name
              and "word_embeddings" not in name]
    assert frozen and not any(p.requires_grad for p in frozen)
    set_embeddings_trainable(model, False)
    assert not emb.requires_grad
