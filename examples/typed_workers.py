"""The workers ``typed_app.py`` uses: a plain one, a decorated class, a generic one and a pydantic model.

They live in their own module because pyright reads a module's stub only where the module is imported: inside
the module that defines a worker, its proxies are typed from the library alone (``Any`` methods).
"""

from __future__ import annotations

import asyncio
from typing import Generic, Optional, TypeVar

from pydantic import BaseModel

from concurry import Worker, worker

K = TypeVar("K")
V = TypeVar("V")


class Counter(Worker):
    """A plain worker with state, a sync and an async method."""

    def __init__(self, start: int = 0) -> None:
        self.total = start

    def add(self, amount: int) -> int:
        self.total += amount
        return self.total

    async def add_later(self, amount: int, delay: float = 0.01) -> int:
        await asyncio.sleep(delay)
        return self.add(amount)


@worker
class Formatter:
    """A plain class made a worker by the decorator."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def format(self, value: int) -> str:
        return f"{self.prefix}{value}"


class Store(Worker, Generic[K, V]):
    """A generic worker: ``Store[str, int]`` stores ints under string keys."""

    def __init__(self) -> None:
        self.items: dict[K, V] = {}

    def put(self, key: K, value: V) -> None:
        self.items[key] = value

    def get(self, key: K) -> Optional[V]:
        return self.items.get(key)


class Greeting(Worker, BaseModel):
    """A pydantic model worker: ``init`` takes the model's fields."""

    name: str
    punctuation: str = "!"

    def greet(self, greeting: str) -> str:
        return f"{greeting}, {self.name}{self.punctuation}"


def square(x: int) -> int:
    return x * x


async def slow_concat(a: str, b: str) -> str:
    await asyncio.sleep(0.01)
    return a + b
