"""A loopback webhook receiver (aiohttp) for alert tests: records every request and answers as told."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.stack import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_verify() -> Callable[..., bool]:
    """The ``verify`` function of the README's alerts section, exactly as a user would copy it."""
    section = README.read_text().split("\n## Alerts (webhooks)\n", 1)[1].split("\n## ", 1)[0]
    snippet = re.findall(r"```python\n(.*?)```", section, re.DOTALL)[0]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    return namespace["verify"]  # type: ignore[no-any-return]


_readme_verify = readme_verify()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """A delivery checked by the README's snippet (HMAC-SHA256 over "<timestamp>.<body>")."""
    return bool(_readme_verify(secret, headers, body))


@dataclass
class Receiver:
    url: str
    # status to answer a request with; "hang" never answers, "redirect" answers 302 to /elsewhere
    answer: Callable[[Received], int | str] = lambda _: 200
    received: list[Received] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 60) -> list[Received]:  # noqa: ASYNC109
        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: predicate(self.received))

        await asyncio.wait_for(wait(), timeout)
        return list(self.received)


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/hook")

    async def handle(request: web.Request) -> web.StreamResponse:
        got = Received(request.path, dict(request.headers), await request.read())
        async with receiver.changed:
            receiver.received.append(got)
            receiver.changed.notify_all()
        answer = receiver.answer(got)
        if answer == "hang":
            # Until the receiver closes (the sender gave up long before): bounded, whatever the
            # server does with a handler whose client has gone.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.closing.wait(), 120)
        if answer == "redirect":
            raise web.HTTPFound(f"http://127.0.0.1:{port}/elsewhere")
        return web.Response(status=int(answer), text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield receiver
    finally:
        receiver.closing.set()
        await runner.cleanup()
