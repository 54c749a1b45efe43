"""The ledger: every signed output, keyed so that a copy without its manifest can be matched back to it.

Where it lives (``core.database``): ``SYNTHGUARD_HOME/ledger.sqlite`` by default (SQLite in WAL mode, one short
write transaction per record, so several processes signing at once lose nothing), or the PostgreSQL database named
by ``SYNTHGUARD_DATABASE_URL`` (:meth:`Ledger.from_home`), which several signing machines write at once. Lookups:
- by file hash (the exact signed file),
- by content hash (decoded pixels for images, bytes for other media): finds a copy whose manifest was stripped by a
  tool that left the pixels alone (metadata strippers, lossless re-saves),
- by soft-binding value (the watermark payload): finds a re-encoded copy (the watermark issue uses this).

Watermark payloads are drawn with :meth:`Ledger.reserve_soft_binding`: the value is inserted into
``soft_binding_reservations``, whose primary key is the value, so of several signers drawing the same key at once
(threads, processes, the machines of a cluster on one PostgreSQL ledger) the database gives it to exactly one.

Records are only ever inserted. ``asset_id`` is the table's primary key, so the database itself keeps asset ids
unique: recording a record whose id is taken is a no-op when the stored record is identical (a retried write) and a
LedgerError when it differs (a record is never replaced).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields

from synthguard.core.database import Database, DatabaseURL, Migration, store_url
from synthguard.core.home import Home
from synthguard.errors import LedgerError

COMPONENT = "ledger"
MIGRATIONS = (
    Migration(1, "assets", statements=(
        """CREATE TABLE IF NOT EXISTS assets (
            asset_id TEXT PRIMARY KEY,
            created_at {real} NOT NULL,
            mime TEXT NOT NULL,
            file_sha256 TEXT NOT NULL,
            content_sha256 TEXT NOT NULL,
            manifest_label TEXT NOT NULL,
            manifest {blob} NOT NULL,
            signer TEXT NOT NULL,
            output_path TEXT,
            soft_binding_alg TEXT,
            soft_binding_value {blob}
        )""",
        "CREATE INDEX IF NOT EXISTS assets_file ON assets(file_sha256)",
        "CREATE INDEX IF NOT EXISTS assets_content ON assets(content_sha256)",
        "CREATE INDEX IF NOT EXISTS assets_soft_binding ON assets(soft_binding_value)",
    )),
)
# The reservations are their own component (versioned apart from the assets table), so a ledger at any assets
# version gains them on opening.
RESERVATIONS_COMPONENT = "ledger-reservations"
RESERVATION_MIGRATIONS = (
    Migration(1, "soft_binding_reservations", statements=(
        """CREATE TABLE IF NOT EXISTS soft_binding_reservations (
            value {blob} PRIMARY KEY,
            reserved_at {real} NOT NULL
        )""",
    )),
)


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


_COLUMNS = tuple(f.name for f in fields(LedgerRecord))
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM assets"


class Ledger:
    """Append-only store of signed assets. ``location``: a SQLite file (a path) or a database URL
    (``postgresql://...``, ``sqlite:///...``). Use as a context manager or call :meth:`close`."""

    def __init__(self, location: str | os.PathLike | DatabaseURL, *, timeout_s: float = 60.0):
        self.location = DatabaseURL.parse(location)
        # The SQLite file (None for a database server).
        self.path = self.location.path
        self._db = Database(self.location, label="the ledger", timeout_s=timeout_s)
        try:
            self._db.migrate(COMPONENT, MIGRATIONS)
            self._db.migrate(RESERVATIONS_COMPONENT, RESERVATION_MIGRATIONS)
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def from_home(cls, home: Home, *, environ: Mapping[str, str] | None = None, timeout_s: float = 60.0) -> Ledger:
        """The ledger of ``home``: the database of ``SYNTHGUARD_DATABASE_URL`` when set, else
        ``home.ledger_path``."""
        return cls(cls.location_for(home, environ=environ), timeout_s=timeout_s)

    @staticmethod
    def location_for(home: Home, *, environ: Mapping[str, str] | None = None) -> DatabaseURL:
        """Where :meth:`from_home` opens the ledger (``.exists()``: whether there is one to read)."""
        return store_url(home.ledger_path, environ)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.location.masked()!r})"

    def close(self) -> None:
        self._db.close()

    def record(self, rec: LedgerRecord) -> None:
        """Insert ``rec`` (its output path made storable, see :func:`_storable`). Its asset id already recorded:
        nothing to do when the stored record is the same, a LedgerError when it differs."""
        rec = _storable(rec)
        if self._db.insert("assets", _COLUMNS, tuple(getattr(rec, c) for c in _COLUMNS), key=("asset_id",)):
            return
        stored = self.get(rec.asset_id)
        if stored != rec:
            raise LedgerError(f"the ledger {self.location.masked()} already holds asset {rec.asset_id} with a "
                              "different record: asset ids are unique and records are never replaced")

    def reserve_soft_binding(self, value: bytes) -> bool:
        """Reserve the soft-binding value ``value`` (a watermark payload about to be embedded): True for the one
        caller that got it, False when another reservation holds it or a recorded asset already carries it. The
        database decides (the value is the reservations' primary key), so concurrent callers on any number of
        connections never both get True. A reservation is kept whether or not an asset is recorded with it: a
        value once drawn is never handed out again."""
        value = bytes(value)
        if not value:
            raise LedgerError("cannot reserve an empty soft-binding value")
        if not self._db.insert("soft_binding_reservations", ("value", "reserved_at"), (value, time.time()),
                               key=("value",)):
            return False
        # Assets recorded without a reservation (before reservations existed, or a text watermark's key id).
        return not self._db.execute("SELECT 1 FROM assets WHERE soft_binding_value = ? LIMIT 1", (value,))

    def _find(self, column: str, value) -> list[LedgerRecord]:
        rows = self._db.execute(f"{_SELECT} WHERE {column} = ? ORDER BY created_at DESC, asset_id", (value,))
        return [_record(row) for row in rows]

    def find_by_file_hash(self, sha256: str) -> list[LedgerRecord]:
        return self._find("file_sha256", sha256)

    def find_by_content_hash(self, sha256: str) -> list[LedgerRecord]:
        return self._find("content_sha256", sha256)

    def find_by_soft_binding(self, value: bytes) -> list[LedgerRecord]:
        return self._find("soft_binding_value", bytes(value))

    def get(self, asset_id: str) -> LedgerRecord | None:
        found = self._find("asset_id", asset_id)
        return found[0] if found else None

    def count(self) -> int:
        return int(self._db.scalar("SELECT COUNT(*) FROM assets"))


def _storable(rec: LedgerRecord) -> LedgerRecord:
    """``rec`` as the ledger stores it: an output path that is not UTF-8 (a file name's surrogate escapes) kept with
    its bytes as ``\\xNN`` escapes; any other text that is not UTF-8, or text holding NUL (which PostgreSQL's text
    type cannot hold; refused on both backends so that they store the same records), is a LedgerError."""
    values = {c: getattr(rec, c) for c in _COLUMNS}
    path = values["output_path"]
    if path is not None and not _utf8(path):
        values["output_path"] = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    for column, value in values.items():
        if isinstance(value, str) and ("\x00" in value or not _utf8(value)):
            problem = "a NUL character" if "\x00" in value else "text that is not UTF-8"
            raise LedgerError(f"cannot record asset {rec.asset_id!r} in the ledger: its {column} contains {problem}")
    return LedgerRecord(**values)


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _record(row: tuple) -> LedgerRecord:
    """A stored row as a record (a driver may return a bytes-like object that is not ``bytes``)."""
    values = dict(zip(_COLUMNS, row))
    for column in ("manifest", "soft_binding_value"):
        if values[column] is not None:
            values[column] = bytes(values[column])
    return LedgerRecord(**values)
