"""The processes a test left behind: read from /proc, since process-mode workers are not ``multiprocessing``
children (``multiprocessing.active_children()`` never lists them)."""

from __future__ import annotations

import os


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
