"""`tokentune-predict ... text=|pair=|input=`: raw text through a checkpoint, as JSON lines.

The predictions must be the checkpoint's: the same labels as the split path (Lightning's predict
loop) on the same rows, and the same probabilities as the exported model folder (transformers
alone, the run's tokenizer) gives.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, run_overrides
from tokentune.config import compose as compose_train
from tokentune.errors import UserError
from tokentune.run.fit import fit

DEMO = ROOT / "src" / "tokentune" / "data" / "demo"
DEV = [line.split("\t") for line in (DEMO / "dev.tsv").read_text().splitlines()[1:]]
SENTENCES = [s for s, _ in DEV]
ALPHABET = "abcdefghijklmnopqrstuvwxyz\n"


def _train(tmp_path_factory, cache_dir, name: str, *overrides: str) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp(name)
    return run_dir, fit(compose_train(run_overrides(cache_dir, run_dir) + list(overrides)))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, cache_dir):
    """Full fine-tuning off chance on the demo (74 % dev accuracy, as in test_train.py)."""
    return _train(tmp_path_factory, cache_dir, "demo", "model=bert_tiny", "trainer.max_epochs=3",
                  "optimizer.lr=2e-3", "data.batch_size=8")


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory, cache_dir):
    """A two-text task (the demo sentence twice) under LoRA: its checkpoint holds only what trained.
    (LoRA on a random-init base stays near chance; its outputs still differ by input.)"""
    return _train(tmp_path_factory, cache_dir, "pair", "model=bert_tiny", "finetune=lora",
                  "task.text_columns=[sentence,sentence]", "trainer.max_epochs=1",
                  "trainer.limit_train_batches=8", "optimizer.lr=1e-2", "data.batch_size=8")


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory, cache_dir):
    """The demo's 0/1 labels as regression targets, a few steps."""
    return _train(tmp_path_factory, cache_dir, "regression", "model=bert_tiny", "task.kind=regression",
                  "task.labels=null", "task.metrics=[pearson]", "task.monitor=pearson",
                  "trainer.max_epochs=1", "trainer.limit_train_batches=8", "optimizer.lr=2e-3",
                  "data.batch_size=8")


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, cache_dir):
    """A tiny GPT-2 (bytes) that has learnt the alphabet: what follows a prompt is known."""
    data = tmp_path_factory.mktemp("lm_data")
    (data / "input.txt").write_text(ALPHABET * 200)
    return _train(tmp_path_factory, cache_dir, "lm", "model=gpt2_tiny", "task=shakespeare",
                  f"task.data_dir={data}", "task.block_size=32", "trainer.max_epochs=3",
                  "optimizer.lr=1e-2", "data.batch_size=16")


def compose_predict(*overrides: str):
    """The config `tokentune-predict <overrides>` runs with (as tokentune.config.compose does for train)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from tokentune.cli import quote_free_text
    from tokentune.config import CONF_DIR, register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
            cfg = compose(config_name="predict", overrides=quote_free_text(list(overrides)),
                          return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _args(run_dir: Path, cache_dir: Path) -> list[str]:
    return [f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", f"paths.cache_dir={cache_dir}",
            "accelerator=cpu", f"paths.root_dir={ROOT}"]


def predict(run_dir: Path, out_dir: Path, cache_dir: Path, *args: str, stdin: str | None = None):
    """tokentune-predict in this process (its imports paid once); returns what it printed."""
    import io

    from tokentune.run.evaluate import predict as predict_cmd

    cfg = compose_predict(*_args(run_dir, cache_dir), f"paths.output_dir={out_dir}", *args)
    real_stdin, real_stdout = sys.stdin, sys.stdout
    sys.stdout = io.StringIO()
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()))
    try:
        predict_cmd(cfg)
        return sys.stdout.getvalue()
    finally:
        sys.stdin, sys.stdout = real_stdin, real_stdout


def predict_cli(run_dir: Path, out_dir: Path, cache_dir: Path, *args: str, stdin: str | None = None):
    """`tokentune-predict ckpt_path=<run's best> <args>` as a user runs it: a CompletedProcess."""
    cmd = ["-m", "tokentune.cli_predict", *_args(run_dir, cache_dir), f"hydra.run.dir={out_dir}", *args]
    return subprocess.run([sys.executable, *cmd], cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                          input=stdin, capture_output=True, text=True, timeout=300)


def json_lines(stdout: str, out_dir: Path) -> list[dict]:
    # stdout is the predictions alone, and the file holds the same lines
    assert (out_dir / "predictions.jsonl").read_text() == stdout
    return [json.loads(line) for line in stdout.splitlines()]


def split_labels(run_dir: Path, out_dir: Path, cache_dir: Path) -> list[str]:
    """The split path's predictions for the dev rows (GLUE's TSV: Lightning's predict loop)."""
    predict(run_dir, out_dir, cache_dir, "split=validation")
    return [ln.split("\t")[1] for ln in (out_dir / "DEMO.tsv").read_text().splitlines()[1:]]


