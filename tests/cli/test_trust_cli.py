import datetime as dt
import json

from click.testing import CliRunner
from helpers.trust_lists import ca_of, minted_identity, signed_capture, write_trust_list

from synthguard.cli import main
from synthguard.provenance.trustlist import TrustListKind, shipped_trust_list

NEWSROOM = "policies/newsroom-default.yaml"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _one_line_error(result) -> str:
    assert result.exit_code != 0 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


def _shipped_is_stale() -> bool:
    return any(shipped_trust_list(kind).is_stale() for kind in TrustListKind)


def test_show_names_the_shipped_lists():
    result = run("keys", "trust-list", "show")
    assert result.exit_code == 0
    first, _sha, tsa, _tsa_sha, products = result.stdout.splitlines()
    assert products.startswith("C2PA Conforming Products List (shipped snapshot): 174 records")
    assert first.startswith("C2PA Trust List issued 2026-08-05") and "30 certificates from 17 entities" in first
    assert "(shipped snapshot" in first
    assert tsa.startswith("C2PA TSA Trust List issued 2026-08-05") and "22 certificates" in tsa
    assert ("STALE" in result.stdout) == _shipped_is_stale()


def test_show_json_and_entities():
    data = json.loads(run("keys", "trust-list", "show", "--json").stdout)
    claims, tsa = data["lists"]
    assert claims["kind"] == "C2PA-TRUST-LIST" and claims["name"] == "C2PA Trust List"
    assert claims["issued"].startswith("2026-08-05") and claims["next_update"].startswith("2027-08-05")
    assert claims["certificates"] == 30 and len(claims["entities"]) == 17 and "Adobe Inc" in claims["entities"]
    assert claims["origin"] == "shipped snapshot" and len(claims["sha256"]) == 64 and claims["sequence"] == 1
    assert claims["stale"] is shipped_trust_list(TrustListKind.CLAIM_SIGNERS).is_stale()
    assert tsa["kind"] == "C2PA-TSA-TRUST-LIST" and tsa["certificates"] == 22
    assert data["products"]["count"] == 174 and data["products"]["source"] == "shipped snapshot"
    listed = run("keys", "trust-list", "show", "--entities").stdout.splitlines()
    assert "  - Adobe Inc" in listed and "  - Google LLC" in listed
    assert "  - Adobe Inc" not in run("keys", "trust-list", "show").stdout.splitlines()


def test_update_installs_a_newer_list_and_show_and_explain_name_it(tmp_path):
    chain, _ = minted_identity()
    folder = write_trust_list(tmp_path / "list", [ca_of(chain)]).parent
    result = run("keys", "trust-list", "update", "--from", folder)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("in force: C2PA Trust List issued 2026-11-30")
    first = run("keys", "trust-list", "show").stdout.splitlines()[0]
    assert first.startswith("C2PA Trust List issued 2026-11-30") and "1 certificates from 1 entities" in first
    assert "trust-lists/C2PA-TRUST-LIST.json" in first
    assert "Example Wire" in run("keys", "trust-list", "show", "--entities").stdout
    explained = run("policy", "explain", NEWSROOM)
    assert explained.exit_code == 0 and "C2PA Trust List issued 2026-11-30" in explained.stdout
    again = run("keys", "trust-list", "update", "--from", folder, "--json")  # the same list: nothing changes
    assert again.exit_code == 0 and json.loads(again.stdout)["lists"][0]["issued"].startswith("2026-11-30")


def test_policy_explain_names_the_shipped_list():
    result = run("policy", "explain", NEWSROOM)
    assert result.exit_code == 0
    assert "C2PA Trust List issued 2026-08-05" in result.stdout and "30 certificates" in result.stdout
    assert "C2PA TSA Trust List issued 2026-08-05" in result.stdout


def test_update_refuses_an_older_list_in_one_line(tmp_path):
    chain, _ = minted_identity()
    old = write_trust_list(tmp_path / "old", [ca_of(chain)], issued=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    line = _one_line_error(run("keys", "trust-list", "update", "--from", old.parent))
    assert "issued 2025-01-01" in line and "not newer than the C2PA Trust List in force (issued 2026-08-05" in line
    assert run("keys", "trust-list", "show").stdout.startswith("C2PA Trust List issued 2026-08-05")


def test_update_from_a_folder_without_the_lists_says_what_it_needs(tmp_path):
    (tmp_path / "empty").mkdir()
    line = _one_line_error(run("keys", "trust-list", "update", "--from", tmp_path / "empty"))
    assert "holds none of C2PA-TRUST-LIST.json, C2PA-TSA-TRUST-LIST.json" in line
    line = _one_line_error(run("keys", "trust-list", "update", "--from", tmp_path / "missing"))
    assert "no such file or folder" in line
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "C2PA-TRUST-LIST.json").write_bytes(b"{truncated")
    assert "not JSON" in _one_line_error(run("keys", "trust-list", "update", "--from", tmp_path / "broken"))


def test_a_stale_list_is_marked_and_warned_about(tmp_path):
    chain, _ = minted_identity()
    # Issued after the shipped snapshot, its next update already past (whatever today's date).
    next_update = min(dt.datetime(2026, 11, 15, tzinfo=dt.UTC), dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    folder = write_trust_list(tmp_path / "stale", [ca_of(chain)], issued=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                              next_update=next_update).parent
    assert run("keys", "trust-list", "update", "--from", folder).exit_code == 0
    result = run("keys", "trust-list", "show")
    assert result.exit_code == 0
    first = result.stdout.splitlines()[0]
    assert first.startswith("C2PA Trust List issued 2026-11-01") and "STALE: past its next update" in first
    assert "warning: a list is past its next update" in result.stderr
    assert "trust-list update" in result.stderr
    assert json.loads(run("keys", "trust-list", "show", "--json").stdout)["lists"][0]["stale"] is True


def test_a_signer_whose_ca_is_on_an_installed_list_is_trusted_via_the_list(tmp_path):
    chain, key = minted_identity()
    folder = write_trust_list(tmp_path / "list", [ca_of(chain)]).parent
    assert run("keys", "trust-list", "update", "--from", folder).exit_code == 0
    signed = signed_capture(tmp_path, chain, key)
    result = run("detect", signed, "--json", "--policy", NEWSROOM)
    assert result.exit_code == 0, result.output
    p = json.loads(result.stdout)["provenance"]
    assert p["state"] == "trusted" and p["signer"] == "Example Wire Camera"
    assert p["trust_source"] == "c2pa-trust-list" and p["trust_entity"] == "Example Wire"
    assert p["timestamp"]["status"] == "absent"  # signed offline: no time-stamp authority was asked
    (link,) = p["details"]["chain"]
    assert link["trust_source"] == "c2pa-trust-list" and link["validation"] == "intact"
