"""The vocabulary report, checked by hand on a tokenizer small enough to count."""
from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from tokentune.vocab.report import format_report, vocab_report, write_report

from .helpers import read_sst2, sst2_dir

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def bert_like(words: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(SPECIALS + words)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


NEW = bert_like(["the", "film", "was", "great", "bor", "##ing", "!", ",", "a"])
BASE = bert_like(["the", "film", "great", "##ing", "!"])
TEXTS = {"train": ["The film was great!", "A boring film, 😀"], "validation": ["the film"]}


def test_report_counts_by_hand():
    r = vocab_report(NEW, BASE, TEXTS, embedding_dim=8)
    sizes = (r["vocab_size"], r["base_vocab_size"], r["embedding_params"], r["base_embedding_params"])
    assert sizes == (14, 10, 112, 80)
    assert r["overlap"] == {"tokens": 5, "share": 5 / 9}  # the film great ##ing !
    train = r["splits"]["train"]
    # the film was great !  |  a bor ##ing film , [UNK]
    assert (train["texts"], train["words"], train["tokens"]) == (2, 10, 11)
    assert train["unk_rate"] == 1 / 11 and train["fertility"] == 11 / 10
    assert train["mean_length"] == 7.5 and train["p95_length"] == pytest.approx(7.95)  # [CLS] … [SEP]
    assert train["words_kept_whole"] == 8 / 10  # not "boring" (2 pieces), not 😀 ([UNK])
    assert r["splits"]["validation"] == {"texts": 1, "words": 2, "tokens": 2, "unk_rate": 0.0, "fertility": 1.0,
                                         "mean_length": 4.0, "p95_length": 4.0, "words_kept_whole": 1.0}
    base_train = r["base_splits"]["train"]  # was, a, boring, ",", 😀 are unknown to the base
    assert base_train["unk_rate"] == 5 / 10 and base_train["words_kept_whole"] == 5 / 10


def test_report_of_the_base_itself_is_not_computed_twice():
    r = vocab_report(BASE, BASE, TEXTS, embedding_dim=8)
    assert r["base_splits"] is r["splits"] and r["overlap"] == {"tokens": 5, "share": 1.0}
    assert "| base |" not in format_report(r)


def test_empty_split_and_empty_texts():
    r = vocab_report(NEW, BASE, {"train": ["", "the"], "validation": []}, embedding_dim=8)
    assert r["splits"]["train"]["words"] == 1 and r["splits"]["train"]["tokens"] == 1
    assert r["splits"]["validation"]["texts"] == 0 and r["splits"]["validation"]["mean_length"] == 0.0


def test_write_and_format(tmp_path):
    r = vocab_report(NEW, BASE, TEXTS, embedding_dim=8)
    json_path, md_path = write_report(r, tmp_path / "run")
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(r))
    md = md_path.read_text()
    assert md.startswith("# Vocabulary report\n") and "| new | train | 2 | 11 | 9.09% | 1.100 | 7.5 | 8 | 80.0% |" in md
    assert "| base | validation |" in md
    text = format_report(r)
    assert text.splitlines()[0] == "vocabulary: 14 tokens (base 10); 5 (55.6%) also in the base vocabulary"
    assert "embedding parameters: 112 (base 80, dim 8)" in text
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["vocab_report.json", "vocab_report.md"]


@pytest.mark.real_data
@pytest.mark.skipif(sst2_dir() is None, reason="SST-2 absent: set GLUE_DIR or put GLUE in ../shared/data/glue")
def test_sst2_bpe_shortens_dev_sequences(build, minilm, tmp_path):
    train, dev = read_sst2(sst2_dir() / "train.tsv"), read_sst2(sst2_dir() / "dev.tsv")
    tok, _ = build("bert", kind="bpe", vocab_size=32000, corpus_texts=train, cache_dir=tmp_path)
    r = vocab_report(tok, minilm, {"validation": dev}, embedding_dim=384)
    new, base = r["splits"]["validation"], r["base_splits"]["validation"]
    assert base["texts"] == 872 and base["mean_length"] == pytest.approx(25.16, abs=0.01)
    assert new["mean_length"] < base["mean_length"] and new["words_kept_whole"] > base["words_kept_whole"]
    assert 0.4 < r["overlap"]["share"] < 0.7


def test_a_trimmed_run_warns_when_a_split_outside_its_corpus_loses_tokens_to_unknown(compose, tmp_path, caplog):
    """The demo trimmed on its train split: 11.7 % of the validation tokens become unknown (one
    warning naming the key); trimmed on both, none do (no warning)."""
    from tokentune.config import validate
    from tokentune.run.fit import vocabulary_only

    vocabulary_only(compose("task=demo", "model=bert_tiny", "tokenizer=trim"))
    (line,) = [r.getMessage() for r in caplog.records if "became unknown" in r.getMessage()]
    assert line.startswith("11.7% of the validation split's tokens became unknown with this vocabulary "
                           "(its corpus is the train split); add tokenizer.corpus.splits=[validation]")
    caplog.clear()
    cfg = compose("task=demo", "model=bert_tiny", "tokenizer=trim", "tokenizer.corpus.splits=[validation]")
    assert validate(cfg).tokenizer.corpus.splits == ["validation"]
    vocabulary_only(cfg)
    assert not [r for r in caplog.records if "became unknown" in r.getMessage()]
