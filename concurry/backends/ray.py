# pyright: reportPrivateUsage=false
# Private names here are shared within the package: the backend drives its futures' and the worker-side runner's
# internal state (package-private protocol).
"""Ray mode: each worker is a Ray actor, and each call returns a ``RayFuture`` wrapping the call's ``ObjectRef``.

Imported only when ray mode is first used, so ``import concurry`` never imports ray.

- The actor class is generated once per worker class: one actor method per worker method (so Ray's dashboard and
  errors name them), async methods as ``async def`` so Ray runs the actor as an async actor and awaits them
  natively. It holds the worker instance; ``__init__`` failures are kept and re-raised by the readiness call that
  ``start()`` waits for, so ``init()`` raises them with their original type.
- The hot path is a dict lookup of a cached ``ActorMethod.remote`` and one ``RayFuture`` allocation; results are
  fetched only when asked for (``result``, ``exception``, a done-callback or ``await``), and the backend keeps no
  reference to calls.
- Zero-copy composition: a ``RayFuture`` argument travels as its ``ObjectRef``. Ray resolves top-level references
  itself; references nested in containers are sent as extra top-level arguments with placeholders left in the
  containers, so Ray still resolves them and the actor only puts them back.
- ``TaskWorker`` functions are put in the object store once per worker and cached by identity; the actor keeps
  the deserialized functions in a small cache, so a function mapped over many items crosses once.
"""

from __future__ import annotations

import copyreg
import logging
import pickle
import sys
import sysconfig
import threading
import weakref
from inspect import isawaitable
from queue import SimpleQueue
from types import CoroutineType, FunctionType
from typing import Any, Callable, Mapping, Optional, TypeVar, cast

from concurry.core.ray_compat import RAY_MISSING, pydantic_model_refusal

try:
    import ray
    from ray.exceptions import (
        ActorDiedError,
        ActorUnavailableError,
        GetTimeoutError,
        RayActorError,
        RayError,
        RayTaskError,
        TaskCancelledError,
    )
except ImportError as missing:  # pragma: no cover - exercised in a subprocess without ray
    raise ImportError(RAY_MISSING) from missing

from concurry.codegen.spec import WorkerSpec
from concurry.core.errors import WorkerDiedError, attach_remote_traceback
from concurry.core.execution import CoroutineRunner
from concurry.core.future import (
    CANCELLED,
    FINISHED,
    PENDING,
    Future,
    _invoke_callback,
    _transition_lock,
)
from concurry.core.options import WorkerOptions
from concurry.core.proxy import stopped_error
from concurry.core.task import TaskWorker
from concurry.core.unwrap import DeferredCall, contains_future, defer, pending_futures, rebuild_container
from concurry.core.worker_side import WorkerSideConfig, apply_worker_side_config, worker_side_config

__all__ = ["RayBackend", "RayFuture"]

T = TypeVar("T")

_CONTAINERS = (list, tuple, dict, set, frozenset)
_SCANNED = (Future, list, tuple, dict, set, frozenset)
_FIRST_CLASS_OPTIONS = ("num_cpus", "num_gpus", "resources")
_FUNCTION_CACHE_SIZE = 256


# -- pickling validated classes by value ----------------------------------------------------------------------------
def _register_validate_call_reducer() -> None:
    """Let ``@validate_call``/``@morphic.validate`` methods be pickled by value (classes defined in ``__main__``).

    pydantic's wrapper keeps a ``ConfigWrapper`` whose ``__getattr__`` recurses forever when unpickled, so a
    class defined in a script could not reach an actor. The wrapper travels as its built validators instead:
    rebuilding them in the actor would re-evaluate string annotations against globals that pickling by value
    does not carry.
    """
    try:
        from pydantic._internal._validate_call import ValidateCallWrapper
    except ImportError:  # pragma: no cover - a pydantic without this internal has its own pickling
        return

    def reduce_wrapper(wrapper: Any) -> tuple[Any, ...]:
        if not wrapper.__pydantic_complete__:
            wrapper._create_validators()
        return _revive_validate_call, (
            wrapper.function, wrapper.validate_return, wrapper.schema_type, wrapper.module, wrapper.qualname,
            wrapper.config_wrapper.config_dict, wrapper.__pydantic_validator__, wrapper.__return_pydantic_validator__,
        )

    copyreg.pickle(ValidateCallWrapper, reduce_wrapper)


