import sys, torch, pytorch_lightning as pl
from pathlib import Path
from tokentune.config import from_dict
from tokentune.data.datamodule import TaskDataModule
from tokentune.data.batching import collate
from tokentune.model.module import TaskModule
from tokentune.run.evaluate import load_weights
import tokentune
folder = Path(sys.argv[1])
PKG = Path(tokentune.__file__).parent
for ck in sorted(folder.glob("*.ckpt")):
    saved = torch.load(ck, weights_only=True)["hyper_parameters"]["cfg"]
    saved["task"]["data_dir"] = str(PKG / "data" / "demo")
    saved["paths"]["cache_dir"] = "/tmp/hm/cache2"; saved["paths"]["output_dir"] = "/tmp/hm/out2"
    cfg = from_dict(saved)
    dm = TaskDataModule(cfg); dm.prepare_data()
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    module = load_weights(ck, dm, TaskModule(cfg), trainer)
    batch = collate([dm.splits["validation"][i] for i in range(8)], pad_id=dm.tokenizer.pad_token_id)
    with torch.no_grad():
        logits = module(batch).logits
    torch.save(logits, ck.with_suffix(".logits.pt"))
    print(ck.name, logits[:2])
