"""Runtime proxy classes: one rendered source text per (worker class, mode, blocking), exec'd once and cached.

Each worker method becomes a real method whose parameters are the worker method's own, so wrong arity fails
at the call site, ``inspect.signature`` matches and ``help()`` is useful. The source is registered in
``linecache`` so tracebacks and debuggers show the generated lines.

Generation is paid once per worker class and mode, within about a millisecond for 20 methods: the template is
compiled once per process, and the class is created without pydantic's model construction (``_MethodsOnly``).
"""

from __future__ import annotations

import inspect
import linecache
import weakref
from abc import ABCMeta
from functools import lru_cache
from pathlib import Path
from typing import Any

from concurry.codegen.spec import MethodSpec, WorkerSpec

__all__ = ["annotations_of", "class_name", "proxy_class", "render_proxy_source", "template"]

_TEMPLATES = Path(__file__).parent / "templates"

# Members of the proxy that a worker method may shadow: pydantic's deprecated v1 API, unused by the proxy.
_SHADOWABLE = frozenset({
    "construct", "copy", "dict", "from_orm", "json", "parse_file", "parse_obj", "parse_raw",
    "schema", "schema_json", "update_forward_refs", "validate",
})

_classes: "weakref.WeakKeyDictionary[type, dict[tuple[str, bool], type]]" = weakref.WeakKeyDictionary()


@lru_cache(maxsize=None)
def template(name: str) -> Any:
    """A template of ``concurry/codegen/templates``, loaded once per process (jinja2 is imported on first use)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template(name)


_POSITIONAL_ONLY = inspect.Parameter.POSITIONAL_ONLY
_POSITIONAL_OR_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD
_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
_EMPTY = inspect.Parameter.empty


def _render_method(method: MethodSpec, defaults: list[Any]) -> tuple[str, ...]:
    """What the template needs of one method: name, receiver, parameter list and forwarding expressions.

    Defaults are referenced from ``_defaults``. The receiver is positional-only, so with the annotations ``_build``
    copies from the worker's signature, ``inspect.signature`` of the method is the worker method's own.
    """
    parameters = method.signature.parameters
    receiver = "self"
    while receiver in parameters:
        receiver = "_" + receiver
    params: list[str] = []
    positional: list[str] = []
    keyword: list[str] = []
    star_args = star_kwargs = ""
    saw_star = positional_only = False
    for name, param in parameters.items():
        kind = param.kind
        if kind is not _POSITIONAL_ONLY and positional_only:
            params.append("/")
            positional_only = False
        if param.default is not _EMPTY:
            params.append(f"{name}=_defaults[{len(defaults)}]")
            defaults.append(param.default)
        else:
            params.append(name)
        if kind is _POSITIONAL_ONLY:
            positional_only = True
            positional.append(name)
        elif kind is _POSITIONAL_OR_KEYWORD:
            positional.append(name)
        elif kind is _VAR_POSITIONAL:
            params[-1] = "*" + name
            star_args = name
            saw_star = True
        elif kind is _KEYWORD_ONLY:
            if not saw_star:
                params.insert(-1, "*")
                saw_star = True
            keyword.append(name)
        else:
            params[-1] = "**" + name
            star_kwargs = name
    if positional_only:
        params.append("/")
    elif not parameters or next(iter(parameters.values())).kind is not _POSITIONAL_ONLY:
        params.insert(0, "/")  # the receiver alone is positional-only

    items = positional + [f"*{star_args}"] if star_args else positional
    args = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if keyword:
        entries = [f"{name!r}: {name}" for name in keyword]
        if star_kwargs:
            entries.append(f"**{star_kwargs}")
        kwargs = "{" + ", ".join(entries) + "}"
    else:
        kwargs = star_kwargs or "None"
    return (
        method.name,
        f'"{method.name}"',  # an identifier: quoting needs no escapes
        receiver,
        "".join(", " + p for p in params),
        args,
        kwargs,
    )


def annotations_of(signature: inspect.Signature) -> dict[str, Any]:
    annotations = {name: p.annotation for name, p in signature.parameters.items() if p.annotation is not _EMPTY}
    if signature.return_annotation is not _EMPTY:
        annotations["return"] = signature.return_annotation
    return annotations


def class_name(spec: WorkerSpec, mode: str, blocking: bool) -> str:
    return f"{spec.cls.__name__}{mode.capitalize()}{'Blocking' if blocking else ''}Proxy"


def render_proxy_source(spec: WorkerSpec, mode: str, blocking: bool) -> tuple[str, list[Any]]:
    """The source of the proxy class and the default values it refers to."""
    defaults: list[Any] = []
    methods = [_render_method(m, defaults) for m in spec.methods]
    bases = "_mixin, _base" if spec.proxy_mixin is not None else "_base"
    source = template("proxy.py.j2").render(
        worker=f"{spec.cls.__module__}.{spec.cls.__qualname__}",
        flavor=f"{mode} mode, {'blocking' if blocking else 'future'}",
        class_name=class_name(spec, mode, blocking),
        bases=bases,
        methods=methods,
        result_tail=".result()" if blocking else "",
    )
    return source, defaults


class _MethodsOnly(type):
    """Metaclass of the stand-in a generated class statement names as ``_base``.

    A generated proxy class adds methods only: its fields, validators, config and schema are exactly its proxy
    base's, which pydantic's metaclass would rebuild from scratch for a new subclass (the larger part of generating
    a proxy). So ``class XProxy(_base):`` runs with ``_base`` bound to a stand-in of the real base, and this
    metaclass creates the class on the real base with only the ``ABCMeta`` part of the base's metaclass. Instances
    are validated by the base's validator, which fills in whatever instance it is given.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
        real: tuple[type, ...] = tuple(getattr(base, "_concurry_base") if type(base) is mcs else base for base in bases)
        return ABCMeta.__new__(type(real[-1]), name, real, namespace)


