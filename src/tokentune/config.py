"""Typed schemas for every config group, registered with Hydra's ConfigStore.

Types are checked by OmegaConf while Hydra composes (``trainer.max_epochs=abc`` fails there);
value ranges are checked in ``__post_init__``, which runs when `validate` turns the composed
config into these dataclasses — before any data or model is touched.
Only dataclasses and stdlib here: this module is on the ``--cfg job`` start-up path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from tokentune.errors import check
from tokentune.finetune.registry import get_method
from tokentune.model.families import get_family
from tokentune.task import get_kind
from tokentune.vocab.spec import TokenizerConfig

# The configs ship inside the package, so an installed wheel composes exactly as a checkout does
# (the top-level conf/ of a checkout is a link to this folder).
CONF_DIR = str(Path(__file__).resolve().parent / "conf")
PRECISIONS = ("32", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64", "64-true")
FORMATS = ("tsv", "csv", "jsonl", "hub", "text", "conll", "squad")
METRICS = ("accuracy", "f1", "precision", "recall", "mcc", "pearson", "spearman", "perplexity",
           "exact_match")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
MODEL_DTYPES = ("float32", "bfloat16")
STRATEGIES = ("auto", "ddp", "fsdp")  # see tokentune.run.distributed


@dataclass
class ModelConfig:
    name: str = MISSING
    family: str = MISSING  # a key of tokentune.model.families.FAMILIES (pooling, padding, special tokens ...)
    # hub id or local folder; None = random init from `config` (tiny test models)
    pretrained: Optional[str] = None
    # the family's transformers config kwargs: the whole config of a random-init model, or settings
    # that replace a pretrained model's own (e.g. +model.config.hidden_dropout_prob=0.2). Empty, not
    # null, by default: OmegaConf cannot merge keys into a null node (a traceback, not a message)
    config: Optional[Dict[str, Any]] = field(default_factory=dict)
    # None = `pretrained`; "bytes" = GPT-2's byte alphabet; "family_bytes" = that alphabet behind the
    # family's special tokens (tokentune.model.tokenizer.family_byte_level_tokenizer)
    tokenizer: Optional[str] = None
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = False
    # torch.compile the backbone's encoder (after the fine-tuning method is applied): null = eager;
    # reduce-overhead adds CUDA graphs, one per batch shape (pair it with data.buckets)
    compile: Optional[str] = None
    # The dtype the backbone's weights load in. float32: fp32 master weights (autocast does the
    # rest under trainer.precision=bf16-mixed). bfloat16 halves the frozen base's memory; it needs a
    # bf16 trainer.precision: under bf16-mixed whatever trains (adapters, LoRA, prefix, head; every
    # weight under finetune=full) is kept in float32, fp32 master weights; bf16-true trains in bf16.
    dtype: str = "float32"

    def __post_init__(self) -> None:
        get_family(self.family)  # an unknown family: one line naming the known ones
        check(self.dtype in MODEL_DTYPES, "model.dtype", f"'{self.dtype}' is not one of {MODEL_DTYPES}")
        check(self.pretrained is not None or bool(self.config), "model.pretrained",
              "set a hub id / local folder, or model.config for a randomly initialised model")
        check(self.attn_implementation in ("sdpa", "eager"), "model.attn_implementation",
              f"'{self.attn_implementation}' is not sdpa or eager")
        check(self.compile is None or self.compile in COMPILE_MODES, "model.compile",
              f"'{self.compile}' is not one of {COMPILE_MODES} (or null for eager)")


@dataclass
class SplitConfig:
    path: str = MISSING  # relative to task.data_dir
    header: Optional[bool] = None  # None = task.header
    # the hub's copy of this split: None = task.hub_subset, and the split's own name (GLUE's
    # validation_matched, test_mismatched ... are the hub's names too)
    hub_subset: Optional[str] = None
    hub_split: Optional[str] = None


def validation_splits(splits) -> list[str]:
    """The splits scored after every epoch: `validation` and `validation_<name>`, in file order
    (a causal LM's is the tail of its training file)."""
    named = [s for s in splits if s == "validation" or s.startswith("validation_")]
    return named or ["validation"]


def monitored(monitor: str, splits) -> tuple[str, str]:
    """(validation split, metric) of task.monitor: `metric` (the first validation split's) or
    `split/metric`."""
    split, _, metric = monitor.rpartition("/")
    return split or validation_splits(splits)[0], metric


def stage(split: str) -> str:
    """The prefix of a split's logged metrics: val (validation), val_matched (validation_matched),
    test, test_matched ..."""
    return "val" + split[len("validation"):] if split.startswith("validation") else split


@dataclass
class TaskConfig:
    name: str = MISSING
    kind: str = "classification"
    format: str = "tsv"
    data_dir: Optional[str] = None
    splits: Dict[str, SplitConfig] = field(default_factory=dict)  # train / validation / test
    header: bool = True
    column_names: Optional[List[str]] = None  # for files without a header row
    text_columns: List[str] = field(default_factory=lambda: ["sentence"])
    label_column: Optional[str] = "label"
    labels: Optional[List[str]] = None  # None with kind=regression
    index_column: Optional[str] = None  # written back in predictions (GLUE submissions)
    # rows with a wrong number of fields are skipped and counted (a warning), not an error: for
    # files known to hold a few broken rows (GLUE's QQP train.tsv), as GLUE's own processors do
    skip_malformed_rows: bool = False
    metrics: List[str] = field(default_factory=lambda: ["accuracy"])
    # the metric that picks the best checkpoint, on the first validation split; with several
    # (MNLI's validation_matched, validation_mismatched) prefix the split: validation_matched/accuracy
    monitor: str = "accuracy"
    hub_dataset: Optional[str] = None  # fallback source when data_dir has no files
    hub_subset: Optional[str] = None
    validation_fraction: float = 0.1  # causal LM on one text file: the tail is validation
    block_size: int = 128  # causal LM: tokens per training example
    # token classification: the tags' scheme (IOB1, IOB2, BIOES; scored as IOB2), the CoNLL column
    # holding them (Python indexing: -1 = the last), and whether a word's later sub-tokens carry its
    # label in the loss too (HF run_ner's label_all_tokens) or are ignored (the default)
    tag_scheme: str = "IOB2"
    tag_column: int = -1
    label_all_subtokens: bool = False
    # extractive QA: v2.0 (unanswerable questions, the null answer); the tokens neighbouring windows
    # of a long context share (HF run_qa's doc_stride; data.max_length bounds a window); the longest
    # answer in tokens; the start and end candidates kept per window; and how far the null score
    # must beat the best span's (start + end logits) for the null answer (v2.0)
    version_2: bool = False
    doc_stride: int = 128
    max_answer_length: int = 30
    n_best: int = 20
    null_threshold: float = 0.0

    def __post_init__(self) -> None:
        kind = get_kind(self.kind)  # an unknown kind: one line naming the known ones
        check(self.format in FORMATS, "task.format", f"'{self.format}' is not one of {FORMATS}")
        check("train" in self.splits, "task.splits", "a task needs at least a 'train' split")
        check(1 <= len(self.text_columns) <= 2, "task.text_columns", "give one or two text columns")
        for m in self.metrics:
            check(m in METRICS, "task.metrics", f"'{m}' is not one of {METRICS}")
        split, metric = self.monitored
        check(metric in self.metrics + ["loss"], "task.monitor",
              f"'{metric}' must be one of task.metrics {self.metrics} or 'loss'")
        check(split in self.validation_splits, "task.monitor",
              f"'{split}' is not a validation split of the task {self.validation_splits}")
        kind.check_task(self)
        check(0.0 < self.validation_fraction < 1.0, "task.validation_fraction", "must be in (0, 1)")
        check(self.block_size >= 2, "task.block_size", "must be at least 2")

    @property
    def validation_splits(self) -> list[str]:
        return validation_splits(self.splits)

    @property
    def monitored(self) -> tuple[str, str]:
        return monitored(self.monitor, self.splits)

    @property
    def monitor_key(self) -> str:
        """The logged name of the monitored metric, e.g. val/accuracy, val_matched/accuracy."""
        split, metric = self.monitored
        return f"{stage(split)}/{metric}"

    @property
    def num_labels(self) -> int:
        return get_kind(self.kind).num_labels(self)


@dataclass
class DataConfig:
    batch_size: int = 32
    eval_batch_size: int = 128
    max_length: int = 128
    group_by_length: bool = True  # batches of similar lengths: less padding
    num_workers: int = 0
    pin_memory: bool = False
    max_train_examples: Optional[int] = None  # first N training rows (quick runs, tests)
    # Pad each batch to the smallest of these widths that holds its longest sequence, so the model
    # sees a few fixed shapes (what torch.compile and CUDA graphs need); null = pad to the longest.
    # Widths from max_length up are replaced by max_length itself (see `widths`).
    buckets: Optional[List[int]] = None
    # Training batches without padding: several sequences share a row of up to max_length tokens,
    # each attending only to itself (classification and regression; not with prefix tuning)
    packing: bool = False
    # A split with more than this share of empty examples (no text at all) is refused before
    # anything is built from it: it would train on padding. A split of empty examples always is.
    max_empty_share: float = 0.01

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "data.batch_size", f"must be at least 1, got {self.batch_size}")
        check(self.eval_batch_size >= 1, "data.eval_batch_size", "must be at least 1")
        check(self.max_length >= 2, "data.max_length", f"must be at least 2, got {self.max_length}")
        check(self.num_workers >= 0, "data.num_workers", "must be ≥ 0")
        check(self.max_train_examples is None or self.max_train_examples >= 1,
              "data.max_train_examples", "must be at least 1 (or null for all rows)")
        check(0 <= self.max_empty_share <= 1, "data.max_empty_share",
              f"must be a share in [0, 1], got {self.max_empty_share}")
        if self.buckets is not None:
            check(len(self.buckets) >= 1 and all(w >= 1 for w in self.buckets)
                  and all(a < b for a, b in zip(self.buckets, self.buckets[1:])), "data.buckets",
                  f"must be increasing widths of at least 1 (or null), got {list(self.buckets)}")

    def widths(self) -> Optional[list[int]]:
        """The bucket widths in effect: those below max_length, then max_length (no sequence is
        longer, so a larger width would only add padding)."""
        if self.buckets is None:
            return None
        return [w for w in self.buckets if w < self.max_length] + [self.max_length]


