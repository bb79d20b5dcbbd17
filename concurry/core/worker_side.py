# pyright: reportPrivateUsage=false
# Private names here are shared within the package: the worker-side config reuses the retry module's validators.
"""What a worker needs inside itself from its options: the retries of each method and its limits.

``worker_side_config(spec, options)`` runs where the worker is created (in the caller's process) and returns a
``WorkerSideConfig``, or ``None`` when there is nothing to apply. It is picklable (with cloudpickle, as retry
callables may be lambdas), so a backend can ship it to a child process or a Ray actor; its ``LimitSet`` has
already been made reachable from the worker's mode. Inside the worker, ``apply_worker_side_config`` wraps the
bound methods the proxy calls and sets ``instance.limits``.

Only the bound entry points are wrapped: a worker method that calls ``self.other()`` calls the plain method, so
a call is never retried twice over.

What a backend does:

1. Where the worker is created (the caller's process), after Ray is connected for ray mode:
   ``worker_side = worker_side_config(spec, options)``. This starts the set's server (process mode) or moves
   its state into a Ray actor (ray mode), so it must run before the child or actor starts.
2. Carry ``worker_side`` to where the instance lives: by fork inheritance, or pickled with cloudpickle (spawn,
   forkserver, Ray actor arguments).
3. There, after building the instance: ``bind_methods(instance, spec, worker_side)``, or, for a backend that
   binds its own dict of methods, ``methods = apply_worker_side_config(instance, methods, worker_side)``.
   Calls must go through the returned dict, not ``getattr(instance, name)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

from concurry.core.limits import LimitSet, as_limit_set
from concurry.core.retry import (
    ANY_METHOD,
    RetryConfig,
    _check_algorithm,
    _check_jitter,
    _check_num_retries,
    _check_retry_on,
    _check_retry_until,
    _check_wait,
    check_per_method,
    retrying,
)

if TYPE_CHECKING:
    from pydantic import ValidationInfo

    from concurry.codegen.spec import WorkerSpec
    from concurry.core.options import WorkerOptions

__all__ = [
    "RETRY_OPTIONS",
    "WorkerSideConfig",
    "apply_worker_side_config",
    "check_method_keys",
    "check_option",
    "worker_side_config",
]

# The individual retry options, each a value or a dict of values keyed by method name, and their checks.
_RETRY_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "num_retries": _check_num_retries,
    "retry_on": _check_retry_on,
    "retry_until": _check_retry_until,
    "retry_algorithm": _check_algorithm,
    "retry_wait": _check_wait,
    "retry_jitter": _check_jitter,
}
RETRY_OPTIONS: tuple[str, ...] = tuple(_RETRY_CHECKS)
_DEFAULTS = {field: getattr(RetryConfig(), field) for field in RETRY_OPTIONS}
_NO_LIMITS = LimitSet()  # empty, so stateless: every worker without limits can share it


@dataclass(frozen=True)
class WorkerSideConfig:
    retries: dict[str, RetryConfig]  # only the methods whose retries change anything
    async_methods: frozenset[str]
    limits: LimitSet


# -- options() ------------------------------------------------------------------------------------------------------


def check_option(value: Any, info: ValidationInfo) -> Any:
    """The ``WorkerOptions`` validator of the retry options, ``retry`` and ``limits``."""
    name = info.field_name or ""
    if name == "limits":
        return as_limit_set(value)
    if name == "retry":
        return _check_retry(value, info.data)
    if name in ("retry_on", "retry_until") and value is None:
        return None
    check_per_method(value, _RETRY_CHECKS[name], name)
    return value


def _check_retry(value: Any, given: dict[str, Any]) -> Any:
    if value is None:
        return None
    for name in RETRY_OPTIONS:
        if name in given and given[name] != _DEFAULTS[name]:
            raise ValueError(
                f"retry={value!r} cannot be combined with {name}={given[name]!r}; put every retry setting in the "
                f"RetryConfig, or drop retry= and use the individual options"
            )

    def check(item: Any, where: str) -> RetryConfig:
        if not isinstance(item, RetryConfig):
            raise ValueError(f"{where}={item!r} is not allowed; give a RetryConfig (or a dict of them by method)")
        return item

    return check_per_method(value, check, "retry")


def check_method_keys(spec: WorkerSpec, options: WorkerOptions) -> None:
    """Per-method dicts may only name the worker's methods (or ``'*'``)."""
    known = set(spec.method_names)
    for name in (*RETRY_OPTIONS, "retry"):
        value = getattr(options, name)
        if isinstance(value, dict):
            unknown = sorted(set(cast("dict[str, Any]", value)) - known - {ANY_METHOD})
            if unknown:
                methods = ", ".join(repr(m) for m in spec.method_names) or "none"
                raise ValueError(
                    f"{spec.name}.options() got {name} for {unknown[0]!r}, which is not a method of the worker; "
                    f"its methods are: {methods} ('*' stands for the methods not named)"
                )


# -- init() ------------------------------------------------------------------------------------------------------------


def _for_method(value: Any, method: str, default: Any) -> Any:
    if isinstance(value, dict):
        per_method = cast("dict[str, Any]", value)
        return per_method.get(method, per_method.get(ANY_METHOD, default))
    return value


def _retry_config(options: WorkerOptions, method: str) -> Optional[RetryConfig]:
    if options.retry is not None:
        chosen: Optional[RetryConfig] = _for_method(options.retry, method, None)
        return chosen
    return RetryConfig(**{name: _for_method(getattr(options, name), method, _DEFAULTS[name]) for name in RETRY_OPTIONS})


def worker_side_config(spec: WorkerSpec, options: WorkerOptions) -> Optional[WorkerSideConfig]:
    """The worker-side part of ``options`` for a worker of ``spec``; ``None`` when there is nothing to apply."""
    check_method_keys(spec, options)
    per_method = any(isinstance(getattr(options, name), dict) for name in (*RETRY_OPTIONS, "retry"))
    retries: dict[str, RetryConfig] = {}
    shared = None if per_method else _retry_config(options, ANY_METHOD)
    for method in spec.method_names:
        config = _retry_config(options, method) if per_method else shared
        if config is not None and config.active:
            retries[method] = config
    limits: LimitSet = options.limits if options.limits is not None else _NO_LIMITS
    if not retries and not len(limits):
        return None
    return WorkerSideConfig(retries, spec.async_methods, limits.share(options.mode))


# -- inside the worker ----------------------------------------------------------------------------------------------


def apply_worker_side_config(
    instance: Any, methods: dict[str, Callable[..., Any]], config: Optional[WorkerSideConfig]
) -> dict[str, Callable[..., Any]]:
    """Set ``instance.limits`` and wrap the proxy's entry points in ``methods`` with their retries."""
    limits = config.limits if config is not None else None
    if limits is not None and len(limits):
        try:
            object.__setattr__(instance, "limits", limits)
        except AttributeError:
            raise TypeError(
                f"{type(instance).__qualname__} was given limits=..., but its instances cannot take the attribute "
                f"'limits' (it has __slots__ without it)"
            ) from None
    elif not hasattr(instance, "limits"):  # a worker's own `limits` attribute is left alone
        try:
            object.__setattr__(instance, "limits", _NO_LIMITS)
        except AttributeError:
            pass  # a __slots__ worker without limits: nothing to offer it
    if config is not None:
        for method, retry in config.retries.items():
            methods[method] = retrying(methods[method], retry, method, is_async=method in config.async_methods)
    return methods
