import json
import sqlite3
import subprocess
import sys
import textwrap
import uuid

import pytest
from helpers.postgres import BACKENDS, backend_url, fresh_postgres_url, postgres_url  # noqa: F401 (fixtures)

from synthguard.core.database import ENV_VAR, Backend, Database
from synthguard.errors import LedgerError
from synthguard.provenance.ledger import COMPONENT, RESERVATIONS_COMPONENT, Ledger, LedgerRecord


def _record(**kw) -> LedgerRecord:
    base = dict(asset_id=str(uuid.uuid4()), created_at=1.0, mime="image/png", file_sha256="f", content_sha256="c",
                manifest_label="urn:c2pa:x", manifest=b"m", signer="s")
    return LedgerRecord(**{**base, **kw})


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> str:
    return backend_url(request, tmp_path)


def test_lookups(url):
    with Ledger(url) as ledger:
        a = _record(file_sha256="fa", content_sha256="ca", soft_binding_alg="alg", soft_binding_value=b"\x01\x02",
                    manifest=bytes(range(256)), created_at=1 / 3, output_path="/out/a.png")
        ledger.record(a)
        ledger.record(_record(file_sha256="fb", content_sha256="cb"))
        assert ledger.find_by_file_hash("fa") == [a]
        assert ledger.find_by_content_hash("ca") == [a]
        assert ledger.find_by_soft_binding(b"\x01\x02") == [a]
        assert ledger.find_by_soft_binding(bytearray(b"\x01\x02")) == [a]
        assert ledger.get(a.asset_id) == a
        assert ledger.find_by_file_hash("nope") == [] and ledger.get("nope") is None
        assert ledger.count() == 2


def test_newest_record_first(url):
    with Ledger(url) as ledger:
        old, new = _record(created_at=1.0, file_sha256="same"), _record(created_at=2.0, file_sha256="same")
        ledger.record(old)
        ledger.record(new)
        assert ledger.find_by_file_hash("same") == [new, old]


def test_an_asset_id_is_recorded_once(url):
    with Ledger(url) as ledger:
        rec = _record(asset_id="urn:uuid:1")
        ledger.record(rec)
        ledger.record(rec)  # a retried write of the same record
        with pytest.raises(LedgerError, match="already holds asset urn:uuid:1 with a different record"):
            ledger.record(_record(asset_id="urn:uuid:1", signer="someone else"))
        assert ledger.count() == 1 and ledger.get("urn:uuid:1") == rec


def test_text_a_database_cannot_hold_is_refused_on_both_backends(url):
    with Ledger(url) as ledger:
        with pytest.raises(LedgerError, match="its signer contains a NUL character"):
            ledger.record(_record(signer="evil\x00name"))
        with pytest.raises(LedgerError, match="its signer contains text that is not UTF-8"):
            ledger.record(_record(signer="evil\udcffname"))
        assert ledger.count() == 0


def test_an_output_path_that_is_not_utf8_is_kept_with_its_bytes_escaped(url):
    with Ledger(url) as ledger:
        rec = _record(output_path="/out/caf\udce9.png")
        ledger.record(rec)
        ledger.record(rec)
        assert ledger.get(rec.asset_id).output_path == "/out/caf\\xe9.png"
        assert ledger.count() == 1


