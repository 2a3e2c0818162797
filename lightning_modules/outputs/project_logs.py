"""What a run prints besides Lightning's own lines: the project's INFO messages (data sizes, skipped files,
fitted calibrators), and none of Lightning's advertising tips."""

from __future__ import annotations

import logging
import sys

PROJECT_LOGGERS = ("datamodules", "lightning_modules", "callbacks")


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record arrives (test runners swap it between runs)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _no_tips(record: logging.LogRecord) -> bool:
    """Lightning's advertising "Tip" lines (litlogger, litmodels) are noise in a log users read."""
    return not str(record.msg).lstrip().startswith("💡 Tip")


def show_project_logs() -> None:
    """Print the project's own INFO messages like Lightning's, and none of Lightning's tips."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        if _no_tips not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_no_tips)
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        if not logger.handlers:
            handler = _CurrentStderrHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
