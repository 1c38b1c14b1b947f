"""Composition of every config group, range checks at composition, and a light start-up."""
import itertools

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
