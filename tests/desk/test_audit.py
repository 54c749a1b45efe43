"""The audit log: append-only, reviews with their editor, lookups by file hash; the audit commands."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from synthguard.cli import main
from synthguard.desk.audit import AuditLog
from synthguard.errors import LedgerError


def test_append_only(tmp_path):
    path = tmp_path / "audit.sqlite"
    with AuditLog(path) as log:
        log.record_verification(file="a.png", file_sha256="aa", policy="p", policy_sha256="ph", verdict="unknown",
                                action="human-review", reasons=["r1"])
        log.record_review(file="a.png", file_sha256="aa", decision="publish", editor=" Ed ", note="checked")
        entries = log.entries("aa")
    assert [e.kind for e in entries] == ["verification", "review"]
    assert entries[0].reasons == ["r1"] and entries[1].editor == "Ed" and entries[1].action == "publish"
    db = sqlite3.connect(path)
    for statement in ("UPDATE entries SET action = 'reject'", "DELETE FROM entries"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(statement)
    db.close()
    with AuditLog(path) as log:
        assert len(log.entries()) == 2 and len(log.entries(limit=1)) == 1
        with pytest.raises(LedgerError, match="editor"):
            log.record_review(file="a.png", file_sha256="aa", decision="publish", editor="  ")


def test_review_and_show_commands(home, png):
    runner = CliRunner()
    empty = runner.invoke(main, ["audit", "show"])
    assert empty.exit_code == 2 and "no audit log" in empty.stderr
    done = runner.invoke(main, ["audit", "review", str(png), "--decision", "label-ai", "--editor", "A. Editor",
                                "--note", "AI illustration, labelled"])
    assert done.exit_code == 0 and "recorded review" in done.stdout
    shown = runner.invoke(main, ["audit", "show", str(png)])
    assert "label-ai by A. Editor (AI illustration, labelled)" in shown.stdout
    bad = runner.invoke(main, ["audit", "review", str(png), "--decision", "maybe", "--editor", "E"])
    assert bad.exit_code == 2
