"""Checkpoints written before the method registry (data/before_registry/README.md) restore to the
logits the code that wrote them gave."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tokentune

DATA = Path(__file__).parent / "data" / "before_registry"


@pytest.mark.parametrize("name", sorted(p.stem for p in DATA.glob("*.ckpt")))
def test_a_checkpoint_from_before_the_registry_restores_to_its_logits(tmp_path, name):
    import pytorch_lightning as pl

    from tokentune.config import from_dict
    from tokentune.data.batching import collate
    from tokentune.data.datamodule import TaskDataModule
    from tokentune.model.module import TaskModule
    from tokentune.run.restore import load_weights

    saved = torch.load(DATA / f"{name}.ckpt", weights_only=True)["hyper_parameters"]["cfg"]
    # the machine's paths, as tokentune-evaluate replaces them; the method's settings stay as saved
    saved["task"]["data_dir"] = str(Path(tokentune.__file__).parent / "data" / "demo")
    saved["paths"].update(cache_dir=str(tmp_path / "cache"), output_dir=str(tmp_path / "run"))
    cfg = from_dict(saved)
    dm = TaskDataModule(cfg)
    dm.prepare_data()
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    module = TaskModule(cfg, tokenizer=dm.tokenizer, base_tokenizer=dm.base_tokenizer,
                        device=trainer.strategy.root_device)
    module = load_weights(DATA / f"{name}.ckpt", module, trainer)
    batch = collate([dm.splits["validation"][i] for i in range(8)], pad_id=dm.tokenizer.pad_token_id)
    with torch.no_grad():
        logits = module(batch).logits
    torch.testing.assert_close(logits, torch.load(DATA / f"{name}.logits.pt", weights_only=True),
                               rtol=0, atol=1e-6)


def test_an_adapter_saved_before_original_ln_before_reads_its_sublayers_output():
    from tokentune.config import from_dict

    saved = torch.load(DATA / "bert_tiny-adapter.ckpt", weights_only=True)["hyper_parameters"]["cfg"]
    assert saved["finetune"]["placement"] == "pfeiffer" and "original_ln_before" not in saved["finetune"]
    assert from_dict(saved).finetune.original_ln_before is False
    today = {**saved, "finetune": {**saved["finetune"], "original_ln_before": None}}
    assert from_dict(today).finetune.ln_before is True  # pfeiffer's, as AdapterHub's SeqBnConfig