def exported_logits(run_dir: Path, texts: list, pairs: list | None = None) -> torch.Tensor:
    """The exported model folder's logits: transformers alone, the run's tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()
    enc = tok(texts, pairs, truncation=True, max_length=128, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits


def exported_probabilities(run_dir: Path, texts: list, pairs: list | None = None) -> torch.Tensor:
    return exported_logits(run_dir, texts, pairs).softmax(-1)


def probabilities(rows: list[dict]) -> torch.Tensor:
    return torch.tensor([list(r["probabilities"].values()) for r in rows])


def test_dev_sentences_as_raw_text_get_the_checkpoints_predictions(demo_run, cache_dir, tmp_path):
    run_dir, results = demo_run
    (tmp_path / "dev.txt").write_text("".join(f"{s}\n" for s in SENTENCES))
    # the command itself: stdout holds the JSON lines alone (logs go to stderr). Batches of 128,
    # as the split path's (data.eval_batch_size): the very same forward passes
    out = predict_cli(run_dir, tmp_path / "raw", cache_dir, f"input={tmp_path / 'dev.txt'}",
                      "batch_size=128")
    assert out.returncode == 0, out.stderr
    rows = json_lines(out.stdout, tmp_path / "raw")
    assert [r["text"] for r in rows] == SENTENCES  # one line per input, in input order
    labels = [r["label"] for r in rows]
    assert labels == split_labels(run_dir, tmp_path / "split", cache_dir)
    assert sum(a == b for a, (_, b) in zip(labels, DEV)) == round(results["validation"]["val/accuracy"] * 90)
    assert 0.7 < results["validation"]["val/accuracy"] and len(set(labels)) == 2  # it has learnt
    assert all(list(r["probabilities"]) == ["0", "1"] for r in rows)
    probs = probabilities(rows)
    assert probs.sum(-1).tolist() == pytest.approx([1.0] * 90, abs=1e-6)
    assert [["0", "1"][i] for i in probs.argmax(-1).tolist()] == labels
    torch.testing.assert_close(probs, exported_probabilities(run_dir, SENTENCES), atol=1e-6, rtol=0)


def test_every_input_form_gives_the_same_lines(demo_run, cache_dir, tmp_path):
    run_dir, _ = demo_run
    texts = [SENTENCES[i] for i in (3, 0, 7, 1, 5)]
    assert any("," in t for t in texts) and any("'" in t for t in texts)
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n\n")  # a blank line is no example
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"sentence": t, "label": "?"}) + "\n"
                                               for t in texts))  # other keys are left alone
    quoted = ", ".join(f'"{t}"' for t in texts)  # Hydra's quotes: commas and apostrophes are text
    forms = {"txt": [f"input={tmp_path / 'in.txt'}"], "jsonl": [f"input={tmp_path / 'in.jsonl'}"],
             "stdin": ["input=-"], "text": [f"text=[{quoted}]"]}
    lines = {form: json_lines(predict(run_dir, tmp_path / form, cache_dir, *args, "batch_size=2",
                                      stdin="\r\n".join(texts) if form == "stdin" else None),  # CRLF
                              tmp_path / form)
             for form, args in forms.items()}
    assert [r["text"] for r in lines["txt"]] == texts
    assert lines["jsonl"] == lines["stdin"] == lines["text"] == lines["txt"]
    # a single text=, alone in its batch: the same as in a padded batch of two
    one = json_lines(predict(run_dir, tmp_path / "one", cache_dir, f"text={texts[2]}"), tmp_path / "one")
    assert one[0]["text"] == texts[2] and one[0]["label"] == lines["txt"][2]["label"]
    assert one[0]["probabilities"] == pytest.approx(lines["txt"][2]["probabilities"], abs=1e-6)


# what a shell hands over for text="...": Hydra's grammar would stop at the comma, the apostrophe,
# the `=`; OmegaConf would resolve the `${...}`; backslashes before a quote or at the end are escapes
TYPED = r"""a gripping, funny film -- it's "great" = 10/10 ${oops} C:\path\'s end\\"""


