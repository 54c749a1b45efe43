"""The ledger: every signed output, keyed so that a copy without its manifest can be matched back to it.

``SYNTHGUARD_HOME/ledger.sqlite`` (SQLite in WAL mode, one short write transaction per record, so several processes
signing at once lose nothing). Lookups:
- by file hash (the exact signed file),
- by content hash (decoded pixels for images, bytes for other media): finds a copy whose manifest was stripped by a
  tool that left the pixels alone (metadata strippers, lossless re-saves),
- by soft-binding value (the watermark payload): finds a re-encoded copy (the watermark issue uses this).
Records are only ever inserted.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from synthguard.core.stores import connect_wal, insert
from synthguard.errors import LedgerError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    asset_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    mime TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    manifest_label TEXT NOT NULL,
    manifest BLOB NOT NULL,
    signer TEXT NOT NULL,
    output_path TEXT,
    soft_binding_alg TEXT,
    soft_binding_value BLOB
);
CREATE INDEX IF NOT EXISTS assets_file ON assets(file_sha256);
CREATE INDEX IF NOT EXISTS assets_content ON assets(content_sha256);
CREATE INDEX IF NOT EXISTS assets_soft_binding ON assets(soft_binding_value);
"""
_COLUMNS = ("asset_id", "created_at", "mime", "file_sha256", "content_sha256", "manifest_label", "manifest",
            "signer", "output_path", "soft_binding_alg", "soft_binding_value")


@dataclass(frozen=True)
class LedgerRecord:
    asset_id: str
    created_at: float
    mime: str
    file_sha256: str
    content_sha256: str
    manifest_label: str
    manifest: bytes
    signer: str
    output_path: str | None = None
    soft_binding_alg: str | None = None
    soft_binding_value: bytes | None = None


class Ledger:
    """Append-only store of signed assets. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path, *, timeout_s: float = 60.0):
        self.path = Path(path)
        try:
            self._db = connect_wal(self.path, _SCHEMA, timeout_s=timeout_s)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open the ledger {self.path}: {exc}") from None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def record(self, rec: LedgerRecord) -> None:
        try:
            insert(self._db, "assets", _COLUMNS, tuple(getattr(rec, c) for c in _COLUMNS))
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write to the ledger {self.path}: {exc}") from None

    def _find(self, column: str, value) -> list[LedgerRecord]:
        try:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM assets WHERE {column} = ? ORDER BY created_at DESC",
                (value,)).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the ledger {self.path}: {exc}") from None
        return [LedgerRecord(*row) for row in rows]

    def find_by_file_hash(self, sha256: str) -> list[LedgerRecord]:
        return self._find("file_sha256", sha256)

    def find_by_content_hash(self, sha256: str) -> list[LedgerRecord]:
        return self._find("content_sha256", sha256)

    def find_by_soft_binding(self, value: bytes) -> list[LedgerRecord]:
        return self._find("soft_binding_value", value)

    def get(self, asset_id: str) -> LedgerRecord | None:
        found = self._find("asset_id", asset_id)
        return found[0] if found else None

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM assets").fetchone()[0]