@dataclass
class OptimizerConfig:
    lr: float = 5e-5  # train.yaml sets it to the fine-tuning method's default rate
    weight_decay: float = 0.01
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_ratio: float = 0.06
    scheduler: str = "linear"  # linear | cosine | constant

    def __post_init__(self) -> None:
        check(self.lr > 0, "optimizer.lr", f"must be > 0, got {self.lr}")  # nan too
        # an infinite rate trains nothing but nan: refused here, not a few steps into the fit
        check(math.isfinite(self.lr), "optimizer.lr", f"must be a finite number, got {self.lr}")
        check(self.weight_decay >= 0, "optimizer.weight_decay", "must be ≥ 0")
        check(math.isfinite(self.weight_decay), "optimizer.weight_decay",
              f"must be a finite number, got {self.weight_decay}")
        check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optimizer.betas",
              f"must be two numbers in [0, 1), got {list(self.betas)}")
        check(math.isfinite(self.eps) and self.eps > 0, "optimizer.eps",
              f"must be a finite number > 0, got {self.eps}")
        check(0 <= self.warmup_ratio < 1, "optimizer.warmup_ratio", "must be in [0, 1)")
        check(self.scheduler in ("linear", "cosine", "constant"), "optimizer.scheduler",
              f"'{self.scheduler}' is not linear, cosine or constant")


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"  # auto (one device) | ddp | fsdp
    # ddp/fsdp: how long a collective waits for a rank that stopped answering before the process
    # group fails. Workers on this node are watched much faster than this (run/distributed.py);
    # the timeout bounds a hang on another node.
    ddp_timeout_s: int = 1800
    precision: str = "32-true"
    max_epochs: int = 3
    max_steps: int = -1
    accumulate_grad_batches: int = 1
    gradient_clip_val: Optional[float] = 1.0
    val_check_interval: Optional[float] = None
    check_val_every_n_epoch: Optional[int] = 1
    log_every_n_steps: int = 50
    deterministic: bool = False
    fast_dev_run: Any = False
    overfit_batches: float = 0.0
    limit_train_batches: Optional[float] = None
    limit_val_batches: Optional[float] = None
    limit_test_batches: Optional[float] = None
    num_sanity_val_steps: int = 0

    def __post_init__(self) -> None:
        check(self.precision in PRECISIONS, "trainer.precision",
              f"'{self.precision}' is not one of {PRECISIONS}")
        check(self.max_epochs >= 1 or self.max_epochs == -1, "trainer.max_epochs",
              f"must be ≥ 1 (or -1 for no limit), got {self.max_epochs}")
        check(self.max_steps >= 1 or self.max_steps == -1, "trainer.max_steps",
              f"must be ≥ 1 (or -1 for no limit), got {self.max_steps}")
        check(self.accumulate_grad_batches >= 1, "trainer.accumulate_grad_batches", "must be ≥ 1")
        check(self.strategy in STRATEGIES, "trainer.strategy",
              f"'{self.strategy}' is not one of {STRATEGIES}")
        check(self.strategy != "fsdp" or self.accelerator in ("gpu", "cuda"), "trainer.strategy",
              f"fsdp shards over GPUs (torch's FSDP needs an accelerator), not accelerator "
              f"'{self.accelerator}'; use trainer=ddp on CPU")
        check(self.num_nodes >= 1, "trainer.num_nodes", f"must be ≥ 1, got {self.num_nodes}")
        check(self.num_nodes == 1 or self.strategy != "auto", "trainer.num_nodes",
              "several nodes need trainer.strategy=ddp or fsdp")
        check(self.ddp_timeout_s >= 1, "trainer.ddp_timeout_s", "must be ≥ 1 second")
        check(self.gradient_clip_val is None or self.gradient_clip_val > 0,
              "trainer.gradient_clip_val", "must be > 0 or null")


