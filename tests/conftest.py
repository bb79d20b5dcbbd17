"""Shared fixtures of the runtime tests."""

from __future__ import annotations

import weakref
from typing import Any, Iterator

import pytest

from concurry import WorkerBuilder


@pytest.fixture
def stop_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list["weakref.ReferenceType[Any]"]]:
    """Stop every worker the test started with ``.options(...).init(...)``, even when the test fails midway.

    Only weak references are kept, so a test may still drop a proxy and watch it being reclaimed.
    """
    started: list[weakref.ReferenceType[Any]] = []
    original_init = WorkerBuilder.init

    def tracking_init(self: WorkerBuilder[Any, Any, Any], *args: Any, **kwargs: Any) -> Any:
        proxy = original_init(self, *args, **kwargs)
        started.append(weakref.ref(proxy))
        return proxy

    monkeypatch.setattr(WorkerBuilder, "init", tracking_init)
    yield started
    monkeypatch.undo()
    for ref in reversed(started):
        proxy = ref()
        if proxy is not None:
            proxy.stop(timeout=5)
