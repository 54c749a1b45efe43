import json
import wave

import c2pa
import numpy as np
import pytest
from helpers.bad_inputs import bad_inputs
from helpers.files import INTEROP, files_in
from PIL import Image

from synthguard.core.media import file_sha256
from synthguard.errors import InputError
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec, ModelInfo, SoftBinding, TrainingMining
from synthguard.provenance.signing import SigningSession, sidecar_path

SPEC = ManifestSpec(title="test asset", model=ModelInfo("tiny-gan", "0.1", config_hash="abc123", seed=42,
                                                         parameters={"truncation": 0.7}))


@pytest.fixture
def session(home, identity):
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as s:
        yield s


def reader_state(path, anchor_pem=None, sidecar=None):
    """Validate with c2pa-python's own Reader, independently of SynthGuard's reading code."""
    settings = {"trust": {"trust_anchors": anchor_pem}} if anchor_pem else {}
    context = c2pa.Context.from_dict(settings)
    mime = c2pa_mime(path)
    with open(path, "rb") as stream:
        args = (mime, stream, sidecar.read_bytes()) if sidecar else (mime, stream)
        with c2pa.Reader(*args, context=context) as reader:
            return reader.get_validation_state(), json.loads(reader.json())


def c2pa_mime(path):
    return {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
            ".tif": "image/tiff", ".wav": "audio/wav", ".pdf": "application/pdf", ".txt": "text/plain",
            ".md": "text/markdown", ".json": "application/json", ".avif": "image/avif",
            ".mp4": "video/mp4"}[path.suffix]


def anchor_pem(identity):
    from cryptography.hazmat.primitives import serialization
    return identity.anchor.public_bytes(serialization.Encoding.PEM).decode()


def _make(tmp_path, suffix, pixels):
    path = tmp_path / f"in{suffix}"
    if suffix == ".wav":
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes((np.sin(np.arange(8000) / 5) * 8000).astype("<i2").tobytes())
    elif suffix == ".mp4":
        import cv2
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
        for i in range(10):
            writer.write(np.full((48, 64, 3), i * 20, np.uint8))
        writer.release()
    elif suffix == ".pdf":
        Image.fromarray(pixels).save(path, format="PDF")
    else:
        Image.fromarray(pixels).save(path, **({"quality": 90} if suffix in (".jpg", ".webp", ".avif") else {}))
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".gif", ".tif", ".avif", ".wav", ".mp4", ".pdf"])
def test_embeddable_formats_sign_in_place_and_c2pa_validates_them(session, identity, tmp_path, pixels, suffix):
    src = _make(tmp_path, suffix, pixels)
    before = file_sha256(src)
    out = tmp_path / f"out{suffix}"
    result = session.sign_file(src, out, SPEC)
    assert result.sidecar is None and not sidecar_path(out).exists()
    assert file_sha256(src) == before  # input untouched
    state, store = reader_state(out, anchor_pem(identity))
    assert state == "Trusted"
    assert reader_state(out)[0] == "Valid"  # without our anchor: intact but not trusted
    assert store["active_manifest"] == result.manifest_label


@pytest.mark.parametrize("name,content", [("notes.txt", "plain text\n"), ("post.md", "# Title\n\nbody\n"),
                                          ("data.json", '{"a": 1}\n')])
def test_text_gets_a_sidecar_bound_to_its_bytes(session, identity, tmp_path, name, content):
    src = tmp_path / name
    src.write_text(content)
    out = tmp_path / f"out-{name}"
    result = session.sign_file(src, out, SPEC)
    assert result.sidecar == sidecar_path(out) and result.sidecar.exists()
    assert out.read_text() == content
    state, _ = reader_state(out, anchor_pem(identity), sidecar=result.sidecar)
    assert state == "Trusted"
    out.write_text(content + "edited")
    state, store = reader_state(out, anchor_pem(identity), sidecar=result.sidecar)
    assert state == "Invalid"
    codes = [f["code"] for f in store["validation_results"]["activeManifest"]["failure"]]
    assert "assertion.dataHash.mismatch" in codes


