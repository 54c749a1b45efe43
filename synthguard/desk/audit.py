"""The audit log: every verification and every human review, append-only and hash-chained, so a desk can show later
why a picture was labelled, and who took editorial responsibility for it.

Where it lives (``core.database``): ``SYNTHGUARD_HOME/audit.sqlite`` by default (SQLite, WAL), or the PostgreSQL
database named by ``SYNTHGUARD_DATABASE_URL`` (:meth:`AuditLog.from_home`), next to the ledger. Each entry: time
(UTC, ISO 8601), kind (``verification`` or ``review``), file path and SHA-256, policy name and hash, verdict, desk
action, tool version, and for reviews the editor, their decision and note. Triggers refuse UPDATE and DELETE (and
TRUNCATE on PostgreSQL), so the log can only grow through this module. EU AI Act Art. 50(4) exempts AI-generated
text from disclosure when a person holding editorial responsibility reviewed it; a ``review`` entry is the record
of that review.

Tamper evidence: each entry stores ``prev_hash`` (the ``row_hash`` of the entry before it, ``GENESIS`` for the first)
and ``row_hash``, the SHA-256 of a canonical encoding (:func:`entry_hash`) of its id, its content and ``prev_hash``;
the same content gives the same hashes on both backends. The last entry is read and the next one inserted in one
transaction holding the ``audit-chain`` lock, so processes (and machines) appending at once still build one chain;
the same transaction raises ``chain_head.last_id``, the highest id ever appended. :meth:`AuditLog.verify`
recomputes the chain and names the first entry that was edited (even with the triggers dropped or disabled), that
follows a deleted entry, or that was inserted out of order, and sees last entries deleted while ``chain_head`` still
names them. What a chain cannot show: someone with write access who rewrites the whole chain from the edit onwards,
or removes its last entries and lowers ``chain_head`` with them; publish or archive the head hash
(``AuditChain.head``) to catch that.

A SQLite log written before the chain existed is migrated when it is opened: the columns are added and the chain is
computed over the existing entries in id order. Those entries are chained *from the migration*, not proven from
their creation: an edit made to them before the migration is not detectable. ``AuditChain.migrated_through`` names
the last entry chained that way.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from synthguard import __version__
from synthguard.core.database import Backend, Database, DatabaseURL, Migration, Transaction, store_url
from synthguard.core.home import Home
from synthguard.errors import LedgerError

COMPONENT = "audit"
# The lock every append takes, so that two writers never chain to the same entry.
CHAIN_LOCK = "audit-chain"
_REFUSED = "the audit log is append-only"
_UNCHAINED = "audit entries need their chain hashes: write them with synthguard"
_NO_UPDATE = f"""CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END"""
_SQLITE_GUARDS = (
    _NO_UPDATE,
    f"""CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END""",
    # A writer that does not know the chain (an older synthguard) is refused rather than leaving an unchained entry.
    f"""CREATE TRIGGER IF NOT EXISTS entries_chained BEFORE INSERT ON entries
    WHEN NEW.row_hash IS NULL OR NEW.prev_hash IS NULL
    BEGIN SELECT RAISE(ABORT, '{_UNCHAINED}'); END""",
)
_ENTRY_COLUMNS_DDL = """
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
)"""
_POSTGRESQL = (
    f"CREATE TABLE IF NOT EXISTS entries (\n    id BIGINT PRIMARY KEY,{_ENTRY_COLUMNS_DDL}",
    "CREATE INDEX IF NOT EXISTS entries_file ON entries(file_sha256)",
    f"""CREATE OR REPLACE FUNCTION synthguard_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{_REFUSED}'; END $$""",
    f"""CREATE OR REPLACE FUNCTION synthguard_audit_chained() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.row_hash IS NULL OR NEW.prev_hash IS NULL THEN RAISE EXCEPTION '{_UNCHAINED}'; END IF;
        RETURN NEW;
    END $$""",
    "CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries FOR EACH ROW "
    "EXECUTE FUNCTION synthguard_audit_append_only()",
    "CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries FOR EACH ROW "
    "EXECUTE FUNCTION synthguard_audit_append_only()",
    "CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries FOR EACH STATEMENT "
    "EXECUTE FUNCTION synthguard_audit_append_only()",
    "CREATE TRIGGER entries_chained BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION synthguard_audit_chained()",
)
_COLUMNS = ("time", "kind", "file", "file_sha256", "policy", "policy_sha256", "verdict", "action", "reasons", "editor",
            "note", "tool_version")
