import datetime as dt
import json

import c2pa
import pytest
from helpers.files import INTEROP

from synthguard.errors import InputError
from synthguard.provenance.products import ConformingProducts, ProductStatus, ProductType

# The products of the 2026-08 snapshot that may not claim a captured inception, read from the list by hand.
NO_CAPTURE = {"Diker", "Ming C2PA Signer", "Snapseed", "SpotLight Suite", "Contents Defence", "ListingsAlive",
              "SCC MediaServer Cloud Edition Digital Asset Management System", "Gingco Provenance Service",
              "BrennerMedien GmbH AI Generator", "Jasper", "Brandreef Media Processing Services", "Narrative Nexus"}


@pytest.fixture(scope="module")
def cpl():
    return ConformingProducts.shipped()


def _record(**changes):
    record = {"recordId": "r-1", "applicant": "Example Org", "status": "conformant",
              "product": {"productType": "generatorProduct", "DN": {"CN": "Example Camera", "O": "Example Org",
                                                                    "OU": "", "C": "US"},
                          "minVersion": "1.0", "assurance": {"maxAssuranceLevel": 1, "attestationMethods": []},
                          "disallowedSignals": {"inception": [], "transformation": []}},
              "specVersion": ["2.2"], "containers": {"generate": {"image": ["image/jpeg"]}, "validate": {}},
              "dates": {"creation": "2026-01-01", "conformance": "2026-01-02", "earliestPublicDisclosure": "2026-01-03",
                        "lastModification": "2026-01-04"}}
    for path, value in changes.items():
        target = record
        *parents, leaf = path.split(".")
        for key in parents:
            target = target[key]
        target[leaf] = value
    return record


def _write(tmp_path, records) -> ConformingProducts:
    path = tmp_path / "cpl.json"
    path.write_text(json.dumps(records))
    return ConformingProducts.from_file(path)


def test_the_shipped_list_is_the_dated_snapshot(cpl):
    assert cpl.count == 174 and cpl.newest == dt.date(2026, 8, 20)
    assert sum(p.product_type is ProductType.GENERATOR for p in cpl.products) == 153
    assert cpl.to_dict()["count"] == 174 and cpl.to_dict()["newest"] == "2026-08-20"
    assert "174 records" in cpl.describe()[0] and "2026-08-20" in cpl.describe()[0]
    assert ConformingProducts.shipped() is cpl  # loaded once
    json.dumps(cpl.to_dict())


def test_pixel_camera_is_a_level_two_generator(cpl):
    pixel = cpl.lookup("Pixel Camera", "Google LLC")
    assert pixel.product_type is ProductType.GENERATOR and pixel.status is ProductStatus.CONFORMANT
    assert pixel.assurance_level == 2 and pixel.attestation_methods == ("Android_KeyAttestation",)
    assert pixel.may_claim("inception:signal_capturedMedia") and pixel.may_claim("capturedMediaStitched")
    # three records share the name; the one conformant last (the same lastModification) is picked
    assert [p.record_id for p in cpl.matches("Pixel Camera", "Google LLC")][0] == pixel.record_id
    assert pixel.conformance_date == dt.date(2026, 3, 16) and "video/mp4" in pixel.generate_containers
    assert cpl.lookup("  pixel   CAMERA ", "google llc") == pixel  # case and whitespace do not matter
    assert "assurance level 2 (Android_KeyAttestation)" in pixel.describe()
    assert json.loads(json.dumps(pixel.to_dict()))["assurance_level"] == 2


@pytest.mark.parametrize("cn, o", [("Pixel Camer", "Google LLC"), ("Pixel Camera", "Google"),
                                   ("Pixel Camera", None), (None, "Google LLC"), ("Google LLC", "Pixel Camera")])
def test_lookup_is_exact_on_both_names(cpl, cn, o):
    assert cpl.lookup(cn, o) is None


def test_the_products_that_may_not_claim_a_capture(cpl):
    listed = {p.name for p in cpl.products if "capturedMedia" in p.disallowed_inception}
    assert listed == NO_CAPTURE
    snapseed = cpl.lookup("Snapseed", "Google LLC")
    assert not snapseed.may_claim("inception:signal_capturedMedia")
    assert not snapseed.may_claim("signal_capturedMediaStitched") and not snapseed.may_claim("nonGenAIDigitalCreation")
    assert snapseed.may_claim("inception:signal_fullyGenAIMedia")
    assert snapseed.may_claim("transformation:signal_perceptibleGenAI")
    assert "may not claim: inception:capturedMedia" in " ".join(snapseed.describe())


