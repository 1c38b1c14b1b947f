"""tokentune's bottleneck adapters compute what AdapterHub's do (issue 28).

data/adapterhub/ holds what AdapterHub computed on MiniLM for SeqBnConfig (pfeiffer) and
DoubleSeqBnConfig (houlsby): the adapter and head weights under its names, the inputs and the
logits, written by its reference.py in a venv with `adapters` and the transformers it pins. The
first test puts those weights into tokentune's adapters and runs everywhere; the slow one builds
that venv (once per machine) and checks the committed reference is what AdapterHub computes.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertForSequenceClassification

from tokentune.finetune.adapter.config import AdapterConfig
from tokentune.finetune.apply import apply

from .reference import minilm_dir

DATA = Path(__file__).parent / "data" / "adapterhub"
REFERENCE = json.loads((DATA / "reference.json").read_text(encoding="utf-8"))
NAME = REFERENCE["adapter_name"]
# AdapterHub's parameter names -> tokentune's: its adapters hang off a sublayer's output module
# (BertOutput, BertSelfOutput), ours wrap that module's dropout; its head's linear layer (after a
# dropout, on the pooler's output) is BertForSequenceClassification's classifier
RENAMES = (
    (rf"\.adapters\.{NAME}\.adapter_down\.0\.", ".dropout.adapter.down."),
    (rf"\.adapters\.{NAME}\.adapter_up\.", ".dropout.adapter.up."),
    (rf"^heads\.{NAME}\.1\.", "classifier."),
)


def ours(name: str) -> str:
    for pattern, replacement in RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


def batch() -> dict[str, torch.Tensor]:
    return {key: torch.tensor(rows) for key, rows in REFERENCE["inputs"].items()}


@pytest.mark.parametrize("placement", ["pfeiffer", "houlsby"])
def test_adapterhubs_weights_in_our_adapter_give_its_logits(placement):
    record = REFERENCE["placements"][placement]
    hub = record["adapterhub_config"]
    # what AdapterHub's config sets and tokentune's adapter always does: sequential, no extra layer
    # norms, no scaling, gating, dropout or PHM, the block's own add and norm after the adapter
    assert (hub["is_parallel"], hub["ln_before"], hub["ln_after"], hub["adapter_residual_before_ln"],
            hub["residual_before_ln"], hub["original_ln_after"], hub["scaling"], hub["use_gating"],
            hub["dropout"], hub["phm_layer"]) == (False, False, False, False, True, True, 1.0, False, 0.0, False)
    # and what the placement decides
    assert (hub["mh_adapter"], hub["output_adapter"]) == (placement == "houlsby", True)
    assert AdapterConfig(placement=placement).ln_before == hub["original_ln_before"]

    weights = {ours(name): t.float() for name, t in load_file(DATA / f"{placement}.safetensors").items()}
    model = BertForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2).eval()
    model.load_state_dict({k: v for k, v in weights.items() if k.startswith("classifier.")}, strict=False)
    with torch.no_grad():
        without = model(**batch()).logits
    # houlsby's non-linearity is swish in AdapterHub, relu by default here (the one default of both
    # placements): given explicitly, as the reduction factor
    tuned = apply({"method": "adapter", "placement": placement, "reduction_factor": hub["reduction_factor"],
                   "non_linearity": hub["non_linearity"]}, model, family="bert", task_kind="classification").eval()
    loaded = tuned.load_state_dict(weights, strict=False)
    assert loaded.unexpected_keys == []
    assert [k for k in loaded.missing_keys if ".adapter." in k] == []
    with torch.no_grad():
        logits = tuned(**batch()).logits

    expected = torch.tensor(record["logits"])
    # the same MiniLM under both transformers releases, and adapters that matter far beyond 1e-5
    torch.testing.assert_close(without, torch.tensor(record["logits_without_adapter"]), rtol=0, atol=1e-5)
    assert (expected - without).abs().max() > 0.1
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)


def adapterhub_python() -> Path:
    """The python of a venv with the adapters, transformers and torch releases that wrote the
    reference, built once per machine under the tokentune cache ($TOKENTUNE_CACHE, else
    ~/.cache/tokentune); skips, with pip's first error, where it cannot be built."""
    v = REFERENCE["versions"]
    torch_release = v["torch"].split("+")[0]
    root = Path(os.environ.get("TOKENTUNE_CACHE") or Path.home() / ".cache" / "tokentune")
    where = root / (f"adapterhub-{v['adapters']}-transformers-{v['transformers']}-torch-{torch_release}"
                    f"-py{sys.version_info.major}.{sys.version_info.minor}")
    if (where / "bin" / "python").exists():
        return where / "bin" / "python"
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"{where.name}.", dir=root))
    pip = [str(building / "bin" / "python"), "-m", "pip", "install", "-q", "--retries", "1", "--timeout", "20"]
    # as the Makefile's install: a machine without a GPU takes torch's CPU build, where reachable
    cpu = [] if shutil.which("nvidia-smi") else ["--extra-index-url", "https://download.pytorch.org/whl/cpu"]
    steps = {
        "python -m venv": [sys.executable, "-m", "venv", str(building)],
        f"pip install torch=={torch_release}": [*pip, f"torch=={torch_release}", *cpu],
        f"pip install adapters=={v['adapters']}": [*pip, f"adapters=={v['adapters']}",
                                                  f"transformers=={v['transformers']}"],
    }
    try:
        for label, step in steps.items():
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
            except subprocess.TimeoutExpired:
                pytest.skip(f"AdapterHub's venv cannot be built: {label} ran past 30 minutes")
            if done.returncode != 0:
                said = done.stderr.strip().splitlines() or ["(no output)"]
                first_error = next((line for line in said if line.startswith("ERROR:")), said[-1])
                pytest.skip(f"AdapterHub's venv cannot be built: {label}: {first_error}")
        try:
            os.replace(building, where)  # a venv runs from wherever it lies when started as bin/python
        except OSError:
            if not (where / "bin" / "python").exists():
                raise  # else another run built it meanwhile
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return where / "bin" / "python"


@pytest.mark.slow
def test_the_committed_reference_is_what_adapterhub_computes(tmp_path):
    model = minilm_dir()
    python = adapterhub_python()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of tokentune's venv
    ran = subprocess.run([str(python), str(DATA / "reference.py"), str(tmp_path), "--model", model],
                         capture_output=True, text=True, env=env, timeout=600)
    assert ran.returncode == 0, ran.stderr
    again = json.loads((tmp_path / "reference.json").read_text(encoding="utf-8"))
    for placement, record in REFERENCE["placements"].items():
        rerun = again["placements"].pop(placement)
        for key in ("logits", "logits_without_adapter"):
            torch.testing.assert_close(torch.tensor(rerun.pop(key)), torch.tensor(record[key]), rtol=0, atol=1e-6)
        assert rerun == {k: v for k, v in record.items() if not k.startswith("logits")}
        committed = load_file(DATA / f"{placement}.safetensors")
        written = load_file(tmp_path / f"{placement}.safetensors")
        assert sorted(written) == sorted(committed)
        assert all(torch.equal(written[k], committed[k]) for k in committed)
    assert again == {**REFERENCE, "placements": {}}