@dataclass
class LoggerConfig:
    kind: str = "csv"  # csv | wandb | tensorboard | none
    project: str = "tokentune"  # wandb project
    group: Optional[str] = None  # wandb group (sweeps group their runs)
    offline: Optional[bool] = None  # wandb: None = offline unless an API key is set

    def __post_init__(self) -> None:
        check(self.kind in ("csv", "wandb", "tensorboard", "none"), "logger.kind",
              f"'{self.kind}' is not csv, wandb, tensorboard or none")


@dataclass
class CallbacksConfig:
    checkpoint: bool = True  # best (by task.monitor) and last
    every_n_train_steps: Optional[int] = None  # also write last.ckpt every N steps (resume)
    early_stopping_patience: Optional[int] = None  # validations without improvement
    lr_monitor: bool = True
    progress_bar: str = "tqdm"  # tqdm | rich | none
    refresh_rate: int = 20  # steps between progress-bar updates (each one syncs the loss)

    def __post_init__(self) -> None:
        check(self.progress_bar in ("tqdm", "rich", "none"), "callbacks.progress_bar",
              f"'{self.progress_bar}' is not tqdm, rich or none")
        check(self.refresh_rate >= 1, "callbacks.refresh_rate", "must be ≥ 1")
        check(self.every_n_train_steps is None or self.every_n_train_steps >= 1,
              "callbacks.every_n_train_steps", "must be ≥ 1 or null")
        check(self.early_stopping_patience is None or self.early_stopping_patience >= 1,
              "callbacks.early_stopping_patience", "must be ≥ 1 or null")


