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
* ``--ckpt_path`` is checked first (readable with ``weights_only``, written by the configured model class);
* errors a user can fix (missing data, unreadable files, a bad checkpoint, config mistakes: an unknown key, a
  wrong type, a class path that does not import) end with one line naming the file, key or value and the nearest
  valid keys, not a traceback (``RVL_TRACEBACK=1`` shows it); no option is abbreviated; no Lightning tips.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import os
import pkgutil
import re
import sys
import traceback
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import yaml
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
from lightning_modules.components.backbones import BackboneWeightsError
from lightning_modules.outputs.checkpoints import (
    CheckpointNotFoundError,
    check_checkpoint,
    newest_last_checkpoint,
)
from lightning_modules.outputs.loggers import run_loggers

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


class ConfigError(ValueError):
    """A config mistake: the full key, what is wrong, where it was given and the nearest valid keys."""


class SaveConfigPerStage(SaveConfigCallback):
    """Save the resolved config as ``config.yaml`` for ``fit`` and ``<stage>_config.yaml`` otherwise.

    ``test --ckpt_path last`` runs in the training run's folder; it must not overwrite the training config.
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        stage = str(getattr(stage, "value", stage))
        if stage != "fit":
            self.config_filename = f"{stage}_config.yaml"
        super().setup(trainer, pl_module, stage)


class RobustVisionCLI(LightningCLI):
    """LightningCLI with run folders, ``--ckpt_path last`` resolution, and the project's default callbacks."""

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        # errors raise (and are explained in one line) instead of printing the usage; no abbreviated options
        # (argparse would take --trainer.max_epoch for --trainer.max_epochs)
        return super().init_parser(exit_on_error=False, allow_abbrev=False, **kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:
            argv = list(sys.argv[1:] if args is None else args)
            raise ConfigError(explain_config_error(str(error), self._subcommand_parsers, argv)) from error

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_name", type=str | None, help="Run folder name (default: the first config's)"
        )
        parser.add_argument("--runs_dir", type=str, default="runs", help="Where run folders are created")
        for key, (_, explained) in SPEED_SWITCHES.items():  # --compile, --channels_last
            parser.add_argument(f"--{key}", type=bool, default=False, help=explained)
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
        """Check an explicit ``--ckpt_path`` first: Lightning then loads it and replaces the configured model by
        the class the checkpoint names, which would turn "wrong checkpoint" into a state-dict traceback."""
        subcommand = self.config.get("subcommand")
        if subcommand:
            config = self.config[subcommand]
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

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        run_name = config.get("run_name") or _default_run_name(config)
        runs_dir = Path(config.get("runs_dir") or "runs")
        version: str | None = config.get("run_version")
        ckpt_path = config.get("ckpt_path")
        if ckpt_path == "last":
            found = newest_last_checkpoint(runs_dir / run_name, "version_*/checkpoints/last*.ckpt")
            if found is None:
                if self.subcommand != "fit":
                    raise CheckpointNotFoundError(
                        f"--ckpt_path last: no last.ckpt under {runs_dir / run_name}/version_*/checkpoints "
                        f"(train first, or pass --ckpt_path <file>)"
                    )
                print(
                    f"--ckpt_path last: no checkpoint under {runs_dir / run_name} yet, starting a new run",
                    file=sys.stderr,
                )
            config.ckpt_path = str(found) if found else None
            ckpt_path = config.ckpt_path
            if found:
                check_checkpoint(found, config.get("model"), config.get("weights_only") is not False)
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


def _default_run_name(config: Namespace) -> str:
    if configs := config.get("config"):
        return Path(str(configs[0])).stem
    class_path = str(config.get("model", {}).get("class_path", "run"))
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_path.rsplit(".", 1)[-1]).lower()


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record arrives (test runners swap it between runs)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _no_tips(record: logging.LogRecord) -> bool:
    """Lightning's advertising "Tip" lines (litlogger, litmodels) are noise in a log users read."""
    return not str(record.msg).lstrip().startswith("💡 Tip")


