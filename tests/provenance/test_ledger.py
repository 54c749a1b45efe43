import subprocess
import sys
import textwrap
import uuid

from synthguard.provenance.ledger import Ledger, LedgerRecord


def _record(**kw) -> LedgerRecord:
    base = dict(asset_id=str(uuid.uuid4()), created_at=1.0, mime="image/png", file_sha256="f", content_sha256="c",
                manifest_label="urn:c2pa:x", manifest=b"m", signer="s")
    return LedgerRecord(**{**base, **kw})


def test_lookups(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as ledger:
        a = _record(file_sha256="fa", content_sha256="ca", soft_binding_alg="alg", soft_binding_value=b"\x01\x02")
        ledger.record(a)
        ledger.record(_record(file_sha256="fb", content_sha256="cb"))
        assert ledger.find_by_file_hash("fa") == [a]
        assert ledger.find_by_content_hash("ca") == [a]
        assert ledger.find_by_soft_binding(b"\x01\x02") == [a]
        assert ledger.get(a.asset_id) == a
        assert ledger.find_by_file_hash("nope") == []
        assert ledger.count() == 2


WRITER = textwrap.dedent("""
    import sys, uuid
    from synthguard.provenance.ledger import Ledger, LedgerRecord
    with Ledger(sys.argv[1]) as ledger:
        for i in range(int(sys.argv[2])):
            ledger.record(LedgerRecord(str(uuid.uuid4()), 0.0, "image/png", "f", "c", "l", b"m" * 4000, sys.argv[3]))
""")


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "ledger.sqlite"
    n = 300
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n), name]) for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Ledger(path) as ledger:
        assert ledger.count() == 2 * n


def test_two_sign_commands_at_once_both_land_in_the_ledger(home, tmp_path, png):
    import os

    from synthguard.provenance.identity import IdentityStore
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
        assert ledger.count() == 8
