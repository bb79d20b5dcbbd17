"""Sharing a limit set with other processes: a small server in the process that owns the set.

The owner listens on a ``multiprocessing.connection`` address (a Unix socket on POSIX, a named pipe on Windows)
guarded by a random authkey; a process that receives the set (pickled for spawn/forkserver, or inherited by fork)
connects with that address and key and forwards every ``acquire``/``release`` to the owner's store. Each client
thread has its own connection and the server one thread per connection, so a request waiting for capacity
blocks only its caller. Tickets are tracked per connection: when a client disappears (its process was killed),
the server releases what it held.
"""

from __future__ import annotations

import hmac  # pyright: ignore[reportUnusedImport]  # noqa: F401  the handshake imports it lazily; a fork during that import would deadlock the child
import os
import threading
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, Callable, Mapping, Optional, cast

__all__ = ["ConnectionStore", "LimitServer"]


class LimitServer:
    """Serves ``get_store()`` (looked up on every request, so the server follows the state if it moves)."""

    def __init__(self, get_store: Callable[[], Any]) -> None:
        self._get_store = get_store
        self.authkey = os.urandom(32)
        self._listener = Listener(authkey=self.authkey)
        self.address = self._listener.address
        self._owner_lock = threading.Lock()
        self._owner_of: dict[int, set[int]] = {}  # ticket -> the owning connection's ticket set
        self._closed = False
        threading.Thread(target=self._accept, name="concurry-limits-server", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                connection = self._listener.accept()
            except OSError:  # closed
                return
            except Exception:  # a client that failed the handshake; keep serving the others
                continue
            threading.Thread(target=self._serve, args=(connection,), name="concurry-limits-conn", daemon=True).start()

    def _serve(self, connection: Connection) -> None:
        owned: set[int] = set()
        try:
            while True:
                operation, args = connection.recv()
                try:
                    reply = ("ok", self._handle(operation, args, owned))
                except Exception as error:
                    reply = ("error", error)
                connection.send(reply)
        except (EOFError, OSError):
            pass
        finally:
            connection.close()
            with self._owner_lock:
                orphans = list(owned)
                for ticket in orphans:
                    self._owner_of.pop(ticket, None)
                owned.clear()
            store = self._get_store()
            for ticket in orphans:
                store.release(ticket, None)

    def _handle(self, operation: str, args: tuple[Any, ...], owned: set[int]) -> Any:
        store = self._get_store()
        if operation == "acquire" or operation == "try_acquire":
            outcome = getattr(store, operation)(*args)
            ticket = outcome if operation == "acquire" else outcome[0]
            if ticket is not None:
                with self._owner_lock:
                    owned.add(ticket)
                    self._owner_of[ticket] = owned
            return outcome
        if operation == "release":
            ticket = args[0]
            with self._owner_lock:
                owner = self._owner_of.pop(ticket, None)
                if owner is not None:
                    owner.discard(ticket)
            return store.release(*args)
        if operation == "in_use":
            return store.in_use()
        raise ValueError(f"unknown limit operation {operation!r}")


class ConnectionStore:
    """The store of a set owned by another process, reached through its ``LimitServer``."""

    def __init__(self, address: Any, authkey: bytes) -> None:
        self._address = address
        self._authkey = authkey
        self._local = threading.local()

    def _call(self, operation: str, *args: Any) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = Client(self._address, authkey=self._authkey)
        try:
            connection.send((operation, args))
            status, value = connection.recv()
        except BaseException:
            # A broken or interrupted exchange leaves the connection out of step: never reuse it.
            self._local.connection = None
            connection.close()
            raise
        if status == "error":
            raise value
        return value

    def try_acquire(self, requested: Mapping[str, float]) -> tuple[Optional[int], float]:
        return cast("tuple[Optional[int], float]", self._call("try_acquire", dict(requested)))

    def acquire(self, requested: Mapping[str, float], timeout: Optional[float]) -> Optional[int]:
        return cast("Optional[int]", self._call("acquire", dict(requested), timeout))

    def release(self, ticket: int, usage: Optional[Mapping[str, float]]) -> None:
        self._call("release", ticket, None if usage is None else dict(usage))

    def in_use(self) -> dict[str, float]:
        return cast("dict[str, float]", self._call("in_use"))