_CHAIN_COLUMNS = ("prev_hash", "row_hash")
# The prev_hash of the first entry.
GENESIS = "0" * 64
# Starts every encoded entry, so a chain hash cannot be mistaken for the hash of another kind of record.
_DOMAIN = "synthguard-audit-v1"
# Entries read per query by verify(), so a long log is checked in bounded memory.
_PAGE = 1000


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
    migration of an older log, not from its creation; ``store`` is where the log was read (a SQLite file, or a
    database URL with its password masked)."""

    entries: int
    head: str
    broken_at: int | None = None
    problem: str | None = None
    migrated_through: int | None = None
    store: str | None = None

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
    """A text both backends store as given: a file name that is not UTF-8 (surrogate escapes, or any other lone
    surrogate) is kept with its bytes as ``\\xNN`` (``\\uNNNN``) escapes, and NUL, which PostgreSQL's text cannot
    hold, as ``\\x00``, on both backends so that the same entry has the same hash wherever it is stored."""
    if not isinstance(value, str):
        return value
    try:
        value.encode()
    except UnicodeEncodeError:
        try:
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "backslashreplace").decode()
    return value.replace("\x00", "\\x00")


def _chain_existing(tx: Transaction) -> None:
    """Migration 1's data step on SQLite: add the chain to a log written before it (see the module docstring)."""
    if tx.backend is not Backend.SQLITE:
        return
    columns = {row[1] for row in tx.execute("PRAGMA table_info(entries)")}
    if set(_CHAIN_COLUMNS) <= columns:
        return
    tx.execute("DROP TRIGGER IF EXISTS entries_no_update")
    for column in _CHAIN_COLUMNS:
        if column not in columns:
            tx.execute(f"ALTER TABLE entries ADD COLUMN {column} TEXT")
    prev, last_id = GENESIS, None
    for row in tx.execute(f"SELECT id, {', '.join(_COLUMNS)} FROM entries ORDER BY id"):
        last_id, values = row[0], dict(zip(_COLUMNS, row[1:]))
        digest = entry_hash(last_id, values, prev)
        tx.execute("UPDATE entries SET prev_hash = ?, row_hash = ? WHERE id = ?", (prev, digest, last_id))
        prev = digest
    if last_id is not None:
        tx.execute("INSERT INTO chain_migration (time, last_id) VALUES (?, ?)", (_now(), last_id))
    tx.execute(_NO_UPDATE)


def _sequence(tx_or_db) -> int | None:
    """SQLite's AUTOINCREMENT counter of ``entries`` (the highest id it ever held), None where there is none."""
    if tx_or_db.backend is not Backend.SQLITE:
        return None
    rows = tx_or_db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'")
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


def _seed_head(tx: Transaction) -> None:
    """Migration 2's data step: ``chain_head`` starts at the highest id the log has held."""
    found = [v for v in (tx.execute("SELECT MAX(id) FROM entries")[0][0], _sequence(tx)) if v is not None]
    if found:
        tx.insert("chain_head", ("one", "last_id"), (1, max(int(v) for v in found)), key=("one",))


MIGRATIONS = (
    Migration(1, "entries", statements=(
        "CREATE TABLE IF NOT EXISTS chain_migration (time TEXT NOT NULL, last_id {bigint} NOT NULL)",
    ), sqlite=(
        f"CREATE TABLE IF NOT EXISTS entries (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,{_ENTRY_COLUMNS_DDL}",
        "CREATE INDEX IF NOT EXISTS entries_file ON entries(file_sha256)",
        *_SQLITE_GUARDS,
    ), postgresql=_POSTGRESQL, run=_chain_existing),
    Migration(2, "chain_head", statements=(
        "CREATE TABLE IF NOT EXISTS chain_head (one INTEGER PRIMARY KEY CHECK (one = 1), last_id {bigint} NOT NULL)",
    ), run=_seed_head),
)


