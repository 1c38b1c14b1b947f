"""The LightningDataModule: the tokenized-data cache (key, reuse, rebuild) and its own loaders."""
import dataclasses
import logging
import shutil
from pathlib import Path

import pytest
import torch

from conftest import run_overrides
from tokentune.config import compose, validate
from tokentune.data import datamodule, encode
from tokentune.data.datamodule import TaskDataModule
from tokentune.task import KINDS

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


# Every component of a tokenized split's cache key, changed alone (datamodule.load: the fields of
# task_fingerprint, the tokenizer, data.max_length; the rows each kind hashes; extractive QA's
# windowing). The rows are read once and handed back as they were (but for "rows"), so a miss
# is the key's doing, whatever the change would do to reading.
DEMO_KEY = {
    "kind": ("task.kind=regression", "task.metrics=[pearson]", "task.monitor=pearson"),
    "format": ("task.format=csv",),
    "header": ("task.header=false",),
    "column_names": ("task.column_names=[sentence,label]",),
    "text_columns": ("task.text_columns=[sentence,label]",),
    "label_column": ("task.label_column=target",),
    "labels": ('task.labels=["1","0"]',),
    "index_column": ("task.index_column=id",),
    "skip_malformed_rows": ("task.skip_malformed_rows=true",),
    "validation_fraction": ("task.validation_fraction=0.2",),
    "block_size": ("task.block_size=64",),
    "tag_scheme": ("task.tag_scheme=BIOES",),
    "tag_column": ("task.tag_column=0",),
    "label_all_subtokens": ("task.label_all_subtokens=true",),
    "tokenizer": ("model=gpt2_tiny",),
    "max_length": ("data.max_length=16",),
    "rows": (),  # one validation row edited: that split alone is tokenized again
}
QA_KEY = {"doc_stride": ("task.doc_stride=8",), "version_2": ("task.version_2=true",)}
# TaskConfig's fields outside the key: where the rows come from (the rows themselves are in the
# key), or what acts only after encoding
OUTSIDE = {"name", "data_dir", "splits", "hub_dataset", "hub_subset", "metrics", "monitor", "max_answer_length",
           "n_best", "null_threshold"}


def cache_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in (cache / "data").rglob("*.pt"))


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """{"demo" / "qa": (overrides, cache, its files, the rows read)}: each base config loaded once
    into its own cache, and loaded again there without tokenizing anything (a hit)."""
    from task.extractive_qa.synthetic import overrides, task_folder

    bases = {"demo": [], "qa": overrides(task_folder(tmp_path_factory.mktemp("qa"), train=8, validation=4))}
    out = {}
    for name, base in bases.items():
        cache = tmp_path_factory.mktemp(f"{name}-cache")
        first = loaded(cache, *base)
        files = cache_files(cache)
        assert [f.split("/")[-1].split("-")[0] for f in files] == ["train", "validation"]
        loaded(cache, *base)
        assert cache_files(cache) == files  # unchanged: a hit
        out[name] = base, cache, files, first.kind.read_splits(first.cfg.task)
    return out


def test_every_task_field_is_in_the_cache_key_or_known_not_to_change_the_tokens(tmp_path):
    from dataclasses import fields

    from tokentune.config import TaskConfig

    keyed = set(encode.task_fingerprint(validate(compose(run_overrides(tmp_path, tmp_path))).task))
    assert keyed == set(DEMO_KEY) - {"tokenizer", "max_length", "rows"}, "give each new key field a case"
    assert {f.name for f in fields(TaskConfig)} == keyed | set(QA_KEY) | OUTSIDE


@pytest.mark.parametrize("component", [*DEMO_KEY, *QA_KEY])
def test_each_component_of_the_cache_key_alone_misses_the_cache(keyed, monkeypatch, component):
    base, cache, files, raw = keyed["qa" if component in QA_KEY else "demo"]
    if component == "rows":
        edited = list(raw["validation"])
        edited[0] = dataclasses.replace(edited[0], text_a="An entirely new sentence.")
        raw = {**raw, "validation": edited}
    for kind in {type(k) for k in KINDS.values()}:
        monkeypatch.setattr(kind, "read_splits", lambda self, task: raw)
    loaded(cache, *base, *{**DEMO_KEY, **QA_KEY}[component])
    new = sorted(set(cache_files(cache)) - set(files))
    # the files earlier cases wrote stay: each case's own are those of a key no other case has
    mine = [f for f in new if f not in keyed.setdefault("seen", set())]
    keyed["seen"].update(new)
    assert [f.split("/")[-1].split("-")[0] for f in mine] == (["validation"] if component == "rows"
                                                              else ["train", "validation"]), component


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
