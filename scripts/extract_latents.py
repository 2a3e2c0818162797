"""Write per-frame style latents (``latents.npy``, frames x latent width, float16) beside each video's frames.

    python scripts/extract_latents.py --root data/ffpp --encoder psp_ffhq_encode.pt          # pSp, 18 x 512
    python scripts/extract_latents.py --root data/ffpp --encoder runs/face_autoencoder       # the stand-in encoder
    python scripts/extract_latents.py --root data/celebdf --dataset generic --encoder ... --device cuda

Videos whose latents the same encoder already wrote are skipped, so an interrupted run resumes. The StyleGRU and
StyleFlow modules do the same in ``prepare_data`` when ``model.init_args.style_encoder`` is set; this script is for
extracting once, ahead of training, on a GPU machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from datamodules.faceforensics import SPLITS, FaceVideoDataModule  # noqa: E402
from lightning_modules.styleflow.latents import ensure_latents  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--root", required=True, help="the dataset root (the datamodule's data.init_args.root)"
    )
    parser.add_argument(
        "--encoder", required=True, help="a pSp checkpoint, or a face-autoencoder run / checkpoint"
    )
    parser.add_argument("--dataset", choices=["ffpp", "generic"], default="ffpp")
    parser.add_argument(
        "--manipulations", nargs="*", default=None, help="FF++ folders (default: the four of c23)"
    )
    parser.add_argument("--splits", nargs="*", default=list(SPLITS))
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default=None, help="cuda when available, else cpu")
    args = parser.parse_args(argv)
    data = FaceVideoDataModule(
        root=args.root, dataset=args.dataset, manipulations=args.manipulations, inputs=["frames"]
    )
    total = len(data.video_folders(tuple(args.splits)))
    written = ensure_latents(data, args.encoder, args.batch_size, args.device, tuple(args.splits))
    print(f"{written} of {total} videos encoded ({total - written} already had this encoder's latents)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
