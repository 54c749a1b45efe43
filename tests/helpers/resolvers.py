"""Servers for resolver tests: a real resolver app on a loopback port (uvicorn with the desk's hardened protocol),
and canned socket servers that fail in chosen ways (never answer, answer a byte at a time, answer garbage)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from helpers.net import free_port


@pytest.fixture
def serve():
    """Run a resolver app on a loopback port as `ledger serve` does (uvicorn, the desk's hardened protocol); yields
    a function app -> base URL."""
    uvicorn = pytest.importorskip("uvicorn")
    from synthguard.desk.http import hardened_config

    servers = []

    def start(app) -> str:
        port = free_port()
        server = uvicorn.Server(hardened_config(app, "127.0.0.1", port))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)



class Canned:
    """A socket server that answers every request with the same bytes (``None``: accept, read, never answer;
    ``drip``: send them one byte every 50 ms)."""

    def __init__(self, answer: bytes | None, *, drip: bool = False):
        self.answer, self.drip = answer, drip
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while b"\r\n\r\n" not in data and (chunk := conn.recv(4096)):
                    data += chunk
                self.requests.append(data)
                if self.answer is None:
                    self.stop.wait(10)
                elif self.drip:
                    for i in range(len(self.answer)):
                        conn.sendall(self.answer[i:i + 1])
                        if self.stop.wait(0.05):
                            return
                else:
                    conn.sendall(self.answer)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def canned():
    made = []

    def make(answer: bytes | None, **kwargs) -> Canned:
        made.append(Canned(answer, **kwargs))
        return made[-1]

    yield make
    for server in made:
        server.close()


def http(status: str, body: bytes, content_type: str = "application/json", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}"
            "Connection: close\r\n\r\n").encode() + body
