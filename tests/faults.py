"""Fault injection helpers: a disposable redis-server of the test's own (never the
shared one), which a test can stop (SIGSTOP: hung), resume or kill; and a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """``redis-server`` on a free port in a temporary directory, for this process only."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="xo-redis-")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cache_settings(self, timeout: float = 0.25) -> dict:
        return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": self.url,
                "KEY_PREFIX": "xo-fault",
                "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient",
                            "SOCKET_CONNECT_TIMEOUT": timeout, "SOCKET_TIMEOUT": timeout}}

    def hang(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            self.process.wait(10)
