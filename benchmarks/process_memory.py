"""A process's own peak resident memory, the one number the memory benchmarks report.

Standard library only: the anomalib side of the PatchCore peer row imports it from anomalib's own venv.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB.

    Read from ``/proc/self/status`` (``VmHWM``, the high-water mark of this address space, which ``exec`` starts
    afresh), not ``getrusage``: Linux keeps ``ru_maxrss`` across ``exec``, so a child of a large parent reports
    the parent's peak (a memory table once showed 1,517 MiB for 25 unrelated configs, its parent's peak; the
    first PatchCore peer row showed 13,639 MiB for both sides). ``ru_maxrss`` only where there is no ``/proc``.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
