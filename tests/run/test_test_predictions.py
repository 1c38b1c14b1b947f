"""A run whose test split has no labels (GLUE's) writes its submission file, the checkpoint's own."""
from pathlib import Path

from conftest import run_cli
from tokentune.run.fit import fit

# A random-init tiny BERT leaves chance on the demo with these (79 % dev, see test_train.py)
LEARNS = ("trainer.max_epochs=8", "optimizer.lr=2e-3", "data.batch_size=16")


def test_an_unlabelled_test_split_gets_glue_predictions(compose, tmp_path, cache_dir):
    demo = Path(compose().task.data_dir)
    rows = [line.split("\t") for line in (demo / "dev.tsv").read_text().splitlines()[1:]]
    glue = tmp_path / "glue" / "SST-2"  # the demo in GLUE's SST-2 layout: test.tsv has no labels
    glue.mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        (glue / name).write_text((demo / name).read_text())
    (glue / "test.tsv").write_text("index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, (s, _) in enumerate(rows)))
    cfg = compose("model=bert_tiny", "task=sst2", f"paths.glue_dir={glue.parent}", *LEARNS,
                  run_dir=tmp_path / "run")
    results = fit(cfg)
    accuracy = results["validation"]["val/accuracy"]
    assert accuracy > 0.65 and results["test"] == {}
    written = tmp_path / "run" / "SST2.tsv"
    assert results["test_predictions"] == {"test": str(written)}
    lines = written.read_text().splitlines()
    assert lines[0] == "index\tprediction" and [ln.split("\t")[0] for ln in lines[1:]] == [str(i) for i in range(90)]
    # the best checkpoint's predictions: right exactly where its validation score says
    hits = sum(ln.split("\t")[1] == label for ln, (_, label) in zip(lines[1:], rows))
    assert hits == round(accuracy * 90)
    # and the same file tokentune-predict writes from that checkpoint
    out = run_cli("-m", "tokentune.cli_predict", f"ckpt_path={results['best_checkpoint']}",
                  f"paths.cache_dir={cache_dir}", "accelerator=cpu", f"hydra.run.dir={tmp_path / 'pred'}")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "pred" / "SST2.tsv").read_text() == written.read_text()
