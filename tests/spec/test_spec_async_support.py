"""Guide section "Async Function Support".

The guide's network examples (``APIWorker`` with aiohttp, ``AsyncWebScraper``, the best-practice workers) are
run against a local HTTP server instead of the internet, with asyncio streams in place of aiohttp; everything
else is the guide's code as written. Concurrency is checked by counting requests the server holds at once, not
by timing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from concurry import ConcurrentFuture, SyncFuture, TaskWorker, Worker

pytestmark = [pytest.mark.usefixtures("stop_workers"), pytest.mark.timeout(60)]

MODES = pytest.mark.parametrize("mode", ["sync", "thread", "process", "asyncio"])


def future_kind(future: object) -> type:
    """``SyncFuture`` or ``ConcurrentFuture``: the kind the guide names (a backend may return a subclass of it)."""
    kinds = [kind for kind in (SyncFuture, ConcurrentFuture) if isinstance(future, kind)]
    assert len(kinds) == 1, f"{type(future).__name__} is not exactly one of SyncFuture and ConcurrentFuture"
    return kinds[0]


# -- the guide's runnable examples -----------------------------------------------------------------------------

class AsyncDataFetcher(Worker):
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.fetch_count = 0

    async def fetch_data(self, endpoint: str) -> dict:
        """Async method that simulates fetching data."""
        await asyncio.sleep(0.1)  # Simulate I/O delay
        self.fetch_count += 1
        return {"url": f"{self.base_url}/{endpoint}", "data": "..."}

    def get_count(self) -> int:
        """Regular sync method."""
        return self.fetch_count


class HybridWorker(Worker):
    def __init__(self):
        self.results = []

    async def async_operation(self, x: int) -> int:
        """Async method."""
        await asyncio.sleep(0.01)
        return x * 2

    def sync_operation(self, x: int) -> int:
        """Sync method."""
        return x + 10

    async def process_batch(self, items: list) -> list:
        """Async method that uses asyncio.gather for concurrency."""
        tasks = [self.async_operation(item) for item in items]
        return await asyncio.gather(*tasks)


async def async_compute(x: int, y: int) -> int:
    """Standalone async function."""
    await asyncio.sleep(0.01)
    return x ** 2 + y ** 2


class AsyncValidator(Worker):
    async def validate_async(self, value: int) -> int:
        await asyncio.sleep(0.01)
        if value < 0:
            raise ValueError("Value must be positive")
        return value


def test_basic_async_worker_as_written() -> None:
    # Use with any execution mode
    worker = AsyncDataFetcher.options(mode="asyncio").init("https://api.example.com")
    future = worker.fetch_data("users")
    result = future.result()  # {'url': 'https://api.example.com/users', 'data': '...'}
    assert result == {"url": "https://api.example.com/users", "data": "..."}
    worker.stop()


@MODES
def test_basic_async_worker_in_every_mode(mode: str) -> None:
    worker = AsyncDataFetcher.options(mode=mode).init("https://api.example.com")
    assert worker.fetch_data("users").result() == {"url": "https://api.example.com/users", "data": "..."}
    assert worker.fetch_data("items").result() == {"url": "https://api.example.com/items", "data": "..."}
    assert worker.get_count().result() == 2
    worker.stop()


def test_mixing_async_and_sync_methods_as_written() -> None:
    worker = HybridWorker.options(mode="asyncio").init()

    # Call async method
    result1 = worker.async_operation(5).result()  # 10
    # Call sync method
    result2 = worker.sync_operation(5).result()  # 15
    # Process multiple items concurrently
    result3 = worker.process_batch([1, 2, 3, 4, 5]).result()  # [2, 4, 6, 8, 10]

    worker.stop()
    assert result1 == 10
    assert result2 == 15
    assert result3 == [2, 4, 6, 8, 10]


@MODES
def test_mixing_async_and_sync_methods_in_every_mode(mode: str) -> None:
    worker = HybridWorker.options(mode=mode).init()
    assert worker.async_operation(5).result() == 10
    assert worker.sync_operation(5).result() == 15
    assert worker.process_batch([1, 2, 3, 4, 5]).result() == [2, 4, 6, 8, 10]
    worker.stop()


def test_submitting_async_functions_as_written() -> None:
    # Submit async function via TaskWorker
    worker = TaskWorker.options(mode="asyncio").init()
    future = worker.submit(async_compute, 3, 4)
    result = future.result()  # 25
    assert result == 25
    worker.stop()


@MODES
def test_submitting_async_functions_in_every_mode(mode: str) -> None:
    worker = TaskWorker.options(mode=mode).init()
    assert worker.submit(async_compute, 3, 4).result() == 25
    assert list(worker.map(async_compute, [1, 2], [3, 4])) == [10, 20]
    worker.stop()


def test_async_error_handling_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    worker = AsyncValidator.options(mode="asyncio").init()
    try:
        result = worker.validate_async(-5).result()
    except ValueError as e:
        print(f"Validation error: {e}")  # Original exception type preserved
    worker.stop()
    assert capsys.readouterr().out == "Validation error: Value must be positive\n"


@MODES
def test_async_error_handling_in_every_mode(mode: str) -> None:
    worker = AsyncValidator.options(mode=mode).init()
    with pytest.raises(ValueError) as info:
        worker.validate_async(-5).result()
    assert type(info.value) is ValueError
    assert str(info.value) == "Value must be positive"
    assert worker.validate_async(5).result() == 5  # the worker keeps serving
    worker.stop()


@pytest.mark.parametrize(
    ("mode", "future_type"),
    [("asyncio", ConcurrentFuture), ("thread", ConcurrentFuture), ("process", ConcurrentFuture), ("sync", SyncFuture)],
)
def test_async_support_table_return_types(mode: str, future_type: type) -> None:
    """The table "Async Support Across Execution Modes": every mode runs async methods, with its future type."""
    worker = HybridWorker.options(mode=mode).init()
    async_future = worker.async_operation(1)
    sync_future = worker.sync_operation(1)
    assert future_kind(async_future) is future_type
    assert future_kind(sync_future) is future_type
    assert async_future.result() == 2
    assert sync_future.result() == 11
    worker.stop()


# -- local stand-ins for the network examples ------------------------------------------------------------------

LATENCY = 0.05  # the guide's "50ms network latency", applied by the server


class _Handler(BaseHTTPRequestHandler):
    server: "LocalServer"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            server.requests.append(self.path)
        try:
            time.sleep(LATENCY)
            if self.path.startswith("/data/"):
                status, kind, body = 200, "text/plain", f"resource {self.path.rsplit('/', 1)[1]}"
            elif self.path.startswith("/json/"):
                status, kind = 200, "application/json"
                body = json.dumps({"id": self.path.rsplit("/", 1)[1], "ok": True})
            elif self.path.startswith("/page"):
                status, kind, body = 200, "text/html", f"<html>{self.path}</html>"
            else:
                status, kind, body = 404, "text/plain", "not found"
        finally:
            with server.lock:
                server.in_flight -= 1
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    httpd = LocalServer()
    thread = threading.Thread(target=httpd.serve_forever, name="local-http", daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


async def http_get(url: str, timeout: float = 10) -> tuple[int, str]:
    """A minimal asyncio HTTP/1.0 GET: the local stand-in for an aiohttp session."""
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), timeout)
    try:
        writer.write(f"GET {parts.path} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


class APIWorker(Worker):
    def __init__(self, base_url: str):
        self.base_url = base_url

    def fetch_sync(self, resource_id: int) -> str:
        """Synchronous HTTP request."""
        import urllib.request
        url = f"{self.base_url}/data/{resource_id}"
        with urllib.request.urlopen(url) as response:
            return response.read().decode()

    async def fetch_async(self, resource_id: int) -> str:
        """Async HTTP request (asyncio streams in place of aiohttp)."""
        url = f"{self.base_url}/data/{resource_id}"
        status, text = await http_get(url)
        return text


class AsyncWebScraper(Worker):
    def __init__(self, timeout: int = 10):
        self.timeout = timeout
        self.scraped_count = 0

    async def fetch_url(self, url: str) -> dict:
        """Fetch a single URL asynchronously."""
        status, content = await http_get(url, timeout=self.timeout)
        self.scraped_count += 1
        return {
            'url': url,
            'status': status,
            'content': content,
        }

    async def fetch_multiple(self, urls: list) -> list:
        """Fetch multiple URLs concurrently."""
        tasks = [self.fetch_url(url) for url in urls]
        return await asyncio.gather(*tasks, return_exceptions=True)

    def get_stats(self) -> dict:
        """Get scraping statistics (sync method)."""
        return {'scraped_count': self.scraped_count}


class BestPracticeHybridWorker(Worker):
    async def fetch_data(self, url: str) -> dict:
        # Runs in event loop - concurrent execution
        status, text = await http_get(url)
        return json.loads(text)

    def process_data(self, data: dict) -> str:
        # Runs in dedicated sync thread - doesn't block event loop
        return json.dumps(data, indent=2)


class BestPracticeAPIWorker(Worker):
    async def fetch_many(self, urls: list) -> list:
        # All requests execute concurrently
        tasks = [self.fetch_url(url) for url in urls]
        return await asyncio.gather(*tasks)

    async def fetch_url(self, url: str) -> str:
        status, text = await http_get(url)
        return text


NUM_REQUESTS = 30
EXPECTED = [f"resource {i}" for i in range(NUM_REQUESTS)]


@pytest.mark.parametrize("mode", ["sync", "thread"])
def test_api_worker_sync_fetches_are_sequential(mode: str, server: LocalServer) -> None:
    worker = APIWorker.options(mode=mode).init(server.base_url)
    futures = [worker.fetch_sync(i) for i in range(NUM_REQUESTS)]
    results = [f.result() for f in futures]
    worker.stop()
    assert results == EXPECTED
    assert server.max_in_flight == 1


def test_api_worker_asyncio_fetches_are_concurrent(server: LocalServer) -> None:
    worker = APIWorker.options(mode="asyncio").init(server.base_url)
    futures = [worker.fetch_async(i) for i in range(NUM_REQUESTS)]
    results = [f.result() for f in futures]
    worker.stop()
    assert results == EXPECTED
    assert server.max_in_flight > 1
    assert sorted(server.requests) == sorted(f"/data/{i}" for i in range(NUM_REQUESTS))


@pytest.mark.parametrize("mode", ["sync", "thread", "process"])
def test_async_methods_outside_asyncio_mode_are_correct_but_not_concurrent(mode: str, server: LocalServer) -> None:
    """The table: thread/process/sync run async calls via their own loop, one call at a time."""
    worker = APIWorker.options(mode=mode).init(server.base_url)
    futures = [worker.fetch_async(i) for i in range(10)]
    assert [f.result() for f in futures] == EXPECTED[:10]
    worker.stop()
    assert server.max_in_flight == 1


def test_async_web_scraper_locally(server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    # Initialize async worker
    scraper = AsyncWebScraper.options(mode="asyncio").init(timeout=30)

    urls = [
        f"{server.base_url}/page1",
        f"{server.base_url}/page2",
        f"{server.base_url}/page3",
    ]

    # All URLs are fetched concurrently in the event loop
    results = scraper.fetch_multiple(urls).result()

    # Check stats
    stats = scraper.get_stats().result()
    print(f"Scraped {stats['scraped_count']} pages")

    scraper.stop()
    assert results == [
        {"url": url, "status": 200, "content": f"<html>/page{i}</html>"} for i, url in enumerate(urls, start=1)
    ]
    assert capsys.readouterr().out == "Scraped 3 pages\n"
    assert server.max_in_flight > 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_async_web_scraper_returns_failures_as_values(server: LocalServer) -> None:
    scraper = AsyncWebScraper.options(mode="asyncio").init(timeout=30)
    urls = [f"{server.base_url}/page1", f"http://127.0.0.1:{_closed_port()}/page2", f"{server.base_url}/missing"]
    results = scraper.fetch_multiple(urls).result()
    assert results[0] == {"url": urls[0], "status": 200, "content": "<html>/page1</html>"}
    assert isinstance(results[1], ConnectionRefusedError)
    assert results[2] == {"url": urls[2], "status": 404, "content": "not found"}
    assert scraper.get_stats().result() == {"scraped_count": 2}
    scraper.stop()


def test_best_practice_hybrid_worker_locally(server: LocalServer) -> None:
    worker = BestPracticeHybridWorker.options(mode="asyncio").init()
    data = worker.fetch_data(f"{server.base_url}/json/7").result()
    assert data == {"id": "7", "ok": True}
    assert worker.process_data(data).result() == '{\n  "id": "7",\n  "ok": true\n}'
    # futures of one method feed the other
    assert worker.process_data(worker.fetch_data(f"{server.base_url}/json/8")).result() == (
        '{\n  "id": "8",\n  "ok": true\n}'
    )
    worker.stop()


def test_best_practice_gather_locally(server: LocalServer) -> None:
    worker = BestPracticeAPIWorker.options(mode="asyncio").init()
    urls = [f"{server.base_url}/data/{i}" for i in range(10)]
    assert worker.fetch_many(urls).result() == EXPECTED[:10]
    worker.stop()
    assert server.max_in_flight > 1
