"""A correct run says only what tokentune says: on stderr, tokentune's own log records and the
progress bar; no third-party warning, tip or notice a user cannot act on (issue 27)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+\]\[([\w.]+)\]\[(\w+)\] - ")
# a progress bar's redraws: tqdm's "... | 3/26 [00:01<00:08, 3.1it/s]" and the cursor moves between them
BAR = re.compile(r"(\d+/\?|\d+/\d+) \[[\d:<>?, .]+(it/s|s/it)?\]|\x1b\[A|^\s*$")


def strangers(stderr: str) -> list[str]:
    """The stderr lines that are neither tokentune's records (and their continuation lines) nor
    progress bars."""
    out, ours = [], False
    for line in stderr.replace("\r", "\n").splitlines():
        head = RECORD.match(line)
        if head:
            ours = head.group(1).startswith("tokentune")
            if not ours:
                out.append(line)
        elif BAR.search(line) or (ours and not re.match(r"^\S+\.py:\d+: ", line)):
            continue
        else:
            out.append(line)
    return out


def run(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def demo(tmp_path_factory, cache_dir):
    run_dir = tmp_path_factory.mktemp("quiet") / "run"
    # the demo's 405 rows: 26 batches, more than the CPU preset's logging interval, as `make train`
    done = run("train.py", "model=bert_tiny", "trainer.max_epochs=1",
               f"paths.cache_dir={cache_dir}", f"hydra.run.dir={run_dir}")
    return run_dir, done


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_a_correct_run_prints_only_tokentunes_lines_and_the_progress_bar(tmp_path, cache_dir, family, demo):
    if family == "bert":
        run_dir, done = demo
    else:  # the decoder: its config's special ids and peft's wrapper have warned before
        run_dir = tmp_path / "run"
        done = run("train.py", "model=gpt2_tiny", "finetune=lora", "trainer.max_epochs=1",
                   f"paths.cache_dir={cache_dir}", f"hydra.run.dir={run_dir}")
    assert strangers(done.stderr) == []
    assert any(RECORD.match(line) for line in done.stderr.splitlines())  # logs are on stderr
    assert done.stdout.splitlines()[-4].startswith("run: ")  # stdout: the table and the closing summary
    assert not RECORD.search(done.stdout)


def test_evaluate_predict_and_export_of_a_correct_run_are_as_quiet(demo, tmp_path, cache_dir):
    run_dir, _ = demo
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    common = [f"ckpt_path={ckpt}", f"paths.cache_dir={cache_dir}"]
    for args in (["-m", "tokentune.cli_evaluate", *common, f"hydra.run.dir={tmp_path / 'evaluate'}"],
                 ["-m", "tokentune.cli_predict", *common, "text=a fine, warm film", f"hydra.run.dir={tmp_path / 'p'}"],
                 ["-m", "tokentune.cli_predict", *common, "split=validation", f"hydra.run.dir={tmp_path / 's'}"],
                 ["-m", "tokentune.cli_export", *common, f"out={tmp_path / 'exported'}"]):
        assert strangers(run(*args).stderr) == [], args[1]


def test_the_filter_lets_a_third_party_warning_through():
    # what the tests above would see if a filter went: Lightning's line, a warnings.warn line
    assert strangers("[2026-12-01 10:00:00,000][pytorch_lightning.utilities.rank_zero][INFO] - GPU available\n"
                     "/x/fit_loop.py:321: The number of training batches (26) is smaller\n"
                     "[2026-12-01 10:00:00,000][tokentune.run.fit][INFO] - vocabulary:\n| a | b |\n"
                     "Epoch 0:  50%|#####     | 13/26 [00:01<00:01, 9.1it/s]\n") == [
        "[2026-12-01 10:00:00,000][pytorch_lightning.utilities.rank_zero][INFO] - GPU available",
        "/x/fit_loop.py:321: The number of training batches (26) is smaller"]
