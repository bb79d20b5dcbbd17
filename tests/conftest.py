"""Shared fixtures of the runtime tests."""

from __future__ import annotations

import weakref
from typing import Any, Iterator

import pytest

from concurry import WorkerBuilder


@pytest.fixture
def stop_workers() -> Iterator[list["weakref.ReferenceType[Any]"]]:
    """Stop every worker the test started with ``.options(...).init(...)``, even when the test fails midway.

    Only weak references are kept, so a test may still drop a proxy and watch it being reclaimed.
    """
    started: list[weakref.ReferenceType[Any]] = []
    original_init = WorkerBuilder.init

    def tracking_init(self: WorkerBuilder[Any, Any, Any], *args: Any, **kwargs: Any) -> Any:
        proxy = original_init(self, *args, **kwargs)
        started.append(weakref.ref(proxy))
        return proxy

    WorkerBuilder.init = tracking_init  # type: ignore[method-assign]
    try:
        yield started
    finally:
        WorkerBuilder.init = original_init  # type: ignore[method-assign]
        for ref in reversed(started):
            proxy = ref()
            if proxy is not None:
                proxy.stop(timeout=5)
