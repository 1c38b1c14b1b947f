"""`python -m tokentune.vocab`: build a vocabulary and print its report, no training."""
import json

from conftest import run_cli


def test_vocab_entry_point_builds_and_reports(tmp_path):
    out = run_cli("-m", "tokentune.vocab", "tokenizer=bpe8k", "model=bert_tiny",
                  f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "run" / "vocab_report.json").read_text())
    assert 1000 < report["vocab_size"] < 8000  # the demo corpus cannot fill 8k
    assert str(report["vocab_size"]) in out.stdout.replace(",", "")
    # shown once, as the command's output (breakage: report_vocabulary logging it as well: twice)
    assert out.stdout.count("embedding parameters:") == 1 and "embedding parameters:" not in out.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()
