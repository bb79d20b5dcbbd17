"""Stopping workers nobody stops: those whose proxy was dropped, and those still running at interpreter exit.

A dropped worker's finalizer may run wherever the last reference went: in any thread, an event loop included, or
inside the garbage collector at an arbitrary allocation. So it only puts the backend on a SimpleQueue (safe to call
from finalizers); the reaper thread, started with the first worker that is not sync mode's, stops each on a thread
of its own, and the calls already made still finish. At interpreter exit everything left is stopped within one
timeout.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from concurry.core.backend import Backend

__all__ = ["DEFAULT_STOP_TIMEOUT", "stop_when_collected"]

DEFAULT_STOP_TIMEOUT = 30.0


def stop_when_collected(lifetime: object, backend: Backend) -> weakref.finalize[..., Any]:
    """Stop ``backend`` once ``lifetime`` is collected (see ``concurry.core.proxy.Lifetime``), and at exit."""
    finalizer = weakref.finalize(lifetime, _stop_dropped, backend)  # first: see _start_reaper_once
    if not backend.stops_at_once:
        _start_reaper_once()
    return finalizer


_EXIT = object()  # put on the reaper's queue at exit: every drop queued before it has its stop thread registered
_drops: SimpleQueue[Any] = SimpleQueue()
_reaper: Optional[threading.Thread] = None
_reaper_reached_exit = threading.Event()
_dropped_stops: set[threading.Thread] = set()  # stops of dropped workers still under way
_exit_deadline: Optional[float] = None  # set at interpreter exit: every worker still running shares one timeout


def _time_to_stop() -> float:
    """``DEFAULT_STOP_TIMEOUT``, or at interpreter exit what is left of the exit's one timeout."""
    return DEFAULT_STOP_TIMEOUT if _exit_deadline is None else max(_exit_deadline - time.monotonic(), 0.0)


def _stop_dropped(backend: Backend) -> None:
    """The finalizer of a dropped worker (see the module docstring)."""
    if _exit_deadline is not None or backend.stops_at_once or _reaper is None:
        backend.stop(_time_to_stop())
    else:
        _drops.put(backend)


def _reap() -> None:
    while True:
        backend = _drops.get()
        if backend is _EXIT:
            _reaper_reached_exit.set()
            return
        stopping = threading.Thread(target=_stop_in_background, args=(backend,), name="concurry-stop", daemon=True)
        _dropped_stops.add(stopping)
        try:
            stopping.start()
        except RuntimeError:  # interpreter shutdown has begun, and Python 3.12+ starts no thread then: stop it here
            _dropped_stops.discard(stopping)
            backend.stop(_time_to_stop())
        del backend, stopping


def _stop_in_background(backend: Backend) -> None:
    try:
        backend.stop(_time_to_stop())
    finally:
        _dropped_stops.discard(threading.current_thread())


def _start_reaper_once() -> None:
    """Start the reaper, and register ``_at_exit`` after ``weakref.finalize`` has registered its own exit hook (the
    first finalizer does), so that ours runs first: exit hooks run last-registered first."""
    global _reaper
    if _reaper is None:
        _reaper = threading.Thread(target=_reap, name="concurry-reaper", daemon=True)
        _reaper.start()
        atexit.register(_at_exit)


def _at_exit() -> None:
    """From here on workers stop in the exiting thread (``weakref.finalize`` stops those still alive next), all
    within one ``DEFAULT_STOP_TIMEOUT``; stops of dropped workers already under way get to finish within it too."""
    global _exit_deadline
    _exit_deadline = time.monotonic() + DEFAULT_STOP_TIMEOUT
    if _reaper is not None and _reaper.is_alive():
        _drops.put(_EXIT)
        _reaper_reached_exit.wait(_time_to_stop())
    for stopping in list(_dropped_stops):
        if stopping.ident is not None:  # started (the reaper registers a stop just before starting it)
            stopping.join(_time_to_stop())


def _forget_reaper_after_fork() -> None:
    """A forked child has no reaper thread: its dropped workers are stopped where they are dropped."""
    global _reaper, _drops, _reaper_reached_exit
    _reaper = None
    _drops = SimpleQueue()
    _reaper_reached_exit = threading.Event()
    _dropped_stops.clear()


os.register_at_fork(after_in_child=_forget_reaper_after_fork)
