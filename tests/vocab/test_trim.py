"""tokenizer=trim: the backbone's tokenizer cut to what the corpus uses — exact there (WordPiece
and byte-level BPE, property-tested), graceful elsewhere, with the embedding rows copied so that
the smaller model computes the same logits."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (BertConfig, BertForMaskedLM, BertForSequenceClassification, GPT2Config,
                          GPT2LMHeadModel)

from tokentune.errors import ConfigError, UserError
from tokentune.model.tokenizer import byte_level_tokenizer
from tokentune.vocab.build import load_or_build_info
from tokentune.vocab.induction import induce_embeddings
from tokentune.vocab.report import format_report, vocab_report, vs_base
from tokentune.vocab.spec import TokenizerConfig
from tokentune.vocab.trim import count_tokens, trim

from .helpers import ROOT, read_sst2, sst2_dir
from .test_report import bert_like
from .test_spec import compose as compose_spec

FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
OUTSIDE = "😀ж中ß€Qxyzkwv"


pytestmark = pytest.mark.usefixtures("single_thread")  # exact float comparisons


@pytest.fixture(scope="module")
def wp_corpus(corpus):
    return corpus[:300]


@pytest.fixture(scope="module")
def bpe_corpus(corpus):
    return corpus[:200]


@pytest.fixture(scope="module")
def wordpiece(build, wp_corpus):
    return build("bert", mode="trim", corpus_texts=wp_corpus)


@pytest.fixture(scope="module")
def byte_bpe(build, bpe_corpus):
    return build("gpt2", mode="trim", corpus_texts=bpe_corpus)


def tokens(tok, text: str) -> list[str]:
    return tok.convert_ids_to_tokens(tok(text)["input_ids"])


def same_where_kept(old, new, text: str) -> None:
    """Text the original cuts into kept tokens only is cut the same way; ids name the same tokens."""
    before = tokens(old, text)
    if set(before) <= set(new.get_vocab()):
        assert tokens(new, text) == before


def test_yaml_and_keys():
    spec = compose_spec(yaml=ROOT / "conf" / "tokenizer" / "trim.yaml")
    assert (spec.kind, spec.mode, spec.max_tokens, spec.trains) == ("pretrained", "trim", None, True)
    with pytest.raises(ConfigError, match=r"^tokenizer.max_tokens: caps a trimmed vocabulary \(mode=trim\)"):
        compose_spec("max_tokens=100")
    with pytest.raises(ConfigError, match=r"^tokenizer.mode: trim cuts down the backbone's own tokenizer"):
        compose_spec("kind=bpe", "mode=trim")
    with pytest.raises(ConfigError, match=r"^tokenizer.corpus.splits: \['train'\]: name each split once"):
        compose_spec("mode=trim", "corpus.splits=[train]")


def test_wordpiece_is_exact_on_its_corpus(wordpiece, minilm, wp_corpus):
    tok, info = wordpiece
    assert info.mode == "trim" and info.vocab_size == len(tok) and 300 < len(tok) < 2000
    assert info.added == info.vocab_size - len(minilm)
    # specials kept, in their old order; the template's [CLS]/[SEP] ids follow them
    assert [tok.pad_token_id, tok.unk_token_id] == [0, 1] and tok.cls_token_id < tok.sep_token_id < tok.mask_token_id
    enc = tok("the film", "a scene")["input_ids"]
    assert tok.convert_ids_to_tokens(enc) == ["[CLS]", "the", "film", "[SEP]", "a", "scene", "[SEP]"]

    @FAST
    @given(st.sampled_from(wp_corpus))
    def check(text):
        assert tokens(tok, text) == tokens(minilm, text)

    check()


def test_wordpiece_degrades_gracefully_outside(wordpiece, minilm, wp_corpus):
    tok, _ = wordpiece
    pre = minilm.backend_tokenizer

    @FAST
    @given(st.text(alphabet="".join(sorted(set("".join(wp_corpus)))) + OUTSIDE + " ", max_size=60))
    def check(text):
        same_where_kept(minilm, tok, text)
        words = [w for w, _ in pre.pre_tokenizer.pre_tokenize_str(pre.normalizer.normalize_str(text))]
        for word in words:  # each word is spelt by the pieces that remain, or is [UNK]
            pieces = tok.tokenize(word)
            assert pieces == ["[UNK]"] or "".join(p.removeprefix("##") for p in pieces) == word

    check()


def test_byte_level_bpe_is_exact_on_its_corpus_and_never_unknown(byte_bpe, gpt2_old, bpe_corpus):
    tok, info = byte_bpe
    vocab = tok.get_vocab()
    assert 257 < len(tok) < len(gpt2_old)
    assert all(symbol in vocab for symbol in gpt2_old.backend_tokenizer.pre_tokenizer.alphabet())
    merges = tok.backend_tokenizer.to_str()
    assert '"merges":[[' in merges  # the merge table kept its own JSON spelling

    @FAST
    @given(st.sampled_from(bpe_corpus))
    def on_corpus(text):
        assert tokens(tok, text) == tokens(gpt2_old, text)

    @FAST
    @given(st.text(max_size=60))
    def anywhere(text):
        same_where_kept(gpt2_old, tok, text)
        ids = tok(text)["input_ids"]
        assert tok.decode(ids) == text and tok.unk_token_id not in ids

    on_corpus()
    anywhere()


def test_cap_and_min_frequency(build, wp_corpus, bpe_corpus, gpt2_old, tmp_path):
    full, _ = build("bert", mode="trim", corpus_texts=wp_corpus, cache_dir=tmp_path)
    capped, info = build("bert", mode="trim", max_tokens=200, corpus_texts=wp_corpus, cache_dir=tmp_path)
    assert len(capped) == 200 and info.requested == 200 and set(capped.get_vocab()) < set(full.get_vocab())
    assert {"the", "film", "[MASK]"} <= set(capped.get_vocab())
    rare, _ = build("bert", mode="trim", min_frequency=5, corpus_texts=wp_corpus, cache_dir=tmp_path)
    assert len(capped) < len(full) and len(rare) < len(full)
    # a capped byte-level BPE keeps what its kept merges need: still exact wherever it is complete
    small, _ = build("gpt2", mode="trim", max_tokens=300, corpus_texts=bpe_corpus, cache_dir=tmp_path)
    assert len(small) <= 300
    for text in bpe_corpus[:50]:
        same_where_kept(gpt2_old, small, text)
        assert small.decode(small(text)["input_ids"]) == text


def test_cached_like_every_vocabulary(build, wp_corpus, tmp_path):
    _, first = build("bert", mode="trim", corpus_texts=wp_corpus, cache_dir=tmp_path)
    _, again = build("bert", mode="trim", corpus_texts=wp_corpus, cache_dir=tmp_path)
    _, other = build("bert", mode="trim", max_tokens=500, corpus_texts=wp_corpus, cache_dir=tmp_path)
    assert first.built and not again.built and again.path == first.path and first.path.split("/")[-1].startswith("trim-")
    assert other.key != first.key


def test_other_splits_join_the_corpus(build, minilm, wp_corpus, tmp_path):
    dev = ["Quixotic zebras vexed the jury.", "An unexpectedly xenophobic quartz."]
    splits = {"train": wp_corpus, "validation": dev}

    def trim_with(names):
        return load_or_build_info(TokenizerConfig(name="trim", mode="trim", corpus={"splits": names}),
                                  base_tokenizer=minilm, family="bert", corpus=wp_corpus,
                                  cache_dir=tmp_path, splits=splits)

    plain, _ = trim_with([])
    tok, info = trim_with(["validation"])
    assert info.corpus_texts == len(wp_corpus) + 2 and len(tok) > len(plain)
    assert vocab_report(tok, minilm, splits, embedding_dim=4)["vs_base"]["validation"]["changed"] == 0
    assert vocab_report(plain, minilm, splits, embedding_dim=4)["vs_base"]["validation"]["changed"] > 0
    with pytest.raises(ConfigError, match=r"^tokenizer.corpus.splits: 'test' is not a split of this task "
                                          r"\(it has \['train', 'validation'\]\)"):
        trim_with(["test"])


def test_report_counts_changed_and_unknown(wordpiece, minilm, wp_corpus):
    tok, _ = wordpiece
    outside = ["zebra quartz", "😀 film"]
    r = vocab_report(tok, minilm, {"train": wp_corpus, "other": outside}, embedding_dim=384)
    assert r["vs_base"]["train"] == {"base_tokens": r["base_splits"]["train"]["tokens"], "changed": 0.0,
                                     "became_unknown": 0.0}
    other = r["vs_base"]["other"]
    # base: zebra quartz | [UNK] film — zebra and quartz change (to pieces or [UNK]); film and 😀 stay
    assert other["base_tokens"] == 4 and other["changed"] == 0.5
    assert other["became_unknown"] == sum(tok.tokenize(w) == ["[UNK]"] for w in ("zebra", "quartz")) / 4
    assert r["embedding_params"] == len(tok) * 384 < r["base_embedding_params"] == 30522 * 384
    assert "| other | 4 | 50.00% |" in format_report(r)


def test_vs_base_by_hand():
    base = bert_like(["ab", "a", "##b", "##c", "d", "##bc"])
    text = ["abc dc"]  # base: ab ##c | d ##c
    split = bert_like(["a", "##bc", "##c", "d"])  # a ##bc | d ##c: ab and the first ##c change
    assert vs_base(split, base, text) == {"base_tokens": 4, "changed": 0.5, "became_unknown": 0.0}
    unknown = bert_like(["d", "##c"])  # [UNK] | d ##c
    assert vs_base(unknown, base, text) == {"base_tokens": 4, "changed": 0.5, "became_unknown": 0.5}


def test_an_unknown_token_the_wrapper_does_not_name_is_kept(minilm, wp_corpus):
    words = ["the", "film", "##s"]
    backend = Tokenizer(models.WordPiece({t: i for i, t in enumerate(["[CLS]", "[SEP]", "[UNK]"] + words)},
                                         unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trimmed = trim(backend, count_tokens(backend, ["the films"]), ["[CLS]", "[SEP]"], max_tokens=None,
                   min_frequency=0)
    assert trimmed.encode("the plot films").tokens == ["the", "[UNK]", "film", "##s"]


def test_classifier_logits_are_unchanged(wordpiece, minilm, wp_corpus):
    tok, _ = wordpiece
    torch.manual_seed(0)
    old = BertForSequenceClassification(BertConfig(
        vocab_size=len(minilm), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=0, num_labels=3)).eval()
    new = BertForSequenceClassification(old.config).eval()
    new.load_state_dict(old.state_dict())
    stats = induce_embeddings(new, minilm, tok, "fvt")
    assert stats["kept"] + stats["copied"] == len(tok) and stats["random"] == stats["fvt"] == 0
    assert new.num_parameters() == old.num_parameters() - (len(minilm) - len(tok)) * 32
    texts = wp_corpus[:64]
    with torch.no_grad():
        want = old(**minilm(texts, padding=True, return_tensors="pt")).logits
        got = new(**tok(texts, padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_language_model_logits_are_the_kept_columns(family, byte_bpe, wordpiece, gpt2_old, minilm, corpus):
    (tok, _), base = (byte_bpe, gpt2_old) if family == "gpt2" else (wordpiece, minilm)
    torch.manual_seed(0)
    if family == "gpt2":  # tied head: it shrinks with the input rows
        old = GPT2LMHeadModel(GPT2Config(vocab_size=len(base), n_embd=32, n_layer=2, n_head=2, n_positions=128))
    else:  # an untied bias over the vocabulary, which must move with the rows
        old = BertForMaskedLM(BertConfig(vocab_size=len(base), hidden_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))
        with torch.no_grad():
            old.cls.predictions.bias.normal_()
    old.eval()
    new = type(old)(old.config).eval()
    new.load_state_dict(old.state_dict())
    induce_embeddings(new, base, tok, "random")
    assert new.get_output_embeddings().weight.shape[0] == len(tok) == new.config.vocab_size
    if family == "gpt2":
        assert new.get_output_embeddings().weight is new.get_input_embeddings().weight
    old_ids = torch.tensor(base.convert_tokens_to_ids(tok.convert_ids_to_tokens(list(range(len(tok))))))
    for text in corpus[:20]:
        with torch.no_grad():
            want = old(**base(text, return_tensors="pt")).logits
            got = new(**tok(text, return_tensors="pt")).logits
        torch.testing.assert_close(got, want[..., old_ids], rtol=0, atol=1e-5)


def test_bad_input_names_the_key(build, tmp_path, wp_corpus):
    with pytest.raises(ConfigError) as e:
        build("gpt2", mode="trim", max_tokens=100, cache_dir=tmp_path)
    assert str(e.value).startswith("tokenizer.max_tokens: 100 is fewer than the 257 tokens every trimmed "
                                   "vocabulary of this backbone keeps (1 special tokens + 256 symbols no merge "
                                   "makes (byte-level: the 256 bytes)); set at least 257")
    with pytest.raises(ConfigError, match=r"^tokenizer.max_tokens: 3 is fewer than the 5 tokens"):
        build("bert", mode="trim", max_tokens=3, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"^tokenizer.corpus: the corpus yields no token beyond the 5 that "
                                          r"every trimmed vocabulary of this backbone keeps"):
        build("bert", mode="trim", corpus_texts=["😀 😀", "[CLS]"], cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"^model.tokenizer: this backbone tokenizer has no merges: its 256 "
                                          r"tokens are all base symbols"):
        load_or_build_info(TokenizerConfig(name="trim", mode="trim"), base_tokenizer=byte_level_tokenizer(),
                           family="gpt2", corpus=wp_corpus, cache_dir=tmp_path)


def test_unigram_backbone_is_refused(build, tmp_path, wp_corpus):
    unigram, _ = build("bert", kind="unigram", vocab_size=400, corpus_texts=wp_corpus, cache_dir=tmp_path)
    with pytest.raises(UserError, match=r"^tokenizer.mode: trim knows WordPiece and BPE tokenizers, not "
                                        r"this backbone's Unigram"):
        load_or_build_info(TokenizerConfig(name="trim", mode="trim"), base_tokenizer=unigram, family="bert",
                           corpus=wp_corpus, cache_dir=tmp_path)


@pytest.mark.real_data
@pytest.mark.skipif(sst2_dir() is None, reason="SST-2 absent: set GLUE_DIR or put GLUE in ../shared/data/glue")
def test_sst2_minilm_trim(build, minilm, tmp_path):
    train = read_sst2(sst2_dir() / "train.tsv")
    dev = read_sst2(sst2_dir() / "dev.tsv")
    tok, info = build("bert", mode="trim", corpus_texts=train, cache_dir=tmp_path)
    r = vocab_report(tok, minilm, {"validation": dev}, embedding_dim=384)
    # the 11,571 ids MiniLM produces on the train split, + [UNK] [CLS] [SEP] [MASK] it does not
    assert info.vocab_size == len(tok) == 11_575
    assert 0 < r["vs_base"]["validation"]["changed"] < 0.05


@pytest.mark.parametrize("finetune, trains", [("lora", False), ("full", True)])
def test_trimmed_rows_train_only_when_the_whole_model_does(compose, wordpiece, minilm, finetune, trains):
    from tokentune.config import validate
    from tokentune.model.module import TaskModule

    tok, _ = wordpiece
    module = TaskModule(validate(compose("model=bert_tiny", "tokenizer=trim", f"finetune={finetune}")),
                        tokenizer=tok, base_tokenizer=minilm, device="cpu")
    module.configure_model()
    rows = module.model.get_input_embeddings().weight
    assert rows.shape[0] == len(tok) and rows.requires_grad is trains
