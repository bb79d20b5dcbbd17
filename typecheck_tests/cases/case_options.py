"""options(): modes, the options that apply to each mode, and init() checked against __init__."""

from __future__ import annotations

from typing_extensions import assert_type

from concurry import Future
from workers import DataProcessor, Greeter
from concurry.core.options import Mode


def any_mode(mode: Mode, text: str) -> None:
    assert_type(DataProcessor.options(mode=mode).init(1).process(2), Future[int])
    assert_type(DataProcessor.options(mode=mode, blocking=True).init(1).process(2), int)
    DataProcessor.options(mode=text)  # E: a str is not a Mode
    DataProcessor.options(mode=mode, mp_context="spawn")  # E: mp_context does not apply to every mode


assert_type(DataProcessor.options(mode="thread", unwrap_futures=False).init(1).process(2), Future[int])
assert_type(DataProcessor.options(mode="process", mp_context="forkserver").init(multiplier=1).process(2), Future[int])
assert_type(DataProcessor.options(mode="ray", num_cpus=1, num_gpus=0.5).init(1).process(2), Future[int])

DataProcessor.options(mode="threads")  # E: no such mode
DataProcessor.options(mode="thread", mp_context="spawn")  # E: process only
DataProcessor.options(mp_context="spawn")  # E: the default mode is sync
DataProcessor.options(mode="process", num_cpus=2)  # E: ray only
DataProcessor.options(mode="asyncio", resources={"disk": 1.0})  # E: ray only
DataProcessor.options(mode="sync", actor_options={})  # E: ray only
DataProcessor.options(mode="thread", max_threads=4)  # E: unknown option
DataProcessor.options(mode="thread", blocking="yes")  # E: blocking is a bool
DataProcessor.options(mode="process", mp_context="thread")  # E: not a start method
DataProcessor.options(mode="ray", num_cpus="two")  # E

DataProcessor.options(mode="thread").init("3")  # E: __init__ takes an int
DataProcessor.options(mode="thread").init()  # E: missing multiplier
DataProcessor.options(mode="thread").init(1, 2)  # E: too many arguments
DataProcessor.options(mode="thread").init(multiplier=1, offset=2)  # E: unknown keyword
Greeter.options(mode="thread").init("hi", True)  # E: excited is keyword-only
assert_type(Greeter.options(mode="thread").init("hi", excited=True).greet("you"), Future[str])
