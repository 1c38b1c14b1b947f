"""The LightningDataModule: the tokenized-data cache (key, reuse, rebuild) and its own loaders."""
import logging
import shutil
from pathlib import Path

import pytest
import torch

from conftest import run_overrides
from tokentune.config import compose, validate
from tokentune.data import datamodule, encode
from tokentune.data.datamodule import TaskDataModule

DEMO = Path(datamodule.__file__).parent / "demo"


def loaded(cache: Path, *overrides: str) -> TaskDataModule:
    """The datamodule of `python train.py model=bert_tiny <overrides>`, its splits loaded."""
    cfg = validate(compose(run_overrides(cache, cache / "run") + ["model=bert_tiny", *overrides]))
    dm = TaskDataModule(cfg)
    dm.load()
    return dm


def cached(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "data" / "demo").iterdir())


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


# -- the cache of tokenized splits ------------------------------------------------------------

def test_the_cache_key_covers_the_data_the_tokenizer_and_the_max_length(tmp_path):
    cache = tmp_path / "cache"
    first = loaded(cache)
    names = cached(cache)
    assert [n.split("-")[0] for n in names] == ["train", "validation"]  # one file per split
    for split in ("train", "validation"):
        (path,) = (cache / "data" / "demo").glob(f"{split}-*.pt")
        assert same_tensors(encode.load_cached(path), first.splits[split].tensors)

    # what the tokens do not depend on leaves the key alone
    loaded(cache, "data.batch_size=8", "seed=3", "finetune=lora")
    assert cached(cache) == names

    # the max length: both splits get new files, with shorter rows
    short = loaded(cache, "data.max_length=8")
    with_max_length = cached(cache)
    assert len(with_max_length) == 4 and set(names) < set(with_max_length)
    assert max(short.splits["train"].lengths()) == 8 < max(first.splits["train"].lengths())

    # the tokenizer: gpt2_tiny's byte alphabet instead of MiniLM's WordPiece
    loaded(cache, "model=gpt2_tiny")
    with_tokenizer = cached(cache)
    assert len(with_tokenizer) == 6 and set(with_max_length) < set(with_tokenizer)

    # the data: one changed dev row gives the validation split a new key, not the train split
    data = tmp_path / "demo"
    shutil.copytree(DEMO, data)
    dev = (data / "dev.tsv").read_text().splitlines(keepends=True)
    dev[1] = "An entirely new sentence.\t1\n"
    (data / "dev.tsv").write_text("".join(dev))
    edited = loaded(cache, f"task.data_dir={data}")
    new = sorted(set(cached(cache)) - set(with_tokenizer))
    assert len(new) == 1 and new[0].startswith("validation-")
    assert same_tensors(edited.splits["train"].tensors, first.splits["train"].tensors)
    assert not edited.splits["validation"].tensors["input_ids"].equal(
        first.splits["validation"].tensors["input_ids"])


def test_a_cached_split_is_loaded_not_tokenized_again(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = loaded(cache)
    files = {p: p.stat().st_mtime_ns for p in (cache / "data" / "demo").iterdir()}

    def no_tokenizing(*args, **kwargs):
        raise AssertionError("tokenized again although the cache holds the split")

    monkeypatch.setattr(encode, "encode_examples", no_tokenizing)  # the kind encodes through it
    again = loaded(cache)
    for split in ("train", "validation"):
        assert same_tensors(again.splits[split].tensors, first.splits[split].tensors)
    assert {p: p.stat().st_mtime_ns for p in (cache / "data" / "demo").iterdir()} == files


def test_an_unreadable_cache_file_is_tokenized_again_and_replaced(tmp_path, caplog):
    cache = tmp_path / "cache"
    first = loaded(cache)
    (train,) = (cache / "data" / "demo").glob("train-*.pt")
    (dev,) = (cache / "data" / "demo").glob("validation-*.pt")
    train.write_bytes(train.read_bytes()[: train.stat().st_size // 2])  # cut short
    dev.write_bytes(b"not a torch file")  # foreign

    with caplog.at_level(logging.WARNING, logger="tokentune.data.encode"):
        again = loaded(cache)
    warned = sorted(r.getMessage().split(" (")[0] for r in caplog.records)
    assert warned == [f"ignoring cache file {train}", f"ignoring cache file {dev}"]
    for split, path in (("train", train), ("validation", dev)):
        assert same_tensors(again.splits[split].tensors, first.splits[split].tensors)
        assert same_tensors(encode.load_cached(path), first.splits[split].tensors)
    assert cached(cache) == sorted([train.name, dev.name])  # no temporary file left behind


# -- the datamodule's own loaders: workers and pinned memory ----------------------------------

def batches_of_two_epochs(dm: TaskDataModule) -> list[dict]:
    loader = dm.train_dataloader()
    first = list(loader)
    loader.batch_sampler.sampler.set_epoch(1)  # what Lightning does before the next epoch
    return first + list(loader) + list(dm.val_dataloader())


@pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning")  # no accelerator on a CPU machine
def test_loader_workers_and_pinned_memory_give_the_batches_of_the_main_process(tmp_path, cache_dir):
    dm = loaded(cache_dir, "data.num_workers=2", "data.pin_memory=true")
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        assert (loader.num_workers, loader.persistent_workers, loader.pin_memory) == (2, True, True)
    plain = loaded(cache_dir)
    loader = plain.train_dataloader()
    assert (loader.num_workers, loader.persistent_workers, loader.pin_memory) == (0, False, False)

    with_workers, in_process = batches_of_two_epochs(dm), batches_of_two_epochs(plain)
    assert len(with_workers) == len(in_process) == 26 + 26 + 1  # 405 / 16 twice, 90 dev rows in one
    for a, b in zip(with_workers, in_process, strict=True):
        assert same_tensors(a, b)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_pin_memory_hands_over_batches_in_page_locked_memory(cache_dir):
    pinned = loaded(cache_dir, "data.num_workers=2", "data.pin_memory=true")
    plain = loaded(cache_dir, "data.num_workers=2")
    for batch in list(pinned.train_dataloader())[:3] + list(pinned.val_dataloader()):
        assert all(t.is_pinned() for t in batch.values())
    for batch in list(plain.train_dataloader())[:3]:
        assert not any(t.is_pinned() for t in batch.values())
