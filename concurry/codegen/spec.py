"""Introspection of a worker class into a ``WorkerSpec``: the one description every rendering starts from.

Which members become proxy methods: public callables defined by the user's classes in the MRO. Members that
come from framework bases (``object``, ``Worker``, pydantic's ``BaseModel``, morphic's ``Typed``) are not
exposed, even when the user overrides them (``post_initialize`` stays a lifecycle hook, not a remote call).
"""

from __future__ import annotations

import inspect
import typing
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from types import CoroutineType, UnionType
from typing import Any, Optional

__all__ = ["MethodSpec", "WorkerSpec", "spec_of"]


@dataclass(frozen=True)
class MethodSpec:
    """One worker method as the proxy exposes it: its signature without the receiver."""

    name: str
    signature: inspect.Signature
    is_async: bool
    doc: Optional[str]
    function: Any = field(default=None, compare=False, repr=False)  # what the class defines (for annotations)

    @cached_property
    def may_return_coroutine(self) -> bool:
        """False when the method is not async and its return annotation rules out a coroutine (see
        ``_admits_coroutine``): sync mode then returns its result without testing it for one. A decorated method
        (one with ``__wrapped__``) keeps the test: ``functools.wraps`` copies the annotations of the function it
        wraps, whatever the wrapper returns. Worked out on first use, since only sync mode asks."""
        if self.is_async or hasattr(self.function, "__wrapped__"):
            return True
        return _admits_coroutine(_return_annotation(self.function))


@dataclass(frozen=True)
class WorkerSpec:
    cls: type
    methods: tuple[MethodSpec, ...]
    proxy_mixin: Optional[type] = None
    async_methods: frozenset[str] = field(default=frozenset())

    @property
    def name(self) -> str:
        return self.cls.__qualname__

    @property
    def method_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.methods)


_specs: "weakref.WeakKeyDictionary[type, WorkerSpec]" = weakref.WeakKeyDictionary()


def spec_of(cls: type) -> WorkerSpec:
    """The (cached) spec of a worker class."""
    spec = _specs.get(cls)
    if spec is None:
        spec = _introspect(cls)
        _specs[cls] = spec
    return spec


def _framework_bases() -> tuple[type, ...]:
    from pydantic import BaseModel

    from concurry.core.worker import Worker

    bases: list[type] = [object, Worker, *BaseModel.__mro__]
    try:
        from morphic import Typed
    except ImportError:  # pragma: no cover - morphic is a required dependency
        pass
    else:
        bases.extend(Typed.__mro__)
    return tuple(dict.fromkeys(bases))


def _framework_names(cls: type, framework: tuple[type, ...]) -> frozenset[str]:
    """Names the worker inherits from the framework bases it actually has (a plain worker may define ``validate``)."""
    names: set[str] = set()
    for base in cls.__mro__:
        if base in framework:
            names.update(vars(base))
    return frozenset(names)


def _is_user_class(klass: type, framework: tuple[type, ...]) -> bool:
    if klass in framework:
        return False
    module = klass.__module__ or ""
    return not module.startswith(("typing", "abc", "builtins"))


def _introspect(cls: type) -> WorkerSpec:
    framework = _framework_bases()
    framework_names = _framework_names(cls, framework)
    mixin: Optional[type] = getattr(cls, "__concurry_proxy_mixin__", None)
    proxy_side: set[str] = set(vars(mixin)) if mixin is not None else set()
    validators = _pydantic_validator_names(cls)

    methods: dict[str, MethodSpec] = {}
    for klass in cls.__mro__:
        if not _is_user_class(klass, framework):
            continue
        for name, raw in vars(klass).items():
            if name in methods or name.startswith("_") or name in framework_names:
                continue
            if name in proxy_side or name in validators:
                continue
            method = _method_spec(cls, name, raw)
            if method is not None:
                methods[name] = method
    ordered = tuple(methods.values())
    return WorkerSpec(
        cls=cls,
        methods=ordered,
        proxy_mixin=mixin,
        async_methods=frozenset(m.name for m in ordered if m.is_async),
    )


def _method_spec(cls: type, name: str, raw: Any) -> Optional[MethodSpec]:
    if isinstance(raw, (property, type)) or not (callable(raw) or isinstance(raw, (staticmethod, classmethod))):
        return None
    bound_view = getattr(cls, name)  # resolves staticmethod/classmethod descriptors
    target: Any = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    try:
        signature = inspect.signature(bound_view if isinstance(raw, (staticmethod, classmethod)) else target)
    except (TypeError, ValueError):
        signature = inspect.Signature([
            inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
            inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
        ])
    if not isinstance(raw, (staticmethod, classmethod)):
        params = list(signature.parameters.values())
        if params and params[0].kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            signature = signature.replace(parameters=params[1:])
    return MethodSpec(
        name=name,
        signature=signature,
        is_async=inspect.iscoroutinefunction(inspect.unwrap(target)) or inspect.iscoroutinefunction(target),
        doc=inspect.getdoc(target),
        function=target,
    )


def _return_annotation(function: Any) -> Any:
    """``function``'s return annotation, a string one evaluated as ``typing.get_type_hints`` would (only this one:
    evaluating every parameter's would double the cost of introspection); ``Any`` when there is none or it cannot
    be evaluated."""
    try:
        annotation = inspect.get_annotations(function).get("return", Any)
        if isinstance(annotation, str):
            annotation = eval(annotation, getattr(function, "__globals__", {}))
    except Exception:  # a forward reference to a local name, a broken annotation, a callable without annotations
        return Any
    return annotation


def _admits_coroutine(annotation: Any) -> bool:
    """Whether a value of the annotated type may be a coroutine. Only forms known to rule one out say no: None,
    literals, and classes a coroutine is not an instance of (``int``, ``list[str]``, a user's class); unions ask
    each member; anything else (``Any``, ``object``, ``Awaitable``, type variables, protocols) says yes."""
    if annotation is None or annotation is type(None):
        return False
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is UnionType:
        return any(_admits_coroutine(member) for member in typing.get_args(annotation))
    if origin is typing.Literal:
        return False
    klass = annotation if origin is None else origin
    if klass is Any or not isinstance(klass, type):
        return True
    try:
        return issubclass(CoroutineType, klass)
    except Exception:  # a protocol that is not runtime-checkable, a metaclass that refuses
        return True


def _pydantic_validator_names(cls: type) -> set[str]:
    decorators = getattr(cls, "__pydantic_decorators__", None)
    if decorators is None:
        return set()
    names: set[str] = set()
    for group in ("validators", "field_validators", "root_validators", "field_serializers",
                  "model_serializers", "model_validators", "computed_fields"):
        names.update(getattr(decorators, group, {}))
    return names
