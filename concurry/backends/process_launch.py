"""Starting, watching and reaping the child process of a process-mode worker, for each ``mp_context``.

``multiprocessing`` is not used to start children: under "spawn" and "forkserver" it re-imports the parent's
``__main__`` in every child (as ``__mp_main__``), which runs an unguarded script a second time. Instead:

- fork: ``os.fork()``; the child serves calls in its copy of the parent, so the worker class and its init
  arguments need no pickling.
- spawn: a fresh interpreter running ``concurry.backends.process_child.main`` with the worker's three
  descriptors passed; the worker class arrives pickled by value when the child cannot import it.
- forkserver: one such fresh interpreter per parent, started on first use, forks a worker per request (the
  descriptors travel over a Unix socket); workers start fast and never inherit the parent's threads or memory.

Every descriptor made for a worker is recorded, and a child forked from this process (by us or by anyone)
closes the ones it does not need, so a worker's pipe reaches end-of-file exactly when its own ends close.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Optional

import cloudpickle

from concurry.backends.process_child import flush_standard_streams, serve

__all__ = ["ChildProcess", "close_fd", "launch", "track_fd"]

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SPAWN_CODE = f"import sys; sys.path[:0] = [{_ROOT!r}]; from concurry.backends.process_child import {{}}; {{}}()"

# Descriptors of workers (both ends until the child has its own); closed in every child forked from here.
_worker_fds: set[int] = set()
# Thread ident -> descriptors the worker being forked by that thread keeps.
_keep_in_child: dict[int, frozenset[int]] = {}


def track_fd(fd: int) -> int:
    _worker_fds.add(fd)
    return fd


def close_fd(fd: int) -> None:
    _worker_fds.discard(fd)  # forget first: a fork between the two steps must not close a reused number
    try:
        os.close(fd)
    except OSError:
        pass


class ChildProcess:
    """A worker's process: how to wait for it, kill it and say how it ended.

    ``pidfd`` (Linux) becomes readable when the process exits, whoever holds its pipes; it is what the backend
    watches. Children forked here or spawned are reaped here; fork-server children are reaped by the server.
    """

    __slots__ = ("pid", "pidfd", "_popen", "_own", "_exit_code", "_lock")

    def __init__(self, pid: int, pidfd: Optional[int], own: bool, popen: Optional[subprocess.Popen[bytes]] = None):
        self.pid = pid
        self.pidfd = pidfd
        self._own = own
        self._popen = popen
        self._exit_code: Optional[int] = None
        self._lock = threading.Lock()

    def wait(self, timeout: Optional[float]) -> bool:
        """Wait up to ``timeout`` seconds (forever if None) for the process to end; True once it has."""
        if self._exit_code is not None:
            return True
        pidfd = self.pidfd
        if pidfd is not None:
            if not select.select([pidfd], [], [], timeout)[0]:
                return False
            self._reap(blocking=True)
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while not self._reap(blocking=False):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return True

    def _reap(self, blocking: bool) -> bool:
        with self._lock:
            if self._exit_code is not None:
                return True
            if self._popen is not None:
                code = self._popen.wait() if blocking else self._popen.poll()
            elif self._own:
                pid, status = os.waitpid(self.pid, 0 if blocking else os.WNOHANG)
                code = os.waitstatus_to_exitcode(status) if pid else None
            elif blocking:
                code = 0  # readable pidfd: the process is gone; the fork server collects its status
            else:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    code = 0
                else:
                    code = None
            if code is None:
                return False
            self._exit_code = code
            return True

    def send_signal(self, signum: int) -> None:
        with self._lock:
            if self._exit_code is not None:
                return
            try:
                if self.pidfd is not None:
                    signal.pidfd_send_signal(self.pidfd, signum)
                else:
                    os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def describe_exit(self) -> str:
        code = self._exit_code
        if code is None:
            return "stopped answering"
        if not self._own:
            return "exited"
        if code < 0:
            try:
                return f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def close(self) -> None:
        with self._lock:
            if self.pidfd is not None:
                close_fd(self.pidfd)
                self.pidfd = None


def launch(
    context: str, request_fd: int, reply_fd: int, shared_fd: int, worker: Optional[tuple[Any, ...]]
) -> ChildProcess:
    """Start the child that reads ``request_fd`` and answers on ``reply_fd`` (the child's ends).

    ``worker`` (class, method names, init args, init kwargs) is used by fork; the other contexts receive it from
    the pipe.
    """
    fds = (request_fd, reply_fd, shared_fd)
    if context == "fork":
        return _fork(fds, worker)
    if context == "spawn":
        return _spawn(fds)
    return _fork_server().start_worker(fds)


def _pidfd(pid: int) -> Optional[int]:
    if not hasattr(os, "pidfd_open"):
        return None
    return track_fd(os.pidfd_open(pid))


def _fork(fds: tuple[int, int, int], worker: Optional[tuple[Any, ...]]) -> ChildProcess:
    flush_standard_streams()  # or the child would print what the parent had buffered a second time
    ident = threading.get_ident()
    _keep_in_child[ident] = frozenset(fds)
    try:
        pid = os.fork()
        if pid == 0:
            _serve_forked(fds, worker)
    finally:
        _keep_in_child.pop(ident, None)
    return ChildProcess(pid, _pidfd(pid), own=True)


def _serve_forked(fds: tuple[int, int, int], worker: Optional[tuple[Any, ...]]) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which then stops its workers
        # stop() ends an overdue child with SIGTERM; a handler inherited from the parent (ray.init installs one)
        # would turn that into SystemExit inside the running call and let the queued calls run.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            sys.stdin.close()
            sys.stdin = open(os.devnull)  # noqa: SIM115  (the child's stdin for its whole life)
        except (OSError, ValueError, AttributeError):
            pass
        serve(*fds, worker)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        flush_standard_streams()
        os._exit(code)


def _interpreter_command(entry: str, *args: str) -> list[str]:
    """The command of a fresh interpreter with the parent's flags (-O, -X, -W ...) running ``entry()``."""
    # The same private helper multiprocessing's spawn uses to pass the parent's flags on.
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    return [sys.executable, *flags, "-c", _SPAWN_CODE.format(entry, entry), *args]


def _spawn(fds: tuple[int, int, int]) -> ChildProcess:
    popen = subprocess.Popen(_interpreter_command("main", *map(str, fds)), pass_fds=fds, stdin=subprocess.DEVNULL)
    return ChildProcess(popen.pid, _pidfd(popen.pid), own=True, popen=popen)


class _ForkServer:
    """The client side of the fork server: one server per parent process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self._popen: Optional[subprocess.Popen[bytes]] = None

    def start_worker(self, fds: tuple[int, int, int]) -> ChildProcess:
        with self._lock:
            for _attempt in range(2):  # a server that died is replaced once
                if self._sock is None:
                    self._start()
                assert self._sock is not None
                try:
                    socket.send_fds(self._sock, [b"w"], list(fds))
                    answer, pidfds, _flags, _address = socket.recv_fds(self._sock, 8, 1)
                except OSError:
                    answer, pidfds = b"", []
                if len(answer) == 8:
                    (pid,) = struct.unpack("<q", answer)
                    return ChildProcess(pid, track_fd(pidfds[0]) if pidfds else None, own=False)
                for fd in pidfds:
                    os.close(fd)
                self._close()
        raise RuntimeError("the fork server of process mode (mp_context='forkserver') could not start a worker")

    def _start(self) -> None:
        mine, theirs = socket.socketpair()
        try:
            self._popen = subprocess.Popen(
                _interpreter_command("serve_forks", str(theirs.fileno())),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self._sock = mine

    def _close(self) -> None:
        """Close the socket; the server sees end-of-file and exits."""
        sock, popen = self._sock, self._popen
        self._sock = self._popen = None
        if sock is not None:
            sock.close()
        if popen is not None:
            try:
                popen.wait(2.0)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()

    def shut_down(self) -> None:
        with self._lock:
            self._close()

    def forget_in_child(self) -> None:
        """In a forked child: drop the parent's server without touching it."""
        if self._sock is not None:
            os.close(self._sock.detach())
        self._lock = threading.Lock()
        self._sock = None
        self._popen = None


_server: Optional[_ForkServer] = None
_server_lock = threading.Lock()


def _fork_server() -> _ForkServer:
    global _server
    with _server_lock:
        if _server is None:
            _server = _ForkServer()
            atexit.register(_server.shut_down)
        return _server


def _after_fork_in_child() -> None:
    """Close the worker descriptors this child has no business holding, and forget the parent's fork server."""
    global _server, _server_lock
    keep = _keep_in_child.get(threading.get_ident(), frozenset())
    for fd in list(_worker_fds):
        if fd not in keep:
            close_fd(fd)
    _keep_in_child.clear()
    _server_lock = threading.Lock()
    if _server is not None:
        _server.forget_in_child()
        _server = None


os.register_at_fork(after_in_child=_after_fork_in_child)

# A fork while another thread pickles a class by value would copy cloudpickle's class-tracking lock held, and the
# worker would hang the first time it unpickles such a class; holding the lock across fork() rules that out.
_class_tracker_lock = getattr(cloudpickle.cloudpickle, "_DYNAMIC_CLASS_TRACKER_LOCK", None)
if _class_tracker_lock is not None:
    os.register_at_fork(
        before=_class_tracker_lock.acquire,
        after_in_parent=_class_tracker_lock.release,
        after_in_child=_class_tracker_lock.release,
    )
