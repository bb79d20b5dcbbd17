# pyright: reportPrivateUsage=false
# Private names here are shared within the package: the backend drives its futures' and calls' internal state
# (package-private protocol).
"""Process mode: one child process per worker; calls reach it through one pipe and answers return through another.

The parent side of the design (the child side and the wire format live in ``process_child``):

- ``submit`` pickles the call (stdlib pickle, protocol 5; cloudpickle by value when that fails or when the call
  refers to ``__main__``, which a spawned child does not have), then writes it to the pipe without blocking.
  What does not fit waits in a backlog that a writer thread, started only then, drains as the child reads.
- A reader thread completes futures from the child's answers. It also watches the child's pidfd, so a killed
  child fails every pending call at once even when a grandchild still holds its pipe. A thread that waits on a
  result while no other thread reads takes the reading over (``_lead``), so the answer wakes it directly.
- ``cancel()`` and ``running()`` read what the child has started from a small shared file (see
  ``process_child``): exact, and free on the call path.
"""

from __future__ import annotations

import fcntl
import io
import mmap
import os
import pickle
import select
import signal
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from types import FunctionType
from typing import Any, Mapping, Optional, TypeVar

import cloudpickle

from concurry.backends import process_launch
from concurry.backends.process_child import (
    ARGS_FAILED,
    BOOT_ID,
    ERROR,
    INIT_FAILED,
    REPLY,
    REQUEST,
    RESULT,
    SHARED_SIZE,
    STOP_ID,
    cancel_bit,
)
from concurry.backends.process_launch import close_fd, track_fd
from concurry.codegen.spec import WorkerSpec
from concurry.core.errors import WorkerDiedError, WorkerStoppedError, attach_remote_traceback
from concurry.core.future import CANCELLED, FINISHED, PENDING, ConcurrentFuture, Future
from concurry.core.options import WorkerOptions
from concurry.core.proxy import stopped_error
from concurry.core.worker_side import worker_side_config

__all__ = ["ProcessBackend", "ProcessFuture", "UnpicklableExceptionError"]

T = TypeVar("T")

# Backend states; anything but OPEN refuses new calls.
OPEN = 0
STOPPED = 1  # stop() was called
DIED = 2  # the child ended without being asked to
FAILED = 3  # the worker's __init__ raised
FOREIGN = 4  # this is a forked copy of the process that owns the worker

_READ_SIZE = 1 << 16
_STOP_GRACE = 1.0  # seconds between SIGTERM and SIGKILL when stop() times out

_live: "weakref.WeakSet[ProcessBackend]" = weakref.WeakSet()


class UnpicklableExceptionError(Exception):
    """Stands in for an exception raised in a worker process that could not be sent back as itself."""

    def __init__(self, type_name: str, message: str, reason: str, where: str) -> None:
        super().__init__(
            f"{type_name}: {message} (raised by {where} in the worker process; "
            f"the exception itself could not be sent back: {reason})"
        )
        self.type_name = type_name
        self.message = message


class ProcessFuture(ConcurrentFuture[T]):
    """A process-mode call. ``cancel()`` and ``running()`` ask the shared record of what the child has started."""

    __slots__ = ("_backend", "_method", "_call_id")

    def __init__(self, backend: Optional[ProcessBackend], method: str) -> None:
        ConcurrentFuture.__init__(self)  # pyright: ignore[reportUnknownMemberType]
        self._backend = backend
        self._method = method
        self._call_id = 0

    def running(self) -> bool:
        backend = self._backend
        try:
            return self._state == PENDING and backend is not None and backend._started[0] >= self._call_id
        except ValueError:  # the record was released: the child is gone and this call is being resolved
            return False

    def _wait(self, timeout: Optional[float]) -> None:
        backend = self._backend
        if backend is not None and backend._can_lead:
            if timeout is None:
                backend._lead(self, None)
            else:
                deadline = time.monotonic() + timeout
                backend._lead(self, timeout)
                timeout = max(deadline - time.monotonic(), 0.0)
            if self._state >= FINISHED:
                return
        ConcurrentFuture._wait(self, timeout)  # pyright: ignore[reportUnknownMemberType]

    def cancel(self) -> bool:
        """True if the call had not started in the child (it will never run); False once it has."""
        if self._state != PENDING or self._backend is None:
            return self._state == CANCELLED
        return self._backend._cancel(self)


