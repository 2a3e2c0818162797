"""Our computations beside the official code's, on the same inputs, for the four methods with public code.

    git clone https://github.com/clovaai/DCutMix /tmp/DCutMix          # the official code stays outside
    python scripts/compare_official.py --method dcutmix --official /tmp/DCutMix
    python scripts/compare_official.py --method sctl     --official /tmp/SCTL        # SeungjinJung/SCTL
    python scripts/compare_official.py --method tvqvae   --official /tmp/TVQ-VAE     # yjyoo3312/TVQ-VAE
    python scripts/compare_official.py --method stylegru --official /tmp/StyleFlow   # jongwook-Choi/StyleFlow

The official functions are loaded from the checkout's own files and run as they are (the NumPy aliases they use
restored); nothing of them is copied here. Each run prints a markdown table and writes it, with the command and
the official commit, to ``benchmarks/official/<method>.md``; ``--readme`` also puts it into the method's README
between its ``<!-- compare_official:<method> -->`` markers.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from official_parity import dcutmix, sctl, stylegru, tvqvae  # noqa: E402
from official_parity.loading import git_commit  # noqa: E402

from benchmarks.readme_blocks import replace_block  # noqa: E402

METHODS = {
    "dcutmix": (dcutmix.compare, "clovaai/DCutMix", "lightning_modules/classification/README.md"),
    "sctl": (sctl.compare, "SeungjinJung/SCTL", "lightning_modules/classification/README.md"),
    "tvqvae": (tvqvae.compare, "yjyoo3312/TVQ-VAE", "lightning_modules/tvqvae/README.md"),
    "stylegru": (stylegru.compare, "jongwook-Choi/StyleFlow", "lightning_modules/styleflow/README.md"),
}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--method", required=True, choices=list(METHODS))
    parser.add_argument("--official", required=True, type=Path, help="a local checkout of the official code")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "official")
    parser.add_argument("--readme", action="store_true", help="also update the method README's block")
    args = parser.parse_args(argv)
    compare, repository, readme = METHODS[args.method]
    started = time.perf_counter()
    if not args.official.is_dir():
        parser.error(f"--official {args.official}: no such folder (clone {repository} there first)")
    try:
        with warnings.catch_warnings():  # the official code's NumPy / torch deprecation warnings
            warnings.simplefilter("ignore")
            lines = compare(args.official.resolve())
    except (FileNotFoundError, ValueError) as error:  # a file or definition the checkout lacks
        parser.error(f"--official {args.official}: {error}")
    header = (
        f"Ours beside {repository} at {git_commit(args.official)} on the same inputs "
        f"(`python scripts/compare_official.py --method {args.method} --official <checkout>`, "
        f"{datetime.date.today()}, {time.perf_counter() - started:.0f} s on the CPU)."
    )
    markdown = "\n".join([header, "", *lines]) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.method}.md").write_text(markdown)
    if args.readme:
        replace_block(REPO / readme, f"compare_official:{args.method}", markdown)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