@dataclass
class ResumeConfig:
    # A resume (ckpt_path=<run>/checkpoints/last.ckpt) with other optimisation settings than the
    # checkpoint's (batch size, learning rate, epochs, ...) is refused unless this is true; the
    # changes are then logged and listed in results.json (run/resume_check.py)
    allow_changes: bool = False


@dataclass
class PathsConfig:
    root_dir: str = "."
    data_dir: str = MISSING  # local data sets (tinyshakespeare/, glue/ ...)
    glue_dir: str = MISSING  # GLUE in the layout of download_glue_data.py
    cache_dir: str = MISSING  # tokenized data and built vocabularies
    output_dir: str = MISSING  # this run's directory (Hydra's run dir)


@dataclass
class TrainConfig:
    """The root: one field per config group plus run-level settings."""

    model: ModelConfig = MISSING
    task: TaskConfig = MISSING
    tokenizer: TokenizerConfig = MISSING
    finetune: Any = MISSING  # a schema of tokentune.finetune.METHODS
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    resume: ResumeConfig = field(default_factory=ResumeConfig)
    seed: int = 42
    ckpt_path: Optional[str] = None  # resume from this checkpoint
    test: bool = True  # score the test split after fitting, where it has labels
    export: bool = True  # write the best weights as a plain model folder, run/model (run/export.py)
    # settings that differ by task, which `${tt.per_task:KEY}` reads (per_task.<task.name>.KEY): a
    # paper's per-task table in one experiment file, so that one grid over tasks runs each with
    # its own epochs, rate, batch size (conf/experiment/lora_paper_glue.yaml)
    per_task: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        method = get_method(self.finetune.method)
        method.check_family(get_family(self.model.family))  # e.g. prefix on DeBERTa
        check(self.model.dtype == "float32" or self.trainer.precision in ("bf16-mixed", "bf16-true"),
              "model.dtype", f"{self.model.dtype} weights need trainer.precision=bf16-mixed (what trains "
              f"kept in float32) or bf16-true, not {self.trainer.precision}; or model.dtype=float32")
        if self.data.packing:
            refused = get_kind(self.task.kind).packing_refused
            check(refused is None, "data.packing", str(refused))
            check(method.packing_refused is None, "data.packing", str(method.packing_refused))
            check(get_family(self.model.family).packed_head is not None, "data.packing",
                  f"{self.model.family} models have no packed classification head "
                  f"(tokentune/model/families.py); use data.packing=false")


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore

    from tokentune.finetune import METHODS

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for name, method in METHODS.items():
        cs.store(group="finetune", name=f"{name}_schema", node=method.schema)


