"""Every GLUE task file on rows written by hand in the layout of download_glue_data.py's files
(../shared holds only SST-2, CoLA and RTE): the columns each file really has, MRPC's byte-order
mark, QQP's rows with missing fields, MNLI's matched and mismatched splits, STS-B's scores."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokentune.config import validate
from tokentune.data.readers import read_split
from tokentune.errors import UserError

MNLI_TRAIN = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
              "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n")
MNLI_DEV = MNLI_TRAIN.replace("label1\t", "label1\tlabel2\tlabel3\tlabel4\tlabel5\t")
MNLI_TEST = MNLI_TRAIN.replace("\tlabel1\tgold_label", "")


def mnli_row(i: int, a: str, b: str, labels: list[str]) -> str:
    return "\t".join([str(i), "31193", f"{i}n", "government", "( x )", "( y )", "(ROOT x)", "(ROOT y)",
                      a, b, *labels]) + "\n"


FILES = {  # task: {file: content}, as download_glue_data.py writes them
    "MRPC": {"train.tsv": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                          "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him , Amrozi accused his brother .\n"
                          "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's in 1995 .\n",
             "dev.tsv": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe said \"no\" .\tHe refused .\n",
             "test.tsv": "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1089874\t1089925\tPCCW 's chief .\tThe chief .\n"},
    "STS-B": {"train.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                           "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000\n"
                           "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is playing a flute.\tA man is playing a bamboo flute.\t3.800\n",
              "dev.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                         "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man with a hard hat is dancing.\tA man wearing a hard hat is dancing.\t5.000\n",
              "test.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\n"
                          "0\tmain-captions\tMSRvid\t2012test\t0024\tnone\tnone\tA girl is styling her hair.\tA girl is brushing her hair.\n"},
    "QQP": {"train.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                         "133273\t213221\t213222\tHow is the life of a math student?\tWhich level of math is needed?\t0\n"
                         "105780\t174264\t174265\tHow do I control my horny emotions?\n"  # a row the original file cuts short
                         "402555\t536040\t536041\tHow do I find my IP?\tWhat is my IP address?\t1\n",
            "dev.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n201359\t303345\t303346\tWhy are African-Americans so beautiful?\tWhy are hispanics so beautiful?\t0\n",
            "test.tsv": "id\tquestion1\tquestion2\n0\tWhy am I mentally very lonely?\tHow can I stop being lonely?\n"},
    "MNLI": {"train.tsv": MNLI_TRAIN + mnli_row(0, "Conceptually cream skimming has two dimensions.",
                                                "Product and geography are what make cream skimming work.", ["neutral", "neutral"]),
             "dev_matched.tsv": MNLI_DEV + mnli_row(0, "The new rights are nice enough", "Everyone really likes the newest benefits",
                                                    ["neutral", "entailment", "neutral", "neutral", "neutral", "neutral"]),
             "dev_mismatched.tsv": MNLI_DEV + mnli_row(0, "Your contribution helped make it possible.", "Your contributions were of no help.",
                                                       ["contradiction"] * 6)
                                   + mnli_row(1, "Yes, he said.", "He agreed.", ["entailment"] * 6),
             "test_matched.tsv": MNLI_TEST + mnli_row(0, "Hierbas, ans seco, ans dulce.", "Hierbas is a name.", []),
             "test_mismatched.tsv": MNLI_TEST + mnli_row(0, "What have you decided?", "Have you decided?", [])},
    "QNLI": {"train.tsv": "index\tquestion\tsentence\tlabel\n0\tWhen did the third Digimon series begin?\tUnlike the two seasons before it, it had a different setting.\tnot_entailment\n",
             "dev.tsv": "index\tquestion\tsentence\tlabel\n0\tWhat came into force after the new constitution?\tThe Treaty came into force.\tentailment\n",
             "test.tsv": "index\tquestion\tsentence\n0\tWhat organization is devoted to Jihad?\tThe group is devoted to Jihad.\n"},
    "WNLI": {"train.tsv": "index\tsentence1\tsentence2\tlabel\n0\tI stuck a pin through a carrot.\tThe carrot had a hole.\t1\n",
             "dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tThe drain is clogged with hair.\tThe hair has to be cleaned.\t0\n",
             "test.tsv": "index\tsentence1\tsentence2\n0\tMaude and Dora had seen the trains.\tThe trains were heard.\n"},
    "diagnostic": {"diagnostic.tsv": "index\tsentence1\tsentence2\n0\tThe cat sat on the mat.\tThe cat did not sit on the mat.\n"},
}


@pytest.fixture
def glue(tmp_path) -> Path:
    for task, files in FILES.items():
        (tmp_path / task).mkdir()
        for name, text in files.items():
            (tmp_path / task / name).write_bytes(text.encode("utf-8"))
    return tmp_path


def task(compose, glue: Path, name: str):
    return validate(compose(f"task={name}", f"paths.glue_dir={glue}", "model=bert_tiny")).task


def rows(task, split) -> list[tuple]:
    return [(e.text_a, e.text_b, e.label, e.index) for e in read_split(task, split)]


def test_mrpc_reads_its_byte_order_mark_and_quality_column(compose, glue):
    t = task(compose, glue, "mrpc")
    assert rows(t, "train") == [("Amrozi accused his brother .", "Referring to him , Amrozi accused his brother .", 1, None),
                                ("Yucaipa owned Dominick 's .", "Yucaipa bought Dominick 's in 1995 .", 0, None)]
    assert rows(t, "validation") == [('He said "no" .', "He refused .", 1, None)]
    assert rows(t, "test") == [("PCCW 's chief .", "The chief .", None, "0")]


def test_stsb_is_a_regression_on_scores(compose, glue):
    t = task(compose, glue, "stsb")
    assert t.kind == "regression" and t.metrics == ["pearson", "spearman"]
    assert [r[2] for r in rows(t, "train")] == [5.0, 3.8]
    assert rows(t, "test") == [("A girl is styling her hair.", "A girl is brushing her hair.", None, "0")]


def test_qqp_skips_the_rows_the_original_file_cuts_short_and_says_so(compose, glue, caplog):
    t = task(compose, glue, "qqp")
    assert [r[2] for r in rows(t, "train")] == [0, 1]
    assert "skipped 1 rows with a wrong number of fields (task.skip_malformed_rows), lines 3" in caplog.text
    assert rows(t, "test") == [("Why am I mentally very lonely?", "How can I stop being lonely?", None, "0")]
    t.skip_malformed_rows = False
    with pytest.raises(UserError, match=r"QQP/train.tsv:3: expected 6 fields .* found 4"):
        read_split(t, "train")


def test_mnli_has_matched_and_mismatched_validation_and_test_splits(compose, glue):
    t = task(compose, glue, "mnli")
    assert t.validation_splits == ["validation_matched", "validation_mismatched"]
    assert t.monitor_key == "val_matched/accuracy"
    assert [r[2] for r in rows(t, "train")] == [1]  # neutral: the hub's order (entailment, neutral, contradiction)
    assert [r[2] for r in rows(t, "validation_matched")] == [1]  # gold_label, not label1
    assert [r[2] for r in rows(t, "validation_mismatched")] == [2, 0]
    assert rows(t, "test_mismatched") == [("What have you decided?", "Have you decided?", None, "0")]


def test_ax_is_mnli_with_the_diagnostic_set_as_one_more_test_split(compose, glue):
    t = task(compose, glue, "ax")
    assert t.name == "ax" and t.validation_splits == ["validation_matched", "validation_mismatched"]
    assert (t.splits["test_ax"].hub_subset, t.splits["test_ax"].hub_split) == ("ax", "test")
    assert rows(t, "test_ax") == [("The cat sat on the mat.", "The cat did not sit on the mat.", None, "0")]


@pytest.mark.parametrize("name,label", [("qnli", 1), ("wnli", 1)])
def test_qnli_and_wnli(compose, glue, name, label):
    t = task(compose, glue, name)
    assert rows(t, "train")[0][2] == label and rows(t, "test")[0][2] is None


def test_a_monitor_naming_a_split_the_task_lacks_fails_at_composition(compose, glue):
    from tokentune.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^task.monitor: 'validation_mismatch' is not a validation split"):
        validate(compose("task=mnli", "task.monitor=validation_mismatch/accuracy", "model=bert_tiny"))


def test_mnli_scores_both_validation_splits_side_by_side_and_predicts_both_test_splits(compose, tmp_path, glue):
    from tokentune.run.fit import fit
    from tokentune.sweep.runs import find_runs
    from tokentune.sweep.table import build_table, default_metric

    mnli = glue / "MNLI"
    pairs = [("a man plays a guitar", "a man plays music", "entailment"),
             ("a woman is sleeping", "a woman runs a race", "contradiction"),
             ("kids play outside", "the kids are happy", "neutral")] * 12
    (mnli / "train.tsv").write_text(MNLI_TRAIN + "".join(mnli_row(i, a, b, [g, g]) for i, (a, b, g) in enumerate(pairs)))
    results = fit(compose("task=mnli", f"paths.glue_dir={glue}", "model=bert_tiny", "trainer.max_epochs=1",
                          "data.batch_size=8", run_dir=tmp_path / "run"))
    assert {k for k in results["validation"] if k.endswith("accuracy")} == {"val_matched/accuracy",
                                                                           "val_mismatched/accuracy"}
    assert results["validation"]["val_mismatched/accuracy"] in (0.0, 0.5, 1.0)  # 2 rows
    assert set(results["test_predictions"]) == {"test_matched", "test_mismatched"}
    assert Path(results["test_predictions"]["test_mismatched"]).name == "MNLI-mismatched.tsv"
    best = json.loads((tmp_path / "run" / "results.json").read_text())["best_checkpoint"]
    assert Path(best).name == "best.ckpt"
    runs, _ = find_runs(tmp_path)
    assert default_metric(runs) == "validation_matched/accuracy"
    table = build_table(runs, default_metric(runs))
    assert {"validation_matched/accuracy", "validation_mismatched/accuracy"} <= set(table.metrics)