def test_the_c2pa_test_signer_is_not_a_conforming_product(cpl):
    with c2pa.Reader(str(INTEROP / "C.jpg"), context=c2pa.Context.from_dict({})) as reader:
        subject = json.loads(reader.crjson())["manifests"][0]["signature"]["certificateInfo"]["subject"]
    assert subject["CN"] == "C2PA Signer"
    assert cpl.lookup(subject["CN"], subject["O"], organizational_unit=subject["OU"]) is None


def test_several_records_prefer_the_same_unit_then_the_latest_then_a_generator(cpl):
    latest = cpl.lookup("Contents Defence", "MuseBlossom Co., Ltd.")
    assert latest.last_modified == dt.date(2026, 8, 11) and not latest.may_claim("capturedMedia")
    older = cpl.lookup("Contents Defence", "MuseBlossom Co., Ltd.", organizational_unit="R&D Team")
    assert older.organizational_unit == "R&D Team" and older.may_claim("capturedMedia")
    # SamuRAI is listed as a validator and as a generator, with the same dates: a signer is the generator
    assert cpl.lookup("SamuRAI", "SamuRAI OS").product_type is ProductType.GENERATOR


def test_validators_and_revoked_products_may_claim_nothing(tmp_path):
    products = _write(tmp_path, [
        _record(**{"recordId": "v", "product.productType": "validatorProduct", "product.DN.CN": "Checker"}),
        _record(**{"recordId": "x", "status": "revoked_vulnerability", "product.DN.CN": "Old Camera"})])
    checker, old = products.lookup("Checker", "Example Org"), products.lookup("Old Camera", "Example Org")
    assert not checker.may_claim("capturedMedia") and "signs none" in checker.describe()[0]
    assert not old.may_claim("inception:signal_fullyGenAIMedia") and "revoked_vulnerability" in old.describe()[0]


def test_a_conformant_record_wins_over_a_newer_revoked_one(tmp_path):
    products = _write(tmp_path, [
        _record(**{"recordId": "a", "status": "revoked", "dates.lastModification": "2026-05-01"}),
        _record(**{"recordId": "b", "dates.lastModification": "2026-02-01"})])
    assert products.lookup("Example Camera", "Example Org").record_id == "b"
    assert products.source.endswith("cpl.json") and products.newest == dt.date(2026, 5, 1)


@pytest.mark.parametrize("signal_id", ["", "   ", "inception:", 7])
def test_a_malformed_signal_id_is_refused(cpl, signal_id):
    with pytest.raises(InputError, match="signal"):
        cpl.lookup("Pixel Camera", "Google LLC").may_claim(signal_id)


@pytest.mark.parametrize("records, words", [
    ("{not json", "not valid JSON"),
    ({"products": []}, "non-empty JSON array"),
    ([], "non-empty JSON array"),
    (["x"], "record 0 is not an object"),
    ([_record(**{"product.productType": "camera"})], "productType 'camera' is not one of"),
    ([_record(**{"status": "suspended"})], "status 'suspended'"),
    ([_record(**{"product.DN": None})], "product.DN"),
    ([_record(**{"product.DN.CN": " "})], "empty DN CN"),
    ([_record(**{"dates.conformance": "yesterday"})], "dates.conformance 'yesterday' is not an ISO date"),
    ([_record(**{"product.assurance.maxAssuranceLevel": "2"})], "maxAssuranceLevel"),
    ([_record(**{"product.disallowedSignals.inception": "capturedMedia"})], "list of strings"),
])
def test_a_malformed_list_is_refused_naming_the_record(tmp_path, records, words):
    path = tmp_path / "cpl.json"
    path.write_text(records if isinstance(records, str) else json.dumps(records))
    with pytest.raises(InputError, match=words):
        ConformingProducts.from_file(path)


def test_a_missing_or_huge_file_is_refused(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="cannot read"):
        ConformingProducts.from_file(tmp_path / "nope.json")
    monkeypatch.setattr("synthguard.provenance.products.MAX_LIST_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_text(json.dumps([_record()]))
    with pytest.raises(InputError, match="over the 100 byte limit"):
        ConformingProducts.from_file(path)
