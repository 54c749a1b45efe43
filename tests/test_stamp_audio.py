import json

import c2pa
import numpy as np
import pytest
from helpers.audio import noise, speech, write_wav

from synthguard.core.audio import AudioFormat, audio_content_sha256, decode_audio, encode_audio
from synthguard.errors import InputError, WatermarkError
from synthguard.provenance.identity import IdentityStore, TrustAnchors
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
from synthguard.provenance.reading import ProvenanceState, read_provenance
from synthguard.provenance.signing import SigningSession, sidecar_path
from synthguard.stamp import Stamper, stamp_copy
from synthguard.watermark.audio import BandMarkWatermarker, default_audio_watermarker
from synthguard.watermark.payload import Payload

AI = ManifestSpec(title="voice", digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)


@pytest.fixture(scope="module")
def voice() -> tuple[np.ndarray, int]:
    return speech()


@pytest.fixture
def stamper(home, identity):
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        yield Stamper(session, None, audio_watermarker=default_audio_watermarker())


class _Erased(BandMarkWatermarker):
    """A mark that does not survive: what a codec that erased it would leave (the samples unchanged)."""

    def embed(self, samples, rate, payload):
        return samples.copy()


def _detected(path, watermarker=None):
    clip = decode_audio(path)
    return (watermarker or default_audio_watermarker()).detect(clip.mono, clip.rate)


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_stamp_audio_marks_signs_and_records_each_format(fmt, stamper, home, voice, tmp_path):
    samples, rate = voice
    dst = tmp_path / f"voice{fmt.suffix}"
    result = stamper.stamp_audio(samples, rate, dst, AI, fmt=fmt)
    assert result.algorithm == stamper.audio_watermarker.algorithm_id and result.watermark_skipped is None
    assert Payload.from_bytes(result.payload).ai_generated
    assert (result.signed.sidecar is not None) is (not fmt.embeddable)
    assert result.notes == (() if fmt is not AudioFormat.OPUS else ("resampled from 22050 Hz to 48000 Hz for opus",))
    # The mark reads back from the written file (the read-back check ran on the same bytes).
    found = _detected(dst)
    assert found.detected and found.payload == result.payload and found.p_value < 1e-6
    signal = read_provenance(dst, trust=TrustAnchors.from_home(home))
    assert signal.state is ProvenanceState.TRUSTED and signal.ai_generated
    assert signal.soft_binding == {"alg": result.algorithm, "value": result.payload.hex()}
    with Ledger(home.ledger_path) as ledger:
        record = ledger.find_by_soft_binding(result.payload)[0]
    assert record.asset_id == result.signed.asset_id
    assert record.content_sha256 == audio_content_sha256(decode_audio(dst))
    assert result.to_dict()["watermark"]["embedded"] and set(result.seconds) == {"watermark", "sign"}


def test_a_mark_that_does_not_read_back_is_refused_and_nothing_is_written(home, identity, voice, tmp_path):
    samples, rate = voice
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        stamper = Stamper(session, None, audio_watermarker=_Erased())
        for fmt in (AudioFormat.WAV, AudioFormat.OPUS):
            dst = tmp_path / f"lost{fmt.suffix}"
            with pytest.raises(WatermarkError, match="does not read back") as caught:
                stamper.stamp_audio(samples, rate, dst, AI, fmt=fmt)
            # A generator's clip is never signed unmarked instead: the error does not offer it.
            assert caught.value.hint is None and "without a watermark" not in str(caught.value)
            assert not dst.exists() and not sidecar_path(dst).exists()
        assert ledger.count() == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name != "sg-home"]  # no temp files left either


def test_without_an_audio_watermarker_audio_is_signed_unmarked_and_says_so(home, identity, tmp_path):
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        result = Stamper(session, None).stamp_audio(noise(4.0, 16000), 16000, tmp_path / "plain.flac", AI,
                                                     fmt=AudioFormat.FLAC)
    assert result.payload is None and result.watermark_skipped == "watermarking turned off"
    assert not _detected(tmp_path / "plain.flac").detected


