"""mypy plugin: precise types for worker proxies, and the option checks a proxy needs.

Enable it with ``plugins = ["concurry.mypy_plugin"]``. It gives the types the generated stubs give pyright:

- ``proxy.method(...)`` is ``Future[R]`` in future mode, ``R`` in blocking mode and ``Future[R] | R`` when
  ``blocking`` is a plain ``bool``; ``async def`` methods give their awaited result; every parameter ``T`` also
  accepts a future of a ``T`` (``FutureOf[T]``: futures are unwrapped before the call runs). A public data
  attribute reads as its type.
- An unknown or private name on a proxy is an error, as is an option that does not apply to the mode.
- ``@worker`` classes are workers; a generic worker used unparametrised infers its type from ``init(...)``.

Only ordinary types are produced: nothing is stored in the cache beyond what mypy stores itself, so
incremental runs give the same answers as cold ones. Imports mypy and ``concurry.core.option_modes`` only.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Final, Optional

from mypy.checker import TypeChecker
from mypy.checkmember import analyze_member_access
from mypy.errorcodes import ATTR_DEFINED, ErrorCode
from mypy.lookup import lookup_fully_qualified
from mypy.maptype import map_instance_to_supertype
from mypy.mro import MroError, calculate_mro
from mypy.nodes import (
    ARG_NAMED_OPT,
    CallExpr,
    Context,
    Decorator,
    Expression,
    FuncDef,
    OverloadedFuncDef,
    RefExpr,
    StrExpr,
    SymbolTableNode,
    TypeInfo,
    Var,
)
from mypy.plugin import (
    AttributeContext,
    ClassDefContext,
    MethodContext,
    MethodSigContext,
    Plugin,
)
from mypy.types import (
    AnyType,
    CallableType,
    FunctionLike,
    Instance,
    LiteralType,
    Overloaded,
    ParamSpecType,
    Type,
    TypeOfAny,
    TypeType,
    TypeVarType,
    UnionType,
    get_proper_type,
)

from concurry.core.option_modes import MODE_SPECIFIC, MODES

__all__ = ["ConcurryPlugin", "plugin"]

WORKER: Final = "concurry.core.worker.Worker"
WORKER_DECORATOR: Final = "concurry.core.worker.worker"
BUILDER: Final = "concurry.core.worker.WorkerBuilder"
PROXY: Final = "concurry.core.proxy.WorkerProxy"
FUTURE: Final = "concurry.core.future.Future"
FUTURE_OF: Final = "concurry.core.future.FutureOf"  # what a parameter accepts: covariant, unlike Future
TASK_WORKER: Final = "concurry.core.task.TaskWorker"
TASK_PROXY: Final = "concurry.core.task.TaskWorkerProxy"
COROUTINE: Final = "typing.Coroutine"
PROXY_MIXIN: Final = "__concurry_proxy_mixin__"
# Where an unparametrised generic worker's constructor waits for ``init(...)`` to infer its type arguments.
CONSTRUCTOR: Final = "__concurry_constructor__"

# Classes whose members never become proxy methods (mirrors concurry.codegen.spec).
PYDANTIC_MODEL: Final = "pydantic.main.BaseModel"
FRAMEWORK: Final = frozenset({
    "builtins.object",
    WORKER,
    PYDANTIC_MODEL,
    "pydantic_settings.main.BaseSettings",
    "morphic.typed.Typed",
    "abc.ABC",
})
# Decorators that make a pydantic model member a validator or serializer, not a method.
PYDANTIC_DECORATORS: Final = frozenset({
    "pydantic.functional_validators.field_validator",
    "pydantic.functional_validators.model_validator",
    "pydantic.functional_serializers.field_serializer",
    "pydantic.functional_serializers.model_serializer",
    "pydantic.fields.computed_field",
    "pydantic.deprecated.class_validators.validator",
    "pydantic.deprecated.class_validators.root_validator",
})
WORKER_OPTION: Final = ErrorCode("concurry-option", "Option does not apply to the worker's mode", "General")


class ConcurryPlugin(Plugin):
    """Dispatch only: each hook's work lives in a function below."""

    def get_attribute_hook(self, fullname: str) -> Optional[Callable[[AttributeContext], Type]]:
        owner, _, name = fullname.rpartition(".")
        if owner == PROXY:
            return partial(proxy_attribute, name)
        return None

    def get_method_signature_hook(self, fullname: str) -> Optional[Callable[[MethodSigContext], FunctionLike]]:
        owner, _, name = fullname.rpartition(".")
        if name == "options" and self._is_worker(owner):
            return options_signature
        if owner == PROXY and self._is_model_member(name):
            return partial(shadowing_method, name)
        if fullname == f"{BUILDER}.init":
            return init_signature
        return None

    def get_method_hook(self, fullname: str) -> Optional[Callable[[MethodContext], Type]]:
        owner, _, name = fullname.rpartition(".")
        if name == "options" and self._is_worker(owner):
            return options_result
        return None

    def get_class_decorator_hook_2(self, fullname: str) -> Optional[Callable[[ClassDefContext], bool]]:
        if fullname == WORKER_DECORATOR:
            return make_worker
        return None

    def _is_model_member(self, name: str) -> bool:
        """A pydantic model method of the proxy, which a worker method of the same name shadows at run time."""
        node = self.lookup_fully_qualified(PYDANTIC_MODEL)
        return node is not None and isinstance(node.node, TypeInfo) and name in node.node.names

    def _is_worker(self, fullname: str) -> bool:
        node = self.lookup_fully_qualified(fullname)
        return node is not None and isinstance(node.node, TypeInfo) and node.node.has_base(WORKER)