def test_manifest_contents(session, png, tmp_path):
    spec = ManifestSpec(title="t", model=SPEC.model, training_mining=TrainingMining.NOT_ALLOWED,
                        soft_binding=SoftBinding("io.synthguard.test.1", b"\x01\x02\x03\x04\x05\x06"))
    out = tmp_path / "out.png"
    session.sign_file(png, out, spec)
    _, store = reader_state(out)
    manifest = store["manifests"][store["active_manifest"]]
    assert manifest["claim_generator_info"][0]["name"] == "synthguard"
    assert manifest["title"] == "t"
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    actions = assertions["c2pa.actions.v2"]["actions"]
    assert actions[0]["action"] == "c2pa.created"
    assert actions[0]["digitalSourceType"] == DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA.value
    assert actions[0]["digitalSourceType"].startswith("http://cv.iptc.org/newscodes/digitalsourcetype/")
    assert [a["action"] for a in actions] == ["c2pa.created", "c2pa.watermarked"]
    assert assertions["io.synthguard.model"] == {"name": "tiny-gan", "version": "0.1", "config_hash": "abc123",
                                                 "seed": 42, "parameters": {"truncation": 0.7}}
    assert all(e["use"] == "notAllowed" for e in assertions["cawg.training-mining"]["entries"].values())
    assert assertions["c2pa.soft-binding"]["alg"] == "io.synthguard.test.1"
    assert not any("thumbnail" in label for label in assertions)


def test_numeric_lists_in_model_parameters_survive_c2pa(session, png, tmp_path):
    spec = ManifestSpec(title="t", model=ModelInfo("m", parameters={"size": (256, 128), "mixed": [1, "a"],
                                                                     "nested": [[1, 2]], "scale": 0.5}))
    session.sign_file(png, tmp_path / "o.png", spec)
    _, store = reader_state(tmp_path / "o.png")
    data = next(a["data"] for a in store["manifests"][store["active_manifest"]]["assertions"]
                if a["label"] == "io.synthguard.model")
    assert json.loads(data["parameters"]["size"]) == [256, 128]
    assert data["parameters"]["mixed"] == [1, "a"] and data["parameters"]["scale"] == 0.5


def test_input_with_a_manifest_becomes_the_parent_ingredient(session, identity, tmp_path):
    src = INTEROP / "CA.jpg"
    out = tmp_path / "edited.jpg"
    spec = ManifestSpec(title="edited", digital_source_type=DigitalSourceType.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA)
    result = session.sign_file(src, out, spec)
    assert result.has_parent
    state, store = reader_state(out, anchor_pem(identity))
    assert state == "Trusted"
    manifest = store["manifests"][store["active_manifest"]]
    assert [i["relationship"] for i in manifest["ingredients"]] == ["parentOf"]
    actions = [a["action"] for a in next(a for a in manifest["assertions"]
                                         if a["label"] == "c2pa.actions.v2")["data"]["actions"]]
    assert actions[:2] == ["c2pa.opened", "c2pa.edited"]
    assert len(store["manifests"]) == 2


def test_ledger_records_every_signed_output(session, home, png, tmp_path):
    result = session.sign_file(png, tmp_path / "out.png", SPEC)
    with Ledger(home.ledger_path) as ledger:
        [record] = ledger.find_by_file_hash(result.file_sha256)
        assert record.asset_id == result.asset_id
        assert ledger.find_by_content_hash(result.content_sha256)[0].asset_id == result.asset_id
        assert record.signer == "SynthGuard test signer"


def test_refuses_to_overwrite_or_write_over_the_input(session, png, tmp_path):
    with pytest.raises(InputError, match="never modifies its inputs"):
        session.sign_file(png, png, SPEC, overwrite=True)
    out = tmp_path / "out.png"
    out.write_bytes(b"existing")
    with pytest.raises(InputError, match="already exists"):
        session.sign_file(png, out, SPEC)
    assert out.read_bytes() == b"existing"
    session.sign_file(png, out, SPEC, overwrite=True)
    assert out.read_bytes() != b"existing"


