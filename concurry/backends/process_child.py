"""The worker side of process mode: the wire format, and the loop that builds the worker and serves its calls.

A spawned child imports only this module (and ``concurry``'s light top level) before it unpickles the worker
class, so it never pays for pydantic, morphic or jinja2 unless the worker class itself needs them.

Wire format. Parent to child: ``REQUEST`` header (payload size, call id) then the pickled
``(method, args, kwargs)``; call id ``STOP_ID`` asks the child to exit once the calls before it are done, and the
first frame of a spawned child (``BOOT_ID``) carries its environment and the pickled worker. Child to parent:
``REPLY`` header (payload size, call id, kind) then the payload.

Cancellation. A shared file holds the id of the last call the child started and a ring of "cancelled" bits
indexed by call id. The child takes a record lock on that file, checks the call's bit and records the start;
the parent's ``cancel()`` takes the same lock and only sets the bit while the call has not started. The lock is
a ``fcntl`` record lock, which the kernel releases if the child dies holding it.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import pickle
import signal
import struct
import sys
import traceback
from types import CoroutineType
from typing import Any, Callable, Optional

from concurry.core.backend import make_instance

__all__ = [
    "ARGS_FAILED",
    "BOOT_ID",
    "ERROR",
    "INIT_FAILED",
    "REPLY",
    "REQUEST",
    "RESULT",
    "SHARED_SIZE",
    "STOP_ID",
    "WINDOW",
    "cancel_bit",
    "main",
    "serve",
    "serve_forks",
]

REQUEST = struct.Struct("<Qq")
REPLY = struct.Struct("<QqB")
STOP_ID = 0
BOOT_ID = -1

RESULT = 0
ERROR = 1
ARGS_FAILED = 2
INIT_FAILED = 3

# Calls sent but not started are bounded by what the pipe and the child's read buffer hold: a request is at
# least REQUEST.size + 4 bytes (20), a Linux pipe holds at most 1 MiB by default (64 KiB on 4 KiB pages) and the child
# buffers 64 KiB, so fewer than 60,000 such calls exist at once; a ring of 2**20 bits never aliases two of them.
WINDOW = 1 << 20
BITMAP_OFFSET = 8
SHARED_SIZE = BITMAP_OFFSET + WINDOW // 8
READ_BUFFER = 1 << 16


def cancel_bit(call_id: int) -> tuple[int, int]:
    """Byte offset and mask of ``call_id``'s bit in the shared cancellation ring."""
    slot = call_id % WINDOW
    return BITMAP_OFFSET + (slot >> 3), 1 << (slot & 7)


# The worker class, its method names, init arguments, and its worker-side config (retries and limits) or None.
Worker = tuple[type, tuple[str, ...], tuple[Any, ...], dict[str, Any], Any]


def main() -> None:
    """Entry point of a spawned child: ``python -c ... REQUEST_FD REPLY_FD SHARED_FD``."""
    request_fd, reply_fd, shared_fd = (int(arg) for arg in sys.argv[1:4])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which then stops its workers
    serve(request_fd, reply_fd, shared_fd, None)


def serve(request_fd: int, reply_fd: int, shared_fd: int, worker: Optional[Worker]) -> None:
    """Build the worker (``worker`` is given after a fork, read from the pipe otherwise), then serve calls."""
    read = open(request_fd, "rb", buffering=READ_BUFFER).read
    try:
        try:
            if worker is None:
                worker = _receive_worker(read)
            cls, method_names, args, kwargs, worker_side = worker
            del worker
            instance = make_instance(cls, args, kwargs)
            methods: dict[str, Callable[..., Any]] = {name: getattr(instance, name) for name in method_names}
            methods["_concurry_getattr"] = instance._concurry_getattr
            from concurry.core.worker_side import apply_worker_side_config

            methods = apply_worker_side_config(instance, methods, worker_side)
            name = cls.__qualname__
            del cls, args, kwargs, instance
        except BaseException as error:  # the parent fails every call with it
            _reply(reply_fd, BOOT_ID, INIT_FAILED, _pack_error(error))
            return
        _serve_calls(read, reply_fd, shared_fd, methods, name)
    except BrokenPipeError:  # the parent is gone: nobody is left to answer
        pass


def _receive_worker(read: Callable[[int], bytes]) -> Worker:
    """Read the first frame: the parent's path, argv and directory, then the worker class and init arguments."""
    header = read(REQUEST.size)
    size, call_id = REQUEST.unpack(header)
    if call_id != BOOT_ID:
        raise RuntimeError(f"the worker process expected its start frame, got call id {call_id}")
    path, argv, cwd, blob = pickle.loads(read(size))
    sys.path[:] = path
    sys.argv[:] = argv
    os.chdir(cwd)
    worker: Worker = pickle.loads(blob)  # imports the worker's module, or rebuilds a class pickled by value
    return worker