@lru_cache(maxsize=None)
def _stand_in(base: type) -> type:
    return type.__new__(_MethodsOnly, f"{base.__name__}StandIn", (), {"_concurry_base": base})


def _check_collisions(spec: WorkerSpec, base: type) -> None:
    # Names are looked up with dir(), never read: some of the base's class attributes are properties that compute
    # (morphic's param_names builds a JSON schema), and reading one could fail before the clash is reported.
    fields = getattr(base, "model_fields", {})  # pydantic keeps fields off the class namespace
    taken = {*fields, *(name for name in dir(base) if not name.startswith("_"))} - _SHADOWABLE
    clashes = [name for name in spec.method_names if name in taken]
    if clashes:
        name = clashes[0]
        raise TypeError(
            f"{spec.cls.__qualname__}.{name} clashes with the worker proxy's own attribute {name!r}: "
            f"rename the method (proxy attributes cannot be worker methods: {', '.join(sorted(taken))})"
        )


def proxy_class(spec: WorkerSpec, mode: str, blocking: bool) -> type:
    """The cached proxy class of ``spec`` for ``mode`` and ``blocking``, rendered on first use."""
    per_class = _classes.get(spec.cls)
    if per_class is None:
        per_class = _classes[spec.cls] = {}
    cls = per_class.get((mode, blocking))
    if cls is None:
        cls = per_class[(mode, blocking)] = _build(spec, mode, blocking)
    return cls


def _build(spec: WorkerSpec, mode: str, blocking: bool) -> type:
    from concurry.core.proxy import PROXY_BASES

    base = PROXY_BASES[mode]
    _check_collisions(spec, base)
    source, defaults = render_proxy_source(spec, mode, blocking)
    proxy_name = class_name(spec, mode, blocking)
    filename = f"<concurry proxy {spec.cls.__module__}.{spec.cls.__qualname__} {mode}{' blocking' if blocking else ''}>"
    namespace: dict[str, Any] = {
        "__name__": "concurry.codegen.generated",
        "_base": _stand_in(base),
        "_mixin": spec.proxy_mixin,
        "_defaults": defaults,
    }
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    cls: type = namespace[proxy_name]
    for method in spec.methods:
        function = cls.__dict__[method.name]
        function.__annotations__ = annotations_of(method.signature)
        function.__doc__ = method.doc
    cls.__qualname__ = proxy_name
    return cls
