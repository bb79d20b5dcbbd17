"""Kinds of worker: @worker classes, generic workers, pydantic and morphic model workers, overloaded
methods, inherited methods."""

from __future__ import annotations

from typing import Optional

from typing_extensions import assert_type

from concurry import Future
from workers import Cache, Converter, DataProcessor, Derived, Greeter, Settings, TypedConfig

# @worker classes work like Worker subclasses, in every mode.
assert_type(Greeter.options(mode="sync").init("Hi").greet("a"), Future[str])
assert_type(Greeter.options(mode="thread").init("Hi").greet("a"), Future[str])
assert_type(Greeter.options(mode="asyncio", blocking=True).init("Hi").greet("a"), str)
assert_type(Greeter.options(mode="process").init("Hi").greet("a"), Future[str])
assert_type(Greeter.options(mode="ray", blocking=True).init("Hi").greet("a"), str)
assert_type(Greeter.options(mode="thread").init("Hi").excited, bool)
Greeter.options(mode="thread").init("Hi").greet(1)  # E
Greeter.options(mode="thread").init(greeting=1)  # E
Greeter.options(mode="thread").init("Hi").wave()  # E

# Generic workers, parametrised at options().
ints = Cache[int].options(mode="thread").init(1)
assert_type(ints.get(), Future[int])
assert_type(ints.put(2), Future[None])
assert_type(ints.put(ints.get()), Future[None])
assert_type(ints.swap(3), Future[int])
assert_type(ints.value, int)
texts = Cache[str].options(mode="process", blocking=True).init("a")
assert_type(texts.get(), str)
assert_type(texts.swap("b"), str)
optional = Cache[Optional[int]].options(mode="asyncio").init(None)
assert_type(optional.get(), Future[Optional[int]])
ints.put("two")  # E
Cache[int].options(mode="thread").init("one")  # E
texts.put(ints.get())  # E: a Future[int] for a str

# pydantic BaseModel and morphic Typed workers: init() takes the model's fields.
settings = Settings.options(mode="thread").init(name="db", retries=5)
assert_type(settings.summary(), Future[str])
assert_type(settings.name, str)
assert_type(Settings.options(mode="asyncio", blocking=True).init(name="db").summary(), str)
Settings.options(mode="thread").init(name="db", retries="many")  # E
Settings.options(mode="thread").init(retries=1)  # E: name is required
Settings.options(mode="thread").init(name="db", colour="red")  # E
config = TypedConfig.options(mode="thread").init(path="/tmp")
assert_type(config.resolve("a"), Future[str])
assert_type(TypedConfig.options(mode="process", blocking=True).init(path="/", depth=2).resolve("b"), str)
assert_type(config.depth, int)
TypedConfig.options(mode="thread").init(depth=2)  # E: path is required
config.resolve(1)  # E

# Overloaded methods keep their overloads.
converter = Converter.options(mode="thread").init()
assert_type(converter.convert(1), Future[str])
assert_type(converter.convert("1"), Future[int])
assert_type(Converter.options(mode="thread", blocking=True).init().convert(1), str)
converter.convert(1.5)  # E

# Inherited methods.
derived = Derived.options(mode="thread").init("d")
assert_type(derived.base_method(), Future[int])
assert_type(derived.derived_method(True), Future[bool])
assert_type(derived.name, str)
derived.derived_method("yes")  # E
Derived.options(mode="thread").init()  # E

# A proxy of one worker accepts another worker's futures.
processor = DataProcessor.options(mode="thread").init(2)
assert_type(processor.process(ints.get()), Future[int])
