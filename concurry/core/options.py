"""Validation of ``Worker.options(...)``, done once per worker so the call path never validates.

Errors name the option, the value given and what is allowed. Values are coerced by pydantic
(``blocking="true"`` becomes ``True``).
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from concurry.core.option_modes import MODE_SPECIFIC, MODES, POOL_MODES
from concurry.core.ray_compat import ray_actor_option_hint
from concurry.core.worker_side import RETRY_OPTIONS, check_option

__all__ = ["MODES", "LoadBalancing", "Mode", "MpContext", "WorkerOptions", "validate_options"]

Mode = Literal["sync", "thread", "asyncio", "process", "ray"]
MpContext = Literal["fork", "spawn", "forkserver"]
LoadBalancing = Literal["round_robin", "least_active", "least_total", "random"]

class WorkerOptions(BaseModel):
    """The validated options of one ``options()`` call."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    mode: Mode = "sync"
    blocking: bool = False
    unwrap_futures: bool = True
    mp_context: MpContext = "fork"
    num_cpus: float = Field(default=1, ge=0)
    num_gpus: float = Field(default=0, ge=0)
    resources: Optional[dict[str, float]] = None
    actor_options: Optional[dict[str, Any]] = None
    # Retries (docs/retries.md): each a value, or a dict of values by method name ('*': the others).
    num_retries: Any = 0
    retry_on: Any = None
    retry_until: Any = None
    retry_algorithm: Any = "exponential"
    retry_wait: Any = 1.0
    retry_jitter: Any = 0.3
    retry: Any = None  # a RetryConfig (or a dict of them by method), instead of the individual retry options
    limits: Any = None  # a LimitSet or a list of limits (docs/limits.md); becomes a LimitSet
    # Pools (thread, process and ray): how many workers, which one takes the next call, and how many calls each
    # may have in flight before a producer waits (None: no bound; blocking proxies are never bounded).
    max_workers: int = Field(default=1, ge=1)
    load_balancing: LoadBalancing = "round_robin"
    max_queued_tasks: Optional[int] = Field(default=None, ge=1)

    _check_worker_side = field_validator(*RETRY_OPTIONS, "retry", "limits")(check_option)


_ALLOWED = tuple(WorkerOptions.model_fields)


def validate_options(owner: str, given: Mapping[str, Any]) -> WorkerOptions:
    """Check ``given`` (the keywords of ``owner.options(...)``) and return the coerced options."""
    unknown = sorted(set(given) - set(_ALLOWED))
    if unknown:
        name = unknown[0]
        raise ValueError(
            f"{owner}.options() got an unknown option {name}={given[name]!r}; "
            f"allowed options are: {', '.join(_ALLOWED)}{ray_actor_option_hint(name)}"
        )
    mode = given.get("mode", "sync")
    if mode not in MODES:
        raise ValueError(
            f"{owner}.options() got mode={mode!r}; allowed modes are: {', '.join(repr(m) for m in MODES)}"
        )
    for name, modes in MODE_SPECIFIC.items():
        if name in given and mode not in modes:
            where = " or ".join(f"mode={m!r}" for m in modes)
            raise ValueError(
                f"{owner}.options() got {name}={given[name]!r}, which applies only to {where}, not mode={mode!r}"
            )
    workers = given.get("max_workers", 1)
    if mode not in POOL_MODES and isinstance(workers, int) and workers > 1:
        raise ValueError(
            f"{owner}.options() got max_workers={workers!r} with mode={mode!r}, which runs one worker; "
            f"pools need mode='thread', 'process' or 'ray'"
        )
    try:
        return WorkerOptions(**given)
    except ValidationError as error:
        problem = error.errors()[0]
        name = ".".join(str(part) for part in problem["loc"]) or "options"
        raise ValueError(
            f"{owner}.options() got an invalid value for {name}: {problem['input']!r} "
            f"({problem['msg'].removeprefix('Value error, ')})"
        ) from error