def plugin(version: str) -> type[ConcurryPlugin]:
    return ConcurryPlugin


# -- proxy members ---------------------------------------------------------------------------------------------


def proxy_attribute(name: str, ctx: AttributeContext) -> Type:
    """The type of ``proxy.<name>`` for a name the proxy class itself does not define."""
    proxy = ctx.type
    if not isinstance(proxy, Instance) or proxy.type.get(name) is not None:
        return ctx.default_attr_type  # the proxy's own member (mypy also calls this hook for those)
    found = _worker_of(proxy)
    if found is None:
        return ctx.default_attr_type  # the worker class is unknown here: nothing to check against
    worker, blocking = found
    assert isinstance(ctx.api, TypeChecker)
    checker = ctx.api
    label = worker.type.name
    if name.startswith("_"):
        ctx.api.fail(
            f'"{name}" is private: a proxy of "{label}" reaches only public methods and attributes',
            ctx.context,
            code=ATTR_DEFINED,
        )
        return AnyType(TypeOfAny.from_error)

    mixin = _proxy_mixin(worker.type)
    if mixin is not None and mixin.get(name) is not None:  # proxy-side methods (TaskWorker.map) keep their type
        return _member(name, Instance(mixin, []), ctx.context, checker)

    owner = next((info for info in worker.type.mro if name in info.names), None)
    node = owner.names[name] if owner is not None else None
    if owner is None or node is None or not _is_exposed(name, owner, node, worker.type):
        ctx.api.fail(
            f'Worker "{label}" has no public method or attribute "{name}"', ctx.context, code=ATTR_DEFINED
        )
        return AnyType(TypeOfAny.from_error)

    member = _member(name, worker, ctx.context, checker)
    if not _is_method(node):
        return member  # a data attribute or property: the proxy reads it and returns the value itself
    proper = get_proper_type(member)
    if isinstance(proper, CallableType):
        return _proxy_callable([proper], blocking, checker)
    if isinstance(proper, Overloaded):
        return _proxy_callable(proper.items, blocking, checker)
    return member


