"""Per-request memo of upstream calls: factors that read the same endpoint share one call.

Several factors read the same data (OKX candles feed momentum and the OI trend; Coinglass's
coins-markets feeds several); within one request each distinct call runs once, concurrently with
the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class FetchScope:
    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Task[Any]] = {}

    def get(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """The shared task for ``key``, started on first use; awaiting it re-raises its error."""
        task = self._tasks.get(key)
        if task is None:

            async def run() -> T:
                return await call()

            task = asyncio.ensure_future(run())
            self._tasks[key] = task
        return task

    def cancel(self) -> None:
        for task in self._tasks.values():
            if not task.done():
                task.cancel()
