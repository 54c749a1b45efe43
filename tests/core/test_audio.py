import io
import struct
import zipfile

import numpy as np
import pytest
from helpers.audio import music, noise, require_tool, write_wav

from synthguard.core.audio import (
    AudioFormat,
    audio_content_sha256,
    audio_info,
    decode_audio,
    encode_audio,
    max_audio_seconds,
    output_rate,
)
from synthguard.core.media import MediaKind, mime_for_suffix, sniff
from synthguard.errors import InputError

RATE = 44100


@pytest.fixture(scope="module")
def stereo() -> np.ndarray:
    return music(2.0, RATE, seed=1, channels=2)


@pytest.fixture(scope="module")
def encoded(stereo) -> dict:
    return {fmt: encode_audio(stereo, RATE, fmt) for fmt in AudioFormat}


def test_format_vocabulary():
    assert [f.mime for f in AudioFormat] == ["audio/wav", "audio/flac", "audio/mpeg", "audio/ogg", "audio/ogg",
                                             "audio/mp4"]
    assert AudioFormat.OPUS.suffix == ".opus" and AudioFormat.M4A.suffix == ".m4a"
    assert AudioFormat.parse(".MP3") is AudioFormat.MP3 and AudioFormat.parse("ogg") is AudioFormat.OPUS
    assert [f for f in AudioFormat if f.embeddable] == [AudioFormat.WAV, AudioFormat.FLAC, AudioFormat.MP3,
                                                        AudioFormat.M4A]
    with pytest.raises(InputError, match="unknown audio format 'aiff'"):
        AudioFormat.parse("aiff")
    for fmt in AudioFormat:
        assert mime_for_suffix(fmt.suffix) == fmt.mime


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_every_format_round_trips_with_its_rate_channels_and_length(fmt, stereo, encoded):
    clip = decode_audio(encoded[fmt])
    assert clip.format is fmt and clip.channels == 2 and clip.samples.dtype == np.float32
    assert clip.samples.shape == (clip.frames, 2) and np.abs(clip.samples).max() <= 1.0
    assert clip.rate == output_rate(fmt, RATE) == (48000 if fmt is AudioFormat.OPUS else RATE)
    assert clip.frames == round(len(stereo) * clip.rate / RATE)  # encoder delay and padding trimmed
    if clip.rate == RATE:
        error = np.abs(clip.samples - stereo).max()
        assert error <= (1 / 32767 if fmt.lossless else 0.1), error
    info = audio_info(encoded[fmt])
    assert (info.format, info.rate, info.channels) == (fmt, clip.rate, 2)
    assert info.seconds == pytest.approx(2.0, abs=0.07)
    assert info.to_dict()["lossless"] is fmt.lossless and info.describe()[0].startswith(f"audio: {fmt.name}")


def test_sniffing_by_content_and_files_on_disk(tmp_path, encoded):
    for fmt, data in encoded.items():
        path = tmp_path / f"clip{fmt.suffix}"
        path.write_bytes(data)
        media = sniff(path)
        assert (media.mime, media.kind, media.embeddable) == (fmt.mime, MediaKind.AUDIO, fmt.embeddable)
        # The name is never trusted: an MP3 called .wav is decoded as MP3.
        liar = tmp_path / f"liar-{fmt.value}.wav"
        liar.write_bytes(data)
        assert decode_audio(liar).format is fmt


def test_wav_sample_codings_are_kept(stereo):
    for subtype, error in (("PCM_16", 1 / 32767), ("PCM_24", 1e-6), ("FLOAT", 0.0)):
        clip = decode_audio(encode_audio(stereo, RATE, AudioFormat.WAV, subtype=subtype))
        assert clip.subtype == subtype and np.abs(clip.samples - stereo).max() <= error
    with pytest.raises(InputError, match="cannot hold 'FLOAT'"):
        encode_audio(stereo, RATE, AudioFormat.FLAC, subtype="FLOAT")
    with pytest.raises(InputError, match="takes no bit rate"):
        encode_audio(stereo, RATE, AudioFormat.WAV, bitrate=128000)


