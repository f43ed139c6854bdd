"""LightningCLI for `train.py` / `medalign {fit,validate,test,predict}`.

Bare config names resolve in the repository's ``configs/``: ``--config demo.yaml`` or ``--config demo``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Sequence

from lightning.pytorch.callbacks.progress.rich_progress import RichProgressBarTheme
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from medalign.methods.legacy import migrate_cli_args
from medalign.models.checkpoint import load_checkpoint_file
from medalign.training.checkpoint_io import AtomicCheckpointIO
from medalign.training.checkpointing import PREEMPTED_EXIT_CODE, MedAlignCheckpoint, PreemptionSync
from medalign.training.cli_errors import ConciseParser
from medalign.training.epoch_summary import EpochSummary
from medalign.training.run_history import AppendingCSVLogger, HistoryConfigCallback
from medalign.training.fresh_run import check_fresh_run_folder
from medalign.training.resume import ResumeGuard, check_resume, resolve_last
from medalign.training.datamodule import MedAlignDataModule
from medalign.training.skips import SkippedRows
from medalign.training.evaluate import EvaluationSuite
from medalign.training.module import ContrastiveModule
from medalign.paths import resolve_config, resolve_config_args  # noqa: F401 - re-exported

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")
# The CSV logger shares the TensorBoard run folder on purpose (see `_share_run_directory`).
warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
# Console noise that is not ours to act on: Lightning's internal pytree deprecation and its adverts
# ("💡 Tip: … litlogger …", "💡 Tip: … litmodels …"); Lightning's other messages and warnings stay.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
LIGHTNING_TIP = "💡 Tip:"
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: not record.getMessage().startswith(LIGHTNING_TIP))


class MedAlignCLI(LightningCLI):
    """LightningCLI with our checkpointing, loggers, atomic saves and the data → model link."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(MedAlignCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-{epoch:02d}-{step}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # The text tower's embedding table must match the tokenizer the data module loaded.
        parser.link_arguments("data.vocab_size", "model.init_args.model.vocab_size", apply_on="instantiate")
        # `test` runs this evaluation suite on cached embeddings (medalign.training.evaluate).
        parser.add_class_arguments(EvaluationSuite, "evaluation")

    def test(self, model, datamodule=None, ckpt_path=None, **kwargs):
        """`test` subcommand: the `evaluation` suite, or Lightning's test loop when it is disabled."""
        suite = self.config_init[self.subcommand]["evaluation"]
        if not suite.enabled:
            return self.trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path, **kwargs)
        from medalign.training.evaluate import run_test

        self.evaluation_results = run_test(self.trainer, model, datamodule, ckpt_path, suite)
        return self.evaluation_results

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        config = self.config_init.get(self.subcommand, {}) if self.subcommand else {}
        checkpoint = next((c for c in trainer.checkpoint_callbacks if isinstance(c, MedAlignCheckpoint)), None)
        if config.get("ckpt_path") == "last":  # before the loggers fix their version folder
            config["ckpt_path"] = resolve_last(trainer, checkpoint.dirpath if checkpoint else None)
        if self.subcommand == "fit":
            check_fresh_run_folder(trainer, checkpoint.dirpath if checkpoint else None, config.get("ckpt_path"))
        for default in (ResumeGuard, SkippedRows, EpochSummary, PreemptionSync):  # always on, whatever trainer.callbacks says
            if not any(isinstance(c, default) for c in trainer.callbacks):
                trainer.callbacks.append(default())
        _share_run_directory(trainer)
        _compact_progress_bar(trainer)
        return trainer

    def _parse_ckpt_path(self) -> None:
        """Check ``--ckpt_path`` at start-up; for `fit`, keep the command line's settings.

        Lightning would overwrite the command line's model settings with the checkpoint's, so a
        changed ``lr`` or ``embed_dim`` would be dropped without a word. For `fit` the command
        line stands and `ResumeGuard` honours or refuses each difference.
        """
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in ("last", "best", "hpc", "registry"):
            load_checkpoint_file(ckpt_path, mmap=not str(ckpt_path).endswith(".safetensors"))  # names a damaged file
        if subcommand != "fit":
            super()._parse_ckpt_path()

    def _attach_data(self) -> None:
        """Hand the data module's `DataContext` to the model: the one data → model seam."""
        if self.datamodule is not None and hasattr(self.model, "attach_data"):
            self.model.attach_data(self.datamodule.context)

    def before_validate(self) -> None:
        self._attach_data()

    def before_fit(self) -> None:
        """Refuse a resume with changed architecture / data order before any weights are restored."""
        self._attach_data()
        ckpt_path = self.config_init["fit"].get("ckpt_path")  # `last` is resolved by now
        if ckpt_path and ckpt_path not in ("best", "hpc", "registry"):
            checkpoint = load_checkpoint_file(ckpt_path, mmap=not str(ckpt_path).endswith(".safetensors"))
            data = dict(self.datamodule.hparams) if self.datamodule is not None else None
            check_resume(checkpoint, dict(self.model.hparams), data, ckpt_path)

    def _run_subcommand(self, subcommand: str) -> None:
        """Run it; a SIGTERM (pre-emption) ends the process with `PREEMPTED_EXIT_CODE` after the save."""
        try:
            super()._run_subcommand(subcommand)
        except SIGTERMException:
            sys.stderr.write(f"medalign: stopped by SIGTERM; last.ckpt saved; exit code {PREEMPTED_EXIT_CODE} (requeue)\n")
            raise SystemExit(PREEMPTED_EXIT_CODE) from None


