"""`bench ledger` and `bench resolver`, tiny: concurrent writers into one ledger on each backend (real stamps on
PostgreSQL), and lookups through a real `ledger serve` beside in-process ones; each prints its figures and says
whether anything was lost, duplicated or answered wrongly."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers.postgres import BACKENDS, backend_url, fresh_postgres_url, postgres_url  # noqa: F401 (fixtures)

from synthguard.cli import main


def run(*args):
    return CliRunner().invoke(main, ["bench", *map(str, args)], catch_exceptions=False)


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> str:
    return backend_url(request, tmp_path)


def test_bench_ledger_counts_every_record_once(url):
    result = run("ledger", "--database", url, "--records", 60, "--processes", 3, "--lookups", 40, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    first = data["runs"][0]
    assert data["ok"] and first["stored"] == 60 and first["duplicates"] == 0 and first["lost"] == 0
    assert first["wrong_lookups"] == 0 and first["lookup"]["calls"] == 40
    if url.startswith("postgresql"):  # and the embedded peer, side by side
        assert [r["backend"] for r in data["runs"]] == ["postgresql", "sqlite"]


def test_bench_ledger_with_real_stamps(fresh_postgres_url):  # noqa: F811
    result = run("ledger", "--database", fresh_postgres_url, "--records", 8, "--processes", 2, "--lookups", 10,
                 "--stamp")
    assert result.exit_code == 0, result.output
    assert "postgresql (stamping images)" in result.output and "stored 8, 0 duplicates, 0 lost" in result.output


def test_bench_ledger_refuses_a_ledger_in_use(tmp_path):
    target = tmp_path / "ledger.sqlite"
    assert run("ledger", "--database", target, "--records", 5, "--processes", 1, "--lookups", 1).exit_code == 0
    again = run("ledger", "--database", target, "--records", 5, "--processes", 1, "--lookups", 1)
    assert again.exit_code == 2 and "needs an empty ledger" in again.output


def test_bench_resolver_through_a_real_ledger_serve():
    pytest.importorskip("uvicorn")
    result = run("resolver", "--records", 40, "--lookups", 60, "--clients", "1,2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] and [(r["how"], r["clients"]) for r in data["runs"]] == [
        ("in-process", 1), ("ledger serve (HTTP)", 1), ("ledger serve (HTTP)", 2)]
    assert all(r["lookups"] == 60 and r["wrong"] == 0 and r["failed"] == 0 for r in data["runs"])
    text = run("resolver", "--records", 10, "--lookups", 10, "--clients", "1").output
    assert "vs in-process" in text and "x slower" in text
    assert run("resolver", "--clients", "x").exit_code == 2
