import json
import re
from importlib import resources

import c2pa
import pytest
import yaml
from helpers.files import FIXTURES, INTEROP

from synthguard.errors import InputError
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
from synthguard.provenance.products import ConformingProducts
from synthguard.provenance.rubric import (
    INTEGRITY_FILE,
    Rubric,
    SignalCategory,
    claims_outside_scope,
    evaluate_local_signals,
)
from synthguard.provenance.signing import SigningSession

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
GENAI = {IPTC + "trainedAlgorithmicMedia", IPTC + "compositeWithTrainedAlgorithmicMedia", IPTC + "compositeSynthetic",
         "http://c2pa.org/digitalsourcetype/trainedAlgorithmicData"}
POSSIBLY_GENAI = {IPTC + "digitalArt", IPTC + "composite"}
NON_EDITORIAL = {"c2pa.converted", "c2pa.published", "c2pa.repackaged", "c2pa.transcoded", "c2pa.resized.proportional",
                 "c2pa.enhanced", "c2pa.edited.metadata", "c2pa.watermarked", "c2pa.watermarked.bound",
                 "c2pa.watermarked.unbound", "c2pa.redacted"}
PERCEPTIBLE = {"$inception_actions", "$non_editorial_actions"}

# Each signal as the rubric's prose (C2PA Asset Rubrics 1.0, "Detailed Signals Criteria") describes it, read and
# written down by hand: the string literals, quoted names and variables its YAML expression must use.
SPEC = {
    "inception:signal_blankCanvas": {"strings": {"http://c2pa.org/digitalsourcetype/empty"}},
    "inception:signal_capturedMedia": {"strings": {IPTC + "digitalCapture", IPTC + "computationalCapture"}},
    "inception:signal_capturedMediaStitched": {"strings": {IPTC + "compositeCapture"}},
    "inception:signal_compositionMayContainGenAI": {"strings": {IPTC + "composite"}},
    "inception:signal_fullyGenAIMedia": {"strings": {IPTC + "trainedAlgorithmicMedia"}},
    "inception:signal_mediaUnknownProvenance": {"names": {"c2pa.ingredient.v3"}},
    "inception:signal_nonGenAIDigitalCreation": {"strings": {IPTC + "digitalCreation"}},
    "inception:signal_partlyGenAICreation": {"strings": {IPTC + "compositeWithTrainedAlgorithmicMedia"}},
    "inception:signal_screenCaptureMayContainGenAI": {"strings": {IPTC + "screenCapture"}},
    "transformation:signal_ambiguousActions": {"strings": {"c2pa.", "c2pa.unknown", "c2pa.actions"}},
    "transformation:signal_nonEditorial": {"variables": {"$non_editorial_actions"}},
    "transformation:signal_perceptibleGenAI": {"variables": PERCEPTIBLE | {"$genai_dst_types"}},
    "transformation:signal_perceptibleNonGenAI": {"variables": PERCEPTIBLE | {"$genai_dst_types"}},
    "transformation:signal_perceptiblePossiblyGenAI": {"variables": PERCEPTIBLE | {"$possibly_genai_dst_types"}},
}


def _shipped_yaml(name="asset-rubric-signals-local.yml"):
    text = resources.files("synthguard.provenance").joinpath("data", name).read_text()
    info, statements = yaml.safe_load_all(text)
    return info, statements


def _literals(expression):
    return {"strings": set(re.findall(r'"([^"]*)"', expression)), "names": set(re.findall(r"'([^']*)'", expression)),
            "variables": set(re.findall(r"\$[A-Za-z_]+", expression)) - {"$args"}}


