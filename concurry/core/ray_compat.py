"""Which worker classes Ray can run, decided without importing ray.

Ray wraps an actor class in a way that conflicts with pydantic's ``__setattr__``, so workers that *are* pydantic
models (``Worker + BaseModel`` or ``Worker + morphic.Typed``) are refused in ray mode and, when ray is installed,
get a warning in the other modes so the surprise does not come later.
"""

from __future__ import annotations

import importlib.util
import warnings
from functools import lru_cache
from typing import Optional

__all__ = ["RAY_MISSING", "pydantic_model_refusal", "ray_actor_option_hint", "warn_if_not_ray_compatible"]

RAY_MISSING = "mode='ray' needs the ray package, which is not installed: pip install 'concurry[ray]'"

# Ray actor options a Ray user may pass to options() directly; they belong in actor_options.
_RAY_ACTOR_OPTIONS = frozenset({
    "accelerator_type", "concurrency_groups", "get_if_exists", "label_selector", "lifetime", "max_concurrency",
    "max_pending_calls", "max_restarts", "max_task_retries", "memory", "name", "namespace", "object_store_memory",
    "placement_group", "placement_group_bundle_index", "placement_group_capture_child_tasks", "runtime_env",
    "scheduling_strategy",
})


def ray_actor_option_hint(option: str) -> str:
    """For an unknown ``options()`` keyword that is a Ray actor option: where it goes instead."""
    if option not in _RAY_ACTOR_OPTIONS:
        return ""
    return f"; {option} is a Ray actor option: with mode='ray', pass actor_options={{{option!r}: ...}}"


def _is_pydantic_model(cls: object) -> bool:
    from pydantic import BaseModel

    return isinstance(cls, type) and issubclass(cls, BaseModel)


def pydantic_model_refusal(cls: type) -> Optional[ValueError]:
    """The error for starting ``cls`` on Ray, or None when Ray can run it."""
    if not _is_pydantic_model(cls):
        return None
    name = cls.__name__
    return ValueError(
        f"Cannot create Ray worker with Pydantic-based class '{name}'.\n"
        f"Ray's actor wrapping mechanism conflicts with Pydantic's __setattr__ implementation.\n"
        f"\n"
        f"Workaround: Use composition instead of inheritance:\n"
        f"  class {name}(Worker):\n"
        f"      def __init__(self, ...):\n"
        f"          self.config = YourPydanticModel(...)\n"
        f"\n"
        f"or validate arguments with @morphic.validate or @pydantic.validate_call on __init__ and the methods, "
        f"which work in every mode including ray."
    )


@lru_cache(maxsize=1)
def _ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def warn_if_not_ray_compatible(cls: type, stacklevel: int = 4) -> None:
    """Warn (outside ray mode) that a pydantic-model worker will not run on Ray, when ray is installed."""
    if _is_pydantic_model(cls) and _ray_installed():
        warnings.warn(
            f"Worker class '{cls.__name__}' inherits from Pydantic BaseModel. "
            f"This worker will NOT be compatible with Ray mode: Ray's actor wrapping conflicts with "
            f"Pydantic's __setattr__. To run it on Ray, keep the model in an attribute (composition) or "
            f"validate with @morphic.validate / @pydantic.validate_call instead.",
            UserWarning,
            stacklevel=stacklevel,
        )