def shadowing_method(name: str, ctx: MethodSigContext) -> FunctionLike:
    """A call of a worker method named like a pydantic model method of the proxy (``validate``, ``copy``...):
    the generated proxy method shadows the model's, so the call has the worker method's proxy signature."""
    found = _worker_of(ctx.type) if isinstance(ctx.type, Instance) else None
    if found is None:
        return ctx.default_signature
    worker, blocking = found
    owner = next((info for info in worker.type.mro if name in info.names), None)
    if owner is None or not _is_exposed(name, owner, owner.names[name], worker.type):
        return ctx.default_signature
    if not _is_method(owner.names[name]):
        return ctx.default_signature
    assert isinstance(ctx.api, TypeChecker)
    member = get_proper_type(_member(name, worker, ctx.context, ctx.api))
    if isinstance(member, CallableType):
        return _proxy_callable([member], blocking, ctx.api)
    if isinstance(member, Overloaded):
        return _proxy_callable(member.items, blocking, ctx.api)
    return ctx.default_signature


def _worker_of(proxy: Instance) -> Optional[tuple[Instance, Type]]:
    """The worker type and the blocking flag of a ``WorkerProxy[W, B]`` (or subclass) type, if ``W`` is known."""
    proxy_info = next((info for info in proxy.type.mro if info.fullname == PROXY), None)
    if proxy_info is None:
        return None
    worker_arg, blocking = map_instance_to_supertype(proxy, proxy_info).args
    worker = get_proper_type(worker_arg)
    if isinstance(worker, TypeVarType):
        worker = get_proper_type(worker.upper_bound)
    if not isinstance(worker, Instance) or worker.type.fullname == "builtins.object":
        return None
    return worker, blocking


def _member(name: str, receiver: Instance, context: Context, checker: TypeChecker) -> Type:
    return analyze_member_access(
        name,
        receiver,
        context,
        is_lvalue=False,
        is_super=False,
        is_operator=False,
        original_type=receiver,
        chk=checker,
    )


def _proxy_mixin(info: TypeInfo) -> Optional[TypeInfo]:
    """The class whose methods the runtime adds to this worker's proxies (``__concurry_proxy_mixin__``)."""
    node = info.get(PROXY_MIXIN)
    if node is None or not isinstance(node.node, Var) or node.node.type is None:
        return None
    declared = get_proper_type(node.node.type)
    if isinstance(declared, TypeType) and isinstance(declared.item, Instance):
        return declared.item.type
    if isinstance(declared, CallableType) and declared.is_type_obj():
        return declared.type_object()
    return None


def _is_exposed(name: str, owner: TypeInfo, node: SymbolTableNode, worker: TypeInfo) -> bool:
    """Whether the runtime proxy reaches ``name``: defined by a user class, not a framework one."""
    if owner.fullname in FRAMEWORK or isinstance(node.node, TypeInfo):
        return False
    if any(info.fullname in FRAMEWORK and name in info.names for info in worker.mro):
        return False
    if isinstance(node.node, Decorator):
        for decorator in node.node.decorators:
            target = decorator.callee if isinstance(decorator, CallExpr) else decorator
            if isinstance(target, RefExpr) and target.fullname in PYDANTIC_DECORATORS:
                return False
    return True


def _is_method(node: SymbolTableNode) -> bool:
    target = node.node
    if isinstance(target, FuncDef):
        return not target.is_property
    if isinstance(target, Decorator):
        return not target.func.is_property and not target.var.is_property
    if isinstance(target, OverloadedFuncDef):
        return not target.is_property
    return False


def _proxy_callable(items: list[CallableType], blocking: Type, checker: TypeChecker) -> FunctionLike:
    """The worker method's signature as the proxy offers it."""
    rewritten: list[CallableType] = []
    for item in items:
        result = _result_type(_awaited(item.ret_type), blocking, checker)
        generic_params = [
            i for i, arg in enumerate(item.arg_types) if isinstance(get_proper_type(arg), TypeVarType)
        ]
        if generic_params:
            # mypy infers Never for ``U | FutureOf[U]`` given a future: an item taking the futures comes first.
            futures = [
                _named(FUTURE_OF, arg, checker) if i in generic_params else _accept_future(arg, checker)
                for i, arg in enumerate(item.arg_types)
            ]
            taking_futures = item.copy_modified(  # pyright: ignore[reportUnknownMemberType]
                arg_types=futures, ret_type=result
            )
            rewritten.append(taking_futures)
        accepting = [_accept_future(arg, checker) for arg in item.arg_types]
        accepting_futures = item.copy_modified(  # pyright: ignore[reportUnknownMemberType]
            arg_types=accepting, ret_type=result
        )
        rewritten.append(accepting_futures)
    return rewritten[0] if len(rewritten) == 1 else Overloaded(rewritten)