def package_dir(package: str, subdir: str = "") -> str:
    """`${tt.package_dir:pkg,sub}`: a folder inside an installed package, found without importing it."""
    import importlib.util
    from pathlib import Path

    from tokentune.errors import UserError

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise UserError(f"the Python package '{package}' is not installed; "
                        f"run `pip install {package.replace('_', '-')}` (make train does this)")
    return str(Path(spec.origin).parent / subdir)


def _sweep_name(mode: Any, sweep_dir: str) -> Optional[str]:
    """`${tt.sweep_name:${hydra:mode},${hydra:sweep.dir}}`: the sweep folder's name inside a Hydra
    multirun (so its runs share a wandb group), None for a single run."""
    from pathlib import Path

    return Path(sweep_dir).name if getattr(mode, "name", mode) == "MULTIRUN" else None


JOB_DIR_BYTES = 200  # below the 255 bytes most filesystems allow a name, with room for a suffix


def _job_dir(num: Any, override_dirname: str) -> str:
    """`${tt.job_dir:${hydra.job.num},${hydra.job.override_dirname}}`: a sweep job's folder, its
    number and overrides; cut, with a hash of the whole name, where the overrides would make a
    name too long to create (the job's overrides are in its .hydra/overrides.yaml)."""
    import hashlib

    name = f"{num}-{override_dirname}" if override_dirname else str(num)
    if len(name.encode()) <= JOB_DIR_BYTES:
        return name
    cut = name.encode()[:JOB_DIR_BYTES].decode(errors="ignore")
    return f"{cut}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def _devices_per_node(devices: Any) -> int:
    """`${tt.devices_per_node:${trainer.devices}}`: tasks and GPUs per node of a SLURM job, which
    must be a count (not auto or -1: the job is sized before any GPU is seen)."""
    from tokentune.errors import UserError

    if isinstance(devices, int) and devices >= 1:
        return devices
    raise UserError(f"trainer.devices: a SLURM job needs the number of GPUs per node "
                    f"(e.g. trainer.devices=8), got {devices!r}")


def resumed_run(ckpt_path: Any) -> Optional[str]:
    """The run directory a checkpoint in `<run>/checkpoints/` belongs to, else None: a resume
    continues that run (fit writes there) rather than a new timestamped folder."""
    from pathlib import Path

    if not ckpt_path:
        return None
    ckpt = Path(str(ckpt_path))
    return str(ckpt.parent.parent) if ckpt.parent.name == "checkpoints" else None


