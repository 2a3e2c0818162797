"""Where a Python program's memory goes: run a script and print the main thread's Python stack each time the
process's resident set passes a new GiB (a thread reads /proc/self/status every 5 ms).

    python benchmarks/stack_at_rss.py <script.py> [its arguments ...]

Written to find where anomalib's PatchCore fit reaches 7 GiB in ``make bench-peers`` (run with the anomalib
venv's python; ``benchmarks/peers.py`` says what it found). A peak profiler such as memray would also do; this
needs nothing beyond the standard library, so it runs in any venv.
"""

from __future__ import annotations

import runpy
import sys
import threading
import time
import traceback


def resident_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def watch(
    main_thread: int, found: list[tuple[float, str]], stop: threading.Event, step_mib: int = 1024
) -> None:
    """Append (resident MiB, the main thread's innermost frames) each time the resident set passes a new step."""
    mark = step_mib
    while not stop.is_set():
        now = resident_mib()
        if now > mark:
            frame = sys._current_frames().get(main_thread)
            found.append((now, "".join(traceback.format_stack(frame)[-4:]) if frame else "(no frame)\n"))
            mark = (now // step_mib + 1) * step_mib
        time.sleep(0.005)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    script, sys.argv = sys.argv[1], sys.argv[1:]
    found: list[tuple[float, str]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(threading.get_ident(), found, stop), daemon=True)
    watcher.start()
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        stop.set()
        watcher.join()  # not reading frames while the interpreter shuts down
        for mib, stack in found:
            print(f"--- resident set passed {int(mib // 1024)} GiB ({mib:.0f} MiB), in:\n{stack}", flush=True)
        if not found:
            print(f"--- the resident set stayed under 1 GiB (now {resident_mib():.0f} MiB)", flush=True)


if __name__ == "__main__":
    main()
