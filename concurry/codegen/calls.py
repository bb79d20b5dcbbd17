"""Call functions: what a proxy method call actually runs, without reading anything from the proxy.

A proxy is a pydantic model, and every attribute read on one goes through pydantic's ``__getattr__`` hook, which
costs as much as a whole method call; a method that reaches the backend through ``self`` also costs a frame of its
own. So when a worker starts, each worker method whose parameters can all be passed by position (at most
``MAX_ARITY``) gets a *call function* in the proxy's instance ``__dict__``, where attribute lookup finds it before
the generated class method. It is a closure over exactly what the call needs (the backend's queue, its bound
methods, ...), with the worker method's name, parameters, defaults and annotations, so ``inspect.signature``,
keyword arguments and arity errors are the same as the class method's.

The bodies come from ``templates/calls.py.j2``, rendered and compiled once per process and flavor (no per-class
compile; the backend picks each method's flavor, see ``concurry.core.backend.Backend``): a factory per arity returns
a closure with parameters ``a0, a1, ...``; for each worker method the closure's code object is copied once with the
method's own parameter names (``CodeType.replace``), and each proxy instantiates that code with its own closure
cells. The same template gives the sync, thread and asyncio backends their generic ``submit`` (asyncio: of sync
methods), so each backend's hot path is written once (future arguments of ``submit`` calls are found by
``concurry.core.unwrap.unwrapping``, like any backend's).
"""

from __future__ import annotations

import inspect
import linecache
import sys
import weakref
from functools import lru_cache
from types import CellType, CodeType, CoroutineType, FunctionType
from typing import Any, Callable, Optional

from concurry.codegen.runtime import annotations_of, template
from concurry.codegen.spec import MethodSpec, WorkerSpec
from concurry.core.future import PENDING, SyncFuture
from concurry.core.unwrap import LEAF_TYPES

__all__ = ["MAX_ARITY", "Flavor", "call_functions", "flavor_namespace"]

MAX_ARITY = 8

_PASSABLE_BY_POSITION = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_EMPTY = inspect.Parameter.empty


@lru_cache(maxsize=None)
def flavor_namespace(flavor: str) -> dict[str, Any]:
    """The executed template of ``flavor``: its ``submit_function`` factory (sync, thread) and ``call<n>`` factories."""
    from concurry.backends.thread import NEW_THREAD_FUTURE, KeywordCall, refuse_queued

    source = template("calls.py.j2").render(flavor=flavor, max_arity=MAX_ARITY, pending=PENDING)
    filename = f"<concurry {flavor} calls>"
    namespace: dict[str, Any] = {
        "__name__": "concurry.codegen.generated",
        "_leaf": LEAF_TYPES,
        "_coroutine": CoroutineType,
        "_SyncFuture": SyncFuture,
        "_new_thread_future": NEW_THREAD_FUTURE,
        "_refuse": refuse_queued,
        "_KeywordCall": KeywordCall,
    }
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return namespace


class _Renamed:
    """One worker method's call function, before it has closure cells: its code, defaults and metadata."""

    __slots__ = ("name", "code", "defaults", "qualname", "annotations", "doc")

    def __init__(self, method: MethodSpec, template_code: CodeType, qualname: str) -> None:
        parameters = list(method.signature.parameters.values())
        names = tuple(p.name for p in parameters)
        positional_only = sum(1 for p in parameters if p.kind is inspect.Parameter.POSITIONAL_ONLY)
        changes: dict[str, Any] = {
            "co_varnames": names + template_code.co_varnames[len(names):],
            "co_posonlyargcount": positional_only,
            "co_name": method.name,
        }
        if sys.version_info >= (3, 11):
            changes["co_qualname"] = qualname
        self.name = method.name
        self.code = template_code.replace(**changes)
        self.defaults = tuple(p.default for p in parameters if p.default is not _EMPTY) or None
        self.qualname = qualname
        self.annotations = annotations_of(method.signature)
        self.doc = method.doc


def _template_code(flavor: str, arity: int, blocking: bool) -> CodeType:
    """The code of the closure that factory ``call<arity>`` of ``flavor`` returns."""
    factory = flavor_namespace(flavor)[f"call{arity}{'_blocking' if blocking else ''}"]
    return next(c for c in factory.__code__.co_consts if isinstance(c, CodeType))


def _eligible(method: MethodSpec, template_code: CodeType) -> bool:
    """A method gets a call function when all its parameters go by position and none is one of the template's own
    (underscored) names."""
    parameters = method.signature.parameters.values()
    taken = set(template_code.co_varnames[len(parameters):]) | set(template_code.co_freevars)
    return all(p.kind in _PASSABLE_BY_POSITION and p.name not in taken for p in parameters)


_renamed: "weakref.WeakKeyDictionary[type, dict[tuple[str, str, str], Optional[_Renamed]]]" = (
    weakref.WeakKeyDictionary()
)


def _renamed_method(
    spec: WorkerSpec, method: MethodSpec, flavor: str, blocking: bool, class_name: str
) -> Optional[_Renamed]:
    """``method``'s call function of ``flavor`` for one proxy class (``class_name`` names mode and blocking), or
    None when the method cannot have one."""
    per_class = _renamed.get(spec.cls)
    if per_class is None:
        per_class = _renamed[spec.cls] = {}
    key = (class_name, flavor, method.name)
    if key not in per_class:
        per_class[key] = None
        arity = len(method.signature.parameters)
        if arity <= MAX_ARITY:
            code = _template_code(flavor, arity, blocking)
            if _eligible(method, code):
                per_class[key] = _Renamed(method, code, f"{class_name}.{method.name}")
    return per_class[key]


Flavor = tuple[str, dict[str, Any]]
"""Which template a call function comes from, and the values its closure holds (see ``call_functions``)."""


def call_functions(
    spec: WorkerSpec, flavor_of: Callable[[MethodSpec], Flavor], blocking: bool, class_name: str, lifetime: object
) -> dict[str, Callable[..., Any]]:
    """Each eligible method's call function for one proxy, of the flavor ``flavor_of`` gives that method, its
    closure cells filled from that flavor's values (plus ``name``).

    Each function holds ``lifetime`` (see ``concurry.core.proxy.Lifetime``), so the worker outlives the proxy
    while a call function of it is still referenced.
    """
    functions: dict[str, Callable[..., Any]] = {}
    for method in spec.methods:
        flavor, values = flavor_of(method)
        renamed = _renamed_method(spec, method, flavor, blocking, class_name)
        if renamed is None:
            continue
        cells = tuple(_cell(free, renamed.name, values) for free in renamed.code.co_freevars)
        function = FunctionType(renamed.code, flavor_namespace(flavor), renamed.name, renamed.defaults, cells)
        function.__qualname__ = renamed.qualname
        function.__annotations__ = renamed.annotations
        function.__doc__ = renamed.doc
        function.__dict__["_concurry_lifetime"] = lifetime
        functions[renamed.name] = function
    return functions


def _cell(free: str, method_name: str, values: dict[str, Any]) -> CellType:
    """The closure cell of template name ``free``: the template's names are the keys of ``values``, underscored, and
    ``_name`` is the method's name. A value that is a cell is used as it is: the backend keeps it to refill later
    (sync mode's ``stop()`` does)."""
    if free == "_name":
        return CellType(method_name)
    value = values[free[1:]]
    return value if isinstance(value, CellType) else CellType(value)
