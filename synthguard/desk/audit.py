"""The audit log: every verification and every human review, append-only and hash-chained, so a desk can show later
why a picture was labelled, and who took editorial responsibility for it.

``SYNTHGUARD_HOME/audit.sqlite`` (SQLite, WAL). Each entry: time (UTC, ISO 8601), kind (``verification`` or
``review``), file path and SHA-256, policy name and hash, verdict, desk action, tool version, and for reviews the
editor, their decision and note. Triggers refuse UPDATE and DELETE, so the log can only grow through this module.
EU AI Act Art. 50(4) exempts AI-generated text from disclosure when a person holding editorial responsibility
reviewed it; a ``review`` entry is the record of that review.

Tamper evidence: each entry stores ``prev_hash`` (the ``row_hash`` of the entry before it, ``GENESIS`` for the first)
and ``row_hash``, the SHA-256 of a canonical encoding (:func:`entry_hash`) of its id, its content and ``prev_hash``.
The previous hash is read and the entry inserted in one ``BEGIN IMMEDIATE`` transaction, so processes appending at
once still build one chain. :meth:`AuditLog.verify` recomputes the chain and names the first entry that was edited
(even with the triggers dropped), that follows a deleted entry, or that was inserted out of order. What a chain
cannot show: someone with write access who rewrites the whole chain from the edit onwards, or removes its last
entries and the sequence counter with them; publish or archive the head hash (``AuditChain.head``) to catch that.

A log written before the chain existed is migrated when it is opened: the columns are added and the chain is
computed over the existing entries in id order. Those entries are chained *from the migration*, not proven from
their creation: an edit made to them before the migration is not detectable. ``AuditChain.migrated_through`` names
the last entry chained that way.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from synthguard import __version__
from synthguard.core.stores import connect_wal
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
    tool_version TEXT NOT NULL,
    prev_hash TEXT,
    row_hash TEXT
);
CREATE INDEX IF NOT EXISTS entries_file ON entries(file_sha256);
CREATE TABLE IF NOT EXISTS chain_migration (time TEXT NOT NULL, last_id INTEGER NOT NULL);
"""
_NO_UPDATE = """CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"""
_GUARDS = (
    _NO_UPDATE,
    """CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    # A writer that does not know the chain (an older synthguard) is refused rather than leaving an unchained entry.
    """CREATE TRIGGER IF NOT EXISTS entries_chained BEFORE INSERT ON entries
    WHEN NEW.row_hash IS NULL OR NEW.prev_hash IS NULL
    BEGIN SELECT RAISE(ABORT, 'audit entries need their chain hashes: write them with synthguard'); END""",
)
_COLUMNS = ("time", "kind", "file", "file_sha256", "policy", "policy_sha256", "verdict", "action", "reasons", "editor",
            "note", "tool_version")
_CHAIN_COLUMNS = ("prev_hash", "row_hash")
# The prev_hash of the first entry.
GENESIS = "0" * 64
# Starts every encoded entry, so a chain hash cannot be mistaken for the hash of another kind of record.
_DOMAIN = "synthguard-audit-v1"


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


@dataclass(frozen=True)
class AuditChain:
    """What :meth:`AuditLog.verify` found. ``broken_at`` is the id of the first entry that does not check out
    (``None`` when intact), ``problem`` says why in one line; ``head`` is the last entry's hash as stored (for an
    intact log: the hash that commits to every entry); ``migrated_through`` is the last entry chained by the
    migration of an older log, not from its creation."""

    entries: int
    head: str
    broken_at: int | None = None
    problem: str | None = None
    migrated_through: int | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None

    def to_dict(self) -> dict:
        return {**asdict(self), "intact": self.intact}

    def describe(self) -> tuple[str, ...]:
        lines = [f"intact: {self.entries} entries, head {self.head}" if self.intact
                 else f"broken at entry #{self.broken_at}: {self.problem}"]
        if self.migrated_through is not None:
            lines.append(f"entries up to #{self.migrated_through} were chained when an older log was migrated, "
                         "not when they were written")
        return tuple(lines)


def entry_hash(entry_id: int, values: dict, prev_hash: str) -> str:
    """SHA-256 (hex) of an entry as stored: its id, the content columns in their fixed order and the previous
    entry's hash, as compact ASCII JSON (lone surrogates escaped, so every stored string encodes one way)."""
    fields = [_DOMAIN, entry_id, *(values.get(c) for c in _COLUMNS), prev_hash]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _storable(value):
    """A text SQLite can store: a file name that is not UTF-8 (surrogate escapes) is kept with its bytes as
    ``\\xNN`` escapes instead of failing the insert."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


class AuditLog:
    """Append-only, hash-chained audit log. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._db = connect_wal(self.path, _SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open the audit log {self.path}: {exc}") from None
        try:
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise LedgerError(f"cannot open the audit log {self.path}: {exc}") from None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _columns(self) -> set[str]:
        return {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}

    def _migrate(self) -> None:
        """Add the chain to a log written before it (see the module docstring), then make sure the guards exist."""
        if not set(_CHAIN_COLUMNS) <= self._columns():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated while this one waited for the lock.
                if not set(_CHAIN_COLUMNS) <= self._columns():
                    self._chain_existing()
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
        for guard in _GUARDS:
            self._db.execute(guard)

    def _chain_existing(self) -> None:
        self._db.execute("DROP TRIGGER IF EXISTS entries_no_update")
        for column in _CHAIN_COLUMNS:
            if column not in self._columns():
                self._db.execute(f"ALTER TABLE entries ADD COLUMN {column} TEXT")
        prev, last_id = GENESIS, None
        rows = self._db.execute(f"SELECT id, {', '.join(_COLUMNS)} FROM entries ORDER BY id").fetchall()
        for row in rows:
            last_id, values = row[0], dict(zip(_COLUMNS, row[1:]))
            digest = entry_hash(last_id, values, prev)
            self._db.execute("UPDATE entries SET prev_hash = ?, row_hash = ? WHERE id = ?", (prev, digest, last_id))
            prev = digest
        if last_id is not None:
            self._db.execute("INSERT INTO chain_migration (time, last_id) VALUES (?, ?)", (_now(), last_id))
        self._db.execute(_NO_UPDATE)

    def _append(self, values: dict) -> int:
        """One entry, chained to the last one inside one write transaction (a concurrent writer waits)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute("SELECT id, row_hash FROM entries ORDER BY id DESC LIMIT 1").fetchone()
                entry_id, prev = (1, GENESIS) if last is None else (last[0] + 1, last[1] or "")
                stored = {c: _storable(values.get(c)) for c in _COLUMNS} | {"time": _now()}
                row = (entry_id, *(stored[c] for c in _COLUMNS), prev, entry_hash(entry_id, stored, prev))
                self._db.execute(f"INSERT INTO entries (id, {', '.join(_COLUMNS)}, {', '.join(_CHAIN_COLUMNS)}) "
                                 f"VALUES ({', '.join('?' for _ in row)})", row)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write to the audit log {self.path}: {exc}") from None
        return entry_id

    def record_verification(self, *, file: str, file_sha256: str | None, policy: str, policy_sha256: str,
                            verdict: str | None, action: str, reasons: list[str] | None) -> int:
        return self._append({"kind": "verification", "file": file, "file_sha256": file_sha256,
                             "policy": policy, "policy_sha256": policy_sha256, "verdict": verdict, "action": action,
                             "reasons": None if reasons is None else json.dumps(reasons),
                             "tool_version": __version__})

    def record_review(self, *, file: str, file_sha256: str, decision: str, editor: str, note: str = "",
                      policy: str | None = None, policy_sha256: str | None = None) -> int:
        """A person's decision on a file (``decision`` is a desk action), taking editorial responsibility."""
        if not editor.strip():
            raise LedgerError("a review needs the editor's name")
        return self._append({"kind": "review", "file": file, "file_sha256": file_sha256,
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

    def verify(self) -> AuditChain:
        """Recompute the hash chain over every entry in id order; the first entry that does not check out, if any."""
        try:
            migrated = self._db.execute("SELECT MAX(last_id) FROM chain_migration").fetchone()[0]
            sequence = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()
            cursor = self._db.execute(
                f"SELECT id, {', '.join(_COLUMNS)}, {', '.join(_CHAIN_COLUMNS)} FROM entries ORDER BY id")
            count, prev, prev_id = 0, GENESIS, None
            for row in cursor:
                entry_id, values = row[0], dict(zip(_COLUMNS, row[1:-2]))
                stored_prev, stored_hash = row[-2:]
                count += 1
                broken = _check(entry_id, prev_id, prev, values, stored_prev, stored_hash)
                if broken is not None:
                    cursor.close()
                    return AuditChain(count, str(stored_hash), entry_id, broken, migrated)
                prev, prev_id = stored_hash, entry_id
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the audit log {self.path}: {exc}") from None
        if sequence is not None and prev_id is not None and sequence[0] > prev_id:
            return AuditChain(count, prev, sequence[0],
                              f"the log ends at entry #{prev_id} but entries up to #{sequence[0]} were written "
                              "(the last ones were deleted)", migrated)
        return AuditChain(count, prev, migrated_through=migrated)


def _check(entry_id: int, prev_id: int | None, prev: str, values: dict, stored_prev, stored_hash) -> str | None:
    """Why one entry breaks the chain, or ``None``."""
    after = "the start of the log" if prev_id is None else f"entry #{prev_id}"
    if stored_hash is None or stored_prev is None:
        return "it has no chain hash (written outside synthguard)"
    if stored_prev != prev:
        if prev_id is not None and entry_id != prev_id + 1:
            return (f"it does not follow {after}: entries #{prev_id + 1}-#{entry_id - 1} are missing" if
                    entry_id > prev_id + 2 else f"it does not follow {after}: entry #{prev_id + 1} is missing")
        return (f"it does not follow {after} (an entry before it was deleted or changed, or it was inserted out of "
                "order)")
    if entry_hash(entry_id, values, stored_prev) != stored_hash:
        return "its content or id was changed after it was written"
    return None
