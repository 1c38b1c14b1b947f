"""The Lightning internals tokentune/compat/lightning.py uses: still there, still meaning what
tokentune takes them to mean. A failure names the API and the installed version."""
import os
import subprocess

import pytest
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.environments import LightningEnvironment
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.strategies import DDPStrategy

from tokentune.compat import lightning as compat

VERSION = f"pytorch-lightning {pl.__version__}"
FIX = "update tokentune/compat/lightning.py"


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(6, 2)), batch_size=2)


class Seen(pl.Callback):
    def __init__(self):
        self.seen = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen.append((trainer.current_epoch, batch_idx, compat.batches_done(trainer),
                          compat.batches_that_stepped(trainer)))


def test_the_loop_counters_count_batches_done_in_the_epoch_and_batches_stepped_in_the_fit(tmp_path):
    seen = Seen()
    trainer = pl.Trainer(max_epochs=2, accumulate_grad_batches=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[seen],
                         default_root_dir=tmp_path)
    try:
        trainer.fit(Tiny())
    except AttributeError as err:
        pytest.fail(f"{VERSION}: trainer.fit_loop.epoch_loop.batch_progress or _batches_that_stepped "
                    f"is gone ({err}); {FIX}")
    # three batches an epoch; at a batch's end it counts as done, and has not yet been counted as stepped
    expected = [(epoch, i, i + 1, 3 * epoch + i) for epoch in range(2) for i in range(3)]
    assert seen.seen == expected, f"{VERSION}: the loop counters moved; {FIX}"


def test_the_script_launcher_starts_workers_with_their_local_rank(monkeypatch):
    started = []

    class Popen:
        def __init__(self, command, env, cwd):
            started.append(env["LOCAL_RANK"])

    for name in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.setenv(name, "0")  # Lightning sets them; the test restores them after
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setattr(subprocess, "Popen", Popen)
    launcher = compat.ScriptLauncher(LightningEnvironment(), num_processes=3, num_nodes=1)
    try:
        procs = launcher.start_workers()
        launcher.set_num_threads()
    except (AttributeError, TypeError, NameError) as err:
        pytest.fail(f"{VERSION}: _SubprocessScriptLauncher._call_children_scripts / .procs or "
                    f"_set_num_threads_if_needed moved ({err}); {FIX}")
    assert started == ["1", "2"] and len(procs) == 2, f"{VERSION}: the launcher started {started}; {FIX}"
    assert os.environ["WORLD_SIZE"] == "3"


def test_a_strategy_launches_through_its_launcher_class():
    class Strategy(compat.LaunchesWith, DDPStrategy):
        launcher_class = compat.ScriptLauncher

    trainer = pl.Trainer(strategy=Strategy(), accelerator="cpu", devices=2, logger=False)
    assert type(trainer.strategy.launcher) is compat.ScriptLauncher, (
        f"{VERSION}: Strategy._configure_launcher no longer picks the launcher "
        f"(got {type(trainer.strategy.launcher).__name__}); {FIX}")


def test_the_keeping_writer_leaves_an_earlier_metrics_file_where_lightnings_deletes_it(tmp_path):
    class Logger(compat.CSVLogger):
        def make_writer(self):
            return compat.KeepingWriter(self.log_dir)

    logger = Logger(save_dir=str(tmp_path), name="logs", version="")
    metrics = tmp_path / "logs" / ExperimentWriter.NAME_METRICS_FILE
    metrics.parent.mkdir(parents=True)
    metrics.write_text("step,loss\n0,1.0\n")
    assert type(logger.experiment) is compat.KeepingWriter, (
        f"{VERSION}: CSVLogger.experiment no longer builds its writer through _experiment; {FIX}")
    assert metrics.read_text() == "step,loss\n0,1.0\n", (
        f"{VERSION}: the CSV writer deletes metrics.csv elsewhere than in _check_log_dir_exists; {FIX}")
    ExperimentWriter(logger.log_dir)
    assert not metrics.exists(), f"{VERSION}: Lightning's own writer no longer deletes metrics.csv; {FIX}"


def test_the_sigterm_flag_stops_the_loops_and_clearing_it_lets_them_go_on(tmp_path):
    """run/guards.py clears the flag Lightning's SIGTERM handler sets, and stops the fit itself."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    class Flag(pl.Callback):
        def __init__(self, then: bool):
            self.then = then

        def on_train_batch_end(self, trainer, *args):
            compat.set_sigterm_flag(trainer, True)
            compat.set_sigterm_flag(trainer, self.then)

    def trainer(then: bool) -> pl.Trainer:
        return pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, callbacks=[Flag(then)], default_root_dir=tmp_path)

    stopped = trainer(True)
    with pytest.raises(SIGTERMException):
        stopped.fit(Tiny())
    assert stopped.received_sigterm and stopped.global_step == 1, f"{VERSION}: the SIGTERM flag moved; {FIX}"
    going = trainer(False)
    going.fit(Tiny())
    assert going.global_step == 3, f"{VERSION}: clearing the SIGTERM flag does not let the fit go on; {FIX}"