def _serve_calls(
    read: Callable[[int], bytes], reply_fd: int, shared_fd: int, methods: dict[str, Callable[..., Any]], name: str
) -> None:
    shared = mmap.mmap(shared_fd, SHARED_SIZE)
    started = memoryview(shared).cast("q")
    lockf, lock, unlock = fcntl.lockf, fcntl.LOCK_EX, fcntl.LOCK_UN
    header_size, unpack, loads, dumps = REQUEST.size, REQUEST.unpack, pickle.loads, pickle.dumps
    reply_header = REPLY.pack
    write = os.write
    runner = None
    while True:
        header = read(header_size)
        if len(header) < header_size:
            return  # the parent closed the pipe or exited
        size, call_id = unpack(header)
        if call_id == STOP_ID:
            return
        body = read(size)
        if len(body) < size:
            return
        slot = call_id % WINDOW
        offset, mask = BITMAP_OFFSET + (slot >> 3), 1 << (slot & 7)
        lockf(shared_fd, lock)
        flags: int = shared[offset]  # pyright: ignore[reportUnknownVariableType]  # the offset derives from the unpacked header (Any)
        started[0] = call_id
        if flags & mask:
            shared[offset] = flags & ~mask
        lockf(shared_fd, unlock)
        if flags & mask:
            continue  # cancelled while queued: never runs
        try:
            method, args, kwargs = loads(body)
        except BaseException as error:
            _reply(reply_fd, call_id, ARGS_FAILED, _pack_error(error))
            continue
        del body
        try:
            result = methods[method](*args, **kwargs) if kwargs else methods[method](*args)
            if type(result) is CoroutineType:
                if runner is None:
                    from concurry.core.execution import CoroutineRunner

                    runner = CoroutineRunner()
                result = runner.run(result)  # pyright: ignore[reportUnknownArgumentType]  # a coroutine narrowed from Any
        except BaseException as error:
            _reply(reply_fd, call_id, ERROR, _pack_error(error))
            del error
        else:
            try:
                data = dumps(result, 5)
            except Exception:
                kind, data = _dumps_by_value(result, name, method)
                _reply(reply_fd, call_id, kind, data)
            else:
                data = reply_header(len(data), call_id, RESULT) + data
                if write(reply_fd, data) < len(data):
                    _write_rest(reply_fd, data)
            del result, data
        del args, kwargs


def _dumps_by_value(result: Any, name: str, method: str) -> tuple[int, bytes]:
    """Pickle ``result`` with cloudpickle; if that fails too, pickle the error that says so instead."""
    import cloudpickle

    try:
        return RESULT, cloudpickle.dumps(result, protocol=5)  # pyright: ignore[reportUnknownMemberType]  # untyped cloudpickle
    except Exception as error:
        failure = pickle.PicklingError(
            f"the result of {name}.{method}() cannot be sent back from the worker process: "
            f"{type(result).__qualname__} objects cannot be pickled ({type(error).__name__}: {error})"
        )
        failure.__cause__ = error
        return ERROR, _pack_error(failure)


def _pack_error(error: BaseException) -> bytes:
    """Pickle an exception with its traceback text, and its type and message so the parent can stand in for it."""
    tb_text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        blob: Optional[bytes] = pickle.dumps(error, 5)
    except Exception:
        try:
            import cloudpickle

            blob = cloudpickle.dumps(error, protocol=5)  # pyright: ignore[reportUnknownMemberType]  # untyped cloudpickle
        except Exception:
            blob = None
    kind = type(error)
    return pickle.dumps((blob, f"{kind.__module__}.{kind.__qualname__}", str(error), tb_text), 5)


def _reply(fd: int, call_id: int, kind: int, payload: bytes) -> None:
    data = REPLY.pack(len(payload), call_id, kind) + payload
    if os.write(fd, data) < len(data):
        _write_rest(fd, data)


def _write_rest(fd: int, data: bytes) -> None:
    """Finish a write a signal interrupted part way."""
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.write(fd, view[done:])


# -- the fork server ---------------------------------------------------------------------------------------------


def serve_forks() -> None:
    """Entry point of the fork server: fork one worker per request received on the socket ``argv[1]``.

    The server is a fresh interpreter that never imports the parent's ``__main__``; each request carries the
    three descriptors of a new worker, and the answer is the worker's pid (and a pidfd where the OS has them).
    """
    import socket

    sock = socket.socket(fileno=int(sys.argv[1]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, _reap_children)
    import cloudpickle  # pyright: ignore[reportUnusedImport]  # noqa: F401  (workers unpickle with it: load it once)

    while True:
        message, fds, _flags, _address = socket.recv_fds(sock, 16, 3)
        if not message:
            return  # the parent closed its end or exited
        pid, pidfd = _fork_worker(sock, fds)
        for fd in fds:
            os.close(fd)
        socket.send_fds(sock, [struct.pack("<q", pid)], [] if pidfd is None else [pidfd])
        if pidfd is not None:
            os.close(pidfd)


def _fork_worker(sock: Any, fds: list[int]) -> tuple[int, Optional[int]]:
    # SIGCHLD stays blocked until the pidfd exists, so the reaper cannot free the pid before it is pinned.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                sock.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                request_fd, reply_fd, shared_fd = fds
                serve(request_fd, reply_fd, shared_fd, None)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                flush_standard_streams()
                os._exit(code)
        pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        return pid, pidfd
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


def _reap_children(signum: int, frame: Any) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def flush_standard_streams() -> None:
    """Flush stdout/stderr before ``os._exit``, which skips the interpreter's own flush."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
