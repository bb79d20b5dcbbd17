"""Which modes exist and which options apply to only some of them.

Dependency-free on purpose: the runtime validation (``options.py``) and the mypy plugin both read it.
"""

from __future__ import annotations

__all__ = ["MODES", "MODE_SPECIFIC", "POOL_MODES"]

MODES: tuple[str, ...] = ("sync", "thread", "asyncio", "process", "ray")

# Modes that run pools (``max_workers`` > 1); ``max_workers=1`` is accepted by every mode.
POOL_MODES: tuple[str, ...] = ("thread", "process", "ray")

# Options that only make sense for some modes; every other option applies to all of them.
MODE_SPECIFIC: dict[str, tuple[str, ...]] = {
    "mp_context": ("process",),
    "num_cpus": ("ray",),
    "num_gpus": ("ray",),
    "resources": ("ray",),
    "actor_options": ("ray",),
    "load_balancing": POOL_MODES,
    "max_queued_tasks": POOL_MODES,
}

