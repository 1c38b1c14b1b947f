"""Composition of every config group, range checks at composition, and a light start-up."""
import itertools
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import ValidationError

from conftest import CONF, run_cli, run_overrides
from tokentune.config import TrainConfig, compose as compose_train, validate
from tokentune.errors import ConfigError

# Every option of every config group, read from the conf/ folders: an option added there is
# composed here without editing this file. conf/<group>/<option>.yaml; conf/*.yaml are the roots.
OPTIONS = sorted((str(p.parent.relative_to(CONF)), p.stem) for p in CONF.rglob("*.yaml")
                 if p.parent != CONF)
GROUPS = sorted({group for group, _ in OPTIONS})
MODELS = [option for group, option in OPTIONS if group == "model"]
TASKS = [option for group, option in OPTIONS if group == "task"]
# the groups whose options are a schema with the option's name in one field
NAME_FIELDS = {"model": "name", "task": "name", "tokenizer": "name", "finetune": "method",
               "logger": "kind"}


def test_the_glob_finds_every_group_and_option():
    # a guard on the glob itself: docs/configuration.md's groups, with the options it names for two of them
    assert GROUPS == ["callbacks", "debug", "experiment", "finetune", "hparams_search", "hydra",
                      "hydra/launcher", "logger", "model", "paths", "task", "tokenizer", "trainer"]
    assert MODELS == ["bert", "bert_tiny", "deberta_tiny", "deberta_v3", "gpt2", "gpt2_tiny", "llama",
                      "llama_tiny", "minilm", "modernbert", "modernbert_tiny", "qwen2", "qwen2_tiny",
                      "roberta", "roberta_tiny"]
    assert TASKS == ["ax", "cola", "conll2003", "demo", "mnli", "mrpc", "qnli", "qqp", "rte", "shakespeare",
                     "squad", "squad_v2", "sst2", "stsb", "wnli"]


@pytest.mark.parametrize("model,task", itertools.product(MODELS, TASKS))
def test_every_model_and_task_composes(compose, model, task):
    cfg = validate(compose(f"model={model}", f"task={task}"))
    assert isinstance(cfg, TrainConfig)
    assert cfg.model.name == model and cfg.task.name == task
    assert cfg.optimizer.lr == cfg.finetune.lr  # the method's default rate


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_of_every_group_composes(tmp_path, cache_dir, group, option):
    # keep_hydra: hydra/ and hparams_search/ options live (partly) in the hydra node
    cfg = compose_train(run_overrides(cache_dir, tmp_path) + [f"{group}={option}"], keep_hydra=True)
    assert cfg.hydra.runtime.choices[group] == option
    if group == "hparams_search":
        from hydra_plugins.tokentune_optuna_sweeper._search_space import parse_space

        assert cfg.hydra.sweeper._target_.endswith("tokentune_optuna_sweeper.sweeper.OptunaSweeper")
        assert parse_space(OmegaConf.to_container(cfg.hydra.sweeper.params)) != {}
    if group == "hydra/launcher":  # sized from the trainer: trainer=cpu is one device, one node
        launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
        assert (launcher["nodes"], launcher["tasks_per_node"]) == (1, 1)
    OmegaConf.resolve(cfg.hydra.run)  # the run dir's name resolves for every option
    HydraConfig().set_config(cfg)  # as compose() and a run do: ${hydra:...} resolves
    with open_dict(cfg):
        del cfg["hydra"]
    train = validate(cfg)  # every schema's checks pass
    if group in NAME_FIELDS:
        assert getattr(getattr(train, group), NAME_FIELDS[group]) == option


def test_experiment_overlay_sets_the_paper_settings(compose):
    cfg = validate(compose("experiment=minilm_sst2"))
    assert (cfg.task.name, cfg.trainer.precision, cfg.optimizer.lr, cfg.data.batch_size) == \
        ("sst2", "bf16-mixed", 5e-5, 32)


def test_gpu_trainer_turns_the_speed_features_on(compose):
    gpu = validate(compose("trainer=gpu"))
    assert (gpu.trainer.precision, gpu.model.compile, gpu.data.buckets, gpu.data.num_workers,
            gpu.data.pin_memory, gpu.data.eval_batch_size, gpu.callbacks.refresh_rate, gpu.data.packing) == \
        ("bf16-mixed", "reduce-overhead", [16, 32, 64, 128], 4, True, 512, 100, False)
    cpu = validate(compose())
    assert (cpu.model.compile, cpu.data.buckets, cpu.data.num_workers, cpu.data.pin_memory,
            cpu.data.eval_batch_size, cpu.callbacks.refresh_rate) == (None, None, 0, False, 128, 20)