def test_every_signal_of_the_shipped_yaml_is_checked_against_its_prose():
    info, statements = _shipped_yaml()
    assert [s["id"] for s in statements] == sorted(SPEC)  # no signal without a reviewed entry, none left over
    for statement in statements:
        found, expected = _literals(statement["expression"]), SPEC[statement["id"]]
        for kind in ("strings", "names", "variables"):
            assert found[kind] == expected.get(kind, set()), (statement["id"], kind)
    variables = info["variables"]
    assert set(variables["$inception_actions"]) == {"c2pa.created", "c2pa.opened"}
    assert set(variables["$genai_dst_types"]) == GENAI and set(variables["$possibly_genai_dst_types"]) == POSSIBLY_GENAI
    assert set(variables["$non_editorial_actions"]) == NON_EDITORIAL
    # the inception signals' shared test: a created (or opened) action with the given source type
    created = info["expressions"]["_manifest_createdWithDst"]
    assert _literals(created)["strings"] == {"c2pa.created", "c2pa.opened"} and "$args[1]" in created


def test_the_shipped_rubrics_load_with_their_metadata():
    local = Rubric.shipped()
    assert (local.name, local.version, local.date) == ("C2PA Asset Signals Rubric (Local)", "1.0",
                                                       "2026-08-06T00:00:00Z")
    assert [s.id for s in local.statements] == sorted(SPEC)
    integrity = Rubric.shipped(INTEGRITY_FILE)
    assert [s.id for s in integrity.statements][:2] == ["validation:well_formed_data_present",
                                                        "validation:well_formed_success"]
    assert Rubric.shipped() is local
    with pytest.raises(InputError, match="no shipped rubric"):
        Rubric.shipped("../../etc/passwd")


def manifest(*actions, all_included=True, ingredient=None, gathered=(), v1=False):
    assertions = {} if ingredient is None else {"c2pa.ingredient.v3": ingredient}
    body = {"actions": list(actions)} | ({} if all_included is None else {"allActionsIncluded": all_included})
    assertions["c2pa.actions" if v1 else "c2pa.actions.v2"] = body
    return {"label": "urn:c2pa:1", "assertions": assertions,
            "claim.v2": {"gathered_assertions": [{"url": u} for u in gathered]},
            "signature": {"certificateInfo": {"subject": {"CN": "Example Camera", "O": "Example Org"}}}}


def act(action, dst=None):
    return {"action": action} | ({"digitalSourceType": dst} if dst else {})


