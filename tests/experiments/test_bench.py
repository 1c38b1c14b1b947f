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
                         f"paths.cache_dir={cache_dir}", "callbacks.progress_bar=none"])
    results = report["results"]
    assert set(results) == {"run_glue", "tuned", "tokentune"}
    for r in results.values():
        assert r["timed_steps"] == 3 and r["samples_per_s"] > 0
        # 3 steps of 8 sentences: samples/s × seconds is the number of timed samples
        assert r["samples_per_s"] * r["seconds"] == pytest.approx(24)
    # run_glue pads every row to 128 tokens; the demo sentences are far shorter
    assert results["run_glue"]["padding_share"] > 0.8
    assert results["tokentune"]["padding_share"] < results["run_glue"]["padding_share"]
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