@pytest.mark.parametrize("overrides,message", [
    (["data.buckets=[32,16]"], "data.buckets: must be increasing widths of at least 1 (or null), got [32, 16]"),
    (["data.buckets=[0,16]"], "data.buckets: must be increasing widths"),
    (["data.buckets=[]"], "data.buckets: must be increasing widths"),
    (["model.compile=fast"], "model.compile: 'fast' is not one of ('default', 'reduce-overhead', 'max-autotune')"),
    (["model=gpt2_tiny", "task=shakespeare", "data.packing=true"], "data.packing: causal-LM blocks are all"),
    (["finetune=prefix", "data.packing=true"], "data.packing: prefix tuning puts its virtual tokens"),
])
def test_invalid_speed_settings_fail_with_the_key(compose, overrides, message):
    with pytest.raises(ConfigError) as err:
        validate(compose(*overrides))
    assert message in str(err.value)


@pytest.mark.parametrize("override,message", [
    ("data.batch_size=0", "data.batch_size: must be at least 1, got 0"),
    ("optimizer.lr=0", "optimizer.lr: must be > 0, got 0.0"),
    ("optimizer.lr=-1e-4", "optimizer.lr: must be > 0"),
    ("trainer.max_epochs=-3", "trainer.max_epochs: must be ≥ 1 (or -1 for no limit), got -3"),
    ("trainer.precision=8", "trainer.precision: '8' is not one of"),
    ("data.max_length=1", "data.max_length: must be at least 2"),
    ("task.monitor=mcc", "task.monitor: 'mcc' must be one of task.metrics"),
])
def test_invalid_values_fail_with_the_key(compose, override, message):
    with pytest.raises(ConfigError) as err:
        validate(compose(override))
    assert message in str(err.value)


def test_wrong_type_fails_at_composition(compose):
    # OmegaConf converts the override to TrainerConfig's `int` while Hydra merges it, before any
    # range check runs; Hydra's own message names the override whatever went wrong, so the cause
    # is what shows that the schema's type did the refusing
    with pytest.raises(ConfigCompositionException,
                       match="^Error merging override trainer.max_epochs=three$") as err:
        compose("trainer.max_epochs=three")
    cause = err.value.__cause__
    assert isinstance(cause, ValidationError) and cause.full_key == "trainer.max_epochs"
    assert str(cause).splitlines()[0] == "Value 'three' of type 'str' could not be converted to Integer"


def test_cli_wrong_type_names_the_override_and_the_type_without_a_traceback():
    # Hydra reports composition errors itself (status 1), before our one-line handler is reached
    out = run_cli("train.py", "trainer.max_epochs=three")
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines()[:2] == [
        "Error merging override trainer.max_epochs=three",
        "Value 'three' of type 'str' could not be converted to Integer"]
    assert "full_key: trainer.max_epochs" in out.stderr and "Traceback" not in out.stderr


def test_cli_bad_value_is_one_line_not_a_traceback():
    out = run_cli("train.py", "data.batch_size=0")
    assert out.returncode == 2
    assert out.stderr.strip() == "error: data.batch_size: must be at least 1, got 0"


def test_cli_unknown_option_lists_the_choices():
    out = run_cli("train.py", "model=bert_huge")
    assert out.returncode != 0
    assert "Could not find 'model/bert_huge'" in out.stderr
    assert "Available options" in out.stderr and "bert_tiny" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_max_length_above_model_positions():
    out = run_cli("train.py", "model=bert_tiny", "data.max_length=4096")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == "error: data.max_length: 4096 is above the model's 512 positions"


def test_cli_unreachable_hub_says_how_to_run_offline():
    out = run_cli("train.py", "model=bert", env={"HF_HUB_OFFLINE": "1"})
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: model.pretrained: could not load 'bert-base-uncased'")
    assert "model=minilm" in out.stderr and "Traceback" not in out.stderr