def _run_dir(ckpt_path: Any, new: str) -> str:
    """`${tt.run_dir:${ckpt_path},<new run's folder>}`: hydra.run.dir."""
    return resumed_run(ckpt_path) or new


def _hydra_subdir(ckpt_path: Any) -> Optional[str]:
    """`${tt.hydra_subdir:${ckpt_path}}`: hydra.output_subdir. A resume writes no .hydra/ of its
    own: the run's stays as its first fit wrote it, and nothing is written into the run before
    the checkpoint is checked against the config (fit writes config.yaml once it is)."""
    return None if resumed_run(ckpt_path) else ".hydra"


def _per_task(key: str, *, _root_: Any) -> Any:
    """`${tt.per_task:KEY}`: per_task.<task.name>.KEY, the running task's own value of a setting."""
    from tokentune.errors import UserError

    task, table = _root_.task.name, _root_.get("per_task") or {}
    if task not in table:
        raise UserError(f"per_task: no settings for task={task} (a ${{tt.per_task:{key}}} asks for "
                        f"them); give per_task.{task}, or choose one of {', '.join(table) or 'no task'}")
    if key not in table[task]:
        raise UserError(f"per_task.{task}: no '{key}' (a ${{tt.per_task:{key}}} asks for it); "
                        f"it has {', '.join(table[task]) or 'nothing'}")
    return table[task][key]


RESOLVERS = {"tt.package_dir": package_dir, "tt.sweep_name": _sweep_name,
             "tt.devices_per_node": _devices_per_node, "tt.run_dir": _run_dir,
             "tt.hydra_subdir": _hydra_subdir, "tt.job_dir": _job_dir,
             "tt.per_task": _per_task}


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def compose(overrides: list[str], *, keep_hydra: bool = False) -> Any:
    """The config `python train.py <overrides>` runs with, composed outside a Hydra app (tests,
    benchmarks). Unless `keep_hydra`, the `hydra` node becomes the current HydraConfig (so
    `${hydra:...}` resolves, as inside a run) and is dropped from the result."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    register_resolvers()
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
            cfg = hydra_compose(config_name="train", overrides=list(overrides),
                                return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    if not keep_hydra:
        HydraConfig().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def from_dict(saved: dict) -> TrainConfig:
    """A TrainConfig from its plain-dict form (as stored in checkpoints), schemas checked again."""
    from omegaconf import OmegaConf

    from tokentune.finetune import get_method

    method = get_method(saved["finetune"]["method"])
    base = OmegaConf.structured(TrainConfig)
    base.finetune = OmegaConf.structured(method.schema)
    return OmegaConf.to_object(OmegaConf.merge(base, {**saved, "finetune": method.read_saved(saved["finetune"])}))


def unknown_keys(node: Any, where: str = "") -> list[tuple[str, list[str]]]:
    """(dotted key, the settings its group has) for every key under `node` that its schema does
    not list. Hydra's `+key=value` adds a key even to a schema's node (it lifts the struct flag),
    and OmegaConf.to_object then keeps it as an attribute nothing reads: a misspelt setting would
    change nothing, silently. Nodes typed as a dict (model.config, task.splits) take any key."""
    from dataclasses import fields, is_dataclass

    from omegaconf import DictConfig, OmegaConf

    schema = OmegaConf.get_type(node)
    accepted = [f.name for f in fields(schema)] if is_dataclass(schema) else None
    found = []
    for key in node.keys():
        dotted = f"{where}.{key}" if where else str(key)
        if accepted is not None and key not in accepted:
            found.append((dotted, accepted))
        elif isinstance(node._get_node(key), DictConfig):
            found.extend(unknown_keys(node._get_node(key), dotted))
    return found


def validate(cfg: Any) -> TrainConfig:
    """Turn a composed DictConfig into dataclasses, running every schema's range checks (and
    refusing a key no schema lists)."""
    from omegaconf import OmegaConf

    from tokentune.errors import ConfigError

    for key, accepted in unknown_keys(cfg):
        group = key.rpartition(".")[0] or "the config's top level"
        raise ConfigError(key, f"no such setting; {group} has {', '.join(accepted)}")
    return OmegaConf.to_object(cfg)
