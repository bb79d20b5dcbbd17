"""What a test left behind: threads, and child processes read from /proc (process-mode workers are not
``multiprocessing`` children, so ``multiprocessing.active_children()`` never lists them)."""

from __future__ import annotations

import os
import threading

REAPER = "concurry-reaper"  # one per process, started with the first worker: it stops dropped workers


def worker_threads() -> set[threading.Thread]:
    """Every thread but the reaper, which lives as long as the process once a worker has started."""
    return {thread for thread in threading.enumerate() if thread.name != REAPER}


def child_pids() -> set[int]:
    """Processes whose parent is this one, zombies included (a zombie is a child nobody reaped)."""
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            found.add(int(entry))
    return found
