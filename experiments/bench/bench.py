"""Training throughput: HF Trainer (run_glue defaults, and tuned by hand) against tokentune's own
`python train.py ... trainer=gpu` path, in one process, on the same GPU, data and model size.

usage (repository root, GLUE_DIR set, on a GPU machine):
    python experiments/bench/bench.py                        # BERT-base size, SST-2, batch 32
    python experiments/bench/bench.py --size large --batch-size 128 --setups tokentune
    python experiments/bench/bench.py --setups tokentune --methods full,adapter,lora,prefix --name memory
    python experiments/bench/bench.py --device cpu --size tiny --task demo --steps 3 --warmup 1  # smoke

Each set-up trains a randomly initialised model of the same size for `warmup` untimed steps, then
`steps` timed steps (the device is synchronised only at the two ends of the timed window). It
reports samples/s, real (non-padding) tokens/s, the padding share, peak GPU memory, and
tokentune's ratio to each baseline, and writes bench.json + bench.md beside this file (or --out).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from tokentune.atomic import write_atomic
from tokentune.run.provenance import environment, markdown_lines

ROOT = Path(__file__).resolve().parents[2]
SIZES = {  # BertConfig kwargs; vocabulary = MiniLM's uncased WordPiece (30,522)
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
SETUPS = ("run_glue", "tuned", "tokentune")


class Window:
    """Wall time of the timed steps, and the samples and tokens of the batches they consumed.

    The device is synced only at the two ends of the window; token counts of device batches stay
    on the device until the end."""

    def __init__(self, warmup: int, steps: int, device: str):
        self.warmup, self.steps, self.device = warmup, steps, device
        self.step, self.t0, self.t1 = 0, None, None
        self.batches: list[tuple[int, int, torch.Tensor]] = []  # in the order they were made

    def _sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def record(self, batch: dict) -> None:
        if "sequence_ids" in batch:  # a packed batch (data.packing): rows hold several sequences
            ids, samples = batch["sequence_ids"], len(batch["labels"])
            self.batches.append((samples, ids.numel(), (ids >= 0).sum()))
        else:
            mask = batch["attention_mask"]
            self.batches.append((mask.shape[0], mask.numel(), mask.sum()))

    def before_step(self) -> None:
        if self.step == self.warmup:
            self._sync()
            self.t0 = time.perf_counter()

    def after_step(self) -> None:
        self.step += 1
        if self.step == self.warmup + self.steps:
            self._sync()
            self.t1 = time.perf_counter()

    def result(self) -> dict:
        if self.t1 is None:
            raise RuntimeError(f"only {self.step} steps ran; the window needs {self.warmup + self.steps}")
        timed = self.batches[self.warmup:self.warmup + self.steps]
        seconds = self.t1 - self.t0
        samples, slots = sum(b[0] for b in timed), sum(b[1] for b in timed)
        real = int(sum(b[2].cpu() for b in timed))
        return {"timed_steps": self.steps, "seconds": seconds, "samples_per_s": samples / seconds,
                "real_tokens_per_s": real / seconds, "padding_share": 1 - real / slots}


def compose(args, run_dir: Path, method: str = "full"):
    from tokentune.config import compose as compose_train

    size = [f"model.config.{k}={v}" for k, v in SIZES[args.size].items()]
    overrides = [f"trainer={'gpu' if args.device == 'cuda' else 'cpu'}", "model=bert_tiny",
                 f"model.name=bert_{args.size}_random", *size, f"task={args.task}", f"finetune={method}",
                 f"data.batch_size={args.batch_size}", f"data.max_length={args.max_length}",
                 f"trainer.max_steps={args.warmup + args.steps}", "trainer.limit_val_batches=1",
                 "test=false", "callbacks.checkpoint=false", "logger=none",
                 f"paths.output_dir={run_dir}", f"seed={args.seed}", *args.override]
    if args.tokenizer:
        overrides.append(f"model.tokenizer={args.tokenizer}")
    return compose_train(overrides)


def bench_tokentune(cfg, window: Window) -> None:
    import pytorch_lightning as pl

    from tokentune.run.fit import fit

    class Timer(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            window.record(batch)
            window.before_step()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            window.after_step()

    fit(cfg, extra_callbacks=[Timer()])


def bench_hf(dcfg, window: Window, tuned: bool, out_dir: Path) -> None:
    """run_glue's defaults (pad to max length, fp32, torch AdamW) or the hand-tuned Trainer."""
    from transformers import (AutoTokenizer, BertConfig, BertForSequenceClassification,
                              DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments,
                              default_data_collator)

    from tokentune.config import validate
    from tokentune.data.readers import read_split

    cfg = validate(dcfg)
    examples = read_split(cfg.task, "train")
    tokenizer = AutoTokenizer.from_pretrained(cfg.model.tokenizer)
    pairs = [e.text_b for e in examples] if examples[0].text_b is not None else None
    enc = tokenizer([e.text_a for e in examples], pairs, truncation=True,
                    max_length=cfg.data.max_length, padding=False if tuned else "max_length")
    rows = [{"input_ids": ids, "attention_mask": m, "token_type_ids": t, "labels": e.label}
            for ids, m, t, e in zip(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], examples)]
    base = DataCollatorWithPadding(tokenizer) if tuned else default_data_collator

    def collate(features):  # Trainer gives callbacks no batch; the collator sees each in order
        batch = base(features)
        window.record(batch)
        return batch

    class Steps(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            window.before_step()

        def on_step_end(self, args, state, control, **kwargs):
            window.after_step()

    torch.manual_seed(cfg.seed)
    model = BertForSequenceClassification(BertConfig(**cfg.model.config, num_labels=cfg.task.num_labels))
    cuda = window.device == "cuda"
    args = TrainingArguments(
        output_dir=str(out_dir), max_steps=window.warmup + window.steps,
        per_device_train_batch_size=cfg.data.batch_size, learning_rate=5e-5, seed=cfg.seed,
        bf16=tuned and cuda, optim="adamw_torch_fused" if tuned and cuda else "adamw_torch",
        report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True,
        use_cpu=not cuda, dataloader_num_workers=0)
    Trainer(model=model, args=args, train_dataset=rows, data_collator=collate,
            callbacks=[Steps()]).train()


def markdown(report: dict) -> str:
    env, a = report["environment"], report["args"]
    lines = [f"# Training throughput: {a['size']}-sized BERT, {a['task']} train, batch {a['batch_size']}", "",
             *markdown_lines(env),
             f"- {a['steps']} timed steps after {a['warmup']} warm-up steps; command: `{report['command']}`", "",
             "| set-up | samples/s | real tokens/s | padding | peak GPU memory | memory ÷ tokentune full | tokentune × |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    full = report["results"].get("tokentune", {}).get("peak_memory_gb")
    for name, r in report["results"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:120]} | | | | | |")
            continue
        peak = r.get("peak_memory_gb")
        mem = "—" if peak is None else f"{peak:.2f} GB"
        share = f"{peak / full:.2f}" if peak is not None and full else ""
        ratio = report["ratios"].get(name)
        lines.append(f"| {name} | {r['samples_per_s']:,.0f} | {r['real_tokens_per_s']:,.0f} | "
                     f"{r['padding_share']:.0%} | {mem} | {share} | {f'{ratio:.2f}×' if ratio else ''} |")
    return "\n".join(lines) + "\n"


def write_report(args, command: str, results: dict) -> dict:
    ok = {n: r for n, r in results.items() if "error" not in r}
    ratios = {}
    if "tokentune" in ok:
        ratios = {n: ok["tokentune"]["samples_per_s"] / r["samples_per_s"]
                  for n, r in ok.items() if not n.startswith("tokentune")}
    report = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "command": command, "environment": environment(), "results": results, "ratios": ratios}
    write_atomic(args.out / f"{args.name}.json", json.dumps(report, indent=2) + "\n")
    write_atomic(args.out / f"{args.name}.md", markdown(report))
    return report


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--setups", default=",".join(SETUPS))
    p.add_argument("--methods", default="full",
                   help="fine-tuning methods the tokentune set-up runs with (e.g. full,adapter,lora,prefix)")
    p.add_argument("--size", choices=SIZES, default="base")
    p.add_argument("--task", default="sst2")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--steps", type=int, default=370)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--tokenizer", help="tokenizer folder (default: the bert_tiny config's, MiniLM's)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent)
    p.add_argument("--name", default="bench", help="file stem of the JSON and markdown written")
    p.add_argument("override", nargs="*", help="extra tokentune overrides (key=value)")
    args = p.parse_intermixed_args(argv)
    setups = args.setups.split(",")
    methods = args.methods.split(",")
    if "tokentune" in setups:  # one tokentune set-up per method: "tokentune" is full fine-tuning
        at = setups.index("tokentune")
        setups[at:at + 1] = ["tokentune" if m == "full" else f"tokentune+{m}" for m in methods]
    unknown = {s for s in setups if not s.startswith("tokentune")} - set(SETUPS)
    if unknown:
        p.error(f"--setups: unknown {sorted(unknown)}; choose from {SETUPS}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device: run on a GPU machine, or pass --device cpu for a smoke run")

    results: dict[str, dict] = {}
    command = " ".join(["python", "experiments/bench/bench.py", *(argv if argv is not None else sys.argv[1:])])
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in setups:
            window = Window(args.warmup, args.steps, args.device)
            if args.device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            print(f"bench: {name} ...", flush=True)
            method = name.partition("+")[2] or "full"
            cfg = compose(args, Path(tmp) / name, method)
            try:
                if name.startswith("tokentune"):
                    bench_tokentune(cfg, window)
                else:
                    bench_hf(cfg, window, tuned=name == "tuned", out_dir=Path(tmp) / name)
                r = window.result()
            except Exception as err:  # one broken set-up must not cost the others' numbers
                traceback.print_exc()
                results[name] = {"error": f"{type(err).__name__}: {err}"}
                print(f"bench: {name}: failed: {results[name]['error']}", flush=True)
            else:
                r["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9 if args.device == "cuda" else None
                results[name] = r
                print(f"bench: {name}: {r['samples_per_s']:,.0f} samples/s, "
                      f"{r['real_tokens_per_s']:,.0f} real tokens/s, padding {r['padding_share']:.0%}", flush=True)
            report = write_report(args, command, results)  # after each set-up: a cut run keeps what ran
    failed = [n for n, r in results.items() if "error" in r]
    if failed:
        print(markdown(report))
        raise SystemExit(f"bench: failed set-ups: {', '.join(failed)}")
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
