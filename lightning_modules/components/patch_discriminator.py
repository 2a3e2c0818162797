"""pix2pix's PatchGAN discriminator, shared by the methods that train one: FrePGAN tells real images from
perturbed fakes with it, the text-guided generator (VQGAN's loss) tells real normals from its reconstructions."""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """pix2pix's N-layer PatchGAN: a map of real/fake logits, one per overlapping patch, for [0, 1] images."""

    def __init__(self, channels: int = 3, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        body: list[nn.Module] = [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        current = width
        for index in range(1, layers + 1):
            nxt = width * min(2**index, 8)
            stride = 2 if index < layers else 1
            body += [
                nn.Conv2d(current, nxt, 4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(nxt),
                nn.LeakyReLU(0.2, True),
            ]
            current = nxt
        body.append(nn.Conv2d(current, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2.0 - 1.0)