# What `--cfg job` must not import: the training stack (torch alone takes seconds to import) and
# the sweep's and loggers' packages. Each command imports its stack when it runs (cli.py).
HEAVY = {"torch", "numpy", "transformers", "tokenizers", "pytorch_lightning", "lightning",
         "lightning_fabric", "torchmetrics", "peft", "wandb", "optuna", "sqlalchemy", "datasets",
         "matplotlib"}


def test_print_config_imports_no_training_stack():
    # the property behind a fast `--cfg job`, which no loaded machine can miss; the time itself is
    # measured by experiments/bench/startup.py
    out = run_cli("-X", "importtime", "train.py", "--cfg", "job")
    assert out.returncode == 0 and "model:" in out.stdout, out.stderr[-2000:]
    # `-X importtime` writes one "import time: self | cumulative | module" line per import
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert {"hydra", "omegaconf", "tokentune"} <= imported  # the listing is the one we read
    assert not imported & HEAVY, f"--cfg job imports {sorted(imported & HEAVY)}"


# -- every range check of the schemas, by its exact line ------------------------------------
# Each `check(...)` of config.py and of the task kinds' check_task (which TaskConfig runs) has a
# bad value here; test_every_schema_check_has_a_case finds the calls in the source, so a check
# added without a case fails. Built directly (dataclasses.replace runs __post_init__ again): the
# composition path is test_invalid_values_fail_with_the_key's.
def _schema_cases():
    from dataclasses import replace as r

    from tokentune.config import (CallbacksConfig, DataConfig, LoggerConfig, ModelConfig, OptimizerConfig,
                                  SplitConfig, TaskConfig, TrainerConfig)
    from tokentune.finetune.full.config import FullConfig
    from tokentune.finetune.prefix.config import PrefixConfig
    from tokentune.vocab.spec import TokenizerConfig

    m = ModelConfig(name="m", family="bert", pretrained="x")
    t = TaskConfig(name="t", splits={"train": SplitConfig(path="a"), "validation": SplitConfig(path="b")},
                   labels=["0", "1"])
    tok = dict(kind="token_classification", format="conll", labels=None, metrics=["f1"], monitor="f1")
    qa = dict(kind="extractive_qa", format="squad", labels=None, metrics=["f1"], monitor="f1")
    lm = dict(kind="causal_lm", format="text", metrics=["perplexity"], monitor="perplexity")

    def train(**changes):
        return TrainConfig(**{"model": m, "task": t, "tokenizer": TokenizerConfig(), "finetune": FullConfig(),
                              **changes})

    return [
        (lambda: r(m, dtype="float16"), "model.dtype: 'float16' is not one of ('float32', 'bfloat16')"),
        (lambda: r(m, pretrained=None, config={}),
         "model.pretrained: set a hub id / local folder, or model.config for a randomly initialised model"),
        (lambda: r(m, attn_implementation="flash"), "model.attn_implementation: 'flash' is not sdpa or eager"),
        (lambda: r(m, compile="fast"),
         "model.compile: 'fast' is not one of ('default', 'reduce-overhead', 'max-autotune') (or null for eager)"),
        (lambda: r(t, format="xml"),
         "task.format: 'xml' is not one of ('tsv', 'csv', 'jsonl', 'hub', 'text', 'conll', 'squad')"),
        (lambda: r(t, splits={"validation": SplitConfig(path="b")}), "task.splits: a task needs at least a 'train' split"),
        (lambda: r(t, text_columns=["a", "b", "c"]), "task.text_columns: give one or two text columns"),
        (lambda: r(t, metrics=["bleu"]), "task.metrics: 'bleu' is not one of ('accuracy', 'f1', 'precision', "
                                         "'recall', 'mcc', 'pearson', 'spearman', 'perplexity', 'exact_match')"),
        (lambda: r(t, monitor="mcc"), "task.monitor: 'mcc' must be one of task.metrics ['accuracy'] or 'loss'"),
        (lambda: r(t, monitor="validation_matched/accuracy"),
         "task.monitor: 'validation_matched' is not a validation split of the task ['validation']"),
        (lambda: r(t, validation_fraction=1.0), "task.validation_fraction: must be in (0, 1)"),
        (lambda: r(t, block_size=1), "task.block_size: must be at least 2"),
        (lambda: r(t, label_column=None), "task.label_column: needs a label column"),
        (lambda: r(t, format="conll"), "task.format: 'conll' is not a format for sentence rows ('tsv', 'csv', 'jsonl', 'hub')"),
        (lambda: r(t, metrics=["accuracy", "pearson"]),
         "task.metrics: 'pearson' is not a classification metric ('accuracy', 'f1', 'mcc')"),
        (lambda: r(t, labels=["0"]), "task.labels: a classification task needs a list of at least two labels"),
        (lambda: r(t, labels=["0", "0"]), "task.labels: labels must be unique"),
        (lambda: r(t, **{**lm, "metrics": ["perplexity", "accuracy"]}),
         "task.metrics: 'accuracy' is not a causal-LM metric ('perplexity')"),
        (lambda: r(t, **{**tok, "format": "tsv"}),
         "task.format: 'tsv' is not a format for tagged sentences ('conll', 'jsonl', 'hub')"),
        (lambda: r(t, **tok, tag_scheme="BILOU"), "task.tag_scheme: 'BILOU' is not one of ('IOB1', 'IOB2', 'BIOES')"),
        (lambda: r(t, **tok, text_columns=["a", "b"]),
         "task.text_columns: a tagging task reads one list of tokens (jsonl/hub: its key)"),
        (lambda: r(t, **{**tok, "metrics": ["f1", "mcc"]}),
         "task.metrics: 'mcc' is not a token-classification metric ('f1', 'precision', 'recall', 'accuracy')"),
        (lambda: r(t, **{**tok, "labels": ["O", "B-PER", "O"]}), "task.labels: labels must be unique"),
        (lambda: r(t, **{**tok, "labels": ["B-PER", "I-PER"]}), "task.labels: the label list needs the outside tag 'O'"),
        (lambda: r(t, **{**qa, "format": "tsv"}), "task.format: 'tsv' is not a format for questions ('squad', 'jsonl', 'hub')"),
        (lambda: r(t, **{**qa, "metrics": ["f1", "accuracy"]}),
         "task.metrics: 'accuracy' is not a question-answering metric ('exact_match', 'f1')"),
        (lambda: r(t, **qa, doc_stride=-1), "task.doc_stride: must be ≥ 0, got -1"),
        (lambda: r(t, **qa, max_answer_length=0), "task.max_answer_length: must be at least 1 token"),
        (lambda: r(t, **qa, n_best=0), "task.n_best: must be at least 1"),
        (lambda: DataConfig(batch_size=0), "data.batch_size: must be at least 1, got 0"),
        (lambda: DataConfig(eval_batch_size=0), "data.eval_batch_size: must be at least 1"),
        (lambda: DataConfig(max_length=1), "data.max_length: must be at least 2, got 1"),
        (lambda: DataConfig(num_workers=-1), "data.num_workers: must be ≥ 0"),
        (lambda: DataConfig(max_train_examples=0), "data.max_train_examples: must be at least 1 (or null for all rows)"),
        (lambda: DataConfig(max_empty_share=1.5), "data.max_empty_share: must be a share in [0, 1], got 1.5"),
        (lambda: DataConfig(buckets=[32, 16]), "data.buckets: must be increasing widths of at least 1 (or null), got [32, 16]"),
        (lambda: OptimizerConfig(lr=0), "optimizer.lr: must be > 0, got 0"),
        (lambda: OptimizerConfig(lr=float("inf")), "optimizer.lr: must be a finite number, got inf"),
        (lambda: OptimizerConfig(weight_decay=-0.1), "optimizer.weight_decay: must be ≥ 0"),
        (lambda: OptimizerConfig(weight_decay=float("inf")), "optimizer.weight_decay: must be a finite number, got inf"),
        (lambda: OptimizerConfig(betas=[0.9, 1.0]), "optimizer.betas: must be two numbers in [0, 1), got [0.9, 1.0]"),
        (lambda: OptimizerConfig(eps=0), "optimizer.eps: must be a finite number > 0, got 0"),
        (lambda: OptimizerConfig(warmup_ratio=1), "optimizer.warmup_ratio: must be in [0, 1)"),
        (lambda: OptimizerConfig(scheduler="step"), "optimizer.scheduler: 'step' is not linear, cosine or constant"),
        (lambda: TrainerConfig(precision="8"), "trainer.precision: '8' is not one of "
                                               "('32', '32-true', 'bf16-mixed', '16-mixed', 'bf16-true', '64', '64-true')"),
        (lambda: TrainerConfig(max_epochs=0), "trainer.max_epochs: must be ≥ 1 (or -1 for no limit), got 0"),
        (lambda: TrainerConfig(max_steps=0), "trainer.max_steps: must be ≥ 1 (or -1 for no limit), got 0"),
        (lambda: TrainerConfig(accumulate_grad_batches=0), "trainer.accumulate_grad_batches: must be ≥ 1"),
        (lambda: TrainerConfig(strategy="deepspeed"), "trainer.strategy: 'deepspeed' is not one of ('auto', 'ddp', 'fsdp')"),
        (lambda: TrainerConfig(strategy="fsdp"), "trainer.strategy: fsdp shards over GPUs (torch's FSDP needs an "
                                                 "accelerator), not accelerator 'cpu'; use trainer=ddp on CPU"),
        (lambda: TrainerConfig(num_nodes=0), "trainer.num_nodes: must be ≥ 1, got 0"),
        (lambda: TrainerConfig(num_nodes=2), "trainer.num_nodes: several nodes need trainer.strategy=ddp or fsdp"),
        (lambda: TrainerConfig(ddp_timeout_s=0), "trainer.ddp_timeout_s: must be ≥ 1 second"),
        (lambda: TrainerConfig(gradient_clip_val=0), "trainer.gradient_clip_val: must be > 0 or null"),
        (lambda: LoggerConfig(kind="mlflow"), "logger.kind: 'mlflow' is not csv, wandb, tensorboard or none"),
        (lambda: CallbacksConfig(progress_bar="fancy"), "callbacks.progress_bar: 'fancy' is not tqdm, rich or none"),
        (lambda: CallbacksConfig(refresh_rate=0), "callbacks.refresh_rate: must be ≥ 1"),
        (lambda: CallbacksConfig(every_n_train_steps=0), "callbacks.every_n_train_steps: must be ≥ 1 or null"),
        (lambda: CallbacksConfig(early_stopping_patience=0), "callbacks.early_stopping_patience: must be ≥ 1 or null"),
        (lambda: train(model=r(m, dtype="bfloat16")),
         "model.dtype: bfloat16 weights need trainer.precision=bf16-mixed (what trains kept in float32) or "
         "bf16-true, not 32-true; or model.dtype=float32"),
        (lambda: train(task=r(t, **lm), data=DataConfig(packing=True)),
         "data.packing: causal-LM blocks are all task.block_size tokens long: there is no padding to pack away"),
        (lambda: train(finetune=PrefixConfig(), data=DataConfig(packing=True)),
         "data.packing: prefix tuning puts its virtual tokens in front of every row, which sequences packed "
         "into one row cannot share; use finetune=lora or adapter, or data.packing=false"),
        (lambda: train(model=r(m, family="deberta"), data=DataConfig(packing=True)),
         "data.packing: deberta models have no packed classification head (tokentune/model/families.py); "
         "use data.packing=false"),
    ]