def show_project_logs() -> None:
    """Print the project's own INFO messages (data sizes, skipped files, fitted calibrators) like Lightning's,
    and none of Lightning's tips."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        if _no_tips not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_no_tips)
    for name in ("datamodules", "lightning_modules", "callbacks"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        if not logger.handlers:
            handler = _CurrentStderrHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)


# ------------------------------------------------------------------------------------------ config mistakes
KINDS = {
    "LightningModule": pl.LightningModule,
    "LightningDataModule": pl.LightningDataModule,
    "Callback": pl.Callback,
}
EXPECTED = {"model": "LightningModule", "data": "LightningDataModule", "trainer.callbacks": "Callback"}


def explain_config_error(text: str, parsers: dict[str, Any], argv: list[str]) -> str:
    """jsonargparse's many-line error as one line: the key, what is wrong, where, and the nearest valid keys."""
    configs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--config", "-c")]
    if missing := [p for p in configs if not Path(p).is_file()]:
        return f"--config {missing[0]}: no such file (the method configs are in configs/)"
    for path in configs if "Problems parsing config" in text else []:
        try:
            yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as error:
            line = f" line {error.problem_mark.line + 1}" if getattr(error, "problem_mark", None) else ""
            return f"{path}{line} is not valid YAML: {getattr(error, 'problem', None) or error}"
    subcommand = next((a for a in argv if a in parsers), "fit")
    if unknown := re.search(r"does not accept option '([^']+)'|arguments: --([\w.]+)", text):
        keys = [k[2:] for k in parsers[subcommand]._option_string_actions if k.startswith("--")]
        return _unknown_key(unknown[1] or unknown[2], keys, configs, argv)
    top = (re.search(r'Parser key "([^"]+)"', text) or [None, "?"])[1]
    given = (re.search(r"Given value: (.*)", text) or [None, "?"])[1]
    if problem := re.search(r"Problem with given class_path '([^']+)':\n\s*(.+)", text):
        class_path, reason = problem[1], problem[2].strip()
        if option := re.match(r"Option '([^']+)' is not accepted", reason):
            return _unknown_key(f"{top}.init_args.{option[1]}", _init_keys(class_path, top), configs, argv)
        if nested := re.search(r'Parser key "([^"]+)":\n\s*Expected (.+?)\. Got value: (.*)', text):
            top, text, given = f"{top}.init_args.{nested[1]}", nested[2], nested[3]
        elif "has no attribute" in reason or "No module named" in reason:
            return f"{top}: class_path {class_path!r} does not import ({reason}){_nearest_class(class_path)}"
    if "does not correspond to a subclass of" in text:
        module, _, name = given.rpartition(".")
        cls = getattr(importlib.import_module(module), name, None)
        kind = next((k for k, base in KINDS.items() if inspect.isclass(cls) and issubclass(cls, base)), None)
        return f"{top}: {given!r} is not a {EXPECTED.get(top, 'class of that kind')}" + (
            f" (it is a {kind})" if kind else ""
        )
    if expected := re.findall(r"<class '([\w.]+)'>", re.sub(r"Given value type.*", "", text)):
        types = " or ".join(dict.fromkeys("null" if t == "NoneType" else t for t in expected))
        return f"{top}{_where(top, configs, argv)}: expected {types}, got {given!r}"
    return f"{top}: " + " ".join(line.strip() for line in text.splitlines()[1:3])


def _where(key: str, configs: list[str], argv: list[str]) -> str:
    """Where ``key`` was given: " (on the command line)", else " (in <the last config file that sets it>)"."""
    for path in [] if any(a.split("=")[0] == f"--{key}" for a in argv) else reversed(configs):
        node: Any = yaml.safe_load(Path(path).read_text())
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return f" (in {path})"
    return " (on the command line)"


def _unknown_key(key: str, valid: list[str], configs: list[str], argv: list[str]) -> str:
    """ "<key> (where): unknown key; did you mean ...?" among the valid keys beside it, else its top-level part."""
    siblings = [k for k in valid if k.rsplit(".", 1)[0] == key.rsplit(".", 1)[0]] or valid
    near = difflib.get_close_matches(key, siblings, n=2, cutoff=0.8)
    tops = sorted({k.split(".")[0] for k in valid})
    near = near or difflib.get_close_matches(key.split(".")[0], tops, n=1, cutoff=0.6)
    return f"{key}{_where(key, configs, argv)}: unknown key" + (
        f"; did you mean {' or '.join(near)}?" if near else ""
    )


def _init_keys(class_path: str, top: str) -> list[str]:
    """``<top>.init_args.<name>`` for every argument the class (and, through ``**kwargs``, its bases) accepts."""
    module, _, name = class_path.rpartition(".")
    names: list[str] = []
    for cls in inspect.getmro(getattr(importlib.import_module(module), name)):
        parameters = (
            list(inspect.signature(cls.__init__).parameters.values()) if "__init__" in vars(cls) else []
        )
        names += [p.name for p in parameters[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return [f"{top}.init_args.{n}" for n in dict.fromkeys(names)]


def _nearest_class(class_path: str) -> str:
    """ "; did you mean ...?" among the classes of the named module, or the modules of its package."""
    module, _, name = class_path.rpartition(".")
    try:
        classes = [n for n, c in vars(importlib.import_module(module)).items() if inspect.isclass(c)]
        near = [f"{module}.{n}" for n in difflib.get_close_matches(name, classes, n=2, cutoff=0.75)]
    except ImportError:
        package = importlib.import_module(class_path.split(".")[0])
        modules = [
            m.name for m in pkgutil.walk_packages(getattr(package, "__path__", []), package.__name__ + ".")
        ]
        near = [f"{m}.{name}" for m in difflib.get_close_matches(module, modules, n=2, cutoff=0.9)]
    return f"; did you mean {' or '.join(near)}?" if near else ""


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
    try:
        main(args)
    except USER_ERRORS as error:
        if os.environ.get("RVL_TRACEBACK"):
            raise
        error = _root_user_error(error)
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(
            f"error: {type(error).__name__}: {message}  (RVL_TRACEBACK=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


def _root_user_error(error: BaseException) -> BaseException:
    """The innermost user error of a chain that this project raised: jsonargparse re-raises a model's own
    ``__init__`` error as "Does not validate against any of the Union subtypes", whose cause is the message the
    user needs; a library's error under ours (the hub's under a missing-weights error) is not."""
    while isinstance(error.__cause__, USER_ERRORS) and _raised_here(error.__cause__):
        error = error.__cause__
    return error


def _raised_here(error: BaseException) -> bool:
    """Whether ``error`` was raised by this repository's code (the last frame of its traceback is ours)."""
    frames = traceback.extract_tb(error.__traceback__)
    here = Path(__file__).resolve().parent
    ours = [here / "cli.py", *(here / p for p in ("lightning_modules", "datamodules", "callbacks"))]
    return bool(frames) and any(Path(frames[-1].filename).resolve().is_relative_to(p) for p in ours)


if __name__ == "__main__":
    sys.exit(run_from_command_line())