CREATED = act("c2pa.created", IPTC + "digitalCapture")
OPENED = act("c2pa.opened")
CASES = [
    ("inception:signal_blankCanvas", True, manifest(act("c2pa.created", "http://c2pa.org/digitalsourcetype/empty"))),
    ("inception:signal_blankCanvas", False, manifest(CREATED)),
    ("inception:signal_capturedMedia", True, manifest(CREATED)),
    ("inception:signal_capturedMedia", True, manifest(act("c2pa.created", IPTC + "computationalCapture"))),
    ("inception:signal_capturedMedia", True, manifest(act("c2pa.opened", IPTC + "digitalCapture"))),
    ("inception:signal_capturedMedia", False, manifest(OPENED, act("c2pa.edited", IPTC + "digitalCapture"))),
    ("inception:signal_capturedMedia", False, manifest(act("c2pa.created", " " + IPTC + "digitalCapture"))),
    ("inception:signal_capturedMedia", False, manifest(CREATED, v1=True)),
    ("inception:signal_capturedMedia", False, manifest(act("c2pa.created", IPTC + "trainedAlgorithmicMedia"))),
    ("inception:signal_capturedMediaStitched", True, manifest(act("c2pa.created", IPTC + "compositeCapture"))),
    ("inception:signal_capturedMediaStitched", False, manifest(CREATED)),
    ("inception:signal_compositionMayContainGenAI", True, manifest(act("c2pa.created", IPTC + "composite"))),
    ("inception:signal_compositionMayContainGenAI", False, manifest(act("c2pa.created", IPTC + "compositeCapture"))),
    ("inception:signal_fullyGenAIMedia", True, manifest(act("c2pa.created", IPTC + "trainedAlgorithmicMedia"))),
    ("inception:signal_fullyGenAIMedia", False, manifest(act("c2pa.created", IPTC + "algorithmicMedia"))),
    ("inception:signal_mediaUnknownProvenance", True, manifest(OPENED, ingredient={"relationship": "parentOf"})),
    ("inception:signal_mediaUnknownProvenance", False,
     manifest(OPENED, ingredient={"activeManifest": {"url": "self#jumbf=/c2pa/urn:c2pa:2"}})),
    ("inception:signal_mediaUnknownProvenance", False, manifest(CREATED)),
    ("inception:signal_nonGenAIDigitalCreation", True, manifest(act("c2pa.created", IPTC + "digitalCreation"))),
    ("inception:signal_nonGenAIDigitalCreation", False, manifest(act("c2pa.edited", IPTC + "digitalCreation"))),
    ("inception:signal_partlyGenAICreation", True,
     manifest(act("c2pa.created", IPTC + "compositeWithTrainedAlgorithmicMedia"))),
    ("inception:signal_partlyGenAICreation", False, manifest(act("c2pa.created", IPTC + "compositeSynthetic"))),
    ("inception:signal_screenCaptureMayContainGenAI", True, manifest(act("c2pa.created", IPTC + "screenCapture"))),
    ("inception:signal_screenCaptureMayContainGenAI", False, manifest(CREATED)),
    ("transformation:signal_ambiguousActions", False, manifest(CREATED, act("c2pa.cropped"))),
    ("transformation:signal_ambiguousActions", True, manifest(CREATED, all_included=None)),
    ("transformation:signal_ambiguousActions", True, manifest(CREATED, all_included=False)),
    ("transformation:signal_ambiguousActions", True, manifest(CREATED, all_included="true")),
    ("transformation:signal_ambiguousActions", True, manifest(CREATED, act("com.example.sharpen"))),
    ("transformation:signal_ambiguousActions", True, manifest(CREATED, act("c2pa.unknown"))),
    ("transformation:signal_ambiguousActions", True, manifest()),
    ("transformation:signal_ambiguousActions", True,
     manifest(CREATED, gathered=["self#jumbf=c2pa.assertions/c2pa.actions.v2"])),
    ("transformation:signal_ambiguousActions", False,
     manifest(CREATED, gathered=["self#jumbf=c2pa.assertions/cawg.training-mining"])),
    ("transformation:signal_nonEditorial", True, manifest(OPENED, act("c2pa.converted"))),
    ("transformation:signal_nonEditorial", True, manifest(OPENED, act("c2pa.watermarked.bound"))),
    ("transformation:signal_nonEditorial", False, manifest(OPENED, act("c2pa.watermarked.other"))),
    ("transformation:signal_perceptibleGenAI", True, manifest(OPENED, act("c2pa.edited", IPTC + "compositeSynthetic"))),
    ("transformation:signal_perceptibleGenAI", True,
     manifest(OPENED, act("c2pa.filtered", "http://c2pa.org/digitalsourcetype/trainedAlgorithmicData"))),
    ("transformation:signal_perceptibleGenAI", False,
     manifest(OPENED, act("c2pa.resized.proportional", IPTC + "trainedAlgorithmicMedia"))),
    ("transformation:signal_perceptibleGenAI", False, manifest(act("c2pa.created", IPTC + "trainedAlgorithmicMedia"))),
    ("transformation:signal_perceptibleNonGenAI", True,
     manifest(OPENED, act("c2pa.cropped", IPTC + "minorHumanEdits"))),
    ("transformation:signal_perceptibleNonGenAI", True, manifest(OPENED, act("c2pa.drawing", IPTC + "digitalArt"))),
    ("transformation:signal_perceptibleNonGenAI", False, manifest(OPENED, act("c2pa.cropped"))),
    ("transformation:signal_perceptibleNonGenAI", False,
     manifest(OPENED, act("c2pa.edited", IPTC + "trainedAlgorithmicMedia"))),
    ("transformation:signal_perceptiblePossiblyGenAI", True, manifest(OPENED, act("c2pa.placed", IPTC + "composite"))),
    ("transformation:signal_perceptiblePossiblyGenAI", False, manifest(act("c2pa.created", IPTC + "digitalArt"))),
    ("transformation:signal_perceptiblePossiblyGenAI", False,
     manifest(OPENED, act("c2pa.placed", IPTC + "compositeCapture"))),
]


