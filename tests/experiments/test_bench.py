"""The throughput benchmark runs end to end (tiny model, CPU) and its numbers add up."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "experiments" / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bench_smoke_on_cpu(tmp_path, cache_dir):
    bench = load_bench()
    report = bench.main(["--device", "cpu", "--size", "tiny", "--task", "demo", "--steps", "3",
                         "--warmup", "1", "--batch-size", "8", "--out", str(tmp_path),
                         "--methods", "full,lora", f"paths.cache_dir={cache_dir}", "callbacks.progress_bar=none"])
    results = report["results"]
    assert set(results) == {"run_glue", "tuned", "tokentune", "tokentune+lora"}
    for r in results.values():
        assert r["timed_steps"] == 3 and r["samples_per_s"] > 0
        # 3 steps of 8 sentences: samples/s × seconds is the number of timed samples
        assert r["samples_per_s"] * r["seconds"] == pytest.approx(24)
    # run_glue pads every row to 128 tokens; the demo sentences are far shorter
    assert results["run_glue"]["padding_share"] > 0.8
    assert results["tokentune"]["padding_share"] < results["run_glue"]["padding_share"]
    assert set(report["ratios"]) == {"run_glue", "tuned"}
    for name in ("run_glue", "tuned"):
        assert report["ratios"][name] == pytest.approx(
            results["tokentune"]["samples_per_s"] / results[name]["samples_per_s"])
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["environment"]["device"].startswith("CPU")
    assert "| tokentune |" in (tmp_path / "bench.md").read_text()


def test_bench_rejects_unknown_setups(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_bench().main(["--device", "cpu", "--setups", "tokentune,deepspeed"])
    assert exit_info.value.code == 2
    assert "--setups: unknown ['deepspeed']" in capsys.readouterr().err


@pytest.mark.slow
def test_scaling_curves_smoke_on_cpu(tmp_path, cache_dir):
    spec = importlib.util.spec_from_file_location("scaling", ROOT / "experiments" / "bench" / "scaling.py")
    scaling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scaling)
    curves = scaling.main(["--device", "cpu", "--sizes", "tiny", "--batch-sizes", "4,8",
                           "--lengths", "16,64", "--batch-size", "4", "--task", "demo",
                           "--long-task", "demo", "--steps", "2", "--warmup", "1",
                           "--out", str(tmp_path), f"paths.cache_dir={cache_dir}",
                           "callbacks.progress_bar=none"])
    assert [p["batch_size"] for p in curves["batch"]] == [4, 8]
    assert [p["max_length"] for p in curves["length"]] == [16, 64]
    for p in curves["batch"]:
        assert p["samples_per_s"] * p["seconds"] == pytest.approx(2 * p["batch_size"])
    # demo sentences are 15 tokens on average: truncating at 16 leaves far less padding than 64 does
    short, long = curves["length"]
    assert short["padding_share"] <= long["padding_share"]
    assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    assert "| length | demo | tiny | 4 | 64 |" in (tmp_path / "scaling.md").read_text()
