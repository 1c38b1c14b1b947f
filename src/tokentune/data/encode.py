"""Tokenize a split once (batched, fast tokenizer) into flat tensors, cached on disk.

A split is stored flat — all token ids in one int32 tensor plus offsets — which keeps the cache
small and loading a single read. The cache key covers the data file's bytes, the tokenizer's
full definition, the max length and every task setting that changes the encoding; each file
carries the sha256 of its bytes, and one that does not match is tokenized again.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from tokentune.atomic import write_atomic
from tokentune.config import TaskConfig
from tokentune.data.readers import Example

log = logging.getLogger(__name__)
CHUNK = 2000  # examples per tokenizer call: large enough for its Rust batching, small for progress


# Per token (sliced like input_ids), and what each is called in a batch.
# word_ids (the word each token belongs to) and a QA window's character spans stay out of batches:
# prediction files and metrics read them.
TOKEN_KEYS = {"input_ids": "input_ids", "token_type_ids": "token_type_ids", "token_labels": "labels",
              "word_starts": "word_starts", "context_mask": "context_mask"}
PER_TOKEN = (*TOKEN_KEYS, "word_ids", "char_starts", "char_ends")
# Per example (one value each), in batches under the same name: a label, a QA window's answer
# tokens, an example's row in its split
PER_EXAMPLE = ("labels", "start_positions", "end_positions", "row")


class EncodedSplit(Dataset):
    """Examples as slices of one flat token tensor (and of flat per-token labels, if any)."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors
        self.offsets = tensors["offsets"]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> list[int]:
        return (self.offsets[1:] - self.offsets[:-1]).tolist()

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a, b = self.offsets[i].item(), self.offsets[i + 1].item()
        item = {name: self.tensors[key][a:b] for key, name in TOKEN_KEYS.items() if key in self.tensors}
        item.update({key: self.tensors[key][i] for key in PER_EXAMPLE if key in self.tensors})
        return item

    def head(self, n: int) -> "EncodedSplit":
        """The first n examples (quick runs on a slice of a large training set)."""
        end = self.offsets[n].item()
        cut = {key: value[:end] for key, value in self.tensors.items() if key in PER_TOKEN}
        cut["offsets"] = self.offsets[: n + 1]
        cut.update({key: self.tensors[key][:n] for key in PER_EXAMPLE if key in self.tensors})
        return EncodedSplit(cut)


def flatten(seqs: Sequence[Sequence[int]], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    offsets = torch.zeros(len(seqs) + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(lengths, 0)
    flat = torch.tensor([t for s in seqs for t in s], dtype=dtype)
    return flat, offsets


def encode_examples(tokenizer, examples: list[Example], max_length: int, desc: str) -> dict[str, torch.Tensor]:
    ids, types = [], []
    pairs = examples[0].text_b is not None
    for start in tqdm(range(0, len(examples), CHUNK), desc=f"tokenizing {desc}", unit="chunk",
                      disable=len(examples) <= CHUNK, mininterval=2):
        chunk = examples[start:start + CHUNK]
        enc = tokenizer([e.text_a for e in chunk], [e.text_b for e in chunk] if pairs else None,
                        truncation=True, max_length=max_length)
        ids.extend(enc["input_ids"])
        if "token_type_ids" in enc:
            types.extend(enc["token_type_ids"])
    flat, offsets = flatten(ids, torch.int32)
    out = {"input_ids": flat, "offsets": offsets}
    if types:
        out["token_type_ids"] = flatten(types, torch.int8)[0]
    if examples[0].label is not None:
        dtype = torch.float32 if isinstance(examples[0].label, float) else torch.long
        out["labels"] = torch.tensor([e.label for e in examples], dtype=dtype)
    return out


def encode_lm_text(tokenizer, text: str, block_size: int, validation_fraction: float) -> dict[str, dict]:
    """A text file as consecutive blocks of `block_size` tokens; its tail is the validation split."""
    lines = text.splitlines(keepends=True)
    ids: list[int] = []
    step = 2000
    for start in tqdm(range(0, len(lines), step), desc="tokenizing text", unit="chunk",
                      disable=len(lines) <= step, mininterval=2):
        ids.extend(t for seq in tokenizer(lines[start:start + step], add_special_tokens=False)["input_ids"]
                   for t in seq)
    cut = int(len(ids) * (1 - validation_fraction))
    splits = {}
    for name, part in (("train", ids[:cut]), ("validation", ids[cut:])):
        blocks = [part[i:i + block_size] for i in range(0, len(part) - block_size + 1, block_size)]
        if not blocks:
            from tokentune.errors import UserError
            raise UserError(f"task.block_size: the {name} split has only {len(part)} tokens, "
                            f"fewer than one block of {block_size}")
        flat, offsets = flatten(blocks, torch.int32)
        splits[name] = {"input_ids": flat, "offsets": offsets}
    return splits


def fingerprint(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def tokenizer_fingerprint(tokenizer) -> str:
    return fingerprint(tokenizer.backend_tokenizer.to_str(), type(tokenizer).__name__)


def task_fingerprint(task: TaskConfig) -> dict:
    keep = ("kind", "format", "header", "column_names", "text_columns", "label_column", "labels",
            "index_column", "skip_malformed_rows", "validation_fraction", "block_size", "tag_scheme", "tag_column",
            "label_all_subtokens")
    d = asdict(task)
    return {k: d[k] for k in keep}


class TensorCache:
    """A folder of tokenized splits: `get(name, build)` reads `name`, or builds and writes it."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def get(self, name: str, build) -> dict:
        path = self.folder / name
        tensors = load_cached(path)
        if tensors is None:
            tensors = build()
            save_cached(tensors, path)
        return tensors


# A cache file is one line, `tokentune-cache sha256=<hex>`, then the torch.save bytes it hashes
# (as the vocabulary cache's meta.json holds its tokenizer.json's): torch.load reads a file with a
# changed byte in a tensor without complaint, and would hand the run wrong token ids
CHECKSUM = b"tokentune-cache sha256="


def load_cached(path: Path) -> Optional[dict]:
    """The tensors cached at `path`; None (and one warning line) when absent, damaged or foreign."""
    if not path.is_file():
        return None
    try:
        head, _, payload = path.read_bytes().partition(b"\n")
        if not head.startswith(CHECKSUM):
            raise ValueError("no checksum line: an older tokentune's or another program's file")
        if hashlib.sha256(payload).hexdigest().encode() != head[len(CHECKSUM):]:
            raise ValueError("its bytes do not match its sha256")
        return torch.load(io.BytesIO(payload), weights_only=True)
    except Exception as err:  # damaged, truncated or foreign: rebuild rather than fail or trust it
        log.warning("ignoring cache file %s (%s); re-tokenizing", path, str(err).splitlines()[0])
        return None


def save_cached(obj, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getbuffer()

    def write(f) -> None:
        f.write(CHECKSUM + hashlib.sha256(payload).hexdigest().encode() + b"\n")
        f.write(payload)

    write_atomic(path, write)
