"""Audio watermark benchmark: SynthGuard's BandMark beside a classic peer (time-domain spread spectrum, the project's
own implementation: ``bench.audio_peers``) through one attack suite, in one run.

For every method, marked clip (generated music and speech, ``bench.audio_corpus``) and attack: embed a random
48-bit payload, attack, detect. Reported per attack: exact payload recovery (detected and every byte right), also
per clip kind (speech, music), mean bit accuracy of the best-effort bit estimates, detection rate. Per method: SNR
of the marked clips, PESQ (wideband, 16 kHz, speech clips only: PESQ is a speech measure), embed and detect time
per minute of audio on one core, and false positives on unmarked speech, music and noise with the stated bound
(threshold x clips).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from synthguard.bench.audio_corpus import Clip, ClipKind, marked_sources, unmarked_corpus
from synthguard.bench.audio_peers import SpreadSpectrumPeer
from synthguard.core.process import one_blas_thread
from synthguard.errors import InputError
from synthguard.watermark.audio import AudioWatermarker, default_audio_watermarker
from synthguard.watermark.audio.attacks import ATTACKS

PEER_NOTE = ("peer: time-domain spread spectrum (Bender et al. 1996; Cox et al. 1997), the project's own "
             "implementation of that published method: no packaged audio watermark runs offline here (AudioSeal, "
             "WavMark, SilentCipher need Hugging Face weights; resemble-perth needs torchaudio, which does not "
             "install beside this torch; aware pins an older torch; audiowmark is not in Debian 12)")


@dataclass(frozen=True)
class AttackRow:
    """One method through one attack over the marked clips."""

    method: str
    attack: str
    clips: int
    exact: float  # share of clips whose payload was detected and came back exactly
    bit_accuracy: float  # mean share of the 48 estimated bits that are right
    detected: float  # share of clips where the method claimed a detection (right or wrong payload)
    failed: int  # clips the attack or detector could not process (counted as misses)
    exact_by_kind: dict[str, float] = field(default_factory=dict)  # exact recovery per clip kind (speech, music)


@dataclass(frozen=True)
class MethodSummary:
    """Quality, speed and false positives of one method."""

    method: str
    snr_db_mean: float
    snr_db_min: float
    pesq_mean: float | None  # wideband PESQ of the speech clips (None: pesq not installed)
    pesq_min: float | None
    embed_s_per_min: float
    detect_s_per_min: float
    unmarked: int
    false_positives: int
    min_unmarked_p: float
    threshold: float


@dataclass(frozen=True)
class AudioWatermarkBench:
    rows: tuple[AttackRow, ...]
    methods: tuple[MethodSummary, ...]
    marked_clips: dict[str, int]
    unmarked_clips: dict[str, int]
    seconds: float  # wall time of the run

    def to_dict(self) -> dict:
        return {"rows": [asdict(r) for r in self.rows], "methods": [asdict(m) for m in self.methods],
                "marked_clips": self.marked_clips, "unmarked_clips": self.unmarked_clips, "seconds": self.seconds,
                "peer_note": PEER_NOTE}

    def describe(self) -> tuple[str, ...]:
        names = list(dict.fromkeys(r.method for r in self.rows))
        lines = [f"marked clips: {_counts(self.marked_clips)}; unmarked clips: {_counts(self.unmarked_clips)}",
                 "", f"{'attack':<26}" + "".join(f" | {n:>26}" for n in names),
                 f"{'':<26}" + " | exact   bits  detected fail" * len(names)]
        by = {(r.method, r.attack): r for r in self.rows}
        for attack in dict.fromkeys(r.attack for r in self.rows):
            cells = []
            for n in names:
                r = by[(n, attack)]
                cells.append(f" | {r.exact:>5.0%} {r.bit_accuracy:>6.1%} {r.detected:>8.0%} {r.failed:>4}")
            lines.append(f"{attack:<26}" + "".join(cells))
        kinds = list(dict.fromkeys(k for r in self.rows for k in r.exact_by_kind))
        if kinds:
            lines += ["", "exact payload by clip kind: " + ", ".join(kinds),
                      f"{'attack':<26}" + "".join(f" | {n:>26}" for n in names)]
            for attack in dict.fromkeys(r.attack for r in self.rows):
                cells = [" | " + " ".join(f"{by[(n, attack)].exact_by_kind.get(k, float('nan')):>5.0%} {k}"
                                          for k in kinds).rjust(26) for n in names]
                lines.append(f"{attack:<26}" + "".join(cells))
        lines.append("")
        for m in self.methods:
            pesq = ("PESQ n/a" if m.pesq_mean is None
                    else f"PESQ (speech, wb) mean {m.pesq_mean:.2f} min {m.pesq_min:.2f}")
            lines.append(f"{m.method}: SNR mean {m.snr_db_mean:.1f} dB min {m.snr_db_min:.1f} dB; {pesq}; embed "
                         f"{m.embed_s_per_min:.2f} s and detect {m.detect_s_per_min:.2f} s per minute of audio "
                         "(one core)")
            lines.append(f"  false positives: {m.false_positives} of {m.unmarked} unmarked clips (smallest p "
                         f"{m.min_unmarked_p:.2g}; bound: each clip p < {m.threshold:g}, so at most "
                         f"{m.threshold * m.unmarked:.1g} expected)")
        lines += ["", PEER_NOTE, f"run time {self.seconds:.0f} s"]
        return tuple(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items())


def _snr_db(x: np.ndarray, y: np.ndarray) -> float:
    noise = float(np.sum((y.astype(np.float64) - x) ** 2))
    return 10.0 * np.log10(float(np.sum(x.astype(np.float64) ** 2)) / max(noise, 1e-30))


def _pesq(clip: Clip, marked: np.ndarray) -> float | None:
    try:
        from pesq import pesq  # noqa: PLC0415 (optional benchmark dependency)
        from scipy.signal import resample_poly  # noqa: PLC0415
    except ImportError:
        return None
    from fractions import Fraction  # noqa: PLC0415

    r = Fraction(16000, clip.rate)
    ref, deg = (resample_poly(s.astype(np.float64), r.numerator, r.denominator).astype(np.float32)
                for s in (clip.samples, marked))
    return float(pesq(16000, ref, deg, "wb"))


def _read(method: AudioWatermarker, samples: np.ndarray, rate: int):
    read = getattr(method, "read", None)
    if read is not None:
        return read(samples, rate)
    return method.detect(samples, rate), method.estimate_payload_bits(samples, rate)


def run(n: int = 50, n_unmarked: int = 500, attacks: Sequence[str] | None = None, seed: int = 0,
        methods: Sequence[AudioWatermarker] | None = None, log: Callable[[str], None] = lambda _: None,
        ) -> AudioWatermarkBench:
    """Run the benchmark over ``n`` marked clips and ``n_unmarked`` unmarked ones (see the module docstring)."""
    if n < 1 or n_unmarked < 0:
        raise InputError(f"the audio benchmark needs at least one marked clip, got n={n}, unmarked={n_unmarked}")
    names = list(ATTACKS) if attacks is None else list(attacks)
    unknown = [a for a in names if a not in ATTACKS]
    if unknown:
        raise InputError(f"unknown audio attack {unknown[0]!r}; known: {', '.join(ATTACKS)}")
    methods = list(methods) if methods is not None else [default_audio_watermarker(), SpreadSpectrumPeer()]
    started = time.perf_counter()
    log(f"making {n} marked-source clips (chorales + espeak-ng speech)")
    clips = marked_sources(n, seed=seed)
    log(f"making {n_unmarked} unmarked clips")
    unmarked = unmarked_corpus(n_unmarked, seed=seed + 100) if n_unmarked else []
    rng = np.random.default_rng(seed)
    payloads = [bytes(rng.integers(0, 256, 6, dtype=np.uint8)) for _ in clips]
    rows, summaries = [], []
    with one_blas_thread():
        for method in methods:
            summaries_args, method_rows = _run_method(method, clips, payloads, names, unmarked, log)
            rows += method_rows
            summaries.append(summaries_args)
    return AudioWatermarkBench(rows=tuple(rows), methods=tuple(summaries),
                               marked_clips=_kinds(clips), unmarked_clips=_kinds(unmarked),
                               seconds=time.perf_counter() - started)


def _kinds(clips: list[Clip]) -> dict[str, int]:
    return {k.value: sum(c.kind is k for c in clips) for k in ClipKind if any(c.kind is k for c in clips)}


def _run_method(method: AudioWatermarker, clips: list[Clip], payloads: list[bytes], names: list[str],
                unmarked: list[Clip], log: Callable[[str], None]) -> tuple[MethodSummary, list[AttackRow]]:
    name = method.algorithm_id
    marked, snrs, pesqs, embed_s = [], [], [], 0.0
    for clip, payload in zip(clips, payloads, strict=True):
        t = time.perf_counter()
        out = method.embed(clip.samples, clip.rate, payload)
        embed_s += time.perf_counter() - t
        marked.append(out)
        snrs.append(_snr_db(clip.samples, out))
        if clip.kind is ClipKind.SPEECH:
            value = _pesq(clip, out)
            if value is not None:
                pesqs.append(value)
    minutes = sum(c.seconds for c in clips) / 60.0
    rows, detect_s = [], 0.0
    for attack in names:
        exact = accuracy = detected = failed = 0
        exact_kind: dict[str, int] = {}
        for clip, payload, out in zip(clips, payloads, marked, strict=True):
            try:
                attacked, rate = ATTACKS[attack](out, clip.rate)
                t = time.perf_counter()
                result, bits = _read(method, attacked, rate)
                if attack == "none":
                    detect_s += time.perf_counter() - t
            except Exception as exc:  # noqa: BLE001 (a failure is a miss, and counted)
                failed += 1
                log(f"{name} {attack} {clip.label}: {type(exc).__name__}: {exc}")
                continue
            truth = np.unpackbits(np.frombuffer(payload, np.uint8))
            accuracy += float(np.mean(np.asarray(bits) == truth)) if bits is not None else 0.0
            detected += result.detected
            right = result.detected and result.payload == payload
            exact += right
            exact_kind[clip.kind.value] = exact_kind.get(clip.kind.value, 0) + right
        k = len(clips)
        by_kind = {kind: exact_kind.get(kind, 0) / count for kind, count in _kinds(clips).items()}
        rows.append(AttackRow(name, attack, k, exact / k, accuracy / k, detected / k, failed, by_kind))
        log(f"{name} {attack}: exact {exact / k:.0%}")
    false_pos, min_p = 0, 1.0
    for clip in unmarked:
        result = method.detect(clip.samples, clip.rate)
        false_pos += result.detected
        min_p = min(min_p, result.p_value)
    log(f"{name}: {false_pos} false positives of {len(unmarked)}")
    summary = MethodSummary(
        method=name, snr_db_mean=statistics.fmean(snrs), snr_db_min=min(snrs),
        pesq_mean=statistics.fmean(pesqs) if pesqs else None, pesq_min=min(pesqs) if pesqs else None,
        embed_s_per_min=embed_s / minutes, detect_s_per_min=detect_s / minutes if "none" in names else float("nan"),
        unmarked=len(unmarked), false_positives=false_pos, min_unmarked_p=min_p,
        threshold=float(getattr(method, "threshold", 1e-6)))
    return summary, rows