def test_the_output_name_must_match_the_format(stamper, tmp_path):
    with pytest.raises(InputError, match="name it \\*.mp3"):
        stamper.stamp_audio(noise(1.0, 16000), 16000, tmp_path / "x.wav", AI, fmt=AudioFormat.MP3)
    with pytest.raises(InputError, match="float"):
        stamper.stamp_audio(np.zeros(16000, np.int16), 16000, tmp_path / "x.wav", AI)


def test_stamp_file_keeps_a_lossless_coding_and_the_parent_manifest(stamper, home, identity, voice, tmp_path):
    samples, rate = voice
    src = write_wav(tmp_path / "in.wav", samples, rate, subtype="PCM_24")
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        signed = session.sign_file(src, tmp_path / "signed.wav", ManifestSpec(title="recorded"))
    assert not signed.has_parent
    result = stamper.stamp_file(tmp_path / "signed.wav", tmp_path / "marked.wav", AI)
    assert result.signed.has_parent and result.notes == ()
    marked = decode_audio(tmp_path / "marked.wav")
    assert marked.subtype == "PCM_24" and marked.frames == len(samples)
    assert _detected(tmp_path / "marked.wav").payload == result.payload
    with c2pa.Reader(str(tmp_path / "marked.wav")) as reader:
        store = json.loads(reader.json())
    ingredient = store["manifests"][store["active_manifest"]]["ingredients"][0]
    assert ingredient["relationship"] == "parentOf" and ingredient["active_manifest"] == signed.manifest_label


def test_stamp_file_re_encodes_lossy_audio_and_says_at_what_bit_rate(stamper, voice, tmp_path):
    samples, rate = voice
    src = tmp_path / "in.mp3"
    src.write_bytes(encode_audio(samples, rate, AudioFormat.MP3, bitrate=96000))
    result = stamper.stamp_file(src, tmp_path / "out.mp3", AI)
    assert result.notes == ("in.mp3: re-encoded as MP3 at 128 kbps (a lossy file cannot carry a new mark without "
                            "re-encoding)",)
    found = _detected(tmp_path / "out.mp3")
    assert found.detected and found.payload == result.payload
    # Opus declares no bit rate: the default, whatever the file's size says; the manifest goes in a sidecar.
    opus = tmp_path / "in.opus"
    opus.write_bytes(encode_audio(samples, rate, AudioFormat.OPUS, bitrate=192000))
    again = stamper.stamp_file(opus, tmp_path / "out.opus", AI)
    assert again.notes[0].startswith("in.opus: re-encoded as OPUS at 128 kbps")
    assert again.signed.sidecar == tmp_path / "out.opus.c2pa"
    assert _detected(tmp_path / "out.opus").payload == again.payload


def test_stamp_copy_of_audio_refuses_broken_input_before_making_an_identity(home, voice, tmp_path):
    samples, rate = voice
    data = encode_audio(samples, rate, AudioFormat.WAV)
    src = tmp_path / "cut.wav"
    src.write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError, match="truncated WAV"):
        stamp_copy(src, tmp_path / "out.wav", AI, home)
    assert not IdentityStore(home).exists()


def test_stamp_copy_without_watermark_turns_the_audio_mark_off_too(home, voice, tmp_path):
    samples, rate = voice
    src = write_wav(tmp_path / "in.wav", samples, rate)
    result = stamp_copy(src, tmp_path / "out.wav", AI, home, image_watermark=False)
    assert result.payload is None and result.watermark_skipped == "watermarking turned off"
    marked = stamp_copy(src, tmp_path / "marked.wav", AI, home)
    assert marked.payload is not None and _detected(tmp_path / "marked.wav").payload == marked.payload


def test_from_home_has_the_audio_watermark_on_by_default(home, identity):
    with Stamper.from_home(home, identity=identity) as stamper:
        assert stamper.audio_watermarker is not None
    with Stamper.from_home(home, identity=identity, audio_watermark=False) as stamper:
        assert stamper.audio_watermarker is None