def test_free_text_on_the_command_line_is_taken_as_typed(demo_run, cache_dir, tmp_path):
    run_dir, _ = demo_run
    out = predict_cli(run_dir, tmp_path / "typed", cache_dir, f"text={TYPED}")
    assert out.returncode == 0, out.stderr
    (row,) = json_lines(out.stdout, tmp_path / "typed")
    assert row["text"] == TYPED


@pytest.mark.parametrize("key", ["text", "question", "context"])
def test_every_free_text_key_parses_back_to_what_was_typed(key):
    for typed in (TYPED, "", "\\", "x\\'y", "\\${a}", "\\\\${a}", r"tab\there", "'quoted'"):
        assert compose_predict("ckpt_path=x", f"{key}={typed}")[key] == typed, typed
    lists = compose_predict("ckpt_path=x", "text=[one, 'two, three']")
    assert list(lists.text) == ["one", "two, three"]  # a value starting with [ is a Hydra list


def test_pairs_through_a_lora_checkpoint(pair_run, cache_dir, tmp_path):
    run_dir, results = pair_run
    assert results["parameters"]["trainable"] < results["parameters"]["total"] / 5
    (tmp_path / "dev.txt").write_text("".join(f"{s}\t{s}\n" for s in SENTENCES))
    rows = json_lines(predict(run_dir, tmp_path / "raw", cache_dir, f"input={tmp_path / 'dev.txt'}",
                              "batch_size=128"), tmp_path / "raw")
    assert [r["text"] for r in rows] == [[s, s] for s in SENTENCES]
    assert [r["label"] for r in rows] == split_labels(run_dir, tmp_path / "split", cache_dir)
    # encoded as training encoded the pair ([CLS] a [SEP] b [SEP], segment ids); LoRA merged
    torch.testing.assert_close(probabilities(rows), exported_probabilities(run_dir, SENTENCES, SENTENCES),
                               atol=1e-6, rtol=0)
    a, b = SENTENCES[0], SENTENCES[1]
    given = f'pair=[["{a}", "{b}"], ["{b}", "{a}"]]'
    two = json_lines(predict(run_dir, tmp_path / "pair", cache_dir, given), tmp_path / "pair")
    assert [r["text"] for r in two] == [[a, b], [b, a]]
    torch.testing.assert_close(probabilities(two), exported_probabilities(run_dir, [a, b], [b, a]),
                               atol=1e-6, rtol=0)


