"""Workers the type-checking cases use. pyright reads them through the stub ``concurry codegen`` writes."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Generic, Optional, TypeVar, Union, overload

from morphic import Typed
from pydantic import BaseModel
from typing_extensions import Self

from concurry import TaskWorker, Worker, worker

T = TypeVar("T")
U = TypeVar("U")


class DataProcessor(Worker):
    def __init__(self, multiplier: int) -> None:
        self.multiplier = multiplier
        self.count = 0

    def process(self, value: int) -> int:
        self.count += 1
        return value * self.multiplier

    def scale(self, value: float, factor: float = 2.0, *, round_to: Optional[int] = None) -> float:
        scaled = value * factor
        return scaled if round_to is None else round(scaled, round_to)

    def total(self, *values: int) -> int:
        return sum(values)

    def log(self, message: str) -> None:
        print(message)

    async def fetch(self, key: str) -> dict[str, int]:
        await asyncio.sleep(0)
        return {key: self.multiplier}

    def identity(self, item: U) -> U:
        return item

    @property
    def label(self) -> str:
        return f"x{self.multiplier}"


class Cache(Worker, Generic[T]):
    def __init__(self, initial: T) -> None:
        self.value = initial

    def get(self) -> T:
        return self.value

    def put(self, value: T) -> None:
        self.value = value

    async def swap(self, value: T) -> T:
        old, self.value = self.value, value
        return old


@worker
class Greeter:
    def __init__(self, greeting: str, *, excited: bool = False) -> None:
        self.greeting = greeting
        self.excited = excited

    def greet(self, name: str) -> str:
        return f"{self.greeting}, {name}{'!' if self.excited else '.'}"


class Settings(Worker, BaseModel):
    name: str
    retries: int = 3

    def summary(self) -> str:
        return f"{self.name}: {self.retries}"


class TypedConfig(Worker, Typed):
    path: str
    depth: int = 1

    def resolve(self, suffix: str) -> str:
        return f"{self.path}/{suffix}"


class Converter(Worker):
    @overload
    def convert(self, value: int) -> str: ...

    @overload
    def convert(self, value: str) -> int: ...

    def convert(self, value: Union[int, str]) -> Union[int, str]:
        return str(value) if isinstance(value, int) else int(value)


class Base(Worker):
    def base_method(self) -> int:
        return 1


class Derived(Base):
    def __init__(self, name: str) -> None:
        self.name = name

    def derived_method(self, flag: bool) -> bool:
        return not flag


class Edge(Worker):
    LIMIT: ClassVar[int] = 5
    VERSION = "1"

    def __init__(self, **settings: str) -> None:
        self.settings = settings

    @staticmethod
    def pure(x: int) -> str:
        return str(x)

    @classmethod
    def make(cls, y: float) -> float:
        return y

    def positional(self, a: int, /, b: str) -> bool:
        return str(a) == b

    def chain(self) -> Self:
        return self

    def anything(self, x: Any, y: object) -> Any:
        return x, y


class Validator(Worker):
    """Its methods share names with pydantic model methods of the proxy, which they shadow."""

    def validate(self, value: int) -> bool:
        return value >= 0

    def copy(self, times: int = 2) -> list[int]:
        return [0] * times


class IntCache(Cache[int]):
    def double(self) -> int:
        return self.value * 2


class MyTasks(TaskWorker):
    def ping(self) -> str:
        return "pong"


def square(x: int) -> int:
    return x * x


async def slow_add(x: int, y: int) -> int:
    await asyncio.sleep(0)
    return x + y


def join(parts: list[str], sep: str = ",") -> str:
    return sep.join(parts)