SCHEMA_CASES = _schema_cases()
SCHEMA_MODULES = ["config.py", "task/sequence.py", "task/causal_lm.py", "task/token_classification/kind.py",
                  "task/extractive_qa/kind.py"]


def refusal(build) -> tuple[str, tuple[str, int]]:
    """The ConfigError's message, and the module and line of the `check` call that raised it."""
    import traceback

    with pytest.raises(ConfigError) as err:
        build()
    frames = traceback.extract_tb(err.value.__traceback__)
    at = next(i for i, f in enumerate(frames) if f.name == "check" and f.filename.endswith("errors.py"))
    caller = frames[at - 1]
    return str(err.value), (caller.filename.split("/src/tokentune/")[-1], caller.lineno)


@pytest.mark.parametrize("build, message", SCHEMA_CASES, ids=[m.split(": ")[0] for _, m in SCHEMA_CASES])
def test_each_schema_check_refuses_its_bad_value_in_one_exact_line(build, message):
    assert refusal(build)[0] == message


def test_every_schema_check_has_a_case():
    import ast

    import tokentune

    src = Path(tokentune.__file__).parent
    calls = {(module, node.lineno) for module in SCHEMA_MODULES
             for node in ast.walk(ast.parse((src / module).read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check"}
    hit = [refusal(build)[1] for build, _ in SCHEMA_CASES]
    assert len(hit) == len(set(hit)), "two cases refused at the same check"
    assert sorted(calls - set(hit)) == [], "these checks have no case in SCHEMA_CASES"
    assert set(hit) <= calls