def test_a_regression_checkpoint_gives_values(regression_run, cache_dir, tmp_path):
    run_dir, _ = regression_run
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps({"sentence": s}) + "\n" for s in SENTENCES))
    rows = json_lines(predict(run_dir, tmp_path / "raw", cache_dir, f"input={tmp_path / 'dev.jsonl'}",
                              "batch_size=128"), tmp_path / "raw")
    assert all(set(r) == {"text", "value"} for r in rows) and [r["text"] for r in rows] == SENTENCES
    values = [r["value"] for r in rows]
    assert values == pytest.approx([float(v) for v in split_labels(run_dir, tmp_path / "split", cache_dir)],
                                   abs=1e-6)  # the TSV's values have 6 decimals
    assert values == pytest.approx(exported_logits(run_dir, SENTENCES)[:, 0].tolist(), abs=1e-6)
    assert max(values) - min(values) > 1e-5  # they differ by input (a few steps: a little)


def test_a_causal_lm_continues_each_prompt_greedily(lm_run, cache_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, _ = lm_run
    # different lengths, padded in one batch; the last is longer than the model's 512 positions:
    # it continues from its last 32 bytes (block_size, the context it trained on)
    prompts = ["abc", "lmnop", "vwxyz", ALPHABET * 20 + "abcdefghij"]
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"text": p}) + "\n" for p in prompts))
    rows = json_lines(predict(run_dir, tmp_path / "lm", cache_dir, f"input={tmp_path / 'prompts.jsonl'}",
                              "max_new_tokens=8"), tmp_path / "lm")
    assert rows == [{"text": p, "continuation": c}
                    for p, c in zip(prompts, ["defghijk", "qrstuvwx", "\nabcdefg", "klmnopqr"])]
    # the exported model's own greedy decoding, one prompt at a time (no padding)
    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model").eval()
    for prompt, row in zip(prompts[:3], rows):
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            greedy = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                                    do_sample=False, eos_token_id=tok.eos_token_id,
                                    pad_token_id=tok.pad_token_id)
        assert row["continuation"] == tok.decode(greedy[0, ids.shape[1]:], skip_special_tokens=True)
    # text= for a prompt; max_new_tokens bounds the continuation
    one = json_lines(predict(run_dir, tmp_path / "one", cache_dir, "text=qrs", "max_new_tokens=3"),
                     tmp_path / "one")
    assert one == [{"text": "qrs", "continuation": "tuv"}]


