"""Thread mode: one dedicated thread per worker, fed through a ``SimpleQueue``.

Habits taken from ``concurrent.futures.thread``: a queued call whose future was cancelled is skipped, never run;
the thread holds no reference to the proxy, so a dropped proxy is collected and its finalizer stops the thread;
a ``None`` sentinel ends the loop; references to finished calls are dropped at once.
"""

from __future__ import annotations

import threading
from queue import Empty, SimpleQueue
from typing import Any, Callable, Mapping, Optional

from concurry.codegen.spec import WorkerSpec
from concurry.core.execution import CoroutineRunner, CoroutineType, bind_methods
from concurry.core.future import ConcurrentFuture, Future
from concurry.core.options import WorkerOptions
from concurry.core.proxy import stopped_error

__all__ = ["Call", "ThreadBackend", "run_calls", "serve_calls", "stop_thread"]

Call = tuple[ConcurrentFuture[Any], str, tuple[Any, ...], Optional[dict[str, Any]]]


class ThreadBackend:
    __slots__ = ("_spec", "_init_args", "_init_kwargs", "_queue", "_put", "_lock", "_stopped", "_thread")

    def __init__(
        self, spec: WorkerSpec, init_args: tuple[Any, ...], init_kwargs: Mapping[str, Any], options: WorkerOptions
    ) -> None:
        self._spec = spec
        self._init_args = init_args
        self._init_kwargs = dict(init_kwargs)
        self._queue: SimpleQueue[Optional[Call]] = SimpleQueue()
        self._put = self._queue.put
        self._lock = threading.Lock()
        self._stopped = False
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=serve_calls,
            args=(self._queue, self._spec, self._init_args, self._init_kwargs),
            name=f"concurry-thread-{self._spec.name}",
            daemon=True,
        )
        self._thread.start()

    def submit(self, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
        future: ConcurrentFuture[Any] = ConcurrentFuture()
        with self._lock:
            if self._stopped:
                raise stopped_error(self._spec.name)
            self._put((future, method, args, kwargs))
        return future

    def stop(self, timeout: Optional[float]) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._put(None)
        stop_thread(self._thread, self._queue, timeout)

    @property
    def alive(self) -> bool:
        return not self._stopped and self._thread is not None and self._thread.is_alive()


def stop_thread(thread: Optional[threading.Thread], queue: SimpleQueue[Optional[Call]], timeout: Optional[float]) -> None:
    """Wait for the thread to finish its queue; past ``timeout``, cancel whatever it has not started."""
    if thread is None or thread is threading.current_thread():
        return
    thread.join(timeout)
    if thread.is_alive():
        while True:
            try:
                call = queue.get_nowait()
            except Empty:
                break
            if call is not None:
                call[0].cancel()
        queue.put(None)  # the drain may have taken the sentinel; the thread still needs one to exit


def serve_calls(
    queue: SimpleQueue[Optional[Call]], spec: WorkerSpec, init_args: tuple[Any, ...], init_kwargs: dict[str, Any]
) -> None:
    """The worker thread: build the instance, then run calls in order until the sentinel."""
    try:
        methods = bind_methods(spec.cls(*init_args, **init_kwargs), spec)
    except BaseException as error:  # reported through the futures of the calls that follow
        run_calls(queue, {}, error)
    else:
        run_calls(queue, methods, None)


def run_calls(
    queue: SimpleQueue[Optional[Call]],
    methods: dict[str, Any],
    init_error: Optional[BaseException],
    hand_off: Optional[Callable[[ConcurrentFuture[Any], CoroutineType[Any, Any, Any]], None]] = None,
) -> None:
    """Run queued calls in order until the ``None`` sentinel; with ``init_error``, fail each call with it.

    With ``hand_off``, a coroutine returned by a call is passed on with the call's future instead of being run
    here, so a backend with an event loop of its own can run it without blocking this thread.
    """
    runner = CoroutineRunner()
    get = queue.get
    try:
        while True:
            call = get()
            if call is None:
                break
            future, method, args, kwargs = call
            del call
            if not future.set_running_or_notify_cancel():
                continue
            if init_error is not None:
                future.set_exception(init_error)
                continue
            try:
                result = methods[method](*args, **kwargs) if kwargs else methods[method](*args)
                if type(result) is CoroutineType:
                    if hand_off is not None:
                        hand_off(future, result)  # whoever took the coroutine completes the future
                        del future, args, kwargs, result
                        continue
                    result = runner.run(result)
            except BaseException as error:
                future.set_exception(error)
                del error
            else:
                future.set_result(result)
                del result
            del future, args, kwargs
    finally:
        runner.close()