def _awaited(result: Type) -> Type:
    """What a call produces once a returned coroutine has run: the worker awaits coroutines for the caller."""
    proper = get_proper_type(result)
    if isinstance(proper, Instance) and proper.type.fullname == COROUTINE and len(proper.args) == 3:
        return proper.args[2]
    return result


def _result_type(result: Type, blocking: Type, checker: TypeChecker) -> Type:
    flag = get_proper_type(blocking)
    if isinstance(flag, LiteralType) and flag.value is True:
        return result
    if isinstance(flag, LiteralType) and flag.value is False:
        return _future(result, checker)
    return UnionType.make_union([_future(result, checker), result])


def _future(inner: Type, checker: TypeChecker) -> Instance:
    return _named(FUTURE, inner, checker)


def _named(fullname: str, inner: Type, checker: TypeChecker) -> Instance:
    node = lookup_fully_qualified(fullname, checker.modules, raise_on_missing=True)
    assert node is not None and isinstance(node.node, TypeInfo)
    return Instance(node.node, [inner])


def _accept_future(arg: Type, checker: TypeChecker) -> Type:
    """``T`` becomes ``T | FutureOf[T]``: the proxy unwraps futures passed as arguments."""
    proper = get_proper_type(arg)
    if isinstance(proper, (AnyType, ParamSpecType)):  # ParamSpec ``*args``/``**kwargs`` stay as they are
        return arg
    if isinstance(proper, Instance) and proper.type.fullname == "builtins.object":
        return arg
    return UnionType.make_union([arg, _named(FUTURE_OF, arg, checker)])


# -- options() and init() --------------------------------------------------------------------------------------


def options_signature(ctx: MethodSigContext) -> FunctionLike:
    """Report a mode that does not exist, or an option given to a mode it does not apply to, in plain words.

    The overloads already reject such calls; this names the problem, then lets the call match so mypy does not
    add its list of overloads.
    """
    call = ctx.context
    signature = ctx.default_signature
    if not isinstance(call, CallExpr):
        return signature
    given: dict[str, Expression] = {name: arg for name, arg in zip(call.arg_names, call.args) if name is not None}
    problems = _option_problems(given)
    if not problems:
        return signature
    for where, message in problems:
        ctx.api.fail(message, where, code=WORKER_OPTION)
    relaxed = {"mode", *(name for name in given if name in MODE_SPECIFIC)}
    any_type = AnyType(TypeOfAny.from_error)
    arg_types = [any_type if name in relaxed else t for name, t in zip(signature.arg_names, signature.arg_types)]
    missing = sorted(relaxed - set(signature.arg_names))
    return signature.copy_modified(  # pyright: ignore[reportUnknownMemberType]
        arg_types=arg_types + [any_type] * len(missing),
        arg_kinds=signature.arg_kinds + [ARG_NAMED_OPT] * len(missing),
        arg_names=signature.arg_names + missing,
    )


def _option_problems(given: dict[str, Expression]) -> list[tuple[Expression, str]]:
    mode_expr = given.get("mode")
    if mode_expr is None:
        mode: Optional[str] = MODES[0]  # the default mode
    elif isinstance(mode_expr, StrExpr):
        mode = mode_expr.value
        if mode not in MODES:
            allowed = ", ".join(f'"{m}"' for m in MODES)
            return [(mode_expr, f'Worker mode "{mode}" does not exist; use one of {allowed}')]
    else:
        return []  # a Mode-typed variable: the overloads check each of its values
    problems: list[tuple[Expression, str]] = []
    for name, arg in given.items():
        modes = MODE_SPECIFIC.get(name)
        if modes is not None and mode not in modes:
            where = " or ".join(f'mode="{m}"' for m in modes)
            problems.append((arg, f'Option "{name}" applies only to {where}, not to mode="{mode}"'))
    return problems


