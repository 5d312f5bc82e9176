"""Run a server on a private event loop in a daemon thread, for synchronous callers.

A CLI demo or a benchmark is not async; it still wants a stand-in on a real socket. The server
then lives on its own loop in its own thread, and whatever state the stand-in shares with the
caller must be thread-safe (each stand-in says how it is).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

_START_TIMEOUT = 10.0

Lifecycle = Callable[[], Coroutine[Any, Any, None]]


@contextlib.contextmanager
def serving_in_thread(
    start: Lifecycle, stop: Lifecycle, *, name: str
) -> Iterator[asyncio.AbstractEventLoop]:
    """Call ``start()`` on a new loop in a daemon thread, yield that loop, then ``stop()``.

    A failure of ``start()`` (a port in use, say) is raised here, in the caller's thread.
    """
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)
            return
        finally:
            ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    try:
        if not ready.wait(_START_TIMEOUT):
            raise RuntimeError(f"the {name} thread did not start")
        if failure:
            raise failure[0]
        yield loop
    finally:
        if not failure and thread.is_alive():
            asyncio.run_coroutine_threadsafe(stop(), loop).result(_START_TIMEOUT)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(_START_TIMEOUT)
        loop.close()
