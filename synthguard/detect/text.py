"""The text signals: the identity's text watermarks (every scheme, windowed) and, when a scoring model is named,
the machine-text criterion. Calibrations are measured once per key, tokenizer and model, and cached in
``$SYNTHGUARD_HOME/text-calibration/``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from synthguard.core.fileio import write_atomic
from synthguard.detect.machine_text import MachineTextCalibration, calibrate, score_machine_text
from synthguard.detect.signals import MachineTextSignal, TextWatermarkSignal
from synthguard.errors import InputError

if TYPE_CHECKING:
    from synthguard.watermark.text import KeyCalibration, TextWatermarker

# Texts longer than this many tokens are tested on their first MAX_TOKENS tokens (bounded work and memory: only
# that prefix is tokenised; the signal says so).
MAX_TOKENS = 1_000_000
# The peak resident memory, in MiB, of a process that inspects the largest accepted text (core.media.MAX_TEXT_BYTES)
# with the built-in models: the prefix is read in windows and scored in chunks (``synthguard bench text-memory``
# measures it against this bound).
TEXT_PEAK_MEMORY_BOUND_MB = 1024
CALIBRATION_CORPUS = "stdlib-docstrings"


def tokenizer_fingerprint(tokenizer) -> str:
    vocab = tokenizer.get_vocab()
    text = json.dumps(sorted(vocab.items(), key=lambda kv: kv[1])[:: max(1, len(vocab) // 4096)])
    return hashlib.sha256(f"{len(vocab)}:{text}".encode()).hexdigest()[:16]


NO_IDENTITY = "no SynthGuard identity on this machine: no text watermark key to test with"
WATERMARK_OFF = "the watermark test is turned off"


@dataclass
class TextChecks:
    """Everything needed to test texts: the tokenizing model, the identity's watermarkers, an optional scorer."""

    tm: object  # TextModel whose tokenizer re-tokenises the text (the generating model's)
    watermarkers: list[TextWatermarker]
    max_p_value: float = 1e-3
    scorer: object | None = None  # TextModel for the machine-text criterion
    scorer_calibration: MachineTextCalibration | None = None
    # Why the watermark test does not run when there is no key to test with.
    watermark_skipped: str = NO_IDENTITY

    @classmethod
    def create(cls, tm, secret: bytes | None, cache: Path | None, *, scorer=None, max_p_value: float = 1e-3,
               schemes: tuple[str, ...] | None = None, watermark_skipped: str = NO_IDENTITY) -> TextChecks:
        """``schemes``: the text watermark schemes to test for (None: every one)."""
        # The text watermarks import torch: only an inspection of a text pays for it.
        from synthguard.watermark.text import SCHEMES, make_watermarker  # noqa: PLC0415

        schemes = tuple(SCHEMES) if schemes is None else schemes
        watermarkers = []
        if secret is not None:
            for scheme in schemes:
                wm = make_watermarker(scheme, secret, max_p_value=max_p_value)
                if hasattr(wm, "bind_vocab"):
                    wm.bind_vocab(tm.vocab_size)
                _calibrate_key(wm, tm, cache)
                watermarkers.append(wm)
        checks = cls(tm, watermarkers, max_p_value, scorer, watermark_skipped=watermark_skipped)
        if scorer is not None:
            checks.scorer_calibration = _calibrate_scorer(scorer, cache)
        return checks

    def score(self, text: str) -> tuple[TextWatermarkSignal, MachineTextSignal | None]:
        if not text.strip():
            raise InputError("empty text: nothing to test")
        if not self.watermarkers:
            wm = TextWatermarkSignal(False, "text", skipped=self.watermark_skipped)
        else:
            wm = self._watermark(text)
        machine = None
        if self.scorer is not None:
            machine = score_machine_text(self.scorer, text, self.scorer_calibration)
        return wm, machine

    def _watermark(self, text: str) -> TextWatermarkSignal:
        from synthguard.watermark.text import detect_windows  # noqa: PLC0415 (imports torch: texts only)
        from synthguard.watermark.text.windows import encode_prefix  # noqa: PLC0415 (imports torch: texts only)

        prefix = encode_prefix(self.tm, text, MAX_TOKENS)
        ids, offsets, note = prefix.ids, prefix.offsets, prefix.describe_cut()
        if prefix.unverified_joins:
            note = "; ".join(x for x in (note, f"the tokens at {prefix.unverified_joins} places where the text was "
                                               "read in parts may differ from reading it whole") if x)
        results = [detect_windows(wm, ids, offsets) for wm in self.watermarkers]
        best = min(results, key=lambda r: r.p_value)
        # One test per scheme: a union bound over them.
        p = min(1.0, best.p_value * len(results))
        detected = p <= self.max_p_value
        return TextWatermarkSignal(
            detected, best.algorithm, p, True if detected else None, tokenizer_model=self.tm.name,
            key_id=best.key_id, z=best.z, score=best.score, null_rate=best.null_rate, tokens_scored=best.tokens_scored,
            tokens=len(ids), span=tuple(best.span) if best.span else None, windows_tested=best.windows_tested,
            schemes_tested=tuple(w.algorithm_id for w in self.watermarkers), max_p_value=self.max_p_value,
            note="; ".join(x for x in (note, best.note) if x) or None)