def test_bad_inputs_are_refused_cleanly_and_leave_nothing_behind(session, tmp_path, png, jpg):
    cases = bad_inputs(tmp_path, png, jpg)
    for name, path, fragment in cases:
        before = path.read_bytes() if path.is_file() else None
        out_dir = tmp_path / f"out-{name.replace(' ', '-')}"
        out_dir.mkdir()
        with pytest.raises(InputError, match=fragment):
            session.sign_file(path, out_dir / "out.png", SPEC)
        assert files_in(out_dir) == set(), name  # no partial output, no temp file
        if before is not None:
            assert path.read_bytes() == before, name


def test_signed_text_signed_again_keeps_its_sidecar_manifest_as_parent(session, identity, tmp_path):
    src = tmp_path / "a.md"
    src.write_text("# draft\n")
    first = tmp_path / "b.md"
    session.sign_file(src, first, SPEC)
    second = tmp_path / "c.md"
    result = session.sign_file(first, second, SPEC)
    assert result.has_parent
    state, store = reader_state(second, anchor_pem(identity), sidecar=result.sidecar)
    assert state == "Trusted" and len(store["manifests"]) == 2


def test_a_failing_ledger_leaves_no_output(session, png, tmp_path, monkeypatch):
    from synthguard.errors import LedgerError

    def broken(record):
        raise LedgerError("disk full")
    monkeypatch.setattr(session.ledger, "record", broken)
    with pytest.raises(LedgerError):
        session.sign_file(png, tmp_path / "out.png", SPEC)
    assert not (tmp_path / "out.png").exists()


def test_a_sidecar_of_another_file_is_not_adopted_as_parent(session, tmp_path, png):
    text = tmp_path / "a.txt"
    text.write_text("generated text\n")
    session.sign_file(text, tmp_path / "signed-a.txt", SPEC)
    (tmp_path / "input.png.c2pa").write_bytes((tmp_path / "signed-a.txt.c2pa").read_bytes())
    with pytest.raises(InputError, match="does not validate against input.png"):
        session.sign_file(png, tmp_path / "out.png", SPEC)
    assert not (tmp_path / "out.png").exists()


def test_text_that_is_not_utf8_all_the_way_through_is_refused(session, tmp_path):
    late = tmp_path / "late.txt"
    late.write_bytes(b"a" * 5000 + "café".encode("latin-1"))
    short = tmp_path / "short.txt"
    short.write_bytes("café".encode("latin-1"))
    for src in (late, short):
        with pytest.raises(InputError):
            session.sign_file(src, tmp_path / f"o-{src.name}", SPEC)
        assert not (tmp_path / f"o-{src.name}").exists()


def test_concurrent_signs_into_one_output_never_both_win(home, identity, png, tmp_path):
    import threading
    out = tmp_path / "same.png"
    outcomes = []

    def sign_once():
        with SigningSession(identity, None) as s:
            try:
                s.sign_file(png, out, ManifestSpec(title="x"))
                outcomes.append("ok")
            except InputError as exc:
                outcomes.append("exists" if "already exists" in str(exc) else str(exc))

    threads = [threading.Thread(target=sign_once) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1 and outcomes.count("exists") == 3


def test_an_input_that_changes_while_signing_is_refused(session, png, tmp_path, monkeypatch):
    import synthguard.provenance.signing as signing
    real = signing._existing_manifest

    def change_then_check(src, media):
        with open(png, "ab") as handle:  # the file grows between validation and the end of signing
            handle.write(b"\0")
        return real(src, media)
    monkeypatch.setattr(signing, "_existing_manifest", change_then_check)
    with pytest.raises(InputError, match="changed while it was being signed"):
        session.sign_file(png, tmp_path / "out.png", SPEC)
    assert not (tmp_path / "out.png").exists()


def test_output_name_must_not_promise_another_format(session, png, tmp_path):
    with pytest.raises(InputError, match="the name says image/jpeg"):
        session.sign_file(png, tmp_path / "out.jpg", SPEC)
    assert not (tmp_path / "out.jpg").exists()
