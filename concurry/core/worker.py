"""The user-facing worker API: ``Worker``, ``@worker``, ``options()`` and ``init()``.

Typing: ``options`` captures the worker's ``__init__`` with a ParamSpec by annotating ``cls`` as a callable and
keys its overloads on the literal ``mode`` and ``blocking``; ``WorkerBuilder.init`` then checks the init arguments
and returns ``WorkerProxy[W, Literal[True]]`` or ``WorkerProxy[W, Literal[False]]`` (``TaskWorkerProxy[B]`` for
``TaskWorker``, whose ``submit`` and ``map`` are typed by the library itself).

This module stays free of pydantic/morphic imports at import time: a child process that unpickles a worker
class imports it, and should not pay for the proxy machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Generic, Literal, Optional, TypeVar, overload

from typing_extensions import ParamSpec

if TYPE_CHECKING:
    from concurry.core.limits import LimitSet, LimitsOption
    from concurry.core.options import LoadBalancing, MpContext, WorkerOptions
    from concurry.core.proxy import WorkerProxy
    from concurry.core.retry import (
        NumRetriesOption,
        RetryAlgorithmOption,
        RetryConfigOption,
        RetryOnOption,
        RetryUntilOption,
        RetryWaitOption,
    )
    from concurry.core.task import TaskWorker, TaskWorkerProxy

__all__ = ["Worker", "WorkerBuilder", "worker"]

P = ParamSpec("P")
W = TypeVar("W")
B = TypeVar("B", bound=bool)
T = TypeVar("T")


class WorkerBuilder(Generic[P, W, B]):
    """The validated options of a worker class; ``init(...)`` starts a worker with them."""

    __slots__ = ("worker_cls", "options")

    def __init__(self, worker_cls: type, options: WorkerOptions) -> None:
        self.worker_cls = worker_cls
        self.options = options

    # A TaskWorker builder gives the narrower TaskWorkerProxy; the overlap with the general overload is intended.
    @overload
    def init(  # type: ignore[overload-overlap]
        self: WorkerBuilder[P, TaskWorker, B], *args: P.args, **kwargs: P.kwargs
    ) -> TaskWorkerProxy[B]: ...

    @overload
    def init(self, *args: P.args, **kwargs: P.kwargs) -> WorkerProxy[W, B]: ...

    def init(self, *args: Any, **kwargs: Any) -> Any:
        """Start the worker with ``worker_cls(*args, **kwargs)`` and return its proxy."""
        from concurry.core.proxy import start_worker

        return start_worker(self.worker_cls, self.options, args, dict(kwargs))

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self.options.model_dump(exclude_defaults=True).items())
        return f"{self.worker_cls.__qualname__}.options({given})"


class Worker:
    """Base class of workers: subclass it, then ``MyWorker.options(mode=...).init(...)``.

    ``Worker`` adds no state and no ``__init__``, so any constructor signature works, as do pydantic
    ``BaseModel`` and morphic ``Typed`` subclasses.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        # Set inside the running worker: its options(limits=...), else an empty set that admits everything.
        limits: LimitSet

    # One overload per (mode, blocking): each mode accepts only the options that apply to it
    # (option_modes.MODE_SPECIFIC), so a misplaced option is a type error, and `blocking` decides the proxy's
    # method results. A new option goes into every overload of the modes it applies to.
    # mode='sync' (the default)
    @overload
    @classmethod
    def options(  # pyright: ignore[reportOverlappingOverload]  # narrower overloads first, as intended
        cls: Callable[P, W],
        *,
        mode: Literal["sync"] = ...,
        blocking: Literal[True],
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
    ) -> WorkerBuilder[P, W, Literal[True]]: ...

    @overload
    @classmethod
    def options(
        cls: Callable[P, W],
        *,
        mode: Literal["sync"] = ...,
        blocking: Literal[False] = ...,
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
    ) -> WorkerBuilder[P, W, Literal[False]]: ...

    @overload
    @classmethod
    def options(
        cls: Callable[P, W],
        *,
        mode: Literal["sync"] = ...,
        blocking: bool,
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
    ) -> WorkerBuilder[P, W, bool]: ...

    # mode='thread'
    @overload
    @classmethod
    def options(  # pyright: ignore[reportOverlappingOverload]  # narrower overloads first, as intended
        cls: Callable[P, W],
        *,
        mode: Literal["thread"],
        blocking: Literal[True],
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
        load_balancing: LoadBalancing = ...,
        max_queued_tasks: Optional[int] = ...,
    ) -> WorkerBuilder[P, W, Literal[True]]: ...

    @overload
    @classmethod
    def options(
        cls: Callable[P, W],
        *,
        mode: Literal["thread"],
        blocking: Literal[False] = ...,
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
        load_balancing: LoadBalancing = ...,
        max_queued_tasks: Optional[int] = ...,
    ) -> WorkerBuilder[P, W, Literal[False]]: ...

    @overload
    @classmethod
    def options(
        cls: Callable[P, W],
        *,
        mode: Literal["thread"],
        blocking: bool,
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
        load_balancing: LoadBalancing = ...,
        max_queued_tasks: Optional[int] = ...,
    ) -> WorkerBuilder[P, W, bool]: ...

    # mode='asyncio'
    @overload
    @classmethod
    def options(  # pyright: ignore[reportOverlappingOverload]  # narrower overloads first, as intended
        cls: Callable[P, W],
        *,
        mode: Literal["asyncio"],
        blocking: Literal[True],
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
    ) -> WorkerBuilder[P, W, Literal[True]]: ...

    @overload
    @classmethod
    def options(
        cls: Callable[P, W],
        *,
        mode: Literal["asyncio"],
        blocking: Literal[False] = ...,
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
    ) -> WorkerBuilder[P, W, Literal[False]]: ...

    @overload
    @classmethod
    def options(
        cls: Callable[P, W],
        *,
        mode: Literal["asyncio"],
        blocking: bool,
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
    ) -> WorkerBuilder[P, W, bool]: ...

    # mode='process'
    @overload
    @classmethod
    def options(  # pyright: ignore[reportOverlappingOverload]  # narrower overloads first, as intended
        cls: Callable[P, W],
        *,
        mode: Literal["process"],
        blocking: Literal[True],
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
        load_balancing: LoadBalancing = ...,
        max_queued_tasks: Optional[int] = ...,
        mp_context: MpContext = ...,
    ) -> WorkerBuilder[P, W, Literal[True]]: ...

    @overload
    @classmethod
    def options(
        cls: Callable[P, W],
        *,
        mode: Literal["process"],
        blocking: Literal[False] = ...,
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
        load_balancing: LoadBalancing = ...,
        max_queued_tasks: Optional[int] = ...,
        mp_context: MpContext = ...,
    ) -> WorkerBuilder[P, W, Literal[False]]: ...

    @overload
    @classmethod
    def options(
        cls: Callable[P, W],
        *,
        mode: Literal["process"],
        blocking: bool,
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
        load_balancing: LoadBalancing = ...,
        max_queued_tasks: Optional[int] = ...,
        mp_context: MpContext = ...,
    ) -> WorkerBuilder[P, W, bool]: ...

    # mode='ray'
    @overload
    @classmethod
    def options(  # pyright: ignore[reportOverlappingOverload]  # narrower overloads first, as intended
        cls: Callable[P, W],
        *,
        mode: Literal["ray"],
        blocking: Literal[True],
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
        load_balancing: LoadBalancing = ...,
        max_queued_tasks: Optional[int] = ...,
        num_cpus: float = ...,
        num_gpus: float = ...,
        resources: Optional[dict[str, float]] = ...,
        actor_options: Optional[dict[str, Any]] = ...,
    ) -> WorkerBuilder[P, W, Literal[True]]: ...

    @overload
    @classmethod
    def options(
        cls: Callable[P, W],
        *,
        mode: Literal["ray"],
        blocking: Literal[False] = ...,
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
        load_balancing: LoadBalancing = ...,
        max_queued_tasks: Optional[int] = ...,
        num_cpus: float = ...,
        num_gpus: float = ...,
        resources: Optional[dict[str, float]] = ...,
        actor_options: Optional[dict[str, Any]] = ...,
    ) -> WorkerBuilder[P, W, Literal[False]]: ...

    @overload
    @classmethod
    def options(
        cls: Callable[P, W],
        *,
        mode: Literal["ray"],
        blocking: bool,
        unwrap_futures: bool = ...,
        num_retries: NumRetriesOption = ...,
        retry_on: RetryOnOption = ...,
        retry_until: RetryUntilOption = ...,
        retry_algorithm: RetryAlgorithmOption = ...,
        retry_wait: RetryWaitOption = ...,
        retry_jitter: RetryWaitOption = ...,
        retry: RetryConfigOption = ...,
        limits: LimitsOption = ...,
        max_workers: int = ...,
        load_balancing: LoadBalancing = ...,
        max_queued_tasks: Optional[int] = ...,
        num_cpus: float = ...,
        num_gpus: float = ...,
        resources: Optional[dict[str, float]] = ...,
        actor_options: Optional[dict[str, Any]] = ...,
    ) -> WorkerBuilder[P, W, bool]: ...

    @classmethod
    def options(cls, **options: Any) -> WorkerBuilder[Any, Any, Any]:
        """Validate the options once and return a builder; see ``WorkerOptions`` for what each means."""
        from concurry.codegen.runtime import proxy_class
        from concurry.codegen.spec import spec_of
        from concurry.core.options import validate_options

        from concurry.core.worker_side import check_method_keys

        validated = validate_options(cls.__qualname__, options)
        spec = spec_of(cls)
        proxy_class(spec, validated.mode, validated.blocking)  # reject bad classes before any start
        check_method_keys(spec, validated)
        return WorkerBuilder(cls, validated)

    def _concurry_getattr(self, name: str) -> Any:
        """Read a public attribute for ``proxy.<name>``; methods are reached as proxy methods instead."""
        value = getattr(self, name)
        if callable(value) and hasattr(value, "__self__") and getattr(value, "__self__") is self:
            raise AttributeError(
                f"{type(self).__qualname__}.{name} is not a public method of the worker, so the proxy has no {name!r}"
            )
        return value


def worker(cls: type[T]) -> type[T]:
    """Class decorator: make ``cls`` a ``Worker`` without changing its code."""
    if isinstance(cls, type) and issubclass(cls, Worker):  # pyright: ignore[reportUnnecessaryIsInstance]  # run-time check
        return cls
    namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return type(cls.__name__, (cls, Worker), namespace)  # pyright: ignore[reportGeneralTypeIssues, reportReturnType]