@pytest.mark.parametrize("signal_id, expected, crafted", CASES)
def test_each_signal_on_crafted_manifests(signal_id, expected, crafted):
    report = evaluate_local_signals({"manifests": [crafted]})
    (result,) = [s for s in report.active.signals if s.id == signal_id]
    assert result.value is expected and result.error is None
    # the report text is the rubric's own, for that value
    yes = "Contains" if signal_id != "transformation:signal_ambiguousActions" else "Contains ambiguous"
    assert result.report_text.startswith(yes) is expected
    assert (signal_id in report.true_signals) is expected


def test_every_signal_has_a_true_and_a_false_case():
    assert {(s, v) for s, v, _ in CASES} == {(s, v) for s in SPEC for v in (True, False)}


CRAFTED = json.loads((FIXTURES / "rubric" / "cases.json").read_text())
EXPECTED = json.loads((FIXTURES / "rubric" / "expected.json").read_text())


def _nodes(report):
    return [{"signals": sorted(m.true_signals), "pseudo": m.pseudo,
             "ingredients": [[i.index, i.relationship] for i in m.ingredients]} for m in report.manifests]


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_stores_give_what_the_reference_evaluator_gives(name):
    report = evaluate_local_signals(json.dumps(CRAFTED[name]))
    assert _nodes(report) == EXPECTED["crafted"][name] and report.complete


@pytest.mark.parametrize("name", sorted(EXPECTED["c2pa_fixtures"]))
def test_c2pa_fixtures_give_what_the_reference_evaluator_gives(name):
    with c2pa.Reader(str(INTEROP / name), context=c2pa.Context.from_dict({})) as reader:
        report = evaluate_local_signals(reader.crjson())
    assert _nodes(report) == EXPECTED["c2pa_fixtures"][name] and report.complete
    assert report.active.asserted_by.common_name in ("C2PA Signer", "Adobe C2PA Stage")


def test_a_flat_ingredient_that_declares_a_capture_is_a_pseudo_manifest_of_its_lister():
    report = evaluate_local_signals(CRAFTED["flat_ingredient_declares_capture"])
    active, pseudo = report.manifests
    assert pseudo.pseudo and pseudo.asserted_by == active.asserted_by and pseudo.format == "image/jpeg"
    assert pseudo.true_signals == ("inception:signal_capturedMedia",) and active.ingredients[0].index == 1
    assert report.true_signals == ("inception:signal_mediaUnknownProvenance",)  # the active manifest's own
    assert "declared source of a flat ingredient 1 (Example Camera, Example Org)" in "\n".join(report.describe())


def test_a_manifest_synthguard_signs_is_read(identity, png, tmp_path):
    out = tmp_path / "signed.png"
    with SigningSession(identity, None) as session:
        session.sign_file(png, out, ManifestSpec(title="t", digital_source_type=DigitalSourceType.DIGITAL_CAPTURE))
    with c2pa.Reader(str(out), context=c2pa.Context.from_dict({})) as reader:
        report = evaluate_local_signals(reader.crjson())
    assert "inception:signal_capturedMedia" in report.true_signals
    assert "inception:signal_fullyGenAIMedia" not in report.true_signals
    subject = report.active.asserted_by
    assert (subject.common_name, subject.organization) == ("SynthGuard test signer", "SynthGuard tests")
    products = ConformingProducts.shipped()
    assert products.lookup(subject.common_name, subject.organization) is None
    assert claims_outside_scope(report, None) == ()
    snapseed = products.lookup("Snapseed", "Google LLC")
    assert claims_outside_scope(report, snapseed) == ("inception:signal_capturedMedia",)
    assert claims_outside_scope(report, products.lookup("Pixel Camera", "Google LLC")) == ()


def test_a_validator_product_may_claim_nothing_it_signs():
    report = evaluate_local_signals(CRAFTED["edit_genai"])
    validator = next(p for p in ConformingProducts.shipped().products if not p.is_generator)
    assert claims_outside_scope(report, validator) == report.true_signals != ()