def options_result(ctx: MethodContext) -> Type:
    """Keep an unparametrised generic worker's constructor so ``init(...)`` can infer the type arguments."""
    builder = get_proper_type(ctx.default_return_type)
    receiver = ctx.type
    if not isinstance(builder, Instance) or builder.type.fullname != BUILDER:
        return ctx.default_return_type
    if not isinstance(receiver, FunctionLike) or not receiver.is_type_obj() or not _has_type_params(receiver):
        return ctx.default_return_type
    return builder.copy_with_extra_attr(CONSTRUCTOR, receiver)


def _has_type_params(constructor: FunctionLike) -> bool:
    return any(item.variables for item in constructor.items)


def init_signature(ctx: MethodSigContext) -> FunctionLike:
    """``init(...)``: a ``TaskWorker`` subclass starts an ordinary proxy, and an unparametrised generic worker's
    ``init`` is its constructor (so the call infers the type arguments), returning the proxy it starts."""
    builder = ctx.type
    signature = ctx.default_signature
    if not isinstance(builder, Instance) or len(builder.args) != 3:
        return signature
    assert isinstance(ctx.api, TypeChecker)
    signature = _task_proxy_for_task_worker_only(builder, signature, ctx.api)
    constructor = get_proper_type(builder.extra_attrs.attrs.get(CONSTRUCTOR)) if builder.extra_attrs else None
    if not isinstance(constructor, CallableType):
        return signature  # overloaded constructors keep the default signature
    proxy = get_proper_type(signature.ret_type)
    if not isinstance(proxy, Instance) or len(proxy.args) != 2:
        return signature
    started = proxy.copy_modified(  # pyright: ignore[reportUnknownMemberType]
        args=[constructor.ret_type, proxy.args[1]]
    )
    return constructor.copy_modified(  # pyright: ignore[reportUnknownMemberType]
        ret_type=started, fallback=signature.fallback, name=signature.name
    )


def _task_proxy_for_task_worker_only(builder: Instance, signature: CallableType, checker: TypeChecker) -> CallableType:
    """mypy lets ``init``'s ``TaskWorker`` overload match a subclass too; the subclass's own methods need the
    ordinary proxy, which still has ``submit`` and ``map``."""
    result = get_proper_type(signature.ret_type)
    worker = get_proper_type(builder.args[1])
    if not (isinstance(result, Instance) and result.type.fullname == TASK_PROXY):
        return signature
    if not isinstance(worker, Instance) or worker.type.fullname == TASK_WORKER:
        return signature
    node = lookup_fully_qualified(PROXY, checker.modules, raise_on_missing=True)
    assert node is not None and isinstance(node.node, TypeInfo)
    proxy = Instance(node.node, [worker, builder.args[2]])
    return signature.copy_modified(ret_type=proxy)  # pyright: ignore[reportUnknownMemberType]


# -- @worker ---------------------------------------------------------------------------------------------------


def make_worker(ctx: ClassDefContext) -> bool:
    """``@worker class C: ...`` is a ``Worker`` subclass for the checker, as it is at run time."""
    info = ctx.cls.info
    if info.has_base(WORKER):
        return True
    node = ctx.api.lookup_fully_qualified_or_none(WORKER)
    if node is None or not isinstance(node.node, TypeInfo):
        return False  # not analysed yet: ask to be called again
    bases = [base for base in info.bases if base.type.fullname != "builtins.object"]
    info.bases = [*bases, Instance(node.node, [])]
    info.mro = []
    try:
        calculate_mro(info)
    except MroError:
        ctx.api.fail(f'@worker cannot make "{info.name}" a Worker: its bases give no consistent order', ctx.cls)
    return True