BAD = {  # id: (run, overrides, file lines or stdin text, the one line of the error)
    "pair_for_one_text": ("demo", ["pair=[a, b]"], None,
                          "pair: task 'demo' takes one text per example (sentence); give text='...' "
                          "(or text='[a, b]' for several)"),
    "text_for_two_texts": ("pair", ["text=a sentence"], None,
                           "text: task 'demo' takes two texts per example (sentence, sentence); "
                           "give pair='[first, second]' (or pair='[[a1, b1], [a2, b2]]')"),
    "list_in_text": ("demo", ["text=[[a, b]]"], None,
                     "text: item 1 is a list, not a text; task 'demo' takes one text per example"),
    "empty_text": ("demo", ["text="], None, "text: an empty text"),
    "blank_text_in_list": ("demo", ["text=[fine, '  ']"], None, "text: item 2: an empty text"),
    "empty_list": ("demo", ["text=[]"], None, "text: an empty list; give at least one example"),
    "empty_in_pair": ("pair", ["pair=[fine, '']"], None, "pair: an empty text"),
    "three_in_pair": ("pair", ["pair=[[a, b], [c, d, e]]"], None,
                      "pair: item 2 is not a pair of two texts [first, second] "
                      "(task 'demo' takes sentence, sentence)"),
    "jsonl_not_json": ("demo", ["input=IN.jsonl"], ['{"sentence": "fine"}', "not json"],
                       "IN.jsonl:2: malformed JSON (Expecting value)"),
    "jsonl_no_key": ("demo", ["input=IN.jsonl"], ['{"sentence": "fine"}', "", '{"text": "fine"}'],
                     "IN.jsonl:3: no 'sentence' key (task 'demo' reads 'sentence')"),
    "jsonl_not_object": ("demo", ["input=IN.jsonl"], ['["fine"]'],
                         "IN.jsonl:1: each line must be a JSON object"),
    "jsonl_empty": ("demo", ["input=IN.jsonl"], ['{"sentence": ""}'],
                    "IN.jsonl:1: 'sentence': an empty text"),
    "txt_no_tab": ("pair", ["input=IN.txt"], ["a\tb", "no tab here"],
                   "IN.txt:2: no tab; task 'demo' takes two texts per line (sentence, sentence) "
                   "separated by one tab"),
    "txt_empty_second": ("pair", ["input=IN.txt"], ["a\t "], "IN.txt:1: an empty text"),
    "txt_tab_for_one_text": ("demo", ["input=IN.txt"], ["fine", "a\tb"],
                             "IN.txt:2: a tab splits the line into 2 texts, but task 'demo' takes one text "
                             "per example (sentence)"),
    "stdin_blank": ("demo", ["input=-"], "\n \n", "<stdin>: no input (one example per line)"),
    "file_empty": ("demo", ["input=IN.txt"], [], "IN.txt: the file is empty"),
    "file_missing": ("demo", ["input=missing.txt"], None,
                     "input: missing.txt not found; give a .txt or .jsonl file (or - for standard input)"),
    "text_and_input": ("demo", ["text=a", "input=IN.txt"], ["b"],
                       "text and input: give one of text=, pair= or input=, not several"),
    "text_and_split": ("demo", ["text=a", "split=validation"], None,
                       "split: predictions are for a split (split=...) or for raw text (text=...), not both"),
    "batch_size": ("demo", ["text=a", "batch_size=0"], None, "batch_size: must be at least 1, got 0"),
}


def _bad_input(request, tmp_path, case: str):
    run, overrides, given, message = BAD[case]
    run_dir, _ = request.getfixturevalue(f"{run}_run")
    for name in ("IN.jsonl", "IN.txt"):
        if isinstance(given, list) and any(o.endswith(name) for o in overrides):
            (tmp_path / name).write_text("".join(f"{line}\n" for line in given))
    return (run_dir, [o.replace("IN.", f"{tmp_path}/IN.") for o in overrides],
            given if isinstance(given, str) else None, message.replace("IN.", f"{tmp_path}/IN."))


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_stops_before_the_model_with_its_message(request, cache_dir, tmp_path, monkeypatch,
                                                            case):
    import tokentune.run.predict_text as predict_text

    run_dir, overrides, stdin, message = _bad_input(request, tmp_path, case)
    built = []
    monkeypatch.setattr(predict_text, "restore", lambda cfg: built.append(cfg))  # data and model
    with pytest.raises(UserError) as err:
        predict(run_dir, tmp_path / "out", cache_dir, *overrides, stdin=stdin)
    assert str(err.value) == message
    assert not built and not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["text_for_two_texts", "empty_text", "jsonl_no_key", "text_and_input"])
def test_bad_input_on_the_command_line_is_one_line(request, cache_dir, tmp_path, case):
    run_dir, overrides, stdin, message = _bad_input(request, tmp_path, case)
    out = predict_cli(run_dir, tmp_path / "out", cache_dir, *overrides, stdin=stdin)
    assert (out.returncode, out.stderr, out.stdout) == (2, f"error: {message}\n", "")
    assert not (tmp_path / "out" / "predictions.jsonl").exists()


def test_without_raw_text_it_is_the_split_mode_as_before(demo_run, cache_dir, tmp_path):
    run_dir, _ = demo_run
    # no text, pair or input: split=test, as always (the demo has none)
    with pytest.raises(UserError) as err:
        predict(run_dir, tmp_path / "p", cache_dir)
    assert str(err.value) == "split: task 'demo' has no 'test' split (it has ['train', 'validation'])"