class AuditLog:
    """Append-only, hash-chained audit log. ``location``: a SQLite file (a path) or a database URL
    (``postgresql://...``, ``sqlite:///...``). Errors are LedgerError naming the masked location. Use as a context
    manager or call :meth:`close`."""

    def __init__(self, location: str | os.PathLike | DatabaseURL, *, timeout_s: float = 60.0):
        self.location = DatabaseURL.parse(location)
        # The SQLite file (None for a database server).
        self.path = self.location.path
        self._db = Database(self.location, label="the audit log", timeout_s=timeout_s)
        try:
            self._db.migrate(COMPONENT, MIGRATIONS)
            if self._db.backend is Backend.SQLITE:
                # Guards dropped from the file are put back (a PostgreSQL table keeps its owner's triggers).
                for guard in _SQLITE_GUARDS:
                    self._db.execute(guard)
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def from_home(cls, home: Home, *, environ: Mapping[str, str] | None = None,
                  timeout_s: float = 60.0) -> AuditLog:
        """The audit log of ``home``: the database of ``SYNTHGUARD_DATABASE_URL`` when set, else
        ``home.audit_path``."""
        return cls(cls.location_for(home, environ=environ), timeout_s=timeout_s)

    @staticmethod
    def location_for(home: Home, *, environ: Mapping[str, str] | None = None) -> DatabaseURL:
        """Where :meth:`from_home` opens the log (``.exists()``: whether there is one to read)."""
        return store_url(home.audit_path, environ)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditLog({self.location.masked()!r})"

    def close(self) -> None:
        self._db.close()

    def _append(self, values: dict) -> int:
        """One entry, chained to the last one inside one transaction holding the chain lock (a concurrent writer
        waits)."""
        with self._db.transaction() as tx:
            tx.lock(CHAIN_LOCK)
            last = tx.execute("SELECT id, row_hash FROM entries ORDER BY id DESC LIMIT 1")
            entry_id, prev = (1, GENESIS) if not last else (int(last[0][0]) + 1, last[0][1] or "")
            stored = {c: _storable(values.get(c)) for c in _COLUMNS} | {"time": _now()}
            tx.insert("entries", ("id", *_COLUMNS, *_CHAIN_COLUMNS),
                      (entry_id, *(stored[c] for c in _COLUMNS), prev, entry_hash(entry_id, stored, prev)))
            # Never lowered: after deleted last entries, the next append must not hide that they existed.
            head = tx.execute("SELECT last_id FROM chain_head WHERE one = 1")
            highest = max(entry_id, int(head[0][0])) if head else entry_id
            tx.execute("INSERT INTO chain_head (one, last_id) VALUES (1, ?) "
                       "ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id", (highest,))
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
        out = []
        for row in reversed(self._db.execute(query, args)):
            values = dict(zip(("id", *_COLUMNS), row))
            values["reasons"] = _reasons(values["reasons"])
            out.append(AuditEntry(**values))
        return out

    def head(self) -> tuple[int, str] | None:
        """The last entry's id and stored hash (``None`` for an empty log): what a run's report quotes, so a later
        rewrite of the log from an earlier entry onwards no longer matches it."""
        rows = self._db.execute("SELECT id, row_hash FROM entries ORDER BY id DESC LIMIT 1")
        return None if not rows else (int(rows[0][0]), str(rows[0][1]))

    def verified(self, policy_sha256: str) -> set[tuple[str, str | None, str | None, str | None]]:
        """``(file, file_sha256, verdict, action)`` of every verification entry made under one policy."""
        rows = self._db.execute("SELECT file, file_sha256, verdict, action FROM entries "
                                "WHERE kind = 'verification' AND policy_sha256 = ?", (policy_sha256,))
        return {tuple(row) for row in rows}

    def verify(self) -> AuditChain:
        """Recompute the hash chain over every entry in id order (read in pages); the first entry that does not
        check out, if any, or the last entries missing when ``chain_head`` (or SQLite's counter) names higher
        ids than the log holds."""
        store = self.location.masked()
        migrated = self._db.scalar("SELECT MAX(last_id) FROM chain_migration")
        # Read before the entries: what is appended meanwhile only adds entries above it.
        written = [int(v) for v in (self._db.scalar("SELECT last_id FROM chain_head WHERE one = 1"),
                                    _sequence(self._db)) if v is not None]
        select = f"SELECT id, {', '.join(_COLUMNS)}, {', '.join(_CHAIN_COLUMNS)} FROM entries"
        count, prev, prev_id = 0, GENESIS, None
        while True:
            rows = (self._db.execute(f"{select} ORDER BY id LIMIT {_PAGE}") if prev_id is None else
                    self._db.execute(f"{select} WHERE id > ? ORDER BY id LIMIT {_PAGE}", (prev_id,)))
            for row in rows:
                entry_id, values = int(row[0]), dict(zip(_COLUMNS, row[1:-2]))
                stored_prev, stored_hash = row[-2:]
                count += 1
                broken = _check(entry_id, prev_id, prev, values, stored_prev, stored_hash)
                if broken is not None:
                    return AuditChain(count, str(stored_hash), entry_id, broken, migrated, store)
                prev, prev_id = stored_hash, entry_id
            if len(rows) < _PAGE:
                break
        highest = max(written, default=None)
        if highest is not None and (prev_id is None or highest > prev_id):
            ends = "is empty" if prev_id is None else f"ends at entry #{prev_id}"
            return AuditChain(count, prev, highest, f"the log {ends} but entries up to #{highest} were written "
                              "(the last ones were deleted)", migrated, store)
        return AuditChain(count, prev, migrated_through=migrated, store=store)


def _reasons(stored: str | None) -> list[str] | None:
    """The reasons of a stored entry (a JSON list); text that is not one is shown as it is, not dropped."""
    if not stored:
        return None
    try:
        reasons = json.loads(stored)
    except ValueError:
        return [stored]
    return reasons if isinstance(reasons, list) else [stored]


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
