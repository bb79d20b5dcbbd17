"""Resource, rate and call limits, grouped in a ``LimitSet`` that workers reach as ``self.limits``."""

from concurry.core.limits.definitions import CallLimit, Limit, RateLimit, RateLimitAlgorithm, ResourceLimit
from concurry.core.limits.limit_set import Acquisition, LimitSet, LimitsOption, as_limit_set

__all__ = [
    "Acquisition",
    "CallLimit",
    "Limit",
    "LimitSet",
    "LimitsOption",
    "RateLimit",
    "RateLimitAlgorithm",
    "ResourceLimit",
    "as_limit_set",
]
