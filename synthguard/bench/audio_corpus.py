"""Clips for the audio watermark benchmark, all made here: speech from Debian's espeak-ng in several voices and
languages, music rendered from music21's Bach chorales with SynthGuard's own synthesiser
(``models.audio.render_notes`` over ``training.audio.chorale_notes``), and noise (white, pink, brown) from numpy.

espeak-ng runs as a subprocess writing only into a temporary directory; without it, InputError names the tool.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

import numpy as np

from synthguard.errors import InputError


class ClipKind(str, Enum):
    SPEECH = "speech"
    MUSIC = "music"
    NOISE = "noise"


@dataclass(frozen=True)
class Clip:
    """One benchmark clip: float32 samples in [-1, 1] at ``rate`` Hz, and what it is."""

    kind: ClipKind
    label: str
    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / self.rate


# Voices (language + variant) and a few sentences per language; clips pair two sentences at a speaking rate.
VOICES = ("en", "en-us", "en+f3", "en-us+m3", "de", "fr", "es", "it", "pt", "nl", "pl")
_TEXTS = {
    "en": ("The quick brown fox jumps over the lazy dog.", "Pack my box with five dozen liquor jugs.",
           "A small town by the river kept its old stone bridge.", "Please call me back before the meeting starts.",
           "The weather will turn colder later this week.", "Seven ships sailed north in the early morning."),
    "de": ("Der schnelle braune Fuchs springt ueber den faulen Hund.", "Morgen fahren wir mit dem Zug nach Berlin.",
           "Das Wetter ist heute sehr schoen und warm.", "Bitte schliessen Sie die Tuer hinter sich."),
    "fr": ("Le vif renard brun saute par-dessus le chien paresseux.", "Nous irons au marche demain matin.",
           "Il fait beau aujourd'hui sur la cote.", "La bibliotheque ouvre a neuf heures."),
    "es": ("El veloz zorro marron salta sobre el perro perezoso.", "Manana vamos a la playa con mis amigos.",
           "La cena estara lista a las ocho.", "El tren sale de la estacion central."),
    "it": ("La volpe veloce salta sopra il cane pigro.", "Domani andiamo al mercato del paese.",
           "Il museo apre alle dieci di mattina.", "Questa sera piove sulla citta."),
    "pt": ("A raposa rapida salta sobre o cao preguicoso.", "Amanha vamos visitar a minha avo.",
           "O comboio chega as sete horas.", "A praia estava cheia no domingo."),
    "nl": ("De snelle bruine vos springt over de luie hond.", "Morgen gaan we met de fiets naar school.",
           "Het regent al de hele dag in de stad.", "De winkel sluit om zes uur."),
    "pl": ("Szybki brazowy lis przeskakuje nad leniwym psem.", "Jutro pojedziemy pociagiem do Krakowa.",
           "Dzisiaj jest bardzo ladna pogoda.", "Sklep jest otwarty do osmej wieczorem."),
}
_SPEEDS = (130, 155, 175, 200)


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise InputError("the audio benchmark's speech clips need the espeak-ng command-line tool, which is not "
                         "installed (Debian: apt-get install espeak-ng)")
    return exe


def speak(text: str, voice: str, speed: int, tmp: Path) -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng: mono float32 samples and their rate."""
    import soundfile  # noqa: PLC0415 (optional audio dependency)

    out = tmp / "speech.wav"
    done = subprocess.run([_espeak(), "-v", voice, "-s", str(speed), "-w", str(out), text], capture_output=True,
                          check=False)
    if done.returncode != 0:
        raise InputError(f"espeak-ng failed for voice {voice!r}: {done.stderr.decode(errors='replace')[:200]}")
    samples, rate = soundfile.read(str(out), dtype="float32", always_2d=False)
    return samples, int(rate)


def speech_clips(n: int, seed: int = 0, min_seconds: float = 4.0) -> Iterator[Clip]:
    """``n`` speech clips cycling through VOICES, each two (or more) sentences of the voice's language."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            voice = VOICES[i % len(VOICES)]
            texts = _TEXTS[voice.split("+")[0].split("-")[0]]
            order = rng.permutation(len(texts))
            speed = int(_SPEEDS[(i // len(VOICES)) % len(_SPEEDS)])
            parts, rate, j = [], 22050, 0
            while sum(len(p) for p in parts) < min_seconds * rate:
                samples, rate = speak(texts[order[j % len(texts)]], voice, speed, Path(tmp))
                parts.append(samples)
                j += 1
            yield Clip(ClipKind.SPEECH, f"{voice} {speed}wpm", np.concatenate(parts).astype(np.float32), rate)


def music_clips(n: int, seconds: float = 8.0, rate: int = 44100, seed: int = 0) -> Iterator[Clip]:
    """``n`` excerpts of Bach chorales (music21's corpus) rendered by SynthGuard's synthesiser, ``seconds`` each,
    from successive windows of successive chorales."""
    from synthguard.models.audio import render_notes  # noqa: PLC0415 (torch loads only when music is needed)
    from synthguard.training.audio import chorale_notes  # noqa: PLC0415

    pieces = [p for p in chorale_notes(limit=n) if p]
    made, window = 0, 0
    while made < n:
        for index, notes in enumerate(pieces):
            if made >= n:
                break
            start = window * seconds
            inside = [replace(note, start=note.start - start) for note in notes
                      if start <= note.start < start + seconds - 0.5]
            if len(inside) < 8:
                continue
            samples = render_notes(inside, rate, seconds)
            yield Clip(ClipKind.MUSIC, f"chorale {index} from {start:g} s", samples, rate)
            made += 1
        window += 1
        if window > 40:
            raise InputError(f"the chorale corpus gave only {made} music clips of {seconds:g} s")


def noise_clips(n: int, seconds: float = 5.0, rate: int = 16000, seed: int = 0) -> Iterator[Clip]:
    """``n`` noise clips: white, pink and brown in turn, at levels from -40 to -10 dBFS."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * rate)
    for i in range(n):
        colour = ("white", "pink", "brown")[i % 3]
        spectrum = np.fft.rfft(rng.standard_normal(frames))
        f = np.arange(spectrum.size) + 1.0
        spectrum *= {"white": 1.0, "pink": 1.0 / np.sqrt(f), "brown": 1.0 / f}[colour]
        x = np.fft.irfft(spectrum, frames)
        level_db = rng.uniform(-40.0, -10.0)
        x *= 10.0 ** (level_db / 20.0) / (float(np.sqrt(np.mean(x * x))) + 1e-12)
        yield Clip(ClipKind.NOISE, f"{colour} {level_db:.0f} dBFS", np.clip(x, -1, 1).astype(np.float32), rate)


def marked_sources(n: int, seed: int = 0) -> list[Clip]:
    """The clips the benchmark marks: half chorale music (8 s at 44.1 kHz), half speech (at least 7 s)."""
    n_music = n // 2
    return list(music_clips(n_music, seed=seed)) + list(speech_clips(n - n_music, seed=seed + 1, min_seconds=7.0))


def unmarked_corpus(n: int, seed: int = 100) -> list[Clip]:
    """``n`` unmarked clips: 40 % speech, 40 % music (windows the marked set does not use first), 20 % noise."""
    n_speech, n_music = (2 * n) // 5, (2 * n) // 5
    music = list(music_clips(n_music, seconds=6.0, seed=seed))
    return (list(speech_clips(n_speech, seed=seed)) + music + list(noise_clips(n - n_speech - n_music, seed=seed)))
