"""The audio watermark benchmark at tiny sizes: both methods, the table, false positives and the peer's note;
its corpus (espeak-ng speech, rendered chorales, noise)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.audio import require_tool

from synthguard.bench import audio_corpus
from synthguard.bench.audio_peers import SpreadSpectrumPeer
from synthguard.errors import InputError


def test_corpus_clips_are_what_they_say():
    require_tool("espeak-ng")
    speech = list(audio_corpus.speech_clips(3, min_seconds=3.0))
    assert [c.label.split()[0] for c in speech] == list(audio_corpus.VOICES[:3])
    noise = list(audio_corpus.noise_clips(3, seconds=2.0))
    assert [c.label.split()[0] for c in noise] == ["white", "pink", "brown"]
    for clip in speech + noise:
        assert clip.samples.dtype == np.float32 and np.abs(clip.samples).max() <= 1.0 and clip.samples.ndim == 1
    assert all(c.seconds >= 3.0 for c in speech)


def test_a_missing_espeak_is_named(monkeypatch):
    monkeypatch.setattr(audio_corpus.shutil, "which", lambda _: None)
    with pytest.raises(InputError, match="espeak-ng"):
        next(audio_corpus.speech_clips(1))


def test_the_peer_round_trips_and_has_no_sync():
    from helpers.audio import music

    x = music(7.0, 16000, 3)
    peer = SpreadSpectrumPeer()
    y = peer.embed(x, 16000, b"peer!!")
    assert peer.detect(y, 16000).payload == b"peer!!"
    truth = np.unpackbits(np.frombuffer(b"peer!!", np.uint8))
    assert np.array_equal(peer.estimate_payload_bits(y, 16000), truth)
    assert not peer.detect(x, 16000).detected
    assert not peer.detect(y[8000:], 16000).detected  # a shifted start loses it: the classic method has no sync


def test_the_benchmark_runs_both_methods_at_tiny_sizes():
    require_tool("espeak-ng")
    from synthguard.bench.audio_watermark_bench import PEER_NOTE, run

    result = run(n=2, n_unmarked=3, attacks=["none", "volume-0.5"])
    assert result.marked_clips == {"speech": 1, "music": 1}
    assert result.unmarked_clips == {"speech": 1, "music": 1, "noise": 1}
    methods = {r.method for r in result.rows}
    assert methods == {"io.synthguard.bandmark.1", "peer.dsss.1"}
    ours = {r.attack: r for r in result.rows if r.method == "io.synthguard.bandmark.1"}
    assert ours["none"].exact == 1.0 and ours["none"].bit_accuracy > 0.85 and ours["none"].failed == 0
    for summary in result.methods:
        assert summary.unmarked == 3 and summary.false_positives == 0 and summary.snr_db_min > 10
        assert summary.embed_s_per_min > 0 and summary.detect_s_per_min > 0
    text = "\n".join(result.describe())
    assert PEER_NOTE in text and "false positives: 0 of 3" in text and "volume-0.5" in text
    assert json.loads(json.dumps(result.to_dict()))["rows"][0]["clips"] == 2


def test_unknown_attacks_are_refused():
    from synthguard.bench.audio_watermark_bench import run

    with pytest.raises(InputError, match="unknown audio attack"):
        run(n=1, n_unmarked=0, attacks=["nope"])
