"""Opening SQLite files that several processes write at once, in WAL mode: the SQLite side of ``core.database``
(which the ledger uses) and the audit log's store."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect_wal(path: Path, schema: str, *, timeout_s: float = 60.0) -> sqlite3.Connection:
    """Open (creating its folder owner-only) a database in WAL mode with ``schema`` applied, in autocommit mode.

    Switching to WAL and creating the schema can meet another process doing the same; SQLite reports that as
    "locked" without waiting on the busy timeout, so this waits and retries until ``timeout_s``. Raises
    ``sqlite3.Error`` or ``OSError``; callers turn those into their own error type.
    """
    path = Path(path)
    deadline = time.monotonic() + timeout_s
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Usable from another thread than the opener's (a web server's worker threads); callers serialise access.
    db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(schema)
            return db
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.02)

