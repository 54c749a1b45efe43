"""Hardening shared by SynthGuard's local web servers (the verification desk, and any other page it serves).

Two layers, usable apart:
- ``harden(app, hosts)`` (ASGI, any Starlette or FastAPI app): a request whose Host is not one of the server's own
  names is refused (403), so a page on another domain that resolves to 127.0.0.1 (DNS rebinding) cannot read or
  drive it; a request that changes state (any method but GET, HEAD, OPTIONS) whose Origin is another site's, or
  ``null`` (a sandboxed frame), is refused; every answer forbids framing and outside content.
- ``serve_hardened(app, host, port, limits)`` (uvicorn): uvicorn's h11 protocol with what it lacks against clients
  that hold connections open (slowloris): the request line and headers must arrive within ``header_timeout``
  seconds of the connection's start (or of a kept-alive request's first byte), else 408 and the connection is
  closed; a request body may go ``body_timeout`` seconds without a byte (a slow upload that keeps moving is not
  cut), and once an answer is sent before its body was read, the rest has ``body_timeout`` seconds in all to drain;
  at most ``max_connections`` are open: past it, a new connection closes the one that has waited longest for a
  request's headers (a slow client's, or an idle kept-alive one), and only when every other connection is in the
  middle of a request is the new one answered 503 and closed. Headers are capped in size by h11 (16 KiB, then
  400); WebSocket upgrades are not offered.

uvicorn's own ``limit_concurrency`` does not do this: it is looked at only once a request's headers are complete,
so connections that never finish their headers are never refused, and since it counts those idle connections it
answers 503 to the honest requests instead. This module needs the ``desk`` extra (uvicorn and h11).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from synthguard.errors import InputError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _answer(status: str, text: str) -> bytes:
    """A whole HTTP/1.1 answer that ends the connection, written straight to the socket (no request to answer)."""
    body = text.encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


_HEADER_TIMEOUT_ANSWER = _answer("408 Request Timeout", "request headers took too long")
_BUSY_ANSWER = _answer("503 Service Unavailable", "busy: too many open connections, try again in a moment")


def hostname(value: str | None) -> str | None:
    """The host name of a Host header or an Origin URL, lower-cased, without port or brackets (None if unreadable)."""
    if not value:
        return None
    try:
        parsed = urlsplit(value if "://" in value else f"//{value}")
        return (parsed.hostname or "").lower() or None
    except ValueError:  # an unclosed "[" of an IPv6 address, a port that is not a number
        return None


class HostGuard:
    """ASGI middleware: the Host and Origin checks and the security headers (see the module's docstring)."""

    def __init__(self, app, *, hosts: Iterable[str] = (), headers: Mapping[str, str] = SECURITY_HEADERS):
        self.app = app
        self.allowed = frozenset(h.lower().strip("[]") for h in (*LOCAL_HOSTS, *hosts) if h)
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._names = {k for k, _ in self.headers}

    def refusal(self, scope) -> str | None:
        """Why this request is refused, or None."""
        headers = {k: v.decode("latin-1") for k, v in scope.get("headers", ())}
        if hostname(headers.get(b"host")) not in self.allowed:
            return "refused: this server answers only to its own host name"
        origin = headers.get(b"origin")
        unsafe = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        if unsafe and origin is not None and hostname(origin) not in self.allowed:
            return "refused: a form from another site"
        return None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        reason = self.refusal(scope)
        if reason is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            body = reason.encode()
            await send({"type": "http.response.start", "status": 403, "headers": [
                (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                *self.headers]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in self._names]
                message = {**message, "headers": [*kept, *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def harden(app, hosts: Iterable[str] = (), *, headers: Mapping[str, str] = SECURITY_HEADERS) -> None:
    """Add ``HostGuard`` to a Starlette or FastAPI ``app``; call it after any other ``add_middleware`` so that it
    runs first, before anything reads a body. ``hosts``: names it answers to besides 127.0.0.1, localhost and ::1;
    ``headers``: sent on every answer (replacing the application's own of the same names)."""
    app.add_middleware(HostGuard, hosts=tuple(hosts), headers=dict(headers))


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take, and how many connections may be open at once (see the module's docstring)."""

    header_timeout: float = 10.0  # seconds for the request line and headers
    body_timeout: float = 30.0  # seconds a request body may go without a byte
    max_connections: int = 64  # open connections (see the module's docstring for what happens past it)

    def __post_init__(self):
        for name, kinds in (("header_timeout", int | float), ("body_timeout", int | float), ("max_connections", int)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
                raise InputError(f"{name} must be a positive {'whole ' if kinds is int else ''}number, not {value!r}")


class HardenedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline, a body idle timeout and a cap on open connections. uvicorn
    makes one per connection; ``limits`` is set by ``hardened_config`` on a subclass."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._waiting_since: float | None = None  # loop time since when no request is in progress

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._waiting_since = self.loop.time()
        open_ = sum(1 for c in self.connections if not c.transport.is_closing())
        if open_ > self.limits.max_connections and not self._evict_one():
            self.logger.warning("refused a connection: %d are open, each in the middle of a request", open_ - 1)
            transport.write(_BUSY_ANSWER)
            transport.close()
            return
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_expired)

    def _evict_one(self) -> bool:
        """Close the other connection that has waited longest for a request's headers; False if there is none."""
        waiting = [c for c in self.connections if c is not self and isinstance(c, HardenedH11Protocol)
                   and c._waiting_since is not None and not c.transport.is_closing()]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._waiting_since)
        if oldest.conn.trailing_data[0]:  # part of a request came: say why it ends
            oldest.transport.write(_BUSY_ANSWER)
        oldest.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel("_head_timer")
        self._cancel("_body_timer")
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch(progress=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch(progress=False)

    def _cancel(self, name: str) -> None:
        timer = getattr(self, name)
        if timer is not None:
            timer.cancel()
            setattr(self, name, None)

    def _watch(self, *, progress: bool) -> None:
        """Arm or cancel the timers for the state h11 is in after the bytes just read (or the answer just sent)."""
        if self.transport.is_closing():
            self._cancel("_head_timer")
            self._cancel("_body_timer")
            return
        state = self.conn.their_state
        idle = state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)
        if not idle:
            self._waiting_since = None
        elif self._waiting_since is None:
            self._waiting_since = self.loop.time()
        if state is not h11.IDLE:
            self._cancel("_head_timer")
        elif self._head_timer is None and self.conn.trailing_data[0]:
            # the first bytes of a kept-alive connection's next request: its headers have the same deadline
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_expired)
        if state is not h11.SEND_BODY:
            self._cancel("_body_timer")
            return
        answered = self.conn.our_state in (h11.DONE, h11.MUST_CLOSE)  # the rest is only drained: a deadline in all
        if self._body_timer is None or (progress and not answered):
            self._cancel("_body_timer")
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.logger.info("closed a connection: its request headers did not arrive in %ss",
                             self.limits.header_timeout)
            self.transport.write(_HEADER_TIMEOUT_ANSWER)
            self.transport.close()

    def _body_expired(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        waiting_on_us = self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue)
        if waiting_on_us and self.conn.our_state not in (h11.DONE, h11.MUST_CLOSE):
            # the application has not read what came (or not asked for the body yet): the client is not stalling
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_expired)
            return
        self.logger.info("closed a connection: its request body stalled for %ss", self.limits.body_timeout)
        self.transport.close()


def hardened_config(app, host: str, port: int, *, limits: ConnectionLimits = ConnectionLimits(),
                    log_level: str = "warning") -> uvicorn.Config:
    """A uvicorn ``Config`` serving ``app`` on ``host``:``port`` with ``HardenedH11Protocol`` under ``limits``
    (no WebSockets, no proxy headers trusted). ``uvicorn.Server(config).run()`` serves it."""
    protocol = type("HardenedH11Protocol", (HardenedH11Protocol,), {"limits": limits})
    return uvicorn.Config(app, host=host, port=port, http=protocol, ws="none", proxy_headers=False,
                          log_level=log_level)


def serve_hardened(app, host: str, port: int, *, limits: ConnectionLimits = ConnectionLimits(),
                   log_level: str = "warning") -> None:
    """Serve ``app`` until interrupted (Ctrl-C), under ``limits``: see ``hardened_config``."""
    uvicorn.Server(hardened_config(app, host, port, limits=limits, log_level=log_level)).run()