def test_lossy_bitrate_and_resampling_to_what_the_encoder_takes():
    mono = music(2.0, 22050, seed=2)
    small = encode_audio(mono, 22050, AudioFormat.MP3, bitrate=64000)
    large = encode_audio(mono, 22050, AudioFormat.MP3, bitrate=160000)
    assert len(small) < len(large)
    assert audio_info(small).bitrate == 64000
    assert output_rate(AudioFormat.MP3, 22050) == 22050 and output_rate(AudioFormat.MP3, 20000) == 22050
    assert output_rate(AudioFormat.M4A, 192000) == 96000
    assert decode_audio(encode_audio(music(1.0, 20000, seed=2), 20000, AudioFormat.MP3)).rate == 22050
    with pytest.raises(InputError, match="mono or stereo"):
        encode_audio(np.zeros((1000, 3), np.float32), RATE, AudioFormat.MP3)


def test_bad_samples_are_refused_before_encoding():
    with pytest.raises(InputError, match="float32"):
        encode_audio(np.zeros(100, np.int16), RATE, AudioFormat.WAV)
    with pytest.raises(InputError, match="NaN"):
        encode_audio(np.full(100, np.nan, np.float32), RATE, AudioFormat.WAV)
    with pytest.raises(InputError, match="shape"):
        encode_audio(np.zeros((0, 2), np.float32), RATE, AudioFormat.WAV)
    with pytest.raises(InputError, match="positive integer"):
        encode_audio(np.zeros(100, np.float32), 0, AudioFormat.WAV)


def test_content_hash_follows_samples_not_metadata(stereo, tmp_path):
    wav = decode_audio(encode_audio(stereo, RATE, AudioFormat.WAV))
    flac = decode_audio(encode_audio(stereo, RATE, AudioFormat.FLAC))
    # The same 16-bit samples in another lossless container: the same content.
    assert audio_content_sha256(wav) == audio_content_sha256(flac)
    # An extra RIFF chunk (metadata) changes the file, not the content.
    data = bytearray(encode_audio(stereo, RATE, AudioFormat.WAV))
    data += b"LIST" + struct.pack("<I", 12) + b"INFOISFT" + struct.pack("<I", 0)
    data[4:8] = struct.pack("<I", len(data) - 8)
    assert audio_content_sha256(decode_audio(bytes(data))) == audio_content_sha256(wav)
    changed = stereo.copy()
    changed[1000, 0] += 0.01
    assert audio_content_sha256(decode_audio(encode_audio(changed, RATE, AudioFormat.WAV))) != \
        audio_content_sha256(wav)
    # The rate is part of the content.
    other_rate = decode_audio(encode_audio(stereo, 48000, AudioFormat.WAV))
    assert audio_content_sha256(other_rate) != audio_content_sha256(wav)


def _wav(seconds=0.5, rate=8000, channels=1) -> bytearray:
    buf = io.BytesIO()
    import soundfile

    soundfile.write(buf, np.zeros((int(seconds * rate), channels), np.float32), rate, format="WAV",
                    subtype="PCM_16")
    return bytearray(buf.getvalue())


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("song.txt", "not audio " * 100)
    return buf.getvalue()


