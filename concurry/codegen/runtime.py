"""Runtime proxy classes: one rendered source text per (worker class, mode, blocking), exec'd once and cached.

Each worker method becomes a real method whose parameters are the worker method's own, so wrong arity fails
at the call site, ``inspect.signature`` matches and ``help()`` is useful. The source is registered in
``linecache`` so tracebacks and debuggers show the generated lines.
"""

from __future__ import annotations

import inspect
import linecache
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Any

from concurry.codegen.spec import MethodSpec, WorkerSpec

__all__ = ["proxy_class", "render_proxy_source"]

_TEMPLATES = Path(__file__).parent / "templates"

# Members of the proxy that a worker method may shadow: pydantic's deprecated v1 API, unused by the proxy.
_SHADOWABLE = frozenset({
    "construct", "copy", "dict", "from_orm", "json", "parse_file", "parse_obj", "parse_raw",
    "schema", "schema_json", "update_forward_refs", "validate",
})

_classes: "weakref.WeakKeyDictionary[type, dict[tuple[str, bool], type]]" = weakref.WeakKeyDictionary()


@lru_cache(maxsize=1)
def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template("proxy.py.j2")


def _receiver(method: MethodSpec) -> str:
    names = set(method.signature.parameters)
    receiver = "self"
    while receiver in names:
        receiver = "_" + receiver
    return receiver


def _render_method(method: MethodSpec, defaults: list[Any]) -> dict[str, str]:
    """Parameter list and forwarding expressions of one method; defaults are referenced from ``_defaults``."""
    P = inspect.Parameter
    params: list[str] = []
    positional: list[str] = []
    keyword: list[str] = []
    star_args = star_kwargs = None
    saw_star = False
    last_kind = None
    for param in method.signature.parameters.values():
        if last_kind == P.POSITIONAL_ONLY and param.kind != P.POSITIONAL_ONLY:
            params.append("/")
        if param.kind == P.KEYWORD_ONLY and not saw_star:
            params.append("*")
            saw_star = True
        text = param.name
        if param.default is not P.empty:
            text += f"=_defaults[{len(defaults)}]"
            defaults.append(param.default)
        if param.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
            positional.append(param.name)
        elif param.kind == P.VAR_POSITIONAL:
            text = "*" + param.name
            star_args = param.name
            saw_star = True
        elif param.kind == P.KEYWORD_ONLY:
            keyword.append(param.name)
        else:
            text = "**" + param.name
            star_kwargs = param.name
        params.append(text)
        last_kind = param.kind
    if last_kind == P.POSITIONAL_ONLY:
        params.append("/")

    items = positional + ([f"*{star_args}"] if star_args else [])
    args = "()" if not items else "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if keyword:
        entries = [f"{name!r}: {name}" for name in keyword] + ([f"**{star_kwargs}"] if star_kwargs else [])
        kwargs = "{" + ", ".join(entries) + "}"
    else:
        kwargs = star_kwargs or "None"
    return {
        "name": method.name,
        "receiver": _receiver(method),
        "params": "".join(", " + p for p in params),
        "args": args,
        "kwargs": kwargs,
    }


def _class_name(spec: WorkerSpec, mode: str, blocking: bool) -> str:
    return f"{spec.cls.__name__}{mode.capitalize()}{'Blocking' if blocking else ''}Proxy"


def render_proxy_source(spec: WorkerSpec, mode: str, blocking: bool) -> tuple[str, list[Any]]:
    """The source of the proxy class and the default values it refers to."""
    defaults: list[Any] = []
    methods = [_render_method(m, defaults) for m in spec.methods]
    bases = "_mixin, _base" if spec.proxy_mixin is not None else "_base"
    source = _template().render(
        worker=f"{spec.cls.__module__}.{spec.cls.__qualname__}",
        flavor=f"{mode} mode, {'blocking' if blocking else 'future'}",
        class_name=_class_name(spec, mode, blocking),
        bases=bases,
        methods=methods,
        result_tail=".result()" if blocking else "",
    )
    return source, defaults


def _check_collisions(spec: WorkerSpec, base: type) -> None:
    fields = getattr(base, "model_fields", {})  # pydantic keeps fields off the class namespace
    clashes = [
        name for name in spec.method_names if (hasattr(base, name) or name in fields) and name not in _SHADOWABLE
    ]
    if clashes:
        name = clashes[0]
        raise TypeError(
            f"{spec.cls.__qualname__}.{name} clashes with the worker proxy's own attribute {name!r}: "
            f"rename the method (proxy attributes cannot be worker methods: "
            f"{', '.join(sorted({*fields, *(n for n in dir(base) if not n.startswith('_'))} - _SHADOWABLE))})"
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
    class_name = _class_name(spec, mode, blocking)
    filename = f"<concurry proxy {spec.cls.__module__}.{spec.cls.__qualname__} {mode}{' blocking' if blocking else ''}>"
    namespace: dict[str, Any] = {
        "__name__": "concurry.codegen.generated",
        "_base": base,
        "_mixin": spec.proxy_mixin,
        "_defaults": defaults,
    }
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    cls: type = namespace[class_name]
    for method in spec.methods:
        function = cls.__dict__[method.name]
        receiver = inspect.Parameter(_receiver(method), inspect.Parameter.POSITIONAL_ONLY)
        function.__signature__ = method.signature.replace(
            parameters=[receiver, *method.signature.parameters.values()]
        )
        function.__doc__ = method.doc
    cls.__qualname__ = class_name
    return cls
