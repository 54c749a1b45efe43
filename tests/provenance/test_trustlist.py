import datetime as dt
import json
from importlib import resources

import pytest
from helpers.trust_lists import ca_of, minted_identity, signed_capture, write_trust_list

from synthguard.core.home import Home
from synthguard.detect import rules
from synthguard.errors import InputError
from synthguard.policy import Policy, TrustRules
from synthguard.provenance.identity import TrustSource
from synthguard.provenance.products import SHIPPED_FILE as PRODUCTS_FILE
from synthguard.provenance.products import ConformingProducts
from synthguard.provenance.reading import ProvenanceState, read_provenance
from synthguard.provenance.trustlist import (
    TrustListKind,
    conforming_products,
    install_trust_lists,
    installed_products,
    parse_trust_list,
    shipped_trust_list,
    stale_warning,
    trust_list,
    trust_lists_dir,
)


def test_the_shipped_c2pa_trust_list_is_the_dated_snapshot():
    listed = shipped_trust_list(TrustListKind.CLAIM_SIGNERS)
    assert listed.name == "C2PA Trust List"
    assert listed.issued == dt.datetime(2026, 8, 5, 0, 11, 39, tzinfo=dt.UTC)
    assert listed.next_update == dt.datetime(2027, 8, 5, 0, 11, 39, tzinfo=dt.UTC)
    assert len(listed.certificates) == 30 and len(listed.entities) == 17
    assert {"Adobe Inc", "Google LLC"} <= set(listed.entities)
    assert not listed.is_stale(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert listed.is_stale(dt.datetime(2027, 9, 1, tzinfo=dt.UTC))
    assert "30 certificates from 17 entities" in listed.summary() and "2026-08-05" in listed.summary()
    tsa = shipped_trust_list(TrustListKind.TIME_STAMPS)
    assert tsa.name == "C2PA TSA Trust List" and len(tsa.certificates) == 22


@pytest.mark.parametrize("data, words", [
    (b"{not json", "not JSON"),
    (b"[]", "not a LoTE trust list"),
    (json.dumps({"LoTE": {"ListAndSchemeInformation": {"SchemeName": [{"lang": "en", "value": "Other List"}]},
                          "TrustedEntitiesList": []}}).encode(), "expected the 'C2PA Trust List'"),
    (json.dumps({"LoTE": {"ListAndSchemeInformation": {"SchemeName": [{"lang": "en", "value": "C2PA Trust List"}],
                                                       "ListIssueDateTime": "2026-01-01T00:00:00Z"},
                          "TrustedEntitiesList": []}}).encode(), "no certificate in force"),
])
def test_a_malformed_list_is_refused_with_a_reason(data, words):
    with pytest.raises(InputError, match=words):
        parse_trust_list(data, TrustListKind.CLAIM_SIGNERS, origin="x.json")


def test_withdrawn_services_do_not_count(tmp_path):
    chain, _ = minted_identity()
    path = write_trust_list(tmp_path, [ca_of(chain)], status="http://c2pa.org/conformance/trust-list/withdrawn")
    with pytest.raises(InputError, match="no certificate in force"):
        parse_trust_list(path.read_bytes(), TrustListKind.CLAIM_SIGNERS, origin=str(path))


def test_update_installs_a_newer_list_and_refuses_an_older_or_mismatched_one(tmp_path):
    home = Home(tmp_path / "home")
    chain, _ = minted_identity()
    old = write_trust_list(tmp_path / "old", [ca_of(chain)], issued=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(InputError, match="not newer than"):
        install_trust_lists(home, old.parent)
    other, _ = minted_identity("Other")
    bad = write_trust_list(tmp_path / "bad", [ca_of(chain)])
    (bad.parent / "C2PA-TRUST-LIST.pem").write_bytes(
        (tmp_path / "old" / "C2PA-TRUST-LIST.pem").read_bytes() + other)
    with pytest.raises(InputError, match="does not hold the same certificates"):
        install_trust_lists(home, bad.parent)
    assert trust_list(home).origin == "shipped snapshot"
    new = write_trust_list(tmp_path / "new", [ca_of(chain)])
    (installed,) = install_trust_lists(home, new.parent)
    assert installed.origin.endswith("trust-lists/C2PA-TRUST-LIST.json") and len(installed.certificates) == 1
    assert trust_list(home).sha256 == installed.sha256
    assert install_trust_lists(home, new) == [trust_list(home)]  # the same list again changes nothing
    with pytest.raises(InputError, match="expected a file named"):
        install_trust_lists(home, tmp_path / "new" / "C2PA-TRUST-LIST.pem")


def test_a_signer_whose_ca_is_on_the_trust_list_is_trusted_via_the_list(tmp_path):
    home = Home(tmp_path / "home")
    chain, key = minted_identity()
    install_trust_lists(home, write_trust_list(tmp_path / "list", [ca_of(chain)]).parent)
    signed = signed_capture(tmp_path, chain, key)
    with_list = Policy(trust=TrustRules(own_identity=False, home_anchors=False, c2pa_trust_list=True))
    signal = read_provenance(signed, trust=rules.trust_anchors(with_list, home))
    assert signal.state is ProvenanceState.TRUSTED
    assert signal.trust_source == TrustSource.C2PA_TRUST_LIST.value
    assert signal.trust_entity == "Example Wire"
    without = Policy(trust=TrustRules(own_identity=False, home_anchors=False, c2pa_trust_list=False))
    untrusted = read_provenance(signed, trust=rules.trust_anchors(without, home))
    assert untrusted.state is ProvenanceState.VALID and "signingCredential.untrusted" in untrusted.failures
    assert untrusted.trust_source is None


def test_a_stale_list_gives_the_line_a_report_prints():
    listed = shipped_trust_list(TrustListKind.CLAIM_SIGNERS)
    assert stale_warning(listed, dt.datetime(2026, 12, 1, tzinfo=dt.UTC)) is None
    assert stale_warning(None) is None
    line = stale_warning(listed, dt.datetime(2027, 9, 1, tzinfo=dt.UTC))
    assert line == ("the C2PA Trust List used (issued 2026-08-05) is past its next update (2027-08-05): a newer list "
                    "may have withdrawn this signer's CA; install a newer one with `synthguard keys trust-list update`")


def _products(folder, *, newest: str | None = None, drop: int = 0):
    """The shipped Conforming Products List, less its first ``drop`` records, one record modified on ``newest``."""
    records = json.loads((resources.files("synthguard.provenance") / "data" / PRODUCTS_FILE).read_bytes())[drop:]
    if newest is not None:
        records[0]["dates"]["lastModification"] = newest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PRODUCTS_FILE
    path.write_text(json.dumps(records))
    return path


def test_a_newer_conforming_products_list_installs_beside_the_trust_lists(tmp_path):
    home = Home(tmp_path / "home")
    assert installed_products(home) is None and conforming_products(home) is ConformingProducts.shipped()
    shipped = ConformingProducts.shipped()
    with pytest.raises(InputError, match=r"not after the Conforming Products List in force \(2026-08-20"):
        install_trust_lists(home, _products(tmp_path / "same-date", drop=1).parent)
    (tmp_path / "shipped").mkdir()
    same = tmp_path / "shipped" / PRODUCTS_FILE
    same.write_bytes((resources.files("synthguard.provenance") / "data" / PRODUCTS_FILE).read_bytes())
    assert install_trust_lists(home, same) == []  # the list in force already: nothing is written
    assert installed_products(home) is None
    newer = _products(tmp_path / "newer", newest="2026-11-30", drop=1)
    assert install_trust_lists(home, newer) == []
    assert installed_products(home) == trust_lists_dir(home) / PRODUCTS_FILE
    in_force = conforming_products(home)
    assert in_force.source == str(installed_products(home)) and in_force.count == shipped.count - 1
    assert in_force.newest == dt.date(2026, 11, 30)
    with pytest.raises(InputError, match="not after"):
        install_trust_lists(home, _products(tmp_path / "older", newest="2026-10-01"))


def test_nothing_is_installed_when_one_list_of_the_folder_is_refused(tmp_path):
    home = Home(tmp_path / "home")
    chain, _ = minted_identity()
    folder = write_trust_list(tmp_path / "both", [ca_of(chain)]).parent
    (folder / PRODUCTS_FILE).write_text('[{"recordId": "x"}]')
    with pytest.raises(InputError, match=r"record 0 \(x\) has no product object"):
        install_trust_lists(home, folder)
    assert trust_list(home).origin == "shipped snapshot" and installed_products(home) is None
    (folder / PRODUCTS_FILE).write_bytes(b"\xff\xfe garbage")
    with pytest.raises(InputError, match="not valid JSON"):
        install_trust_lists(home, folder)
    (folder / PRODUCTS_FILE).unlink()
    (installed,) = install_trust_lists(home, folder)
    assert installed.issued.date() == dt.date(2026, 11, 30) and installed_products(home) is None


def test_trust_from_a_stale_list_says_so(tmp_path):
    from synthguard.detect.signals import describe_provenance

    home = Home(tmp_path / "home")
    chain, key = minted_identity()
    now = dt.datetime.now(dt.UTC)
    install_trust_lists(home, write_trust_list(tmp_path / "list", [ca_of(chain)], issued=now - dt.timedelta(days=10),
                                               next_update=now - dt.timedelta(days=1)).parent)
    signed = signed_capture(tmp_path, chain, key)
    policy = Policy(trust=TrustRules(own_identity=False, home_anchors=False, c2pa_trust_list=True))
    signal = read_provenance(signed, trust=rules.trust_anchors(policy, home))
    assert signal.state is ProvenanceState.TRUSTED and "past its next update" in signal.trust_list_stale
    assert signal.trust_list_stale in describe_provenance(signal)
    assert signal.to_dict()["trust_list_stale"] == signal.trust_list_stale