class _ValuePickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle is untyped (Any)
    """cloudpickle, except that ``__main__`` classes and functions the child already has go by reference.

    After a fork the child holds the parent's ``__main__`` as it was at the fork: what was defined there then keeps
    its identity in the worker (``isinstance`` works), and only what came later travels by value.
    """

    def __init__(self, file: io.BytesIO, main_at_fork: Optional[dict[str, Any]]) -> None:
        super().__init__(file, protocol=5)  # pyright: ignore[reportUnknownMemberType]
        self._main_at_fork = main_at_fork

    def reducer_override(self, obj: Any) -> Any:
        main = self._main_at_fork
        if (
            main is not None
            and isinstance(obj, (type, FunctionType))
            and getattr(obj, "__module__", None) == "__main__"
            and _lookup(main, obj.__qualname__) is obj
        ):
            return NotImplemented  # pickled by reference
        return super().reducer_override(obj)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


_MISSING = object()


def _lookup(namespace: dict[str, Any], qualname: str) -> Any:
    first, *rest = qualname.split(".")
    found = namespace.get(first, _MISSING)
    for part in rest:
        found = getattr(found, part, _MISSING)
    return found


def _classes_and_functions(module: Any) -> dict[str, Any]:
    """What a forked child can find in ``module`` by name: only classes and functions are looked up there."""
    namespace = vars(module) if module is not None else {}  # pyright: ignore[reportUnknownVariableType]
    return {name: obj for name, obj in namespace.items() if isinstance(obj, (type, FunctionType))}  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def _dumps_by_value(obj: Any, main_at_fork: Optional[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    _ValuePickler(buffer, main_at_fork).dump(obj)  # pyright: ignore[reportUnknownMemberType]
    return buffer.getvalue()


def _shared_file() -> int:
    """A small file shared with the child: the started-call record, the cancelled bits, and the lock."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("concurry-worker", os.MFD_CLOEXEC)
    else:
        fd, path = tempfile.mkstemp(prefix="concurry-worker-")
        os.unlink(path)
    os.ftruncate(fd, SHARED_SIZE)
    return track_fd(fd)


def _pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    return track_fd(read_fd), track_fd(write_fd)


class ProcessBackend:
    """Runs one worker in a child process; see the module docstring for how the pieces fit."""

    __slots__ = (
        "_spec",
        "_name",
        "_init_args",
        "_worker_side",
        "_init_kwargs",
        "_context",
        "_lock",
        "_state",
        "_pending",
        "_next_id",
        "_sent_id",
        "_backlog",
        "_dropped",
        "_writer",
        "_reader",
        "_read_lock",
        "_reading",
        "_buffer",
        "_watch",
        "_lead_poll",
        "_can_lead",
        "_child",
        "_request_fd",
        "_reply_fd",
        "_shared_fd",
        "_shared",
        "_started",
        "_main_at_fork",
        "_init_error",
        "_stop_called",
        "_stop_killed",
        "_death",
        "_owner",
        "__weakref__",
    )

    stops_at_once = False

    def __init__(
        self, spec: WorkerSpec, init_args: tuple[Any, ...], init_kwargs: Mapping[str, Any], options: WorkerOptions
    ) -> None:
        self._spec = spec
        self._name = spec.name
        self._init_args = init_args
        self._init_kwargs = dict(init_kwargs)
        self._context: str = options.mp_context
        self._worker_side = worker_side_config(spec, options)  # before the child starts: it may start a server
        self._lock = threading.Lock()
        self._state = OPEN
        self._pending: dict[int, ProcessFuture[Any]] = {}
        self._next_id = 0
        self._sent_id = 0  # the last call at least partly written to the pipe; later ones are still ours to drop
        self._backlog: deque[tuple[int, Any]] = deque()
        self._dropped: set[int] = set()
        self._writer: Optional[threading.Thread] = None
        self._reader: Optional[threading.Thread] = None
        self._read_lock = threading.Lock()  # held by whichever thread reads the answers
        self._reading = True  # False once the reader thread has read the last answer
        self._buffer = bytearray()  # answers read in part
        self._watch: Any = None  # what the reader thread waits on: the answer pipe and the child's pidfd
        self._lead_poll: Any = None  # the same, for a thread that reads its own answer (see _lead)
        self._can_lead = False
        self._child: Optional[process_launch.ChildProcess] = None
        self._request_fd = self._reply_fd = self._shared_fd = -1
        self._shared: Optional[mmap.mmap] = None
        self._started: Any = (0,)
        self._main_at_fork: Optional[dict[str, Any]] = None
        self._init_error: Optional[bytes] = None
        self._stop_called = False
        self._stop_killed = False
        self._death = ""
        self._owner = os.getpid()

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the child; the worker is built there, and an error in its ``__init__`` fails the calls."""
        spec = self._spec
        worker = (spec.cls, spec.method_names, self._init_args, self._init_kwargs, self._worker_side)
        boot = None
        if self._context != "fork":
            try:
                blob = _dumps_by_value(worker, None)
            except Exception as error:
                raise TypeError(
                    f"cannot start {self._name} with mp_context={self._context!r}: the worker class or its init "
                    f"arguments cannot be pickled ({type(error).__name__}: {error}). Define the class in an "
                    f"importable module rather than in __main__ or a function, pass picklable arguments, or use "
                    f"mp_context='fork'"
                ) from error
            boot = pickle.dumps((list(sys.path), list(sys.argv), os.getcwd(), blob), 5)
        request_read, request_write = _pipe()
        reply_read, reply_write = _pipe()
        shared_fd = _shared_file()
        child_fds = (request_read, reply_write, shared_fd)
        try:
            if self._context == "fork":
                self._main_at_fork = _classes_and_functions(sys.modules.get("__main__"))
            self._child = process_launch.launch(self._context, *child_fds, worker)
        except BaseException:
            for fd in (request_read, request_write, reply_read, reply_write, shared_fd):
                close_fd(fd)
            raise
        close_fd(request_read)
        close_fd(reply_write)
        os.set_blocking(request_write, False)
        os.set_blocking(reply_read, False)
        self._request_fd, self._reply_fd, self._shared_fd = request_write, reply_read, shared_fd
        self._shared = mmap.mmap(shared_fd, SHARED_SIZE)
        self._started = memoryview(self._shared).cast("q")
        if boot is not None:
            with self._lock:
                self._send(BOOT_ID, REQUEST.pack(len(boot), BOOT_ID) + boot)
        self._watch_child()
        _live.add(self)
        self._reader = threading.Thread(
            target=self._read_replies, name=f"concurry-process-{self._name}", daemon=True
        )
        self._reader.start()

    def _watch_child(self) -> None:
        assert self._child is not None
        fds = [self._reply_fd] if self._child.pidfd is None else [self._reply_fd, self._child.pidfd]
        self._can_lead = hasattr(select, "epoll")
        self._watch = select.epoll() if self._can_lead else select.poll()
        self._lead_poll = select.poll()
        for fd in fds:
            self._watch.register(fd, select.POLLIN)
            self._lead_poll.register(fd, select.POLLIN)

    def stop(self, timeout: Optional[float]) -> None:
        """Let the queued calls finish and the child exit; past ``timeout``, terminate it and resolve the rest."""
        with self._lock:
            if self._stop_called or self._state == FOREIGN:
                return
            self._stop_called = True
            if self._state == OPEN:
                self._send(STOP_ID, REQUEST.pack(0, STOP_ID))
            self._state = STOPPED
        reader = self._reader
        if reader is None or reader is threading.current_thread():
            return  # called from a done callback: the reader winds up by itself once the child exits
        reader.join(timeout)
        if reader.is_alive():
            self._terminate()
            reader.join()

    def _terminate(self) -> None:
        child = self._child
        assert child is not None
        with self._lock:
            self._stop_killed = True
        child.send_signal(signal.SIGTERM)
        if not child.wait(_STOP_GRACE):
            child.send_signal(signal.SIGKILL)

    @property
    def alive(self) -> bool:
        return self._state == OPEN

    # -- calls --------------------------------------------------------------------------------------------------
    def submit(self, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
        call = (method, args, kwargs)
        try:
            data = pickle.dumps(call, 5)
        except Exception:
            data = None
        if data is None or b"__main__" in data:
            try:
                data = _dumps_by_value(call, self._main_at_fork)
            except Exception as error:
                return self._unpicklable_call(method, error)
        future: ProcessFuture[Any] = ProcessFuture(self, method)
        with self._lock:
            if self._state:
                return self._refuse(future)
            call_id = self._next_id = self._next_id + 1
            future._call_id = call_id
            self._pending[call_id] = future
            self._send(call_id, REQUEST.pack(len(data), call_id) + data)
        return future

    def _send(self, call_id: int, message: bytes) -> None:
        """Write without blocking (under ``_lock``); what does not fit goes to the backlog and its writer."""
        if self._backlog:
            self._backlog.append((call_id, message))
            return
        try:
            written = os.write(self._request_fd, message)
        except BlockingIOError:
            written = 0
        except OSError:
            return  # the child is gone: the reader fails the pending calls
        if written and call_id > 0:
            self._sent_id = call_id
        if written < len(message):
            self._backlog.append((call_id, memoryview(message)[written:] if written else message))
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._drain_backlog, name=f"concurry-process-writer-{self._name}", daemon=True
                )
                self._writer.start()

    def _drain_backlog(self) -> None:
        """Writer thread: feed the backlog to the pipe as the child reads, then end."""
        fd = self._request_fd
        assert self._child is not None
        pidfd = self._child.pidfd
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        while True:
            events = poller.poll(None if pidfd is not None else 100)
            child_exited = any(ready_fd == pidfd for ready_fd, _ in events)
            with self._lock:
                backlog = self._backlog
                while backlog and not child_exited:
                    call_id, message = backlog[0]
                    if call_id in self._dropped:  # cancelled before any byte of it was written
                        self._dropped.discard(call_id)
                        backlog.popleft()
                        continue
                    try:
                        written = os.write(fd, message)
                    except BlockingIOError:
                        break
                    except OSError:
                        child_exited = True
                        break
                    if written and call_id > 0:
                        self._sent_id = call_id
                    if written < len(message):
                        backlog[0] = (call_id, memoryview(message)[written:])
                        break
                    backlog.popleft()
                if child_exited or not backlog or self._state in (DIED, FAILED):
                    backlog.clear()
                    self._dropped.clear()
                    self._writer = None
                    return

    def _cancel(self, future: ProcessFuture[Any]) -> bool:
        with self._lock:
            if future._state != PENDING:
                return future._state == CANCELLED
            call_id = future._call_id
            if call_id > self._sent_id:
                self._dropped.add(call_id)  # still in the backlog: it will never be written
            else:
                fd = self._shared_fd  # -1 once the child is gone: what it started is final then
                if fd >= 0:
                    fcntl.lockf(fd, fcntl.LOCK_EX)
                try:
                    if self._started[0] >= call_id:
                        return False
                    if fd >= 0:
                        offset, mask = cancel_bit(call_id)
                        assert self._shared is not None
                        self._shared[offset] |= mask
                finally:
                    if fd >= 0:
                        fcntl.lockf(fd, fcntl.LOCK_UN)
            self._pending.pop(call_id, None)
        return Future.cancel(future)  # pyright: ignore[reportUnknownMemberType]

    def _refuse(self, future: ProcessFuture[Any]) -> Future[Any]:
        """Why a call cannot be made now (under ``_lock``): raised at once, or via the future after a failed init."""
        state = self._state
        if state == FAILED and self._init_error is not None:
            future._backend = None
            future.set_exception(self._init_exception())
            return future
        if state == DIED:
            raise WorkerDiedError(self._death)
        if state == FOREIGN:
            raise RuntimeError(
                f"worker {self._name} belongs to process {self._owner}; a process forked from it cannot call it. "
                f"Start a new worker in this process."
            )
        raise stopped_error(self._name)

    def _unpicklable_call(self, method: str, error: Exception) -> Future[Any]:
        failure = pickle.PicklingError(
            f"cannot send the call {self._name}.{method}() to its worker process: its arguments cannot be pickled "
            f"({type(error).__name__}: {error})"
        )
        failure.__cause__ = error
        future: ProcessFuture[Any] = ProcessFuture(None, method)
        future.set_exception(failure)
        return future

    # -- answers ------------------------------------------------------------------------------------------------
    def _read_replies(self) -> None:
        """Reader thread: complete futures from the child's answers until it exits, then resolve the rest."""
        assert self._child is not None
        pidfd = self._child.pidfd
        watch = self._watch
        try:
            while True:
                events = watch.poll()
                with self._read_lock:
                    exited = any(ready == pidfd for ready, _ in events)
                    if self._drain(exhaust=exited) or exited:  # after an exit: what the child wrote before it
                        return
        finally:
            with self._read_lock:
                self._reading = False  # no thread reads the pipe from here on
            self._wind_up()

    def _lead(self, future: ProcessFuture[Any], timeout: Optional[float]) -> None:
        """Wait for ``future`` by reading the answers in the waiting thread itself, when no other thread reads.

        The reader thread stops watching the pipe meanwhile (``epoll`` applies that to its wait at once), so an
        answer wakes only the thread that waits for it: one hand-off fewer than completing through the reader.
        Returns when ``future`` is done, at ``timeout``, or when the child ends (the reader thread winds up).
        """
        if not self._read_lock.acquire(False):
            return
        try:
            if not self._reading:
                return
            assert self._child is not None
            pidfd, fd, watch, poll = self._child.pidfd, self._reply_fd, self._watch, self._lead_poll.poll
            deadline = None if timeout is None else time.monotonic() + timeout
            watch.modify(fd, 0)
            try:
                while future._state < FINISHED:
                    if deadline is None:
                        events = poll()
                    else:
                        remaining = deadline - time.monotonic()
                        events = poll(remaining * 1000) if remaining > 0 else []  # pyright: ignore[reportUnknownVariableType]
                        if not events:
                            return
                    exited = any(ready == pidfd for ready, _ in events)  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
                    if self._drain(exhaust=exited) or exited:
                        return
            finally:
                watch.modify(fd, select.EPOLLIN)
        finally:
            self._read_lock.release()

    def _drain(self, exhaust: bool) -> bool:
        """Read and complete the answers available (under ``_read_lock``); True at end-of-file.

        Stops after a short read unless ``exhaust``: the pipe is then most likely empty, and a wait on it follows.
        """
        fd = self._reply_fd
        buffer = self._buffer
        header_size = REPLY.size
        unpack_from = REPLY.unpack_from
        pending = self._pending
        while True:
            try:
                chunk = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return False
            if not chunk:
                return True
            buffer += chunk
            end = len(buffer)
            position = 0
            while end - position >= header_size:
                size, call_id, kind = unpack_from(buffer, position)
                stop = position + header_size + size
                if stop > end:
                    break
                payload = buffer[position + header_size : stop]
                position = stop
                if kind == RESULT:
                    future = pending.pop(call_id, None)
                    if future is not None:
                        try:
                            value = pickle.loads(payload)
                        except Exception as error:
                            future.set_exception(self._unpickling_failed(future, error))
                        else:
                            future.set_result(value)
                            del value
                        del future
                else:
                    self._complete_with_error(call_id, kind, bytes(payload))
            del buffer[:position]
            if len(chunk) < _READ_SIZE and not exhaust:
                return False

    def _complete_with_error(self, call_id: int, kind: int, payload: bytes) -> None:
        if kind == INIT_FAILED:
            self._init_error = payload  # the child exits next; _wind_up fails every pending call with it
            return
        future = self._pending.pop(call_id, None)
        if future is None:
            return
        if kind == ARGS_FAILED:
            cause = _unpack_error(payload, f"{self._name}.{future._method}()")
            error: BaseException = pickle.UnpicklingError(
                f"the worker process of {self._name} could not unpickle the arguments of {future._method}(): "
                f"{type(cause).__name__}: {cause}"
            )
            error.__cause__ = cause
        else:
            assert kind == ERROR
            error = _unpack_error(payload, f"{self._name}.{future._method}()")
        future.set_exception(error)

    def _unpickling_failed(self, future: ProcessFuture[Any], error: Exception) -> BaseException:
        failure = pickle.UnpicklingError(
            f"the result of {self._name}.{future._method}() arrived from the worker process but cannot be "
            f"unpickled here ({type(error).__name__}: {error})"
        )
        failure.__cause__ = error
        return failure

    def _init_exception(self) -> BaseException:
        assert self._init_error is not None
        return _unpack_error(self._init_error, f"{self._name}.__init__()")

    def _wind_up(self) -> None:
        """The child has exited (or closed its pipe): reap it, resolve every pending call, release resources."""
        child = self._child
        assert child is not None
        if not child.wait(5.0):  # closed its pipe but lingers: it will not answer again
            child.send_signal(signal.SIGKILL)
            child.wait(None)
        with self._lock:
            if self._state == OPEN:
                self._state = FAILED if self._init_error is not None else DIED
            self._death = (
                f"worker {self._name} died: its process (pid {child.pid}) {child.describe_exit()}, so the calls "
                f"pending on it cannot complete. Start a new worker with .options(...).init(...)"
            )
            pending, self._pending = self._pending, {}
            started = self._started[0]
            stop_killed = self._stop_killed
        for call_id in sorted(pending):
            future = pending[call_id]
            if self._init_error is not None:
                future.set_exception(self._init_exception())
            elif not stop_killed:
                future.set_exception(WorkerDiedError(self._death))
            elif call_id <= started:
                future.set_exception(
                    WorkerStoppedError(
                        f"worker {self._name} was stopped before {future._method}() finished: stop() timed out "
                        f"waiting for it and terminated the worker's process"
                    )
                )
            else:
                Future.cancel(future)  # pyright: ignore[reportUnknownMemberType]
        del pending
        writer = self._writer
        if writer is not None:
            writer.join()
        with self._lock:
            for fd in (self._request_fd, self._reply_fd, self._shared_fd):
                if fd >= 0:
                    close_fd(fd)
            self._request_fd = self._reply_fd = self._shared_fd = -1
            started, self._started = self._started, (self._started[0],)  # what the child started is final now
            started.release()
            if self._shared is not None:
                self._shared.close()  # the mapping holds a descriptor of its own
                self._shared = None
        if self._can_lead:
            self._watch.close()
        child.close()
        _live.discard(self)

    def _abandon(self) -> None:
        """In a forked copy of this process: the worker belongs to the parent, never touch its pipes."""
        self._lock = threading.Lock()
        self._state = FOREIGN
        self._pending = {}
        self._backlog = deque()
        self._writer = self._reader = None


def _unpack_error(payload: bytes, where: str) -> BaseException:
    """The exception the child sent, with its remote traceback; a stand-in if it cannot be rebuilt here."""
    blob, type_name, message, tb_text = pickle.loads(payload)
    error: Optional[BaseException] = None
    reason = "it cannot be pickled"
    if blob is not None:
        try:
            error = pickle.loads(blob)
        except Exception as failure:
            reason = f"unpickling it failed with {type(failure).__name__}: {failure}"
        else:
            if not isinstance(error, BaseException):
                error, reason = None, f"it unpickled as a {type(error).__name__}"
    if error is None:
        error = UnpicklableExceptionError(type_name, message, reason, where)
    return attach_remote_traceback(error, tb_text)


def _abandon_parent_workers() -> None:
    for backend in list(_live):
        backend._abandon()


os.register_at_fork(after_in_child=_abandon_parent_workers)