def test_from_home_follows_the_database_url(home, url, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert Ledger.location_for(home).path == home.ledger_path
    assert not Ledger.location_for(home).exists()
    monkeypatch.setenv(ENV_VAR, url)
    with Ledger.from_home(home) as ledger:
        ledger.record(_record())
        assert ledger.location.masked() == Ledger.location_for(home).masked()
    with Ledger(url) as ledger:
        assert ledger.count() == 1
    assert not home.ledger_path.exists()


def test_a_ledger_written_before_migrations_is_adopted(tmp_path):
    path = tmp_path / "ledger.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""CREATE TABLE assets (asset_id TEXT PRIMARY KEY, created_at REAL NOT NULL, mime TEXT NOT NULL,
        file_sha256 TEXT NOT NULL, content_sha256 TEXT NOT NULL, manifest_label TEXT NOT NULL, manifest BLOB NOT NULL,
        signer TEXT NOT NULL, output_path TEXT, soft_binding_alg TEXT, soft_binding_value BLOB);
        INSERT INTO assets VALUES ('old', 5.0, 'image/png', 'f', 'c', 'l', x'00', 's', NULL, 'alg', x'0102');""")
    old.close()
    with Ledger(path) as ledger:
        assert ledger.find_by_soft_binding(b"\x01\x02")[0].asset_id == "old"
        ledger.record(_record())
        assert ledger.count() == 2
    with Database(path) as db:
        assert db.version(COMPONENT) == 1


def test_a_ledger_from_a_newer_synthguard_is_refused(url):
    Ledger(url).close()
    with Database(url) as db:
        db.execute("INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)",
                   (COMPONENT, 2, "future", "2030-01-01T00:00:00+00:00"))
    with pytest.raises(LedgerError, match="ledger schema version 2, newer than this synthguard knows"):
        Ledger(url)


def test_a_ledger_that_cannot_be_opened_is_a_ledger_error(tmp_path):
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(LedgerError, match="^cannot open the ledger "):
        Ledger(tmp_path / "dir.sqlite")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(LedgerError, match=r"^cannot open the ledger .*junk\.sqlite: file is not a database$"):
        Ledger(tmp_path / "junk.sqlite")


WRITER = textwrap.dedent("""
    import sys, uuid
    from synthguard.provenance.ledger import Ledger, LedgerRecord
    with Ledger(sys.argv[1]) as ledger:
        for i in range(int(sys.argv[2])):
            asset_id = str(uuid.uuid4())
            ledger.record(LedgerRecord(asset_id, float(i), "image/png", f"f{asset_id}", "c", "l", b"m" * 4000,
                                       sys.argv[3], soft_binding_value=uuid.UUID(asset_id).bytes[:6]))
            print(asset_id, flush=True)
""")


def test_four_processes_writing_at_once_lose_and_duplicate_nothing(url):
    n = 500
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(n), f"w{i}"], stdout=subprocess.PIPE,
                              text=True) for i in range(4)]
    written = [p.communicate(timeout=600)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert [len(w) for w in written] == [n] * 4
    with Database(url) as db:
        stored = db.execute("SELECT asset_id, signer FROM assets")
    assert len(stored) == 4 * n
    assert len({a for a, _ in stored}) == 4 * n  # 0 duplicates
    assert {a for a, _ in stored} == {a for w in written for a in w}  # 0 lost
    assert {s: sum(1 for _, x in stored if x == s) for s in ("w0", "w1", "w2", "w3")} == dict.fromkeys(
        ("w0", "w1", "w2", "w3"), n)


RIVAL = textwrap.dedent("""
    import json, sys
    from synthguard.errors import LedgerError
    from synthguard.provenance.ledger import Ledger, LedgerRecord
    won = lost = 0
    with Ledger(sys.argv[1]) as ledger:
        for i in range(int(sys.argv[2])):
            try:
                ledger.record(LedgerRecord(f"asset-{i}", 0.0, "image/png", "f", "c", "l", b"m", sys.argv[3]))
                won += 1
            except LedgerError:
                lost += 1
    print(json.dumps([won, lost]))
