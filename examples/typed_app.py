"""A strictly typed program using several kinds of workers (defined in ``typed_workers.py``).

mypy (with ``plugins = ["concurry.mypy_plugin"]``) and pyright (with the stubs that ``concurry codegen examples
--out stubs`` writes, ``stubPath = "stubs"``) agree on every type below: a method returning ``R`` gives
``Future[R]`` in future mode and ``R`` with ``blocking=True``. Run it with ``.venv/bin/python examples/typed_app.py``.
"""

from __future__ import annotations

from typing import Optional

from concurry import Future, TaskWorker
from typed_workers import Counter, Formatter, Greeting, Store, slow_concat, square


def futures_and_results() -> list[str]:
    lines: list[str] = []
    with Counter.options(mode="thread").init(10) as counter:
        added: Future[int] = counter.add(5)
        later: Future[int] = counter.add_later(added)  # a future is accepted where an int is expected
        lines.append(f"thread: add -> {added.result()}, add_later -> {later.result()}, total={counter.total}")
    with Counter.options(mode="asyncio", blocking=True).init() as blocking_counter:
        total: int = blocking_counter.add(1)
        lines.append(f"asyncio (blocking): add -> {total}")
    return lines


def decorated_and_generic() -> list[str]:
    lines: list[str] = []
    with Formatter.options(mode="sync").init("#") as formatter:
        label: Future[str] = formatter.format(7)
        lines.append(f"sync: format -> {label.result()}")
    with Store[str, int].options(mode="thread", blocking=True).init() as store:
        store.put("a", 1)
        found: Optional[int] = store.get("a")
        lines.append(f"thread (blocking): Store[str, int].get -> {found}")
    return lines


def model_worker() -> list[str]:
    with Greeting.options(mode="thread").init(name="concurry") as greeter:
        greeting: Future[str] = greeter.greet("Hello")
        return [f"thread: greet -> {greeting.result()}"]


def tasks() -> list[str]:
    with TaskWorker.options(mode="asyncio").init() as task_worker:
        squared: Future[int] = task_worker.submit(square, 12)
        joined: Future[str] = task_worker.submit(slow_concat, "con", "curry")
        squares: list[int] = list(task_worker.map(square, range(5)))
        return [f"asyncio: submit -> {squared.result()}, async -> {joined.result()!r}, map -> {squares}"]


def main() -> None:
    for line in futures_and_results() + decorated_and_generic() + model_worker() + tasks():
        print(line)


if __name__ == "__main__":
    main()
