"""Before the suite: are PostgreSQL and Redis reachable? Say what to start if not.

``make test`` runs ``python -m tests.preflight`` so a missing service is one clear line,
not a page of tracebacks from the first test that touches it.
"""

import os
import socket
import sys
from urllib.parse import urlparse

HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start "
    "(or point DATABASE_URL at a running server)",
    "Redis": "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' "
    "(or point REDIS_URL at a running server)",
}


def reachable(url: str, default_port: int) -> bool:
    parts = urlparse(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1",
                                       parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    missing = []
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith("postgres") and not reachable(database_url, 5432):
        missing.append(("PostgreSQL", database_url))
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url and not reachable(redis_url, 6379):
        missing.append(("Redis", redis_url))
    for name, url in missing:
        print(f"{name} is not reachable at {url}. Start it: {HOW_TO_START[name]}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
