"""Typed signals: the JSON of each is the one `detect --json` and `verify` print, it reads back unchanged, and the
human lines say what the signal found (the text watermark: scheme, key, tokens scored, span)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthguard.detect.signals import (
    ClassifierSignal,
    Findings,
    ImageWatermarkSignal,
    MachineTextSignal,
    TextWatermarkSignal,
    describe_provenance,
    provenance_from_dict,
    watermark_from_dict,
)
from synthguard.provenance.reading import ActionRecord, ProvenanceSignal, ProvenanceState

ALG = "io.synthguard.tilemark.4"
TEXT = TextWatermarkSignal(True, "io.synthguard.synthid-text.1", 2e-9, True, tokenizer_model="builtin",
                           key_id="k1", z=6.25, score=0.71, null_rate=0.5, tokens_scored=57, tokens=80, span=(12, 340),
                           windows_tested=14, schemes_tested=("io.synthguard.synthid-text.1", "io.synthguard.kgw.1"),
                           max_p_value=1e-3, note="best of 7 windows")


def roundtrip(data: dict) -> dict:
    return json.loads(json.dumps(data))


def test_image_watermark_json_and_lines():
    found = ImageWatermarkSignal(True, ALG, "900000000001", 1e-20, 2, True)
    assert found.to_dict() == {"detected": True, "algorithm": ALG, "payload": "900000000001", "p_value": 1e-20,
                               "bit_errors": 2, "ai_declared": True, "skipped": None, "details": None}
    assert watermark_from_dict(roundtrip(found.to_dict())) == found
    assert found.describe() == (f"SynthGuard watermark found ({ALG}, payload 900000000001, p=1.0e-20); its payload "
                                "declares AI-generated content",)
    assert ImageWatermarkSignal(False, ALG, p_value=0.4).describe() == (f"no SynthGuard watermark found ({ALG})",)
    assert ImageWatermarkSignal(False, ALG, skipped="too small").describe() == ("watermark not tested: too small",)


def test_text_watermark_json_reads_back_and_its_line_names_scheme_key_tokens_and_span():
    data = TEXT.to_dict()
    assert data == {"detected": True, "algorithm": "io.synthguard.synthid-text.1", "payload": None, "p_value": 2e-9,
                    "bit_errors": None, "ai_declared": True, "skipped": None, "details": {
                        "kind": "text", "tokenizer_model": "builtin", "key_id": "k1", "z": 6.25, "score": 0.71,
                        "null_rate": 0.5, "tokens_scored": 57, "tokens": 80, "span": [12, 340], "windows_tested": 14,
                        "schemes_tested": ["io.synthguard.synthid-text.1", "io.synthguard.kgw.1"],
                        "max_p_value": 1e-3, "note": "best of 7 windows"}}
    assert list(data) == ["detected", "algorithm", "payload", "p_value", "bit_errors", "ai_declared", "skipped",
                          "details"]
    assert watermark_from_dict(roundtrip(data)) == TEXT
    (line,) = TEXT.describe()
    for fact in ("io.synthguard.synthid-text.1", "key k1", "57 of 80 tokens scored", "characters 12-340",
                 "p=2.0e-09", "best of 7 windows"):
        assert fact in line, fact
    skipped = TextWatermarkSignal(False, "text", skipped="no key")
    assert skipped.to_dict()["details"] is None and watermark_from_dict(roundtrip(skipped.to_dict())) == skipped


def test_classifier_and_machine_text_json_and_lines():
    heat = np.array([[0.12345, 0.9], [0.5, 0.25]])
    c = ClassifierSignal("tiny", 0.91, 0.8, 0.01, True, 4, heat)
    data = c.to_dict()
    assert data["heatmap"] == [[0.123, 0.9], [0.5, 0.25]] and data["threshold_fpr"] == 0.01
    back = ClassifierSignal.from_dict(roundtrip(data))
    assert back == c and back.to_dict() == data  # the rounded heatmap rounds to itself
    assert c.describe() == ("classifier tiny: P(synthetic) 0.910 >= threshold 0.800, 1.0% of held-out real images "
                            "score that high; a statistical signal, not proof",)
    policy_cut = ClassifierSignal("tiny", 0.7, 0.5, None, True, 4)
    assert ">= threshold 0.500 (the policy's threshold)" in policy_cut.describe()[0]
    m = MachineTextSignal("builtin", 3.1, 2.0, 0.012, 0.004, True, 120)
    assert MachineTextSignal.from_dict(roundtrip(m.to_dict())) == m
    assert "3.10 >= threshold 2.00 (1.2% of held-out human reference windows" in m.describe()[0]


@pytest.fixture
def recovered() -> ProvenanceSignal:
    uri = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    return ProvenanceSignal(present=True, state=ProvenanceState.TRUSTED, source="ledger", signer="Desk", issuer="Org",
                            digital_source_type=uri, ai_generated=True, actions=(ActionRecord("c2pa.created", uri),),
                            failures=("x.y",), model={"name": "gan", "version": "2"}, recovered_from_ledger=True,
                            ledger_match="soft-binding", ledger_content_match=False)


def test_provenance_lines_and_json(recovered):
    assert describe_provenance(recovered) == (
        "provenance: trusted (ledger), signed by Desk / Org",
        "declares: trainedAlgorithmicMedia; AI-generated: yes",
        "actions: c2pa.created; ingredients: 0",
        'model: {"name": "gan", "version": "2"}',
        "failures: x.y")
    assert describe_provenance(ProvenanceSignal(present=False, state=ProvenanceState.ABSENT)) == (
        "provenance: absent",)
    assert provenance_from_dict(roundtrip(recovered.to_dict())) == recovered


def test_findings_show_each_line_once(recovered):
    wm = ImageWatermarkSignal(True, ALG, "900000000001", 1e-20, 0, True)
    reasons = ("a reason of the verdict", *wm.describe(), "another")
    findings = Findings.of(recovered, (wm, None), reasons)
    assert findings.evidence == (*describe_provenance(recovered), *wm.describe())
    assert findings.reasons == ("a reason of the verdict", "another")


def test_a_machine_text_score_cut_at_its_token_limit_says_so():
    from synthguard.detect.signals import MACHINE_TEXT_MAX_TOKENS

    whole = MachineTextSignal("builtin", 1.0, 2.0, 0.01, 0.3, False, 900).describe()[0]
    cut = MachineTextSignal("builtin", 1.0, 2.0, 0.01, 0.3, False, MACHINE_TEXT_MAX_TOKENS).describe()[0]
    assert "not scored" not in whole
    assert f"on the first {MACHINE_TEXT_MAX_TOKENS} tokens (the rest was not scored)" in cut