def _revive_validate_call(
    function: Any, validate_return: bool, schema_type: Any, module: str, qualname: str,
    config: dict[str, Any], validator: Any, return_validator: Any,
) -> Any:
    from pydantic._internal._config import ConfigWrapper
    from pydantic._internal._validate_call import ValidateCallWrapper

    wrapper = ValidateCallWrapper.__new__(ValidateCallWrapper)
    wrapper.function = function
    wrapper.validate_return = validate_return
    wrapper.schema_type = schema_type
    wrapper.module = module
    wrapper.qualname = qualname
    wrapper.ns_resolver = None  # type: ignore[assignment]  # only builds validators, which arrive built
    wrapper.config_wrapper = ConfigWrapper(config, check=False)
    wrapper.__pydantic_complete__ = True
    wrapper.__pydantic_validator__ = validator
    wrapper.__return_pydantic_validator__ = return_validator
    return wrapper


_register_validate_call_reducer()


# -- connecting -----------------------------------------------------------------------------------------------------
_connect_lock = threading.Lock()


def _connect() -> None:
    """Use the Ray the program initialised (local or a cluster); otherwise start a quiet local one."""
    if not ray.is_initialized():
        with _connect_lock:
            if not ray.is_initialized():
                ray.init(include_dashboard=False, logging_level=logging.WARNING)  # pyright: ignore[reportUnknownMemberType]


# -- shipping the worker class --------------------------------------------------------------------------------------
_by_value_lock = threading.Lock()
_INSTALLED = tuple({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})


def _pickled_class(cls: type) -> tuple[bytes, Optional[bytes]]:
    """The worker class by reference and, when Ray's workers may not import its module, also by value.

    Ray's workers see the driver's working and script directories, not directories added to ``sys.path`` later
    (pytest's test directories, for one). Raw Ray ships ``@ray.remote`` classes by value, so a class that works as
    a raw actor must work as a worker: the actor falls back to the copy by value when the import fails.
    """
    cloudpickle = cast(Any, ray.cloudpickle)  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]  # untyped
    by_reference = cloudpickle.dumps(cls)
    name = cls.__module__
    module = sys.modules.get(name)
    registered = cloudpickle.list_registry_pickle_by_value()
    if (
        module is None
        or name == "__main__"  # already by value
        or name.split(".")[0] == "concurry"
        or (getattr(module, "__file__", None) or "").startswith(_INSTALLED)
        or any(name == r or name.startswith(r + ".") for r in registered)
    ):
        return by_reference, None
    with _by_value_lock:
        cloudpickle.register_pickle_by_value(module)
        try:
            by_value: Optional[bytes] = cloudpickle.dumps(cls)
        except Exception:  # something the class refers to cannot travel by value; the reference must do
            by_value = None
        finally:
            cloudpickle.unregister_pickle_by_value(module)
    return by_reference, by_value


def _load_class(pickled: tuple[bytes, Optional[bytes]]) -> type:
    by_reference, by_value = pickled
    try:
        cls: type = pickle.loads(by_reference)
    except ImportError:
        if by_value is None:
            raise
        cls = pickle.loads(by_value)
    return cls