def _cached(cache: Path | None, name: str, load, measure, dump):
    """A calibration read from ``cache/name.json`` when there and intact, else measured and written there."""
    path = None if cache is None else cache / f"{name}.json"
    if path is not None and path.is_file():
        try:
            return load(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            pass  # a damaged cache entry is measured again
    calibration = measure()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(dump(calibration)).encode())
    return calibration


def _calibrate_key(wm: TextWatermarker, tm, cache: Path | None) -> None:
    from synthguard.watermark.text import KeyCalibration  # noqa: PLC0415 (imports torch: texts only)
    from synthguard.watermark.text.human import load_corpus  # noqa: PLC0415 (imports torch: texts only)

    settings = json.dumps(wm.settings(), sort_keys=True)
    name = hashlib.sha256(f"{settings}|{tokenizer_fingerprint(tm.tokenizer)}".encode()).hexdigest()[:24]

    def measure() -> KeyCalibration:
        windows = [tm.encode(w)[:200] for w in load_corpus(CALIBRATION_CORPUS, words=160, limit=400)]
        return wm.calibrate([w for w in windows if len(w) >= 50], corpus=CALIBRATION_CORPUS)

    wm.calibration = _cached(cache, f"key-{name}", lambda d: KeyCalibration(**d), measure, lambda c: c.__dict__)


def _calibrate_scorer(scorer, cache: Path | None) -> MachineTextCalibration:
    from synthguard.watermark.text.human import load_corpus  # noqa: PLC0415 (imports torch: texts only)

    name = hashlib.sha256(f"{scorer.name}|{tokenizer_fingerprint(scorer.tokenizer)}".encode()).hexdigest()[:24]
    return _cached(cache, f"scorer-{name}", lambda d: MachineTextCalibration(**d),
                   lambda: calibrate(scorer, load_corpus(CALIBRATION_CORPUS, words=120, limit=300),
                                     corpus=CALIBRATION_CORPUS),
                   lambda c: c.to_dict())


def text_checks_for_home(home, text_model: str = "builtin", *, scorer: str | None = None, watermark: bool = True,
                         max_p_value: float = 1e-3) -> TextChecks:
    """Text tests for this SynthGuard home: its identity's watermark keys (none without an identity: the signal then
    says so) under ``text_model``'s tokenizer, and the machine-text score under ``scorer`` when named."""
    from synthguard.models.text import load_text_model  # noqa: PLC0415
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415

    tm = load_text_model(text_model, device="cpu")
    store = IdentityStore(home)
    secret = store.load().text_watermark_secret() if watermark and store.exists() else None
    scoring = None
    if scorer:
        scoring = tm if scorer == text_model else load_text_model(scorer, device="cpu")
    return TextChecks.create(tm, secret, home.root / "text-calibration", scorer=scoring, max_p_value=max_p_value,
                             watermark_skipped=NO_IDENTITY if watermark else WATERMARK_OFF)
