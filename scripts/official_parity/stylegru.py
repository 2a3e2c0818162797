"""StyleGRU (stage 1 of Style Latent Flows) beside jongwook-Choi/StyleFlow: the same weights, the same triplet,
the same E_style, logits, loss and gradients; LatentDropout's mask."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from lightning_modules.styleflow.module import StyleGRUModule
from lightning_modules.styleflow.networks import LatentDropout

from .loading import load_module


def official_stylegru(official: Path):
    return load_module(official / "StyleGRU" / "model" / "StyleGRU.py", "styleflow_official_stylegru")


def paired_models(official: Path, dim: int = 16, hidden: int = 8):
    """The official StyleGRU and ours at the same small sizes, dropout off, the official weights copied in."""
    torch.manual_seed(0)
    theirs = official_stylegru(official).StyleGRU(
        feature_size=dim,
        lm_dropout_rate=0.0,
        rnn_unit=hidden,
        rnn_dropout_rate=0.0,
        fc_dropout_rate=0.0,
        res_hidden=hidden,
    )
    ours = StyleGRUModule(
        latent_dim=dim, clip_len=32, hidden=hidden, head_hidden=hidden, gru_dropout=0.0, latent_dropout=0.0
    )
    ours.head.dropout.p = ours.head.ffn[2].p = 0.0
    with torch.no_grad():
        ours.gru.gru.load_state_dict(theirs.gru.state_dict())
        ours.gru.norm.load_state_dict(theirs.bn.state_dict())
        ours.gru.initial_state.copy_(theirs.hidden_state)
        feed_forward = theirs.dense[1].fn.net
        ours.head.ffn[0].load_state_dict(feed_forward[0].state_dict())
        ours.head.ffn[3].load_state_dict(feed_forward[3].state_dict())
        ours.head.out.load_state_dict(theirs.dense[3].state_dict())
    return theirs.train(), ours.train()


def official_loss(theirs, triplet: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, E_style of the anchors) as the official training loop computes them (train.py: BCE on the three
    logits + MarginRankingLoss(margin 1) on the pairwise distances, target -1)."""
    outputs = [theirs(triplet[k]) for k in ("anchor", "positive", "negative")]
    logits = torch.stack([x for x, _ in outputs]).squeeze(2)
    label = triplet["label"].float()
    target = torch.stack([label, label, 1 - label])
    bce = F.binary_cross_entropy_with_logits(logits.view(-1), target.view(-1))
    (_, e1), (_, e2), (_, e3) = outputs
    ranking = torch.nn.MarginRankingLoss(margin=1.0)(
        F.pairwise_distance(e1, e2, 2), F.pairwise_distance(e1, e3, 2), torch.full((len(e1),), -1.0)
    )
    return bce + ranking, e1


def compare(official: Path) -> list[str]:
    theirs, ours = paired_models(official)
    generator = torch.Generator().manual_seed(1)
    triplet = {k: torch.randn(6, 31, 16, generator=generator) for k in ("anchor", "positive", "negative")}
    triplet["label"] = torch.tensor([0, 1, 0, 1, 1, 0])
    loss_theirs, style_theirs = official_loss(theirs, triplet)
    loss_ours = ours.training_step(triplet, 0)
    style_ours = ours.gru(triplet["anchor"])
    loss_theirs.backward()
    loss_ours.backward()
    grad = float((ours.gru.gru.weight_ih_l0.grad - theirs.gru.weight_ih_l0.grad).abs().max())
    mask = _dropout_masks(official)
    return [
        "| quantity (the official weights copied into ours, dropout off) | official | ours | max abs difference |",
        "|---|---:|---:|---:|",
        f"| loss: BCE on the triplet + margin ranking | {float(loss_theirs):.6f} | {float(loss_ours):.6f} | {abs(float(loss_theirs - loss_ours)):.1e} |",
        f"| E_style of the anchors (6 x {style_ours.shape[1]}) | — | — | {float((style_theirs - style_ours).abs().max()):.1e} |",
        f"| gradient of the first GRU layer's input weights | — | — | {grad:.1e} |",
        f"| initial GRU state: std at initialization (hidden 4096) | {mask['init_theirs']:.3f} | {mask['init_ours']:.3f} | — |",
        f"| LatentDropout(0.2): share of dimensions kept | {mask['keep_theirs']:.3f} | {mask['keep_ours']:.3f} | — |",
        f"| LatentDropout: halves tied, one mask for every frame | {mask['tied_theirs']} | {mask['tied_ours']} | — |",
    ]


def _dropout_masks(official: Path, calls: int = 2000, width: int = 36) -> dict[str, object]:
    module = official_stylegru(official)
    theirs, ours = module.LatentDropout(0.2).train(), LatentDropout(0.2).train()
    x = torch.ones(1, 31, width)
    found: dict[str, object] = {}
    for name, dropout in (("theirs", theirs), ("ours", ours)):
        masks = torch.stack([dropout(x)[0] != 0 for _ in range(calls)])  # (calls, frames, width)
        half = width // 2
        tied = bool(
            (masks[..., :half] == masks[..., half : 2 * half]).all() and (masks == masks[:, :1]).all()
        )
        found[f"keep_{name}"], found[f"tied_{name}"] = float(masks.float().mean()), "yes" if tied else "no"
    torch.manual_seed(0)
    found["init_theirs"] = float(
        module.StyleGRU(feature_size=8, rnn_unit=4096, res_hidden=8).hidden_state.std()
    )
    found["init_ours"] = float(
        StyleGRUModule(latent_dim=8, clip_len=32, hidden=4096, head_hidden=8).gru.initial_state.std()
    )
    return found
