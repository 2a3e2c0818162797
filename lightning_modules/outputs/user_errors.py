"""How a command ends on a mistake its user can fix: one line on stderr naming the file, key or value, exit status
1, no traceback (``RVL_TRACEBACK=1`` shows it). Shared by ``cli.py`` and ``scripts/export.py``, which say which
errors count as the user's."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# where an error raised by this repository's own code comes from (a library's error under ours is not the user's)
OURS = [REPO / "cli.py", *(REPO / p for p in ("lightning_modules", "datamodules", "callbacks"))]


def one_line_errors(run: Callable[[], Any], user_errors: tuple[type[BaseException], ...]) -> int:
    """``run()``; 0 when it returns, 1 after printing a ``user_errors`` error as one line."""
    try:
        run()
    except user_errors as error:
        if os.environ.get("RVL_TRACEBACK"):
            raise
        error = root_user_error(error, user_errors)
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(
            f"error: {type(error).__name__}: {message}  (RVL_TRACEBACK=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


def root_user_error(error: BaseException, user_errors: tuple[type[BaseException], ...]) -> BaseException:
    """The innermost user error of a chain that this project raised: jsonargparse re-raises a model's own
    ``__init__`` error as "Does not validate against any of the Union subtypes", whose cause is the message the
    user needs; a library's error under ours (the hub's under a missing-weights error) is not."""
    while isinstance(error.__cause__, user_errors) and raised_here(error.__cause__):
        error = error.__cause__
    return error


def raised_here(error: BaseException) -> bool:
    """Whether ``error`` was raised by this repository's code (the last frame of its traceback is ours)."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and any(Path(frames[-1].filename).resolve().is_relative_to(p) for p in OURS)
