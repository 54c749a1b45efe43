import json

import c2pa
import numpy as np
import pytest
from helpers.audio import music

from synthguard.core.audio import AudioFormat, audio_content_sha256, decode_audio, encode_audio
from synthguard.errors import InputError
from synthguard.provenance.identity import TrustAnchors
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
from synthguard.provenance.reading import ProvenanceState, read_provenance
from synthguard.provenance.signing import SigningSession, sidecar_path

RATE = 44100
AI = ManifestSpec(title="clip", digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    return music(1.5, RATE, seed=5, channels=2)


@pytest.fixture
def session(home, identity):
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        yield session


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_each_format_is_signed_read_back_and_decodes_identically(fmt, session, home, samples, tmp_path):
    src = tmp_path / f"in{fmt.suffix}"
    src.write_bytes(encode_audio(samples, RATE, fmt))
    dst = tmp_path / f"out{fmt.suffix}"
    result = session.sign_file(src, dst, AI)
    assert result.mime == fmt.mime
    assert (result.sidecar is None) is fmt.embeddable
    if fmt.embeddable:
        assert dst.read_bytes() != src.read_bytes()  # the manifest is in the file
        with c2pa.Reader(fmt.mime, open(dst, "rb")) as reader:
            store = json.loads(reader.json())
        assert store["manifests"][store["active_manifest"]]["title"] == "clip"
    else:
        assert dst.read_bytes() == src.read_bytes() and sidecar_path(dst).is_file()
    before, after = decode_audio(src), decode_audio(dst)
    assert after.frames == before.frames and np.array_equal(after.samples, before.samples)
    # The ledger keys the asset by its decoded samples.
    assert result.content_sha256 == audio_content_sha256(after)
    signal = read_provenance(dst, trust=TrustAnchors.from_home(home))
    assert signal.state is ProvenanceState.TRUSTED, signal.failures
    assert signal.source == ("embedded" if fmt.embeddable else "sidecar") and signal.ai_generated


@pytest.mark.parametrize("fmt", [AudioFormat.WAV, AudioFormat.FLAC])
def test_a_stripped_lossless_copy_is_matched_through_the_ledger_by_its_samples(fmt, session, home, samples,
                                                                              tmp_path):
    src = tmp_path / f"in{fmt.suffix}"
    src.write_bytes(encode_audio(samples, RATE, fmt))
    session.sign_file(src, tmp_path / f"signed{fmt.suffix}", AI)
    # Re-saved from the signed file's samples, in the other lossless format: no manifest, the same content.
    other = AudioFormat.FLAC if fmt is AudioFormat.WAV else AudioFormat.WAV
    stripped = tmp_path / f"stripped{other.suffix}"
    stripped.write_bytes(encode_audio(decode_audio(tmp_path / f"signed{fmt.suffix}").samples, RATE, other))
    trust = TrustAnchors.from_home(home)
    assert read_provenance(stripped, trust=trust).state is ProvenanceState.ABSENT
    with Ledger(home.ledger_path) as ledger:
        signal = read_provenance(stripped, trust=trust, ledger=ledger)
    assert signal.recovered_from_ledger and signal.ledger_match == "content-hash"
    assert signal.state is ProvenanceState.TRUSTED and signal.ai_generated


@pytest.mark.parametrize("fmt", [AudioFormat.WAV, AudioFormat.MP3, AudioFormat.FLAC, AudioFormat.M4A,
                                 AudioFormat.OPUS])
def test_changed_samples_after_signing_read_invalid(fmt, session, home, samples, tmp_path):
    src = tmp_path / f"in{fmt.suffix}"
    src.write_bytes(encode_audio(samples, RATE, fmt))
    dst = tmp_path / f"out{fmt.suffix}"
    session.sign_file(src, dst, AI)
    data = bytearray(dst.read_bytes())
    data[len(data) // 2] ^= 0x55  # inside the coded audio
    dst.write_bytes(bytes(data))
    signal = read_provenance(dst, trust=TrustAnchors.from_home(home))
    assert signal.state in (ProvenanceState.INVALID, ProvenanceState.ERROR), signal.state


def test_a_manifest_already_in_the_audio_is_kept_as_parent(session, samples, tmp_path):
    src = tmp_path / "in.wav"
    src.write_bytes(encode_audio(samples, RATE, AudioFormat.WAV))
    first = tmp_path / "first.wav"
    session.sign_file(src, first, AI)
    second = session.sign_file(first, tmp_path / "second.wav", ManifestSpec(title="edited"))
    assert second.has_parent


def test_broken_audio_is_refused_before_anything_is_written(session, samples, tmp_path):
    data = encode_audio(samples, RATE, AudioFormat.FLAC)
    src = tmp_path / "cut.flac"
    src.write_bytes(data[:len(data) // 2])
    dst = tmp_path / "out.flac"
    with pytest.raises(InputError, match="truncated|corrupt"):
        session.sign_file(src, dst, AI)
    assert not dst.exists()
    opus = tmp_path / "cut.opus"
    opus.write_bytes(encode_audio(samples, RATE, AudioFormat.OPUS)[:-300])
    with pytest.raises(InputError, match="truncated Ogg Opus"):
        session.sign_file(opus, tmp_path / "out.opus", AI)
    assert not (tmp_path / "out.opus").exists() and not (tmp_path / "out.opus.c2pa").exists()
