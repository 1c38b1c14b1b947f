"""Issue 12: what `tokenizer=trim` saves in a training step of a GPT-2-shaped causal LM.

usage (repository root; TOKENTUNE_DATA or GLUE_DIR pointing at tinyshakespeare/ and glue/):
    bash experiments/trim_gpt2/run.sh                   # CPU or the first CUDA GPU
    bash experiments/trim_gpt2/run.sh --threads 1       # what results.md was measured with
    bash experiments/trim_gpt2/run.sh --layers 2 --width 64 --heads 2 --rounds 1 --out /tmp/x  # smoke

The "original" is a byte-level BPE vocabulary of GPT-2's size (50,257 tokens) that tokentune
builds (tokentune.vocab.build, kind byte_bpe) from all the English text available offline: the
tinyshakespeare file and the train splits of SST-2, CoLA and RTE. It stands in for GPT-2's own
tokenizer (not available offline): a general vocabulary used on one narrow corpus, which is what
trimming is for. The model is GPT-2 small's shape (12 layers, 12 heads, width 768, 1,024
positions, tied LM head), randomly initialised, with that vocabulary as its `model.tokenizer`.

Both variants are tokentune's own code end to end: `TaskDataModule` with `task=shakespeare` and
`tokenizer=pretrained` (the original) or `tokenizer=trim` (cut to the tokens the task's text
produces; exact there), `TaskModule.configure_model` (random init from the seed, then the
trimmed copy's embedding rows copied by `vocab.induction`), `TaskModule.forward`,
`optimization` (AdamW + linear schedule, what `configure_optimizers` returns) and
`configure_gradient_clipping`. Only the loop is the script's, so that the two models can train in
the same process, interleaved.

Step time: both models train in this process, in rounds: each round runs a window of `--window`
steps of one model, then of the other, the order alternating (A B, B A, ...) so that the
machine's load and drift fall on both alike; the first `--warmup` rounds are not timed, and the
device is synchronised only at the ends of a window. Peak memory: each variant in a fresh child
process (so neither sees the other's memory): CUDA → torch.cuda.max_memory_allocated over
`--mem-steps` steps; CPU → the kernel's peak resident set size (VmHWM in /proc/self/status),
reset once the model is built (writing 5 to /proc/self/clear_refs), so set-up transients do not
count; peak memory is that peak minus the resident size before the model was built (the Python,
torch and data the two share).

Writes results.json and results.md beside this file (or --out).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VARIANTS = ("original", "trimmed")
TOKENIZER = {"original": "pretrained", "trimmed": "trim"}
GPT2_SMALL = {"n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024}
ORIGINAL_VOCAB = 50257  # GPT-2's
GLUE_TASKS = ("sst2", "cola", "rte")
MB = 2 ** 20


def log(msg: str) -> None:
    print(f"[trim_gpt2 {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- configs, vocabulary, models ----------------------------------------------------------------
def model_config(args) -> dict:
    return {**GPT2_SMALL, "n_embd": args.width, "n_layer": args.layers, "n_head": args.heads}


def compose_cfg(args, variant: str, original_dir: str | None):
    from tokentune.config import compose, validate

    overrides = ["task=shakespeare", "model=gpt2_tiny", "model.name=gpt2_small_random",
                 *(f"model.config.{k}={v}" for k, v in model_config(args).items()),
                 f"data.batch_size={args.batch_size}", f"tokenizer={TOKENIZER[variant]}",
                 f"trainer.precision={args.precision}", "logger=none",
                 f"paths.output_dir={ROOT / 'outputs' / 'experiments' / 'trim_gpt2'}", f"seed={args.seed}"]
    if original_dir is not None:
        overrides += [f"model.tokenizer={original_dir}", f"model.config.vocab_size={args.vocab_size}"]
    return validate(compose(overrides))


def build_original(args) -> dict:
    """The original vocabulary (cached by tokentune under paths.cache_dir/vocab)."""
    from tokentune.config import compose, validate
    from tokentune.data.readers import read_split, read_text, split_path
    from tokentune.model.tokenizer import byte_level_tokenizer
    from tokentune.vocab.build import load_or_build_info

    cfg = compose_cfg(args, "original", None)
    # the task's train texts exactly as TaskDataModule hands them to a vocabulary build
    corpus = read_text(split_path(cfg.task, "train")).splitlines()
    sources = {"tinyshakespeare": len(corpus)}
    for task in GLUE_TASKS:
        tcfg = validate(compose([f"task={task}", "model=gpt2_tiny",
                                 f"paths.output_dir={ROOT / 'outputs' / 'experiments' / 'trim_gpt2'}"]))
        texts = [e.text_a + (" " + e.text_b if e.text_b else "") for e in read_split(tcfg.task, "train")]
        corpus += texts
        sources[f"{task} train"] = len(texts)
    spec = {"name": f"byte_bpe{args.vocab_size // 1000}k", "kind": "byte_bpe",
            "vocab_size": args.vocab_size, "show_progress": False}
    tok, info = load_or_build_info(spec, base_tokenizer=byte_level_tokenizer(), family="gpt2",
                                   corpus=corpus, cache_dir=Path(cfg.paths.cache_dir) / "vocab")
    if info.vocab_size != args.vocab_size:
        raise SystemExit(f"the original vocabulary reached {info.vocab_size:,} tokens, not "
                         f"{args.vocab_size:,}: give a smaller --vocab-size")
    log(f"original vocabulary: {info.vocab_size:,} tokens, byte-level BPE on {len(corpus):,} texts, "
        f"{info.corpus_chars:,} characters ({'built' if info.built else 'cached'}): {info.path}")
    # the obvious alternative, for the record: tokenizer=byte_bpe32k on the task alone, then trimmed
    cache = Path(cfg.paths.cache_dir) / "vocab"
    shk = corpus[:sources["tinyshakespeare"]]
    own, own_info = load_or_build_info({"name": "byte_bpe32k", "kind": "byte_bpe", "vocab_size": 32000,
                                        "show_progress": False}, base_tokenizer=byte_level_tokenizer(),
                                       family="gpt2", corpus=shk, cache_dir=cache)
    _, own_trim = load_or_build_info({"name": "trim", "kind": "pretrained", "mode": "trim"},
                                     base_tokenizer=own, family="gpt2", corpus=shk, cache_dir=cache)
    log(f"for comparison: byte_bpe32k on tinyshakespeare alone reaches {own_info.vocab_size:,} tokens; "
        f"trimmed to tinyshakespeare: {own_trim.vocab_size:,}")
    path = Path(info.path)
    return {"task_only_byte_bpe32k": {"vocab_size": own_info.vocab_size, "trimmed": own_trim.vocab_size},
            "path": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
            "vocab_size": info.vocab_size, "corpus_texts": len(corpus),
            "corpus_chars": info.corpus_chars, "sources": sources, "spec": spec}


def build_variant(args, variant: str, original_dir: str, device, total_steps: int):
    """(module, datamodule, optimizer, scheduler) as tokentune's fit would set them up."""
    from tokentune.data.datamodule import TaskDataModule
    from tokentune.model.module import TaskModule

    cfg = compose_cfg(args, variant, original_dir)
    dm = TaskDataModule(cfg)
    dm.load()
    module = TaskModule(cfg, tokenizer=dm.tokenizer, base_tokenizer=dm.base_tokenizer, device=device)
    module.configure_model()
    module.to(device)
    opt = module.optimization(total_steps, cfg.trainer.precision)
    return module, dm, opt["optimizer"], opt["lr_scheduler"]["scheduler"]


