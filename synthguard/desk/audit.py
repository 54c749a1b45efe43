"""The audit log: every verification and every human review, append-only, so a desk can show later why a picture
was labelled, and who took editorial responsibility for it.

``SYNTHGUARD_HOME/audit.sqlite`` (SQLite, WAL). Each entry: time (UTC, ISO 8601), kind (``verification`` or
``review``), file path and SHA-256, policy name and hash, verdict, desk action, tool version, and for reviews the
editor, their decision and note. Triggers refuse UPDATE and DELETE, so the log can only grow through this module
(and anyone with write access to the file can still replace it whole: keep it on storage the desk controls and
archive it). EU AI Act Art. 50(4) exempts AI-generated text from disclosure when a person holding editorial
responsibility reviewed it; a ``review`` entry is the record of that review.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from synthguard import __version__
from synthguard.core.stores import connect_wal, insert
from synthguard.errors import LedgerError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('verification', 'review')),
    file TEXT NOT NULL,
    file_sha256 TEXT,
    policy TEXT,
    policy_sha256 TEXT,
    verdict TEXT,
    action TEXT,
    reasons TEXT,
    editor TEXT,
    note TEXT,
    tool_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_file ON entries(file_sha256);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
_COLUMNS = ("time", "kind", "file", "file_sha256", "policy", "policy_sha256", "verdict", "action", "reasons", "editor",
            "note", "tool_version")


@dataclass(frozen=True)
class AuditEntry:
    id: int
    time: str
    kind: str
    file: str
    file_sha256: str | None
    policy: str | None
    policy_sha256: str | None
    verdict: str | None
    action: str | None
    reasons: list[str] | None
    editor: str | None
    note: str | None
    tool_version: str

    def to_dict(self) -> dict:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class AuditLog:
    """Append-only audit log. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._db = connect_wal(self.path, _SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open the audit log {self.path}: {exc}") from None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _append(self, values: dict) -> int:
        row = tuple(values.get(c) for c in _COLUMNS)
        try:
            return insert(self._db, "entries", _COLUMNS, row)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write to the audit log {self.path}: {exc}") from None

    def record_verification(self, *, file: str, file_sha256: str | None, policy: str, policy_sha256: str,
                            verdict: str | None, action: str, reasons: list[str] | None) -> int:
        return self._append({"time": _now(), "kind": "verification", "file": file, "file_sha256": file_sha256,
                             "policy": policy, "policy_sha256": policy_sha256, "verdict": verdict, "action": action,
                             "reasons": None if reasons is None else json.dumps(reasons),
                             "tool_version": __version__})

    def record_review(self, *, file: str, file_sha256: str, decision: str, editor: str, note: str = "",
                      policy: str | None = None, policy_sha256: str | None = None) -> int:
        """A person's decision on a file (``decision`` is a desk action), taking editorial responsibility."""
        if not editor.strip():
            raise LedgerError("a review needs the editor's name")
        return self._append({"time": _now(), "kind": "review", "file": file, "file_sha256": file_sha256,
                             "policy": policy, "policy_sha256": policy_sha256, "action": decision,
                             "editor": editor.strip(), "note": note, "tool_version": __version__})

    def entries(self, file_sha256: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Entries, oldest first; only those of one file's hash when given; the last ``limit`` when given."""
        where, args = ("WHERE file_sha256 = ?", (file_sha256,)) if file_sha256 else ("", ())
        query = f"SELECT id, {', '.join(_COLUMNS)} FROM entries {where} ORDER BY id DESC"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        try:
            rows = self._db.execute(query, args).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the audit log {self.path}: {exc}") from None
        out = []
        for row in reversed(rows):
            values = dict(zip(("id", *_COLUMNS), row))
            values["reasons"] = json.loads(values["reasons"]) if values["reasons"] else None
            out.append(AuditEntry(**values))
        return out