def _compact_progress_bar(trainer) -> None:
    """Lightning's own choice of Rich bar → `CompactProgressBar` (one line in 80 columns); a configured bar stays."""
    from lightning.pytorch.callbacks import RichProgressBar

    from medalign.training.progress_bar import CompactProgressBar

    trainer.callbacks = [CompactProgressBar() if type(c) is RichProgressBar and c.theme == RichProgressBarTheme() else c
                         for c in trainer.callbacks]


def _share_run_directory(trainer) -> None:
    """CSV logging that survives a resume (`AppendingCSVLogger`), in the TensorBoard run folder when there is one."""
    tensorboard = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)

    def appending(csv_logger: CSVLogger) -> AppendingCSVLogger:
        if tensorboard is not None:
            return AppendingCSVLogger(tensorboard.save_dir, name=tensorboard.name, version=tensorboard.version)
        return AppendingCSVLogger(csv_logger.save_dir, name=csv_logger.name, version=csv_logger._version)

    trainer.loggers = [appending(lg) if isinstance(lg, CSVLogger) and not isinstance(lg, AppendingCSVLogger) else lg
                       for lg in trainer.loggers]


_MODEL_HELP = (
    " The model's options (method, loss, towers, optimiser), each with its description and default: "
    "`--model.help ContrastiveModule`; every key with its current value: `--print_config`. "
    "Options are `--model.X` (short for `--model.init_args.X`), `--data.X`, `--trainer.X`, `--checkpoint.X`."
)
#: The ``-h`` description of each LightningCLI subcommand (Lightning's default is the Trainer method's first line).
SUBCOMMAND_HELP = {
    "fit": "Train a model (a new run in runs/<name>/version_N; resume one with --ckpt_path last)." + _MODEL_HELP,
    "validate": "Run one validation epoch." + _MODEL_HELP,
    "test": "Evaluate a checkpoint (--ckpt_path) with the evaluation suite into its run folder's eval/<timestamp>."
            + _MODEL_HELP,
    "predict": "Run the prediction loop." + _MODEL_HELP,
}


def cli_main(args: Sequence[str] | None = None, run: bool = True) -> MedAlignCLI:
    """Run LightningCLI on `args` (default: the process's argv).

    The resolved arguments are written back to `sys.argv`: Lightning's DDP launcher starts
    the other ranks by re-running ``sys.argv``.
    """
    args = migrate_cli_args(resolve_config_args(sys.argv[1:] if args is None else args))  # old flat model keys
    sys.argv = [sys.argv[0], *args]
    return MedAlignCLI(
        ContrastiveModule,
        MedAlignDataModule,
        subclass_mode_model=True,
        parser_class=ConciseParser,
        seed_everything_default=0,
        save_config_callback=HistoryConfigCallback,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={sub: {"description": text} for sub, text in SUBCOMMAND_HELP.items()},
        trainer_defaults={
            "default_root_dir": "runs",
            "logger": [
                {"class_path": "lightning.pytorch.loggers.TensorBoardLogger", "init_args": {"save_dir": "runs", "name": "medalign", "default_hp_metric": False}},
                {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs", "name": "medalign"}},
            ],
        },
        run=run,
    )
