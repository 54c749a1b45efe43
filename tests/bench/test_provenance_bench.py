import json

from click.testing import CliRunner
from helpers.files import INTEROP, REPO

from synthguard.cli import main

CHANGED = {"E-sig-CA.jpg", "XCA.jpg"}  # the claim signature, and the pixels, changed after signing


def test_the_table_over_every_c2pa_fixture_never_says_tampered_of_an_intact_file(home):
    result = CliRunner().invoke(main, ["bench", "provenance", str(INTEROP), str(INTEROP / "cawg"), "--policy",
                                       str(REPO / "policies" / "newsroom-default.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.output)
    rows = {row["file"].rsplit("/", 1)[1]: row for row in table["rows"]}
    assert len(rows) == 16
    assert {name for name, row in rows.items() if row["label"] == "tampered"} == CHANGED
    for name in CHANGED:
        assert rows[name]["state"] == "invalid" and "integrity" in rows[name]["kinds"]
    # c2pa says Invalid where an identity cannot be checked offline or has expired: intact, so not tampered.
    for name in ("adobe_connected_identities.jpg", "ica_valid_until_in_past.jpg"):
        assert rows[name]["c2pa_state"] == "Invalid" and rows[name]["state"] == "valid"
        assert rows[name]["label"] == "unknown" and "integrity" not in rows[name]["kinds"]
    assert rows["C_with_CAWG_data.jpg"]["identities"] == 1 and rows["C.jpg"]["timestamp"] == "untrusted"
    assert table["c2pa_invalid_not_tampered"] == 2
    text = CliRunner().invoke(main, ["bench", "provenance", str(INTEROP)])
    assert text.exit_code == 0 and "c2pa says" in text.output and "tampered" in text.output


def test_no_files_is_a_clear_error(home, tmp_path):
    result = CliRunner().invoke(main, ["bench", "provenance", str(tmp_path)])
    assert result.exit_code != 0 and "no image files" in result.output and "Traceback" not in result.output