def test_hostile_inputs_give_clear_input_errors(tmp_path, encoded):
    huge = _wav()
    huge[40:44] = struct.pack("<I", 2 * 10 ** 9)  # data chunk of 10^9 frames on a 8 KB file
    mhz = _wav()
    mhz[24:28] = struct.pack("<I", 10_000_000)
    many = _wav()
    many[22:24] = struct.pack("<H", 300)
    cases = {
        "empty.wav": (b"", "empty"),
        "huge.wav": (bytes(huge), "truncated WAV: the header declares 2000000000 bytes"),
        "mhz.wav": (bytes(mhz), "sample rate 10000000 Hz, over the 384000 Hz limit"),
        "many.wav": (bytes(many), "300 channels, over the limit of 8"),
        "zip.mp3": (_zip(), "not audio SynthGuard reads"),
        "text.wav": (b"just some text, no RIFF here\n" * 20, "not audio SynthGuard reads"),
        "noise.flac": (np.random.default_rng(0).bytes(5000), "not audio SynthGuard reads"),
        "sync.mp3": (b"\xff\xfb\x90\x00" + np.random.default_rng(1).bytes(5000), "not audio SynthGuard reads"),
        "adts.m4a": (b"\xff\xf1\x50\x80" + bytes(2000), "raw AAC"),
    }
    for fmt in AudioFormat:
        data = encoded[fmt]
        cases[f"half{fmt.suffix}"] = (data[:len(data) // 2], "truncated|corrupt")
        cases[f"cut{fmt.suffix}"] = (data[:len(data) - 100], "truncated|corrupt")
        cases[f"header{fmt.suffix}"] = (data[:60], "truncated|corrupt|not audio")
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        for source in (path, data):
            if source == b"":
                continue
            with pytest.raises(InputError, match=message):
                decode_audio(source)


def test_budgets_are_checked_before_decoding_and_can_be_raised(monkeypatch, encoded):
    for fmt in AudioFormat:
        with pytest.raises(InputError, match="over the 1 s limit"):
            decode_audio(encoded[fmt], max_seconds=1.0)
    with pytest.raises(InputError, match="over the 22050 Hz limit"):
        decode_audio(encoded[AudioFormat.FLAC], max_rate=22050)
    with pytest.raises(InputError, match="2 channels, over the limit of 1"):
        decode_audio(encoded[AudioFormat.M4A], max_channels=1)
    monkeypatch.setenv("SYNTHGUARD_MAX_AUDIO_SECONDS", "1.5")
    assert max_audio_seconds() == 1.5
    with pytest.raises(InputError, match="SYNTHGUARD_MAX_AUDIO_SECONDS"):
        decode_audio(encoded[AudioFormat.WAV])
    monkeypatch.setenv("SYNTHGUARD_MAX_AUDIO_SECONDS", "lots")
    with pytest.raises(InputError, match="is not a number"):
        decode_audio(encoded[AudioFormat.WAV])


def test_a_wav_header_declaring_hours_is_refused_by_the_budget_not_read(tmp_path):
    # A streaming WAV (length 0xFFFFFFFF) is as long as its file; one that declares more than the budget on a
    # file that really holds it is refused from the header, before its samples are read.
    data = _wav(seconds=3.0, rate=8000)
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)
    assert decode_audio(bytes(data)).frames == 24000
    with pytest.raises(InputError, match="3 s of audio at 8000 Hz x 1, over the 2 s limit"):
        decode_audio(bytes(data), max_seconds=2.0)


def test_the_duration_budget_also_bounds_the_samples_held():
    # 2 s at 384 kHz in 8 channels is within the rate, channel and duration limits (4 s): the budget counts samples
    # as if at 96 kHz stereo (4 s of those are 0.25 s of this), so it is refused from its header.
    data = _wav(seconds=0.01, rate=8000, channels=8)
    data[24:28] = struct.pack("<I", 384000)
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)
    data += bytes(2 * 384000 * 8 * 2 - (len(data) - 44))
    with pytest.raises(InputError, match="2 s of audio at 384000 Hz x 8, over the 4 s limit"):
        decode_audio(bytes(data), max_seconds=4.0)
    assert decode_audio(bytes(data), max_seconds=40.0).frames == 2 * 384000


def test_float_wav_with_non_finite_samples_is_refused(tmp_path):
    samples = noise(0.5, 8000)
    samples[10] = np.inf
    path = write_wav(tmp_path / "inf.wav", samples, 8000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN or infinity"):
        decode_audio(path)


def test_an_mp4_with_only_sound_is_audio(tmp_path):
    ffmpeg = require_tool("ffmpeg")
    import subprocess

    src = write_wav(tmp_path / "in.wav", music(1.0, RATE, seed=4), RATE)
    out = tmp_path / "sound.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(src), "-c:a", "aac", "-b:a", "128k", "-brand", "isom",
                    str(out)], check=True)
    assert sniff(out).mime == "audio/mp4"
    assert decode_audio(out).format is AudioFormat.M4A


def test_an_id3_tag_before_flac_is_skipped_and_the_file_is_flac(tmp_path, stereo, encoded):
    mp3 = encoded[AudioFormat.MP3]
    tag = mp3[:10 + (mp3[6] << 21 | mp3[7] << 14 | mp3[8] << 7 | mp3[9])]
    path = tmp_path / "tagged.flac"
    path.write_bytes(tag + encoded[AudioFormat.FLAC])
    assert sniff(path).mime == "audio/flac"
    clip = decode_audio(path)
    assert clip.format is AudioFormat.FLAC and clip.frames == len(stereo)
    assert clip.mono.shape == (clip.frames,)


def test_raw_aac_is_sniffed_as_aac_and_not_taken_for_mp3(tmp_path):
    path = tmp_path / "raw.aac"
    path.write_bytes(b"\xff\xf1\x50\x80" + bytes(2000))
    assert (sniff(path).mime, sniff(path).embeddable) == ("audio/aac", False)
    with pytest.raises(InputError, match="raw AAC"):
        decode_audio(path)
