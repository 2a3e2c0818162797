"""FrePGAN (Jeong et al., AAAI 2022): a frequency-level perturbation generator, its discriminator, the classifier.

No code was released; the blocks are our reading of the paper (README.md):

* G(x) = F^-1(H(F(x))): the image's spectrum as 2C channels (real and imaginary parts, orthonormal FFT so its
  scale matches the image's, DC at the center so low frequencies are neighbors for the convolutions), an
  image-to-image network H (a pix2pix-style ResNet generator), back to a complex spectrum and a real
  perturbation map of the image's size. Optionally bounded, G <- eps * tanh(G).
* D: a PatchGAN discriminator (`components/patch_discriminator.py`) that tells real images from perturbed fakes.
* C: the CNNDetection classifier on the perturbed image x + s * G(x).
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.components.spectral import fft2_shifted, ifft2_shifted_real


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with instance norm, added to the input (pix2pix / CycleGAN)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """pix2pix's ResNet generator: c7s1-w, two stride-2 downs, ``blocks`` residual blocks, two ups, c7s1-out.

    The last convolution starts at zero, so G(x) = 0 and training starts from the unperturbed detector.
    Spatial sizes must be divisible by 4.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, blocks: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7),
            nn.InstanceNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        for scale in (1, 2):
            layers += [
                nn.Conv2d(width * scale, width * scale * 2, 3, stride=2, padding=1),
                nn.InstanceNorm2d(width * scale * 2),
                nn.ReLU(inplace=True),
            ]
        layers += [ResidualBlock(width * 4) for _ in range(blocks)]
        for scale in (4, 2):
            layers += [
                nn.ConvTranspose2d(
                    width * scale, width * scale // 2, 3, stride=2, padding=1, output_padding=1
                ),
                nn.InstanceNorm2d(width * scale // 2),
                nn.ReLU(inplace=True),
            ]
        last = nn.Conv2d(width, out_channels, 7)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        layers += [nn.ReflectionPad2d(3), last]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"FrePGAN's generator needs sizes divisible by 4, got {tuple(x.shape[-2:])}")
        return self.body(x)


class SpectralPerturbationGenerator(nn.Module):
    """G(x) = Re F^-1(H([Re F(x), Im F(x)])): a real perturbation map of the input's shape.

    Args:
        channels: Image channels C (H maps 2C to 2C channels).
        width: Base width of H.
        blocks: Residual blocks of H.
        bound_eps: When set, G is bounded as ``bound_eps * tanh(G)``.
    """

    def __init__(
        self, channels: int = 3, width: int = 64, blocks: int = 6, bound_eps: float | None = None
    ) -> None:
        super().__init__()
        self.transform = ResnetGenerator(2 * channels, 2 * channels, width, blocks)
        self.bound_eps = bound_eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        scale = (height * width) ** 0.5  # orthonormal FFT: spectrum values on the image's scale
        spectrum = fft2_shifted(x) / scale
        mapped = self.transform(torch.cat([spectrum.real, spectrum.imag], dim=1).to(x.dtype)).float()
        real, imag = mapped.chunk(2, dim=1)
        perturbation = ifft2_shifted_real(torch.complex(real, imag) * scale)
        if self.bound_eps is not None:
            perturbation = self.bound_eps * torch.tanh(perturbation)
        return perturbation.to(x.dtype)