# -- what travels with a call ---------------------------------------------------------------------------------------
class _Slot:
    """Marks where the value of the n-th extra argument goes back into a container (Ray resolves only top-level
    references, so nested ones travel as extra arguments)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple[Any, ...]:
        return _Slot, (self.index,)

    def __eq__(self, other: object) -> bool:
        return type(other) is _Slot and other.index == self.index

    def __hash__(self) -> int:
        return hash((_Slot, self.index))


class _Shipped:
    """A ``TaskWorker`` function already in the object store; the actor deserializes it once."""

    __slots__ = ("ref",)

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def __reduce__(self) -> tuple[Any, ...]:
        return _Shipped, (self.ref,)


def _fill(value: Any, values: tuple[Any, ...]) -> Any:
    """``value`` with every ``_Slot`` replaced by its resolved argument; untouched parts are kept as they are."""
    if type(value) is _Slot:
        return values[value.index]
    if isinstance(value, dict):
        changed = {k: f for k, v in value.items() if (f := _fill(v, values)) is not v}  # pyright: ignore[reportUnknownVariableType]
        if not changed:
            return value  # pyright: ignore[reportUnknownVariableType]
        rebuilt = value.copy()  # pyright: ignore[reportUnknownVariableType]
        rebuilt.update(changed)  # pyright: ignore[reportUnknownMemberType]
        return rebuilt  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, _CONTAINERS):
        items = [_fill(v, values) for v in value]  # pyright: ignore[reportUnknownVariableType]
        if all(a is b for a, b in zip(items, value)):  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
            return value  # pyright: ignore[reportUnknownVariableType]
        return rebuild_container(value, items)
    return value


# -- the actor ------------------------------------------------------------------------------------------------------
class _SyncActor:
    """Holds the worker instance inside the actor. Generated subclasses add one method per worker method."""

    _names: tuple[str, ...] = ()

    def __init__(
        self,
        pickled_cls: tuple[bytes, Optional[bytes]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        worker_side: Optional[WorkerSideConfig] = None,
    ) -> None:
        self._methods: dict[str, Callable[..., Any]] = {}
        self._init_error: Optional[BaseException] = None
        self._runner = CoroutineRunner()
        self._functions: dict[bytes, Callable[..., Any]] = {}
        try:  # unpickling here too, so a class the actor cannot load fails init() with its own error
            instance = _load_class(pickled_cls)(*args, **kwargs)
            methods = {name: getattr(instance, name) for name in self._names}
            methods["_concurry_getattr"] = instance._concurry_getattr
            self._methods = apply_worker_side_config(instance, methods, worker_side)
        except Exception as error:  # raised again by _concurry_ready, which init() waits for
            self._init_error = error

    def _concurry_ready(self) -> None:
        if self._init_error is not None:
            raise self._init_error

    def _concurry_getattr(self, name: str) -> Any:
        return self._methods["_concurry_getattr"](name)

    def _concurry_drain(self) -> None:
        """Completes after every call submitted before it (a sync actor runs one submitter's calls in order)."""

    def _concurry_call(self, name: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]], *values: Any) -> Any:
        """A call whose arguments held nested references: put the resolved ``values`` back, then call."""
        args = _fill(args, values)
        return getattr(self, name)(*args, **(_fill(kwargs, values) if kwargs else {}))

    def _function(self, shipped: _Shipped) -> Callable[..., Any]:
        key = shipped.ref.binary()
        fn = self._functions.get(key)
        if fn is None:
            fn = cast("Callable[..., Any]", ray.get(shipped.ref))
            if len(self._functions) >= _FUNCTION_CACHE_SIZE:
                del self._functions[next(iter(self._functions))]
            self._functions[key] = fn
        return fn


class _AsyncActor(_SyncActor):
    """For workers with async methods: Ray runs it as an async actor, so those methods interleave natively.

    Ray does not start an async actor's calls in submission order, so ``RayBackend.stop`` waits for the calls'
    own references rather than a drain call.
    """

    async def _concurry_call(
        self, name: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]], *values: Any
    ) -> Any:
        args = _fill(args, values)
        result = getattr(self, name)(*args, **(_fill(kwargs, values) if kwargs else {}))
        if isawaitable(result):
            result = await result
        return result


def _sync_method(name: str) -> Callable[..., Any]:
    def method(self: _SyncActor, *args: Any, **kwargs: Any) -> Any:
        result = self._methods[name](*args, **kwargs)
        if type(result) is CoroutineType:
            result = self._runner.run(result)  # pyright: ignore[reportUnknownArgumentType]
        return result

    method.__name__ = method.__qualname__ = name
    return method


def _async_method(name: str) -> Callable[..., Any]:
    async def method(self: _AsyncActor, *args: Any, **kwargs: Any) -> Any:
        result = self._methods[name](*args, **kwargs)
        if isawaitable(result):
            result = await result
        return result

    method.__name__ = method.__qualname__ = name
    return method


