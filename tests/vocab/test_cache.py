"""Build once, reuse: cache hits do not train, racing builders leave one valid folder, corrupt
folders are rebuilt."""
from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tokentune.errors import UserError
from tokentune.vocab import build as build_module
from tokentune.vocab.build import as_spec, load_built, load_or_build_info
from tokentune.vocab.cache import load
from tokentune.vocab.spec import TokenizerConfig

SPEC = dict(kind="wordpiece", vocab_size=400)


@pytest.fixture
def count_trainings(monkeypatch):
    calls = []
    real = build_module._train

    def spy(*args, **kwargs):
        calls.append(args[0].name)
        return real(*args, **kwargs)

    monkeypatch.setattr(build_module, "_train", spy)
    return calls


def test_second_build_loads_without_training(build, tmp_path, count_trainings):
    tok1, first = build("bert", cache_dir=tmp_path, **SPEC)
    tok2, second = build("bert", cache_dir=tmp_path, **SPEC)
    assert (first.built, second.built) == (True, False) and count_trainings == ["test"]
    assert second.path == first.path and second.vocab_size == first.vocab_size == len(tok2)
    assert tok1.get_vocab() == tok2.get_vocab()
    assert tok2("the film", "a story") == tok1("the film", "a story")


def test_cache_folder_is_self_describing_and_loads_with_autotokenizer(build, tmp_path):
    tok, info = build("bert", cache_dir=tmp_path, **SPEC)
    folder = Path(info.path)
    assert folder.parent == tmp_path and folder.name.startswith("wordpiece-")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["vocab_size"] == len(tok) and meta["requested"] == 400 and meta["spec"]["kind"] == "wordpiece"
    auto = AutoTokenizer.from_pretrained(folder)
    assert auto("the film", "a story")["input_ids"] == tok("the film", "a story")["input_ids"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name, folder.name + ".lock"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "drop_meta", "drop_tokenizer"])
def test_corrupt_cache_is_rebuilt_not_used(build, tmp_path, damage, count_trainings, caplog):
    _, first = build("bert", cache_dir=tmp_path, **SPEC)
    folder = Path(first.path)
    path = folder / "tokenizer.json"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":  # same length, still valid JSON up to the point of damage
        data = bytearray(path.read_bytes())
        data[-200:-100] = b" " * 100
        path.write_bytes(bytes(data))
    elif damage == "drop_meta":
        (folder / "meta.json").unlink()
    else:
        path.unlink()
    with caplog.at_level("WARNING"):
        tok, second = build("bert", cache_dir=tmp_path, **SPEC)
    assert second.built and count_trainings == ["test", "test"]
    assert "corrupt" in caplog.text and str(folder) in caplog.text
    assert load(folder)[0].get_vocab() == tok.get_vocab()  # the rebuilt folder passes every check
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name, folder.name + ".lock"]


def _race(barrier, queue, cache_dir: str, base, corpus) -> None:
    barrier.wait()  # start together: they meet at the lock
    spec = TokenizerConfig(name="race", show_progress=False, **SPEC)
    tok, info = load_or_build_info(spec, base_tokenizer=base, family="bert", corpus=corpus,
                                   cache_dir=cache_dir)
    queue.put((info.built, info.path, len(tok)))


def test_four_processes_building_at_once_leave_one_valid_folder(minilm, corpus, tmp_path):
    ctx = mp.get_context("fork")  # the parent's imports and fixtures carry over: no re-import
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(barrier, queue, str(tmp_path), minilm, corpus))
             for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(r[0] for r in results) == [False, False, False, True]  # one built, three loaded
    assert len({r[1] for r in results}) == 1 and len({r[2] for r in results}) == 1
    folder = Path(results[0][1])
    tok, meta = load(folder)
    assert len(tok) == results[0][2] == meta["vocab_size"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name, folder.name + ".lock"]


def test_load_built_reads_a_folder_or_says_how_to_fix_it(build, tmp_path):
    tok, info = build("bert", cache_dir=tmp_path, **SPEC)
    assert load_built(info.path).get_vocab() == tok.get_vocab()
    (Path(info.path) / "tokenizer.json").write_text("{")
    with pytest.raises(UserError, match="not a usable tokentune vocabulary .*rebuild it"):
        load_built(info.path)


def test_spec_may_come_as_a_dictconfig_or_a_mapping():
    from omegaconf import OmegaConf

    node = OmegaConf.create({"name": "x", "kind": "bpe", "vocab_size": 100, "corpus": {"max_chars": 10}})
    for given in (node, OmegaConf.to_container(node)):
        spec = as_spec(given)
        assert isinstance(spec, TokenizerConfig) and spec.corpus.max_chars == 10 and spec.kind == "bpe"
    assert as_spec(spec) is spec