def batches(dm, device):
    while True:
        for batch in dm.train_dataloader():
            yield {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train_step(module, batch, optimizer, scheduler, clip, autocast):
    """Lightning's automatic optimisation of TaskModule.training_step, without the logging."""
    with autocast():
        loss = module(batch).loss
    loss.backward()
    module.configure_gradient_clipping(optimizer, clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def autocast_for(args, device):
    import contextlib

    import torch

    if args.precision == "bf16-mixed":
        return lambda: torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def describe(module, dm) -> dict:
    emb = module.model.get_input_embeddings().weight
    head = module.model.get_output_embeddings().weight
    return {"vocab_size": len(dm.tokenizer), "embedding_params": emb.numel(),
            "head_tied": head is emb or head.data_ptr() == emb.data_ptr(),
            "total_params": module.parameter_report["total"], "induction": module.induction_stats,
            "train_blocks": len(dm.splits["train"]), "block_size": dm.cfg.task.block_size}


# -- peak memory: one child process per variant --------------------------------------------------
def _proc_status() -> dict[str, int]:
    """Resident size now (VmRSS) and its peak (VmHWM), in bytes; without /proc (not Linux), both
    are getrusage's peak so far."""
    try:
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
        return out
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        return {"VmRSS": peak, "VmHWM": peak}


def _release_freed_heap() -> None:
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def child(args) -> None:
    """Build one variant as the parent does, run --mem-steps steps, write its peak memory."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    cuda = device.startswith("cuda")
    # the data and tokenizers first, so that the baseline holds what both variants share
    cfg = compose_cfg(args, args.child, args.original_dir)
    from tokentune.data.datamodule import TaskDataModule

    TaskDataModule(cfg).load()
    _release_freed_heap()
    before = torch.cuda.memory_allocated() if cuda else _proc_status()["VmRSS"]
    module, dm, opt, sched = build_variant(args, args.child, args.original_dir, device,
                                           total_steps=args.mem_steps)
    data = batches(dm, device)
    batch = next(data)
    _release_freed_heap()
    method = None
    if cuda:
        sync(device)
        after_setup = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        method = "torch.cuda.max_memory_allocated, reset after the model was built"
    else:
        after_setup = _proc_status()["VmRSS"]
        try:
            Path("/proc/self/clear_refs").write_text("5")
            method = "peak resident set size (VmHWM), reset after the model was built (clear_refs 5)"
        except OSError:
            method = "peak resident set size since the process started (no /proc/self/clear_refs)"
    clip = cfg.trainer.gradient_clip_val
    autocast = autocast_for(args, device)
    for i in range(args.mem_steps):
        train_step(module, batch if i == 0 else next(data), opt, sched, clip, autocast)
    sync(device)
    peak = torch.cuda.max_memory_allocated() if cuda else _proc_status()["VmHWM"]
    result = {"method": method, "before_model_bytes": before, "after_setup_bytes": after_setup,
              "peak_bytes": peak, "peak_above_baseline_bytes": peak - before,
              "model_bytes": after_setup - before, "steps": args.mem_steps}
    Path(args.child_out).write_text(json.dumps(result))


def measure_memory(args, original_dir: str, variant: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "memory.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), *args.argv, "--child", variant,
               "--child-out", str(out), "--original-dir", original_dir]
        log(f"peak memory of the {variant} model: a fresh process, {args.mem_steps} training steps")
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        result = json.loads(out.read_text())
    log(f"  {variant}: peak {result['peak_above_baseline_bytes'] / MB:,.0f} MB above the shared "
        f"baseline ({time.perf_counter() - start:.0f} s)")
    return result


# -- step time: both models in this process, interleaved ---------------------------------------
def check_same_model(models: dict, device) -> dict:
    """Same text → same tokens under both vocabularies, and the trimmed model's logits are the
    original's at the kept ids (eval mode: no dropout)."""
    import torch

    (a, dma, *_), (b, dmb, *_) = models["original"], models["trimmed"]
    ta, tb = dma.splits["train"].tensors["input_ids"], dmb.splits["train"].tensors["input_ids"]
    same_tokens = (dma.tokenizer.convert_ids_to_tokens(ta.tolist())
                   == dmb.tokenizer.convert_ids_to_tokens(tb.tolist()))
    kept = dma.tokenizer.convert_tokens_to_ids(dmb.tokenizer.convert_ids_to_tokens(list(range(len(dmb.tokenizer)))))
    batch_a = next(iter(dma.train_dataloader()))
    batch_b = next(iter(dmb.train_dataloader()))
    with torch.no_grad():
        a.eval(), b.eval()
        la = a({k: v.to(device) for k, v in batch_a.items()}).logits[..., kept].float()
        lb = b({k: v.to(device) for k, v in batch_b.items()}).logits.float()
        a.train(), b.train()
    return {"train_tokens": int(ta.numel()), "same_token_sequence": bool(same_tokens),
            "max_abs_logit_difference": float((la - lb).abs().max())}


def measure_time(args, models: dict, device) -> dict:
    clip = {v: m[0].cfg.trainer.gradient_clip_val for v, m in models.items()}
    data = {v: batches(m[1], device) for v, m in models.items()}
    autocast = autocast_for(args, device)
    seconds = {v: [] for v in VARIANTS}
    losses = {v: [] for v in VARIANTS}
    for r in range(args.warmup + args.rounds):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        for v in order:
            module, _, opt, sched = models[v]
            window = [next(data[v]) for _ in range(args.window)]
            sync(device)
            start = time.perf_counter()
            for batch in window:
                loss = train_step(module, batch, opt, sched, clip[v], autocast)
            sync(device)
            elapsed = time.perf_counter() - start
            losses[v].append(float(loss))
            if r >= args.warmup:
                seconds[v].append(elapsed)
        tag = "warm-up" if r < args.warmup else "timed"
        log(f"round {r + 1}/{args.warmup + args.rounds} ({tag}): "
            + ", ".join(f"{v} {seconds[v][-1] / args.window * 1e3:,.0f} ms/step" if r >= args.warmup
                        else v for v in order)
            + (f"; trimmed/original so far {sum(seconds['trimmed']) / sum(seconds['original']):.3f}"
               if r >= args.warmup else ""))
    steps = args.rounds * args.window
    out = {v: {"timed_steps": steps, "step_ms": sum(seconds[v]) / steps * 1e3,
               "window_ms": [s / args.window * 1e3 for s in seconds[v]],
               "tokens_per_s": steps * args.batch_size * models[v][0].cfg.task.block_size / sum(seconds[v]),
               "last_loss": losses[v][-1]} for v in VARIANTS}
    per_round = [t / o for t, o in zip(seconds["trimmed"], seconds["original"])]
    out["round_ratios"] = per_round
    out["median_round_ratio"] = statistics.median(per_round)
    return out


# -- report --------------------------------------------------------------------------------------
def markdown(report: dict) -> str:
    from tokentune.run.provenance import markdown_lines

    a, o, t, ratio = report["args"], report["original"], report["trimmed"], report["ratios"]
    mem_unit = "GPU memory allocated" if report["device"] != "cpu" else "resident memory"
    size = f"{a['batch_size']} × {o['block_size']} tokens"

    def row(name, r):
        return (f"| {name} | {r['vocab_size']:,} | {r['embedding_params']:,} | {r['total_params']:,} | "
                f"{r['step_ms']:,.0f} | {r['peak_memory_mb']:,.0f} | {r['process_peak_mb']:,.0f} |")

    orig, lines, mc = report["original_vocabulary"], [], report["model_config"]
    own = orig["task_only_byte_bpe32k"]
    shape = "GPT-2 small's shape" if mc == GPT2_SMALL else "GPT-2-shaped, reduced"
    lines += ["# Trimming a GPT-2-shaped model's vocabulary to tinyshakespeare: step time and memory", "",
              *markdown_lines(report["environment"]),
              f"- command (repository root): `{report['command']}`; wall time {report['wall_time_s']:.0f} s",
              f"- model: {shape}, random init (seed {a['seed']}; {mc['n_layer']} layers, {mc['n_head']} heads, "
              f"width {mc['n_embd']}, {mc['n_positions']} positions, LM head tied to the token embeddings); "
              f"task=shakespeare, batch {size}, full fine-tuning, AdamW, precision {a['precision']}, "
              f"{report['torch_threads']} torch thread(s)",
              "",
              "| model | vocabulary | token embedding params | total params | step time (ms) | "
              f"peak {mem_unit} (MB) | process peak (MB) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
              row("original", o), row("trimmed", t),
              f"| **trimmed / original** | {ratio['vocab_size']:.3f} | {ratio['embedding_params']:.3f} | "
              f"{ratio['total_params']:.3f} | **{ratio['step_ms']:.3f}** | **{ratio['peak_memory_mb']:.3f}** | "
              f"{ratio['process_peak_mb']:.3f} |", ""]
    tm, chk = report["timing"], report["checks"]
    lines += [
        "## What was compared",
        "",
        f"- **original**: a byte-level BPE vocabulary of GPT-2's size ({orig['vocab_size']:,} tokens), "
        f"built by tokentune (`tokentune.vocab.build`, kind `byte_bpe`) from all the English text there "
        f"is offline: " + ", ".join(f"{k} ({n:,} texts)" for k, n in orig["sources"].items())
        + f", {orig['corpus_chars']:,} characters. GPT-2's own tokenizer cannot be had offline; this "
        "stands in for it: a general vocabulary used on one narrow corpus, the case trimming is for. "
        "It is the model's `model.tokenizer`, run with `tokenizer=pretrained`.",
        f"- **trimmed**: the same run with `tokenizer=trim`: that vocabulary cut to the tokens it "
        f"produces on the task's text (for a causal-LM task tokentune gives the vocabulary the whole "
        f"file, line by line, its validation tail included), plus the 256 byte symbols, the "
        f"intermediate tokens of every kept merge and the special tokens: {t['vocab_size']:,} tokens; "
        f"the embedding rows (and so GPT-2's "
        "tied LM head) copied from the original model.",
        "- Why not `tokenizer=byte_bpe32k` on tinyshakespeare, trimmed to tinyshakespeare: that corpus "
        f"runs out of merges at {own['vocab_size']:,} tokens, and on its own training text a BPE produces "
        f"(nearly) every token it has: trimming keeps {own['trimmed']:,} of the {own['vocab_size']:,} "
        "(built in this run), so there is nothing to measure; a `max_tokens` / `min_frequency` cap would shrink it, but then the trimmed "
        "model reads the text differently (more, shorter tokens) and the comparison is no longer of the "
        "same computation. Here the trim is exact: "
        f"the {chk['train_tokens']:,} training tokens are the same token sequence under both vocabularies "
        f"({'checked' if chk['same_token_sequence'] else 'CHECK FAILED'}), and on a batch the trimmed "
        f"model's logits equal the original's at the kept ids (largest difference "
        f"{chk['max_abs_logit_difference']:.1e}). The two runs do the same work except over the "
        "vocabulary: the embedding lookup, the LM head's matrix product, the softmax cross-entropy, their "
        "gradients and AdamW's state for the embedding matrix.",
        "",
        "## How it was measured",
        "",
        f"- Step time: one training step = tokentune's forward and loss (`TaskModule.forward`), backward, "
        f"gradient clipping, AdamW and schedule step. Both models train in one process, interleaved: "
        f"{a['warmup']} warm-up rounds, then {a['rounds']} timed rounds, each a window of {a['window']} "
        f"step(s) of each model, the order alternating (original first, then trimmed first, ...) so that "
        f"the machine's load falls on both alike. Step time = total time of the timed windows / steps. "
        f"The ratio of the sums is {ratio['step_ms']:.3f}; the median of the per-round ratios is "
        f"{tm['median_round_ratio']:.3f} (range {min(tm['round_ratios']):.3f}–{max(tm['round_ratios']):.3f}).",
        f"- Peak memory: each variant in a fresh child process, {a['mem_steps']} training steps. "
        + ("CPU: the kernel's peak resident set size (VmHWM), reset once the model and optimizer were "
           "built (`/proc/self/clear_refs` 5), so the trimmed model's set-up (it is built as the "
           "original, then shrunk) does not count; 'peak resident memory' is that peak minus the "
           "resident size before the model was built (Python, torch, tokenizers and the encoded text, "
           "the same in both), i.e. parameters, gradients, AdamW state and activations. 'Process peak' "
           "is the whole process's peak, for reference."
           if report["device"] == "cpu" else
           "CUDA: torch.cuda.max_memory_allocated over the steps (parameters, gradients, AdamW state, "
           "activations); 'process peak' is the same number.")
        + f" Method as reported by the child: {report['memory_method']}.",
        "- Results from one run of the command above; the machine ran other jobs at the same time, "
        "which the interleaving spreads over both models but which makes the absolute times noisy.",
        ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--batch-size", type=int, default=None, help="default 4 on CPU, 16 on CUDA")
    p.add_argument("--precision", default=None, help="32-true (CPU default) or bf16-mixed (CUDA default)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 2 CPU, 3 CUDA)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 12 CPU, 10 CUDA)")
    p.add_argument("--window", type=int, default=None, help="steps per model per round (default 1 CPU, 10 CUDA)")
    p.add_argument("--mem-steps", type=int, default=3)
    p.add_argument("--layers", type=int, default=GPT2_SMALL["n_layer"])
    p.add_argument("--width", type=int, default=GPT2_SMALL["n_embd"])
    p.add_argument("--heads", type=int, default=GPT2_SMALL["n_head"])
    p.add_argument("--vocab-size", type=int, default=ORIGINAL_VOCAB)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    p.add_argument("--original-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    cpu = args.device == "cpu"
    defaults = {"batch_size": (4, 16), "precision": ("32-true", "bf16-mixed"), "warmup": (2, 3),
                "rounds": (12, 10), "window": (1, 10)}
    for key, (on_cpu, on_gpu) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, on_cpu if cpu else on_gpu)
    if args.child:
        child(args)
        return
    # the children get every setting spelt out, so they build exactly what this process does
    args.argv = [f"--device={args.device}", f"--batch-size={args.batch_size}", f"--precision={args.precision}",
                 f"--mem-steps={args.mem_steps}", f"--vocab-size={args.vocab_size}", f"--seed={args.seed}",
                 f"--layers={args.layers}", f"--width={args.width}", f"--heads={args.heads}",
                 *([f"--threads={args.threads}"] if args.threads else [])]
    if args.threads:
        torch.set_num_threads(args.threads)

    from tokentune.atomic import write_atomic
    from tokentune.run.provenance import environment

    start = time.perf_counter()
    log(f"device {args.device}, {torch.get_num_threads()} torch thread(s), batch {args.batch_size}")
    log("[1/4] the original vocabulary")
    original = build_original(args)

    log("[2/4] peak memory, one child process per variant")
    memory = {v: measure_memory(args, str(ROOT / original["path"]), v) for v in VARIANTS}

    log("[3/4] both models in this process (data, trim and embedding copy through tokentune)")
    total_steps = (args.warmup + args.rounds) * args.window
    models = {v: build_variant(args, v, str(ROOT / original["path"]), args.device, total_steps)
              for v in VARIANTS}
    described = {v: describe(models[v][0], models[v][1]) for v in VARIANTS}
    for v in VARIANTS:
        d = described[v]
        log(f"  {v}: vocabulary {d['vocab_size']:,}, token embeddings {d['embedding_params']:,}, "
            f"total {d['total_params']:,} parameters")
    checks = check_same_model(models, args.device)
    log(f"  same token sequence: {checks['same_token_sequence']}; largest logit difference at kept ids: "
        f"{checks['max_abs_logit_difference']:.2e}")
    if not checks["same_token_sequence"]:
        raise SystemExit("the trimmed vocabulary does not read tinyshakespeare as the original does")

    log(f"[4/4] step time: {args.warmup} warm-up + {args.rounds} timed rounds of {args.window} step(s) per model")
    timing = measure_time(args, models, args.device)

    report = {"args": {k: v for k, v in vars(args).items()
                       if k not in ("child", "child_out", "original_dir", "argv", "out")},
              "device": args.device, "torch_threads": torch.get_num_threads(),
              "command": "bash experiments/trim_gpt2/run.sh" + "".join(f" {shlex.quote(a)}" for a in argv),
              "environment": environment(), "model_config": model_config(args),
              "original_vocabulary": original, "checks": checks, "timing": timing,
              "memory_method": memory["original"]["method"]}
    for v in VARIANTS:
        report[v] = {**described[v], "step_ms": timing[v]["step_ms"], "tokens_per_s": timing[v]["tokens_per_s"],
                     "peak_memory_mb": memory[v]["peak_above_baseline_bytes"] / MB,
                     "process_peak_mb": memory[v]["peak_bytes"] / MB, "memory": memory[v]}
    report["ratios"] = {k: report["trimmed"][k] / report["original"][k]
                        for k in ("vocab_size", "embedding_params", "total_params", "step_ms",
                                  "peak_memory_mb", "process_peak_mb")}
    report["wall_time_s"] = time.perf_counter() - start
    write_atomic(args.out / "results.json", json.dumps(report, indent=2) + "\n")
    write_atomic(args.out / "results.md", markdown(report))
    r = report["ratios"]
    log(f"done in {report['wall_time_s']:.0f} s: trimmed/original step time {r['step_ms']:.3f}, peak memory "
        f"{r['peak_memory_mb']:.3f}, parameters {r['total_params']:.3f}; wrote {args.out}/results.md")


if __name__ == "__main__":
    main()