def _task_submit(self: _SyncActor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``TaskWorker.submit`` in the actor: functions shipped once arrive as ``_Shipped``."""
    if type(fn) is _Shipped:
        fn = self._function(fn)
    result = self._methods["submit"](fn, *args, **kwargs)
    if type(result) is CoroutineType:
        result = self._runner.run(result)  # pyright: ignore[reportUnknownArgumentType]
    return result


_actor_classes: weakref.WeakKeyDictionary[type, Any] = weakref.WeakKeyDictionary()


def _actor_class(spec: WorkerSpec) -> Any:
    """The Ray actor class of a worker class, generated and registered with Ray once."""
    remote_cls = _actor_classes.get(spec.cls)
    if remote_cls is None:
        asynchronous = bool(spec.async_methods)
        namespace: dict[str, Any] = {"_names": spec.method_names, "__doc__": spec.cls.__doc__}
        for name in spec.method_names:
            if name in spec.async_methods:
                namespace[name] = _async_method(name)
            elif name == "submit" and issubclass(spec.cls, TaskWorker):
                namespace[name] = _task_submit
            else:
                namespace[name] = _sync_method(name)
        actor_cls = type(spec.cls.__name__, (_AsyncActor if asynchronous else _SyncActor,), namespace)
        remote_cls = _actor_classes[spec.cls] = ray.remote(actor_cls)
    return remote_cls


# -- futures --------------------------------------------------------------------------------------------------------
class RayFuture(Future[T]):
    """A Ray actor call's result, wrapping its ``ObjectRef`` (``object_ref``).

    Nothing is fetched until asked for. ``done()`` asks Ray without fetching. ``cancel()`` marks a call that has
    not finished cancelled and discards its outcome, but cannot keep it from running (see ``cancel``).
    Done-callbacks run on a concurry thread, never on Ray's, so they may block or call other workers.
    """

    __slots__ = ("_ref", "_owner")
    _kind = "ray"

    def __init__(self, ref: Any, owner: Optional[RayBackend] = None) -> None:
        self._state = PENDING
        self._result = None
        self._exception = None
        self._callbacks = None
        self._uuid = None
        self._ref = ref
        self._owner = owner

    @classmethod
    def _failed(cls, error: BaseException, owner: Optional[RayBackend]) -> RayFuture[Any]:
        """A call that failed before reaching Ray (an argument's failure, an unpicklable argument)."""
        future: RayFuture[Any] = cls(None, owner)
        future._exception = error
        future._state = FINISHED
        return future

    @property
    def object_ref(self) -> Any:
        """The ``ray.ObjectRef`` of the call (None if it failed before reaching Ray)."""
        return self._ref

    def __reduce__(self) -> tuple[Any, ...]:
        if self._ref is None:
            return RayFuture._failed, (self._exception, None)
        return RayFuture, (self._ref,)

    # -- state ------------------------------------------------------------------------------------------------------
    def done(self) -> bool:
        if self._state >= FINISHED:
            return True
        ready, _ = ray.wait([self._ref], timeout=0, fetch_local=False)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        return bool(ready)  # pyright: ignore[reportUnknownArgumentType]

    def running(self) -> bool:
        """True from submission until the call finishes: Ray does not report when an actor call starts."""
        return self._state < FINISHED and not self.done()

    def cancel(self) -> bool:
        """Discard the outcome of a call that has not finished; the call itself still runs on the actor.

        Ray (2.60) cannot cancel actor calls safely: a queued call may run anyway, and a cancellation that reaches
        the actor before its call stalls every later call for 30 s. So ``ray.cancel`` is not used.
        """
        if self._state >= FINISHED:
            return self._state == CANCELLED
        if self.done():
            return False
        with _transition_lock:
            if self._state >= FINISHED:
                return self._state == CANCELLED
            self._state = CANCELLED
        self._on_complete()
        return True

    # -- results ----------------------------------------------------------------------------------------------------
    def _wait(self, timeout: Optional[float]) -> None:
        try:
            value = ray.get(self._ref, timeout=None if timeout is None else max(timeout, 0.0))
        except GetTimeoutError:
            raise TimeoutError(f"{self!r} did not complete within {timeout} seconds") from None
        except RayError as error:
            self._fail(error)
        else:
            self._settle(value, None)

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        with _transition_lock:
            pending = self._state < FINISHED
            callbacks = self._callbacks
            if pending:
                if callbacks is None:
                    self._callbacks = [fn]
                else:
                    callbacks.append(fn)
        if not pending:
            _invoke_callback(fn, self)
        elif callbacks is None:  # the first callback: ask Ray to report completion
            _watch(self)

    # -- completion -------------------------------------------------------------------------------------------------
    def _settle(self, value: Any, exception: Optional[BaseException], cancelled: bool = False) -> None:
        with _transition_lock:
            if self._state >= FINISHED:
                return
            if cancelled:
                self._state = CANCELLED
            else:
                self._result = value
                self._exception = exception
                self._state = FINISHED
        self._on_complete()

    def _fail(self, error: RayError) -> None:
        exception = _translate(error, self._owner)
        self._settle(None, exception, cancelled=exception is None)


def _translate(error: RayError, owner: Optional[RayBackend]) -> Optional[BaseException]:
    """What the caller sees for a Ray error: the worker's own exception, ``WorkerDiedError``, or None (cancelled)."""
    if isinstance(error, TaskCancelledError):
        return None
    if isinstance(error, RayTaskError):
        return _original(error)
    if isinstance(error, RayActorError):
        if owner is not None and owner._stopped:
            return None  # stop() ended the actor before this call finished
        name = owner._name if owner is not None else "on Ray"
        if isinstance(error, ActorUnavailableError):
            died = WorkerDiedError(f"worker {name} became unavailable during the call (Ray may restart it): "
                                   f"{_last_line(error)}")
        else:
            if owner is not None and isinstance(error, ActorDiedError):
                owner._mark_dead(error)
            died = WorkerDiedError(f"worker {name} died before finishing the call: {_last_line(error)}")
        died.__cause__ = error
        return died
    return error


def _original(error: RayTaskError) -> BaseException:
    """The exception the worker raised, with Ray's remote traceback attached as its cause."""
    cause = error.cause
    while isinstance(cause, RayTaskError):
        cause = cause.cause  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if not isinstance(cause, BaseException):
        return error
    return attach_remote_traceback(cause, str(error))


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


# Done-callbacks: Ray reports completion on its own thread, where a blocking ray.get deadlocks, so completions are
# handed to one concurry thread that settles the future and runs the callbacks.
_completions: SimpleQueue[tuple[RayFuture[Any], Any]] = SimpleQueue()
_dispatcher: Optional[threading.Thread] = None
_dispatcher_lock = threading.Lock()


def _watch(future: RayFuture[Any]) -> None:
    global _dispatcher
    if _dispatcher is None:
        with _dispatcher_lock:
            if _dispatcher is None:
                _dispatcher = threading.Thread(target=_dispatch, name="concurry-ray-callbacks", daemon=True)
                _dispatcher.start()
    put = _completions.put
    future._ref.future().add_done_callback(lambda outcome: put((future, outcome)))  # pyright: ignore[reportUnknownArgumentType, reportUnknownLambdaType]


def _dispatch() -> None:
    get = _completions.get
    while True:
        future, outcome = get()
        error = outcome.exception()
        if error is None:
            future._settle(outcome.result(), None)
        elif isinstance(error, RayError):
            future._fail(error)
        else:
            future._settle(None, error)
        del future, outcome, error


# -- the backend ----------------------------------------------------------------------------------------------------
_FORGET_FINISHED_AT = 1024


class RayBackend:
    """Runs one worker as a Ray actor."""

    __slots__ = (
        "_spec", "_name", "_init_args", "_init_kwargs", "_options", "_actor", "_remote", "_call_remote",
        "_task_remote", "_options_given", "_open", "_stopped", "_dead", "_death", "_shipped", "_ships_functions", "_lock",
        "_unordered", "_forget_at", "__weakref__",
    )

    stops_at_once = False

    def __init__(
        self, spec: WorkerSpec, init_args: tuple[Any, ...], init_kwargs: Mapping[str, Any], options: WorkerOptions
    ) -> None:
        refusal = pydantic_model_refusal(spec.cls)
        if refusal is not None:
            raise refusal
        self._spec = spec
        self._name = spec.name
        self._init_args = init_args
        self._init_kwargs = dict(init_kwargs)
        self._options = self._actor_options(options)
        self._options_given = options
        self._actor: Any = None
        self._remote: dict[str, Callable[..., Any]] = {}
        self._call_remote: Optional[Callable[..., Any]] = None
        self._task_remote: Optional[Callable[..., Any]] = None
        self._open = False
        self._stopped = False
        self._dead = False
        self._death = ""
        self._shipped: dict[int, tuple[_Shipped, weakref.ref[Any]]] = {}
        self._ships_functions = issubclass(spec.cls, TaskWorker)
        self._lock = threading.Lock()
        # An async actor starts calls in any order: the references of its calls not known to be done, for stop()
        self._unordered: Optional[list[Any]] = [] if spec.async_methods else None
        self._forget_at = _FORGET_FINISHED_AT

    def _actor_options(self, options: WorkerOptions) -> dict[str, Any]:
        extra = dict(options.actor_options or {})
        for name in _FIRST_CLASS_OPTIONS:
            if name in extra:
                raise ValueError(
                    f"{self._name}.options() got actor_options={{{name!r}: {extra[name]!r}, ...}}; "
                    f"pass {name}={extra[name]!r} to options() itself"
                )
        extra["num_cpus"] = options.num_cpus
        extra["num_gpus"] = options.num_gpus
        if options.resources:
            extra["resources"] = dict(options.resources)
        return extra

    # -- lifecycle --------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Create the actor and wait until the worker's ``__init__`` has run, so its errors raise here."""
        _connect()
        try:
            configured = _actor_class(self._spec).options(**self._options)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"{self._name}.options(actor_options=...): Ray rejected the actor options: {error}"
            ) from error
        worker_side = worker_side_config(self._spec, self._options_given)  # after connecting: limits may move into Ray
        actor = configured.remote(_pickled_class(self._spec.cls), self._init_args, self._init_kwargs, worker_side)
        failure: Optional[RayError] = None
        try:
            ray.get(actor._concurry_ready.remote())
        except RayError as error:
            failure = error
        if failure is not None:
            ray.kill(actor)  # pyright: ignore[reportUnknownMemberType]
            raise self._start_failure(failure)
        self._actor = actor
        self._remote = {name: getattr(actor, name).remote for name in (*self._spec.method_names, "_concurry_getattr")}
        if self._ships_functions:
            self._task_remote = self._remote["submit"]
            self._remote["submit"] = self._submit_function
        self._call_remote = actor._concurry_call.remote
        self._open = True

    def _start_failure(self, error: RayError) -> BaseException:
        if isinstance(error, RayTaskError):
            return _original(error)
        failure = WorkerDiedError(f"worker {self._name} could not start on Ray: {_last_line(error)}")
        failure.__cause__ = error
        return failure

    def stop(self, timeout: Optional[float]) -> None:
        """Let the calls already submitted finish (up to ``timeout``), then kill the actor. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._open = False
        actor, self._actor = self._actor, None
        self._shipped.clear()
        if actor is None or not ray.is_initialized():
            return
        if timeout is None or timeout > 0:
            with self._lock:
                calls = [actor._concurry_drain.remote()] if self._unordered is None else list(self._unordered)
            try:
                ray.wait(calls, num_returns=len(calls), timeout=timeout, fetch_local=False)  # pyright: ignore[reportUnknownMemberType]
            except RayError:  # the actor is already gone
                pass
        ray.kill(actor)  # pyright: ignore[reportUnknownMemberType]

    def _mark_dead(self, error: RayError) -> None:
        self._dead = True
        self._open = False
        self._death = _last_line(error)

    @property
    def alive(self) -> bool:
        return self._open

    def _closed_error(self) -> Exception:
        if self._stopped:
            return stopped_error(self._name)
        return WorkerDiedError(
            f"worker {self._name} died ({self._death}); create a new one with .options(...).init(...)"
        )

    # -- calls ------------------------------------------------------------------------------------------------------
    def submit(self, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
        if not self._open:
            raise self._closed_error()
        try:
            ref = self._remote[method](*args, **kwargs) if kwargs else self._remote[method](*args)
        except Exception as error:  # an argument Ray cannot serialize fails this call only
            return RayFuture._failed(error, self)
        return self._future_of(ref)

    def submit_unwrapping(self, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> Future[Any]:
        """``submit`` for arguments that may hold futures: ``RayFuture``s travel as references, others as values."""
        for arg in args:
            if isinstance(arg, _SCANNED):
                return self._submit_with_futures(method, args, kwargs)
        if kwargs:
            for arg in kwargs.values():
                if isinstance(arg, _SCANNED):
                    return self._submit_with_futures(method, args, kwargs)
        return self.submit(method, args, kwargs)

    def _submit_with_futures(
        self, method: str, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]
    ) -> Future[Any]:
        waiting: list[Future[Any]] = []  # other futures not done yet; Ray waits for its own references itself
        pending_futures(args, waiting, (RayFuture,))
        if kwargs:
            pending_futures(kwargs, waiting, (RayFuture,))
        if waiting:
            return defer(self._submit_with_futures, method, args, kwargs, waiting)
        refs: list[Any] = []
        try:
            args = tuple([_prepare(arg, refs) for arg in args])
            if kwargs:
                kwargs = {key: _prepare(arg, refs) for key, arg in kwargs.items()}
        except Exception as error:  # a future argument's failure is this call's failure
            return RayFuture._failed(error, self)
        if not refs:
            return self.submit(method, args, kwargs)
        top_level = sum(type(arg) is _Slot for arg in args)
        if kwargs:
            top_level += sum(type(arg) is _Slot for arg in kwargs.values())
        if top_level == len(refs):  # Ray resolves top-level references itself
            args = tuple([refs[arg.index] if type(arg) is _Slot else arg for arg in args])
            if kwargs:
                kwargs = {key: refs[arg.index] if type(arg) is _Slot else arg for key, arg in kwargs.items()}
            return self.submit(method, args, kwargs)
        if not self._open:
            raise self._closed_error()
        if method == "submit" and self._ships_functions:
            args = (self._ship(args[0]), *args[1:])
        try:
            ref = self._call_remote(method, args, kwargs, *refs)  # type: ignore[misc]
        except Exception as error:
            return RayFuture._failed(error, self)
        return self._future_of(ref)

    def _future_of(self, ref: Any) -> RayFuture[Any]:
        """The future of a submitted call. An async actor's call reference is also kept for stop(); finished ones
        are forgotten every so often (when the list has doubled since), so each call costs amortised constant time."""
        unordered = self._unordered
        if unordered is not None:
            with self._lock:
                unordered.append(ref)
                if len(unordered) >= self._forget_at:
                    _, pending = ray.wait(unordered, num_returns=len(unordered), timeout=0, fetch_local=False)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
                    unordered[:] = pending
                    self._forget_at = max(_FORGET_FINISHED_AT, 2 * len(unordered))
        return RayFuture(ref, self)

    # -- TaskWorker functions ---------------------------------------------------------------------------------------
    def _submit_function(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self._task_remote(self._ship(fn), *args, **kwargs)  # type: ignore[misc]

    def _ship(self, fn: Any) -> Any:
        """A function's place in the object store, put there on its first submission to this worker.

        Only plain functions and lambdas are cached: like ``@ray.remote`` functions, they are captured when first
        shipped. Other callables travel with each call, so later changes to their state are seen.
        """
        if type(fn) is not FunctionType:
            return fn
        key = id(fn)
        entry = self._shipped.get(key)
        if entry is not None:
            return entry[0]
        shipped = _Shipped(ray.put(fn))  # pyright: ignore[reportUnknownMemberType]
        shipped_functions = self._shipped
        self._shipped[key] = (shipped, weakref.ref(fn, lambda _: shipped_functions.pop(key, None)))
        return shipped


def _prepare(value: Any, refs: list[Any]) -> Any:
    """``value`` with each ``RayFuture`` replaced by a ``_Slot`` for its reference and other futures by results."""
    if type(value) is DeferredCall and isinstance(value._inner, RayFuture):
        value = value._inner  # a call that waited for its arguments, then went to Ray: its reference travels
    if isinstance(value, RayFuture):
        if value._ref is None or value._state == CANCELLED:
            return value.result()  # pyright: ignore[reportUnknownVariableType]  # raises the failure or CancelledError
        refs.append(value._ref)
        return _Slot(len(refs) - 1)
    if isinstance(value, Future):
        return value.result()  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, dict):
        if not any(contains_future(v) for v in value.values()):  # pyright: ignore[reportUnknownVariableType]
            return value  # pyright: ignore[reportUnknownVariableType]
        rebuilt = value.copy()  # pyright: ignore[reportUnknownVariableType]
        for key, item in value.items():  # pyright: ignore[reportUnknownVariableType]
            rebuilt[key] = _prepare(item, refs)
        return rebuilt  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, _CONTAINERS):
        if not any(contains_future(v) for v in value):  # pyright: ignore[reportUnknownVariableType]
            return value  # pyright: ignore[reportUnknownVariableType]
        return rebuild_container(value, [_prepare(v, refs) for v in value])  # pyright: ignore[reportUnknownVariableType]
    return value