def test_the_report_renders(tmp_path):
    report = evaluate_local_signals(CRAFTED["known_provenance"])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["rubric"] == {"name": "C2PA Asset Signals Rubric (Local)", "version": "1.0",
                              "date": "2026-08-06T00:00:00Z"}
    assert data["manifests"][1]["true_signals"] == ["inception:signal_capturedMedia"]
    assert data["manifests"][0]["ingredients"] == [
        {"index": 1, "relationship": "parentOf", "label": "urn:c2pa:00000000-0000-4000-8000-000000000002"}]
    signal = data["manifests"][1]["signals"][1]
    assert signal == {"id": "inception:signal_capturedMedia", "category": "inception", "value": True,
                      "report_text": "Contains Captured Media", "error": None}
    lines = report.describe()
    assert lines[0] == "C2PA Asset Signals Rubric (Local) 1.0 (2026-08-06), local signals:"
    assert "manifest 0 (Example Camera, Example Org): no local signal" in lines[1]
    assert lines[2].endswith("manifest 1 (Example Camera, Example Org): Contains Captured Media")
    assert report.active.signals[0].category is SignalCategory.INCEPTION and report.active.signals[0].name == \
        "blankCanvas"


@pytest.mark.parametrize("crjson, words", [
    ("{not json", "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"manifest": []}', "no 'manifests' list"),
    ('{"manifests": {}}', "no 'manifests' list"),
    ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    (42, "must be JSON text or a dict"),
])
def test_bad_input_is_refused_with_a_reason(crjson, words):
    with pytest.raises(InputError, match=words):
        evaluate_local_signals(crjson)


def test_huge_input_is_refused(monkeypatch):
    monkeypatch.setattr("synthguard.provenance.rubric.MAX_CRJSON_BYTES", 1000)
    with pytest.raises(InputError, match="over the 1000 byte limit"):
        evaluate_local_signals(json.dumps({"manifests": [manifest(CREATED)] * 10}))


def test_what_cannot_be_evaluated_is_said_never_read_as_false(monkeypatch):
    monkeypatch.setattr("synthguard.provenance.rubric.MAX_MANIFESTS", 3)
    hostile = [manifest(CREATED, act(["c2pa.cropped"])), "a string", {}, manifest(CREATED)]
    report = evaluate_local_signals({"manifests": hostile})
    assert not report.complete and len(report.manifests) == 3
    (bad,) = report.manifests[0].unevaluated
    assert bad.id == "transformation:signal_ambiguousActions" and bad.value is None
    assert "startsWith() expects a string" in bad.error and bad.report_text.startswith("could not be evaluated")
    assert "inception:signal_capturedMedia" in report.true_signals  # what could be evaluated still is
    assert report.manifests[1].error == "it is a JSON string, not an object" and report.manifests[1].signals == ()
    assert report.manifests[2].error is None and "transformation:signal_ambiguousActions" in \
        report.manifests[2].true_signals
    assert report.problems == ("1 manifests past the first 3 were not evaluated",)
    text = "\n".join(report.describe())
    assert "not evaluated: transformation:signal_ambiguousActions" in text and "not evaluated: 1 manifests" in text
    assert evaluate_local_signals({"manifests": []}).problems == ("the manifest store holds no manifest",)


def _rubric(expression, *, variables=None, expressions=None):
    info = {"rubric_metadata": {"name": "t", "issuer": "t", "date": "2026-01-01", "version": "1.0"},
            "variables": variables or {}, "expressions": expressions or {}}
    statement = [{"id": "test:one", "expression": expression, "reportText": {"true": {"en": "yes"}}}]
    return Rubric.from_text(yaml.safe_dump(info) + "---\n" + yaml.safe_dump(statement), source="test")


@pytest.mark.parametrize("expression, data, value", [
    ("a[?x].c", {"a": [{"x": 1, "c": 0}, {"x": 1}]}, True),  # projections keep nulls: two elements
    ("length(a[?x].c) == `2`", {"a": [{"x": 1, "c": 0}, {"x": 1}]}, True),
    ("(a || b) == 'q'", {"a": 0, "b": "z", "q": "z"}, True),  # || gives the operand; 'q' is a field
    ("a && b", {"a": [], "b": True}, False),
    ("!a == `false`", {"a": 1}, True),  # ! binds tighter than ==
    ("a > 1", {"a": None}, False),  # null compares as 0
    ("contains(a, `{\"k\": [1]}`)", {"a": [{"k": [1]}]}, True),
    ("a[-1].b", {"a": [{"b": 0}, {"b": 2}]}, True),
    ("a == `1`", {"a": True}, False),  # booleans are not numbers
    ("{x: a}.x", {"a": 3}, True),
    ("[a, b][1]", {"a": 0, "b": 5}, True),
    ("_f(@, \"k\")", {"k": 1}, True),
    ("startsWith(a, \"tr\") && startsWith(b, \"1\") && !startsWith(c, \"x\")", {"a": True, "b": 12}, True),
])
def test_json_formula_semantics(expression, data, value):
    rubric = _rubric(expression, expressions={"_f": "$args[0].k == `1` && $args[1] == \"k\""})
    (statement,) = rubric.statements
    assert rubric.evaluate(statement, data) == (value, None)


@pytest.mark.parametrize("expression, words", [
    ("sum(a)", "unsupported function sum()"),
    ("contains(a)", "contains() takes 2 arguments"),
    ("$nope", "defines no variable"),
    ("a | b", "unsupported json-formula syntax"),
    ("a[*].b", "unsupported"),
    ("a + 1", "unsupported json-formula syntax"),
    ("a ==", "unsupported json-formula token 'eof'"),
    ("`{bad`", "not valid JSON"),
])
def test_a_rubric_outside_the_supported_subset_is_refused_when_it_loads(expression, words):
    with pytest.raises(InputError, match=re.escape(words)):
        _rubric(expression)


def test_runaway_named_expressions_are_stopped():
    rubric = _rubric("_loop()", expressions={"_loop": "_loop()"})
    value, error = rubric.evaluate(rubric.statements[0], {})
    assert value is None and "nest deeper than 32" in error


@pytest.mark.parametrize("text, words", [
    ("a: [", "not valid YAML"),
    ("rubric_metadata: {name: x}\n---\n[]", "rubric_metadata with a name, version and date"),
    ("rubric_metadata: {name: x, version: '1', date: d}\nvariables: {x: 1}\n---\n[]", "variables must be"),
    ("rubric_metadata: {name: x, version: '1', date: d}\n---\n[]", "no expression statements"),
    ("rubric_metadata: {name: x, version: '1', date: d}\n---\n[{id: a, expression: b}, {id: a, expression: c}]",
     "repeated id: 'a'"),
])
def test_a_malformed_rubric_is_refused(text, words):
    with pytest.raises(InputError, match=re.escape(words)):
        Rubric.from_text(text, source="x.yml")


def test_the_integrity_rubric_evaluates_on_the_whole_store():
    integrity = Rubric.shipped(INTEGRITY_FILE)
    statements = {s.id: s for s in integrity.statements}
    with c2pa.Reader(str(INTEROP / "XCA.jpg"), context=c2pa.Context.from_dict({})) as reader:
        store = json.loads(reader.crjson())
    assert integrity.evaluate(statements["validation:well_formed_success"], store) == (True, None)
    assert integrity.evaluate(statements["validation:valid_success"], store) == (False, None)  # dataHash.mismatch
    assert integrity.evaluate(statements["validation:trusted_success"], store) == (False, None)  # test signer
    del store["manifests"][0]["validationResults"]
    assert integrity.evaluate(statements["validation:valid_data_present"], store) == (False, None)
    assert integrity.evaluate(statements["validation:well_formed_success"], store) == (False, None)  # MISSING_...


def test_a_newer_rubric_loads_from_a_file(tmp_path):
    path = tmp_path / "asset-rubric-signals-local.yml"
    path.write_text(resources.files("synthguard.provenance").joinpath("data", path.name).read_text())
    rubric = Rubric.from_file(path)
    assert rubric.source == str(path) and [s.id for s in rubric.statements] == sorted(SPEC)
    assert evaluate_local_signals(CRAFTED["fully_genai"], rubric=rubric).true_signals == \
        ("inception:signal_fullyGenAIMedia",)
    with pytest.raises(InputError, match="cannot read the rubric"):
        Rubric.from_file(tmp_path / "missing.yml")