""")


def test_rival_writers_of_one_asset_id_leave_exactly_one_record(url):
    n = 100
    Ledger(url).close()
    procs = [subprocess.Popen([sys.executable, "-c", RIVAL, url, str(n), f"w{i}"], stdout=subprocess.PIPE,
                              text=True) for i in range(4)]
    results = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert sum(won for won, _ in results) == n and sum(lost for _, lost in results) == 3 * n
    with Ledger(url) as ledger:
        assert ledger.count() == n


def test_two_sign_commands_at_once_both_land_in_the_ledger(home, tmp_path, png, monkeypatch):
    import os

    from synthguard.provenance.identity import IdentityStore
    monkeypatch.delenv(ENV_VAR, raising=False)
    IdentityStore(home).init("t", "t")
    env = {**os.environ, "SYNTHGUARD_HOME": str(home.root)}
    procs = []
    for name in ("a", "b"):
        script = ("import sys\nfrom synthguard.cli import main\n"
                  "for i in range(4):\n"
                  "    try:\n        main(['sign', sys.argv[1], '-o', sys.argv[2] + f'-{i}.png', '--no-watermark'])\n"
                  "    except SystemExit as e:\n        assert not e.code, e.code\n")
        procs.append(subprocess.Popen([sys.executable, "-c", script, str(png), str(tmp_path / name)], env=env))
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Ledger(home.ledger_path) as ledger:
        assert ledger.location.backend is Backend.SQLITE
        assert ledger.count() == 8


def test_a_soft_binding_is_reserved_once_and_found_once_recorded(url):
    with Ledger(url) as ledger:
        assert ledger.reserve_soft_binding(b"\x10\x00\x00\x00\x00\x01") is True
        assert ledger.reserve_soft_binding(bytearray(b"\x10\x00\x00\x00\x00\x01")) is False
        rec = _record(soft_binding_alg="alg", soft_binding_value=b"\x10\x00\x00\x00\x00\x01")
        ledger.record(rec)
        assert ledger.find_by_soft_binding(b"\x10\x00\x00\x00\x00\x01") == [rec]
        assert ledger.reserve_soft_binding(b"\x10\x00\x00\x00\x00\x01") is False
        # An asset recorded without a reservation (a text key id, a ledger from before reservations) holds its value.
        ledger.record(_record(soft_binding_alg="alg", soft_binding_value=b"\x20\x00\x00\x00\x00\x02"))
        assert ledger.reserve_soft_binding(b"\x20\x00\x00\x00\x00\x02") is False
        with pytest.raises(LedgerError, match="empty soft-binding value"):
            ledger.reserve_soft_binding(b"")
        assert ledger.count() == 2


def test_a_ledger_from_before_reservations_gains_them(tmp_path):
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    with Database(path) as db:
        db.execute("DROP TABLE soft_binding_reservations")
        db.execute("DELETE FROM schema_migrations WHERE component = ?", (RESERVATIONS_COMPONENT,))
    with Ledger(path) as ledger:
        assert ledger.reserve_soft_binding(b"\x01" * 6) and not ledger.reserve_soft_binding(b"\x01" * 6)
    with Database(path) as db:
        assert db.version(COMPONENT) == 1 and db.version(RESERVATIONS_COMPONENT) == 1


RESERVER = textwrap.dedent("""
    import json, random, sys
    from synthguard.provenance.ledger import Ledger
    values = [i.to_bytes(6, "big") for i in range(int(sys.argv[2]))]
    random.Random(sys.argv[3]).shuffle(values)
    with Ledger(sys.argv[1]) as ledger:
        print(json.dumps([v.hex() for v in values if ledger.reserve_soft_binding(v)]))
""")


def test_rival_processes_and_threads_never_reserve_one_value_twice(url):
    import random
    import threading

    n = 300
    Ledger(url).close()
    procs = [subprocess.Popen([sys.executable, "-c", RESERVER, url, str(n), f"p{i}"], stdout=subprocess.PIPE,
                              text=True) for i in range(4)]
    # Threads of this process, each on its own connection, race the processes for the same values.
    won_here: list[list[bytes]] = [[], []]

    def reserve(mine: list[bytes], order: int) -> None:
        values = [i.to_bytes(6, "big") for i in range(n)]
        random.Random(order).shuffle(values)
        with Ledger(url) as ledger:
            mine.extend(v for v in values if ledger.reserve_soft_binding(v))

    threads = [threading.Thread(target=reserve, args=(won_here[k], k)) for k in range(2)]
    for t in threads:
        t.start()
    won = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    for t in threads:
        t.join(timeout=300)
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    every = [bytes.fromhex(v) for w in won for v in w] + [v for w in won_here for v in w]
    assert len(every) == n and set(every) == {i.to_bytes(6, "big") for i in range(n)}  # each value won exactly once
    with Database(url) as db:
        assert db.scalar("SELECT COUNT(*) FROM soft_binding_reservations") == n
