"""Where the causal-LM corpus comes from: the local file, else the hub's copy, else one line."""
from __future__ import annotations

import sys
import types

import pytest

from tokentune.config import validate
from tokentune.errors import UserError
from tokentune.task import get_kind

HUB = {"train": ["First Citizen:\nBefore we proceed", " any further, hear me speak.\n"],
       "validation": ["All:\nSpeak, speak.\n"], "test": ["First Citizen:\nYou are all resolved.\n"]}


def shakespeare(compose, tmp_path, *overrides):
    return validate(compose("task=shakespeare", "model=gpt2_tiny", f"task.data_dir={tmp_path}", *overrides)).task


def test_the_local_file_comes_first(compose, tmp_path, monkeypatch):
    (tmp_path / "input.txt").write_text("To be, or not to be\r\n")
    monkeypatch.setitem(sys.modules, "datasets", None)  # the hub is never asked
    assert get_kind("causal_lm").read_splits(shakespeare(compose, tmp_path)) == {"train": "To be, or not to be\n"}


def test_without_it_the_hub_copy_is_its_splits_joined_in_order(compose, tmp_path, monkeypatch):
    asked = []

    def load_dataset(name, subset, split):
        asked.append((name, subset, split))
        return [{"text": t} for s in split.split("+") for t in HUB[s]]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    raw = get_kind("causal_lm").read_splits(shakespeare(compose, tmp_path))
    assert asked == [("karpathy/tiny_shakespeare", None, "train+validation+test")]
    assert raw == {"train": "".join(t for s in ("train", "validation", "test") for t in HUB[s])}


def test_an_unreachable_hub_is_one_line_saying_where_the_file_goes(compose, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(UserError) as err:
        get_kind("causal_lm").read_splits(shakespeare(compose, tmp_path))
    assert str(err.value) == (
        f"{tmp_path / 'input.txt'} not found, and karpathy/tiny_shakespeare/ [train+validation+test] could not be "
        "loaded from the Hugging Face hub (ConnectionError). Offline? Download the data once and set "
        "task.data_dir (GLUE_DIR or paths.glue_dir for GLUE) to it")


def test_no_file_and_no_hub_copy_is_one_line(compose, tmp_path):
    with pytest.raises(UserError) as err:
        get_kind("causal_lm").read_splits(shakespeare(compose, tmp_path, "task.hub_dataset=null"))
    assert str(err.value) == (f"{tmp_path / 'input.txt'}: file not found; put the corpus there, or set "
                              "task.data_dir (or TOKENTUNE_DATA, the folder above it) to where it is")
