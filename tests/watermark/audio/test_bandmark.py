"""BandMark, SynthGuard's audio watermark: round trips at every rate and channel layout, excerpts, speed changes,
unmarked audio, the p-value's bound, and refusals of unusable input (seeded clips the tests make themselves)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.audio import music, noise, speech

from synthguard.errors import InputError, WatermarkError
from synthguard.watermark.audio import MIN_SECONDS, BandMarkWatermarker, default_audio_watermarker
from synthguard.watermark.audio.attacks import excerpt, resample, speed
from synthguard.watermark.audio.attacks import noise as add_noise

PAYLOAD = b"\x12\x34\x56\x78\x9a\xbc"


@pytest.fixture(scope="module")
def wm() -> BandMarkWatermarker:
    return default_audio_watermarker()


def mix(seconds: float, rate: int, seed: int, channels: int = 1) -> np.ndarray:
    """Tonal music over a faint noise floor (a dense spectrum, like most recordings)."""
    base = music(seconds, rate, seed, channels)
    floor = noise(seconds, rate, seed + 1, 0.02)[: base.shape[0]]
    return np.clip(base + (floor[:, None] if channels > 1 else floor), -1, 1).astype(np.float32)


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 1), (44100, 2), (48000, 1), (192000, 2)])
def test_round_trip_at_each_rate_and_layout(wm, rate, channels):
    x = mix(4.0, rate, rate % 97, channels)
    y = wm.embed(x, rate, PAYLOAD)
    assert y.shape == x.shape and y.dtype == x.dtype and np.abs(y).max() <= 1.0
    snr = 10 * np.log10(np.sum(x.astype(float) ** 2) / np.sum((y - x).astype(float) ** 2))
    assert 12.0 < snr < 30.0
    found = wm.detect(y, rate)
    assert found.detected and found.payload == PAYLOAD and found.p_value < 1e-6
    assert found.algorithm == "io.synthguard.bandmark.1" == wm.algorithm_id
    bits = wm.estimate_payload_bits(y, rate)  # before error correction: most, not necessarily all, right
    assert bits.shape == (48,) and np.mean(bits == np.unpackbits(np.frombuffer(PAYLOAD, np.uint8))) >= 0.85


def test_float64_input_keeps_its_dtype(wm):
    x = mix(4.0, 16000, 3).astype(np.float64)
    assert wm.embed(x, 16000, PAYLOAD).dtype == np.float64


def test_a_four_second_excerpt_of_speech_decodes(wm):
    x, rate = speech("The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
                     "How vexingly quick daft zebras jump.")
    y = wm.embed(x, rate, PAYLOAD)
    found = wm.detect(*resample(*excerpt(y, rate, 1.37, 4.0)))
    assert found.detected and found.payload == PAYLOAD


@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_speed_changes_of_five_percent_decode(wm, factor):
    x = mix(6.0, 22050, 11)
    y = wm.embed(x, 22050, PAYLOAD)
    found = wm.detect(*speed(y, 22050, factor))
    assert found.detected and found.payload == PAYLOAD


def test_a_clipped_loud_clip_stays_in_range(wm):
    x = np.clip(mix(4.0, 16000, 5) * 3.0, -1, 1).astype(np.float32)
    y = wm.embed(x, 16000, PAYLOAD)
    assert np.abs(y).max() <= 1.0
    assert wm.detect(y, 16000).payload == PAYLOAD


@pytest.mark.parametrize("kind", ["music", "noise", "speech"])
def test_unmarked_audio_is_not_detected(wm, kind):
    if kind == "speech":
        x, rate = speech("Guten Tag, wie geht es Ihnen heute? Das Wetter ist sehr schoen.", "de")
    else:
        rate = 44100 if kind == "music" else 16000
        x = music(6.0, rate, 8, 2) if kind == "music" else noise(6.0, rate, 9)
    found = wm.detect(x, rate)
    assert not found.detected and found.payload is None and found.bit_errors is None
    assert found.p_value >= wm.threshold


def test_a_different_key_does_not_read_the_mark(wm):
    x = mix(4.0, 16000, 13)
    y = wm.embed(x, 16000, PAYLOAD)
    assert not BandMarkWatermarker(seed=1234).detect(y, 16000).detected


def test_the_p_value_threshold_counts_every_hypothesis(wm):
    # 2^48 codewords x about 1.9e5 searched hypotheses (the decoders add none): about 10.7 sigma is needed.
    assert wm._n_tests == 4 * 2 * 61 * 128 * 3
    assert 10.5 < wm.z_threshold < 11.0
    assert wm._p_value(wm.z_threshold) == pytest.approx(1e-6, rel=1e-3)
    assert wm._p_value(5.0) == 1.0


@pytest.mark.parametrize(("samples", "rate", "match"), [
    (np.zeros(0, np.float32), 16000, "too short"),
    (np.zeros(int(16000 * (MIN_SECONDS - 0.1)), np.float32), 16000, f"at least {MIN_SECONDS:g} s"),
    (np.full(64000, np.nan, np.float32), 16000, "NaN"),
    (np.zeros(64000, np.float32), 4000, "sample rate"),
    (np.zeros(64000, np.float32), 10**7, "sample rate"),
    (np.zeros(64000, np.float32), 16000.0, "sample rate"),
    (np.zeros(64000, np.int16), 16000, "float numpy array"),
    (np.zeros((64000, 2, 2), np.float32), 16000, "shaped"),
    ([0.0] * 64000, 16000, "float numpy array"),
])
def test_unusable_input_is_refused(wm, samples, rate, match):
    with pytest.raises(InputError, match=match):
        wm.detect(samples, rate)
    with pytest.raises(InputError, match=match):
        wm.embed(samples, rate, PAYLOAD)


def test_bad_payloads_and_silence_are_refused(wm):
    x = mix(4.0, 16000, 2)
    with pytest.raises(InputError, match="6 bytes"):
        wm.embed(x, 16000, b"short")
    with pytest.raises(WatermarkError, match="silent"):
        wm.embed(np.zeros(64000, np.float32), 16000, PAYLOAD)
    assert not wm.detect(np.zeros(64000, np.float32), 16000).detected


@pytest.mark.parametrize("seed", [0, 3])
def test_plain_tonal_music_of_five_seconds_marks(wm, seed):
    # Pure partials with silence between them: the weights read the mark where the notes are.
    x = music(5.0, 44100, seed)
    y = wm.embed(x, 44100, PAYLOAD)
    found = wm.detect(y, 44100)
    assert found.detected and found.payload == PAYLOAD


def test_white_noise_at_20_db_snr_decodes(wm):
    x = mix(8.0, 22050, 21)
    y = wm.embed(x, 22050, PAYLOAD)
    found = wm.detect(*add_noise(y, 22050, 20.0))
    assert found.detected and found.payload == PAYLOAD


def test_band_weights_never_read_the_data_chip_signs(wm):
    # The Rademacher argument needs weights independent of the data chips: flipping any data cells' signs (what
    # another codeword or key would do) leaves every weight as it was.
    rng = np.random.default_rng(4)
    cells = rng.standard_normal(53 * 64)
    flipped = cells.copy()
    pick = wm._data_cells[rng.random(wm._data_cells.size) < 0.5]
    flipped[pick] *= -1.0
    assert np.array_equal(wm._band_weights(cells), wm._band_weights(flipped))
    assert np.all(wm._band_weights(cells) >= 0.0)
    # While the sync cells are what they read: sync cells carrying the sync signs raise the weights.
    synced = cells.copy()
    synced[wm._sync_cells] += wm._sync_sign
    assert wm._band_weights(synced).mean() > wm._band_weights(cells).mean()
