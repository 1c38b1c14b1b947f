"""Written once with the code before the method registry (commit 44050ee): a checkpoint per PEFT
method on bert_tiny (and gpt2_tiny for prefix), stripped to what restoring reads, plus its logits."""
import sys, torch
from pathlib import Path
sys.path.insert(0, "/work/h_meth/tests")
from conftest import run_overrides
from tokentune.config import compose
from tokentune.run.fit import fit

out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
cache = Path("/tmp/hm/cache")
for model, method, extra in [("bert_tiny", "lora", []), ("bert_tiny", "adapter", ["finetune.placement=houlsby"]),
                             ("bert_tiny", "prefix", ["finetune.num_virtual_tokens=4"]),
                             ("gpt2_tiny", "lora", [])]:
    run = Path(f"/tmp/hm/run-{model}-{method}")
    dcfg = compose(run_overrides(cache, run) + [f"model={model}", f"finetune={method}", "task=demo",
          "optimizer.lr=5e-2", "trainer.max_steps=3", "trainer.max_epochs=-1", "data.max_train_examples=48",
          "logger=none", "test=false", "export=false", "trainer.check_val_every_n_epoch=1"])
    res = fit(dcfg)
    ck = torch.load(res["best_checkpoint"], weights_only=True)
    kept = {k: ck[k] for k in ("state_dict", "hyper_parameters", "pytorch-lightning_version", "epoch", "global_step")}
    torch.save(kept, out / f"{model}-{method}.ckpt")
    print(model, method, sorted(ck), len(ck["state_dict"]), (out / f"{model}-{method}.ckpt").stat().st_size)
