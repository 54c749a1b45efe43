"""The signals of an inspection as typed values, each with its two renderings: ``to_dict()`` (the fields of
``detect --json`` and of a ``verify`` line) and ``describe()`` (the human lines). Every renderer prints
``describe()``: the verdict's reasons (``fusion``), the CLI summary, the HTML report, the web desk and
``watermark detect``; so a signal is worded in one place. ``from_dict`` reads a signal back from its JSON form (a
``verify`` line of an earlier run, for a resumed run's report).

The provenance signal is ``provenance.reading.ProvenanceSignal``; its rendering is here (``describe_provenance``),
beside the other signals'.

One module for all signals: they are small, renderers use them together, and ``Findings`` puts them side by side.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

import numpy as np

from synthguard.provenance.chain import RenderedDetails
from synthguard.provenance.identity import TrustSource
from synthguard.provenance.manifest import DigitalSourceType
from synthguard.provenance.reading import ActionRecord, ProvenanceSignal, ProvenanceState
from synthguard.provenance.validation import classify, explain


@dataclass(frozen=True)
class PayloadWatermarkSignal:
    """Is one of SynthGuard's payload watermarks (the image mark, the audio mark) in this content, what does its
    payload say, how sure. Both are public and unkeyed: anyone with SynthGuard can read them, and write them, so the
    fusion table treats every payload mark alike (``ImageWatermarkSignal``, ``AudioWatermarkSignal``)."""

    detected: bool
    algorithm: str
    payload: str | None = None  # hex
    p_value: float = 1.0  # chance that unmarked content decodes this well (the detector's own bound)
    bit_errors: int | None = None
    ai_declared: bool | None = None  # the payload's AI bit (SynthGuard payload layout)
    skipped: str | None = None  # why the content could not be tested (too small, too short, ...)

    _MEDIUM: ClassVar[str] = ""  # the word before "watermark" in the lines ("" for images, as they always read)

    def to_dict(self) -> dict:
        return {**asdict(self), "details": None}

    @classmethod
    def from_dict(cls, data: dict) -> PayloadWatermarkSignal:
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    def describe(self) -> tuple[str, ...]:
        mark = f"SynthGuard {self._MEDIUM}watermark"
        if self.skipped:
            return (f"{self._MEDIUM}watermark not tested: {self.skipped}",)
        if not self.detected:
            return (f"no {mark} found ({self.algorithm})",)
        return (f"{mark} found ({self.algorithm}, payload {self.payload}, p={self.p_value:.1e}{self._where()})"
                + ("; its payload declares AI-generated content" if self.ai_declared else ""),)

    def _where(self) -> str:
        return ""


@dataclass(frozen=True)
class ImageWatermarkSignal(PayloadWatermarkSignal):
    """SynthGuard's image watermark in decoded pixels."""


@dataclass(frozen=True)
class AudioWatermarkSignal(PayloadWatermarkSignal):
    """SynthGuard's audio watermark in decoded samples, and where the detector found it, when its result says: the
    time in the clip where the mark's block it locked on starts (a clip cut out of a longer one starts in mid-mark)
    and the playback speed it undid (1.0: none). None: the detector does not report it."""

    offset_seconds: float | None = None
    speed: float | None = None

    _MEDIUM: ClassVar[str] = "audio "
    _DETAILS: ClassVar[tuple[str, ...]] = ("offset_seconds", "speed")

    def to_dict(self) -> dict:
        base = {f.name: getattr(self, f.name) for f in fields(PayloadWatermarkSignal)}
        return {**base, "details": {"kind": "audio", **{name: getattr(self, name) for name in self._DETAILS}}}

    @classmethod
    def from_dict(cls, data: dict) -> AudioWatermarkSignal:
        details = dict(data.get("details") or {})
        details.pop("kind", None)
        return cls(**{f.name: data[f.name] for f in fields(PayloadWatermarkSignal)},
                   **{name: details.get(name) for name in cls._DETAILS})

    def _where(self) -> str:
        parts = []
        if self.offset_seconds is not None:
            parts.append(f"from {self.offset_seconds:.2f} s")
        if self.speed is not None and abs(self.speed - 1.0) >= 5e-4:
            parts.append(f"at {100 * (self.speed - 1.0):+.1f}% speed")
        return "".join(f", {part}" for part in parts)


@dataclass(frozen=True)
class TextWatermarkSignal:
    """This identity's text watermark: the best of the schemes tested (each on the whole text and on windows of it,
    so a marked passage inside a longer document is found and located)."""

    detected: bool
    algorithm: str  # the scheme with the lowest p-value; "text" when nothing was tested
    p_value: float = 1.0  # that scheme's p-value times the number of schemes (a union bound over them)
    ai_declared: bool | None = None  # True when found: an identity marks only what it generated
    skipped: str | None = None  # why the text could not be tested (no identity, ...)
    tokenizer_model: str | None = None  # the model whose tokenizer re-read the text
    key_id: str | None = None
    z: float | None = None
    score: float | None = None
    null_rate: float | None = None
    tokens_scored: int = 0
    tokens: int = 0
    span: tuple[int, int] | None = None  # characters of the best window, when one beat the whole text
    windows_tested: int = 0
    schemes_tested: tuple[str, ...] = ()
    max_p_value: float | None = None  # found means p-value at or below this
    note: str | None = None

    _DETAILS: ClassVar[tuple[str, ...]] = ("tokenizer_model", "key_id", "z", "score", "null_rate", "tokens_scored",
                                           "tokens", "span", "windows_tested", "schemes_tested", "max_p_value",
                                           "note")

    def to_dict(self) -> dict:
        details = None
        if self.skipped is None:
            details = {"kind": "text", **{name: getattr(self, name) for name in self._DETAILS}}
            details["span"] = list(self.span) if self.span else None
            details["schemes_tested"] = list(self.schemes_tested)
        return {"detected": self.detected, "algorithm": self.algorithm, "payload": None, "p_value": self.p_value,
                "bit_errors": None, "ai_declared": self.ai_declared, "skipped": self.skipped, "details": details}

    @classmethod
    def from_dict(cls, data: dict) -> TextWatermarkSignal:
        details = dict(data.get("details") or {})
        details.pop("kind", None)
        if details.get("span"):
            details["span"] = tuple(details["span"])
        details["schemes_tested"] = tuple(details.get("schemes_tested") or ())
        return cls(data["detected"], data["algorithm"], data["p_value"], data["ai_declared"], data["skipped"],
                   **details)

    def describe(self) -> tuple[str, ...]:
        if self.skipped:
            return (f"watermark not tested: {self.skipped}",)
        where = f", characters {self.span[0]}-{self.span[1]}" if self.span else ""
        note = f"; {self.note}" if self.note else ""
        return (f"text watermark of this identity {'found' if self.detected else 'not found'} ({self.algorithm}, "
                f"best of {', '.join(self.schemes_tested)}: {self.tokens_scored} of {self.tokens} tokens scored, "
                f"z={self.z:.2f}, p={self.p_value:.1e}, key {self.key_id}{where}{note})",)


WatermarkSignal = ImageWatermarkSignal | AudioWatermarkSignal | TextWatermarkSignal


def watermark_from_dict(data: dict | None) -> WatermarkSignal | None:
    """A watermark signal from its JSON form (a text or audio one names its kind in ``details``; a text one that
    was never tested has the algorithm "text"; an image one has no details)."""
    if data is None:
        return None
    kind = (data.get("details") or {}).get("kind")
    if kind == "audio":
        return AudioWatermarkSignal.from_dict(data)
    text = kind == "text" or data["algorithm"] == "text"
    return (TextWatermarkSignal if text else ImageWatermarkSignal).from_dict(data)


@dataclass(frozen=True)
class ClassifierSignal:
    """How likely a discriminator finds an image synthetic, and where. ``probability`` is the calibrated
    P(synthetic); ``threshold`` the decision threshold in force (the policy's, or the detector's own, chosen for
    ``threshold_fpr`` on held-out real images); ``synthetic`` the call."""

    model: str
    probability: float | None = None
    threshold: float | None = None
    threshold_fpr: float | None = None  # measured FPR of the detector's own threshold on held-out real images
    synthetic: bool = False
    patches: int = 0
    heatmap: np.ndarray | None = field(default=None, repr=False, compare=False)  # (rows, cols) P per patch
    skipped: str | None = None

    def to_dict(self) -> dict:
        return {"model": self.model, "probability": self.probability, "threshold": self.threshold,
                "threshold_fpr": self.threshold_fpr, "synthetic": self.synthetic, "patches": self.patches,
                "heatmap": None if self.heatmap is None else np.round(self.heatmap, 3).tolist(),
                "skipped": self.skipped}

    @classmethod
    def from_dict(cls, data: dict | None) -> ClassifierSignal | None:
        if data is None:
            return None
        values = {f.name: data[f.name] for f in fields(cls)}
        if values["heatmap"] is not None:
            values["heatmap"] = np.asarray(values["heatmap"], dtype=np.float64)
        return cls(**values)

    def describe(self) -> tuple[str, ...]:
        if self.skipped:
            return (f"classifier not run: {self.skipped}",)
        rate = (f", {100 * self.threshold_fpr:.1f}% of held-out real images score that high"
                if self.threshold_fpr is not None else " (the policy's threshold)")
        if self.synthetic:
            return (f"classifier {self.model}: P(synthetic) {self.probability:.3f} >= threshold "
                    f"{self.threshold:.3f}{rate}; a statistical signal, not proof",)
        return (f"classifier {self.model}: P(synthetic) {self.probability:.3f} < threshold {self.threshold:.3f}: "
                "no sign of synthesis it was trained to see (not evidence of authenticity)",)


# What an inspection of images runs and an audio file does not get: they read pixels. Listed on every audio file's
# findings, so a reader sees they were not run, not that they found nothing.
AUDIO_NOT_APPLICABLE = ("the synthetic-image classifier", "the Stable Diffusion invisible marks",
                        "image metadata declarations", "image forensics")


@dataclass(frozen=True)
class AudioSignal:
    """An audio file as decoded: its format (``core.audio.AudioFormat``: wav, flac, mp3, opus, vorbis, m4a), codec
    (``core.audio.AudioInfo.codec``: "pcm_16", "flac", "mp3", "opus", "aac", ...), sample rate, channels, frames and
    duration as decoded, the bit rate its header declares (or its size over its duration); and the image tests that
    do not apply to it."""

    format: str
    codec: str | None
    rate: int
    channels: int
    frames: int
    seconds: float
    bitrate: int | None = None  # bits per second, all channels together
    not_applicable: tuple[str, ...] = AUDIO_NOT_APPLICABLE

    def to_dict(self) -> dict:
        return {**asdict(self), "not_applicable": list(self.not_applicable)}

    @classmethod
    def from_dict(cls, data: dict | None) -> AudioSignal | None:
        if data is None:
            return None
        values = {f.name: data[f.name] for f in fields(cls)}
        values["not_applicable"] = tuple(values["not_applicable"])
        return cls(**values)

    def describe(self) -> tuple[str, ...]:
        codec = f" ({self.codec})" if self.codec else ""
        channels = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        rate = f", {round(self.bitrate / 1000)} kbps" if self.bitrate else ""
        lines = [f"audio: {self.format.upper()}{codec}, {self.rate} Hz {channels}, {self.seconds:.2f} s{rate}"]
        if self.not_applicable:
            lines.append(f"not applicable to audio: {', '.join(self.not_applicable)} (image tests: not run, not "
                         "evidence either way)")
        return tuple(lines)


# The machine-text score reads at most a text's first this-many tokens (bounded work; the signal says so).
MACHINE_TEXT_MAX_TOKENS = 2048


@dataclass(frozen=True)
class MachineTextSignal:
    """The machine-text criterion (``machine_text``) for one text, with its threshold and the measured rate of
    human text above it."""

    model: str
    score: float | None = None
    threshold: float | None = None
    threshold_fpr: float | None = None
    empirical_p: float | None = None  # share of human reference windows scoring at least this high (+1 smoothing)
    flagged: bool = False
    tokens: int = 0
    skipped: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> MachineTextSignal | None:
        return None if data is None else cls(**{f.name: data[f.name] for f in fields(cls)})

    def describe(self) -> tuple[str, ...]:
        if self.skipped:
            return (f"machine-text score not computed: {self.skipped}",)
        rate = f"{100 * self.threshold_fpr:.1f}% of held-out human reference windows score that high"
        scope = (f" on the first {self.tokens} tokens (the rest was not scored)"
                 if self.tokens >= MACHINE_TEXT_MAX_TOKENS else "")
        if self.flagged:
            return (f"machine-text score (Fast-DetectGPT criterion under {self.model}) {self.score:.2f} >= threshold "
                    f"{self.threshold:.2f}{scope} ({rate}); a statistical signal, not proof",)
        return (f"machine-text score (Fast-DetectGPT criterion under {self.model}) {self.score:.2f} < threshold "
                f"{self.threshold:.2f}{scope}: not flagged (not evidence of human authorship)",)


# ------------------------------------------------------------------------------------------------- provenance
def source_type_code(uri: str | None) -> str | None:
    """The IPTC term of a digital source type URI (the URI itself when it is not a known type)."""
    if not uri:
        return None
    try:
        return DigitalSourceType.parse(uri).code
    except ValueError:
        return uri


def provenance_claims(p: ProvenanceSignal) -> str:
    """Who signed the manifest and what it declares, in one phrase (the verdict's reasons quote it)."""
    parts = [f"signed by {p.signer or 'an unnamed signer'}" + (f" ({p.issuer})" if p.issuer else "")]
    if p.digital_source_type:
        parts.append(f"declares {source_type_code(p.digital_source_type)}")
    if p.model and p.model.get("name"):
        parts.append(f"model {p.model['name']}" + (f" {p.model['version']}" if p.model.get("version") else ""))
    return ", ".join(parts)


def describe_provenance(p: ProvenanceSignal) -> tuple[str, ...]:
    """The provenance signal as human lines: state, source and signer, then what the manifest declares (how a
    manifest was recovered from the ledger, the verdict's reasons say)."""
    first = f"provenance: {p.state.value}" + (f" ({p.source})" if p.source else "")
    if p.signer:
        first += f", signed by {p.signer}" + (f" / {p.issuer}" if p.issuer else "")
    if p.trust_source:
        first += f"; trusted via {TrustSource(p.trust_source).title}" + (f" ({p.trust_entity})" if p.trust_entity
                                                                        else "")
    lines = [first] + ([p.trust_list_stale] if p.trust_list_stale else [])
    if p.present or p.recovered_from_ledger:
        ai = {True: "yes", False: "no", None: "not declared"}[p.ai_generated]
        declared = source_type_code(p.digital_source_type) or "(no source type)"
        lines.append(f"declares: {declared}; AI-generated: {ai}")
        if p.actions:
            lines.append(f"actions: {', '.join(a.action for a in p.actions)}; ingredients: {p.ingredients}")
        if p.model:
            lines.append(f"model: {json.dumps(p.model, sort_keys=True)}")
        if p.failures:
            lines.append(f"failures: {', '.join(p.failures)}")
        lines += _ingredient_lines(p)
    if p.details is not None:
        lines += p.details.describe()
    lines += [f"resolver: {line}" for line in p.resolver_log]
    return tuple(lines)


def _ingredient_lines(p: ProvenanceSignal) -> list[str]:
    if not p.ingredient_failures:
        return []
    found = ", ".join(f"{code} ({classify(code).value})" for code in dict.fromkeys(p.ingredient_failures))
    return [f"ingredient manifests report: {found}; they concern the earlier assets this file was made from, not "
            "this file's own manifest"]


# The codes that say the claim's signer itself is not trusted here: the verdict's first reason says so.
SIGNER_NOT_TRUSTED = frozenset({"signingCredential.untrusted", "policy.signerNotListed"})


def describe_validation(p: ProvenanceSignal) -> tuple[str, ...]:
    """Why a manifest is not authenticated beyond its integrity, one line per kind of code (the verdict's
    reasons quote these): a credential that no longer holds, a time-stamp authority or named identity not on
    your lists, what could not be checked here, codes of no known kind, then what the ingredients' own manifests
    report (also a line of ``describe_provenance``). The integrity failures and an untrusted signer are the
    verdict's own first reason."""
    lines = []
    if p.credential_failures:
        codes = ", ".join(p.credential_failures)
        lines.append(f"the signature's credential no longer holds ({codes}); the content hashes match"
                     if not p.integrity_failures else f"the signature's credential no longer holds either ({codes})")
    lines += [f"{explain(code)}: what it vouches for is unverified"
              for code in p.trust_failures if code not in SIGNER_NOT_TRUSTED]
    if p.unchecked:
        lines.append(f"could not be checked here: {', '.join(explain(code) for code in p.unchecked)}")
    if p.unclassified:
        lines.append(f"validation codes of no known kind ({', '.join(p.unclassified)}): the manifest is not "
                     "authenticated, but they are not taken as proof of tampering")
    return (*lines, *_ingredient_lines(p))


def provenance_from_dict(data: dict | None) -> ProvenanceSignal | None:
    """``ProvenanceSignal.to_dict()`` read back (the store's details as their rendered lines and fields)."""
    if data is None:
        return None
    # A line written before these fields were recorded reads back without them.
    later = {"informational": (), "c2pa_state": None, "trust_source": None, "trust_anchor": None,
             "trust_entity": None, "trust_list_stale": None, "resolver_log": ()}
    values = {f.name: data.get(f.name, later[f.name]) if f.name in later else data[f.name]
              for f in fields(ProvenanceSignal) if f.name != "details"}
    values["state"] = ProvenanceState(values["state"])
    values["actions"] = tuple(ActionRecord(**a) for a in values["actions"])
    for name in ("failures", "ingredient_failures", "informational", "resolver_log"):
        values[name] = tuple(values[name])
    details = data.get("details")
    return ProvenanceSignal(**values, details=RenderedDetails(details) if details else None)


# ---------------------------------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class Findings:
    """What a renderer shows for one file: the evidence (the provenance's lines, then each signal's
    ``describe()``) and the verdict's reasons that are not already among them (a verdict quotes each signal's
    description in its reasons; shown once)."""

    evidence: tuple[str, ...]
    reasons: tuple[str, ...]

    @classmethod
    def of(cls, provenance: ProvenanceSignal | None, signals: tuple, reasons: tuple[str, ...]) -> Findings:
        lines = describe_provenance(provenance) if provenance is not None else ()
        for signal in signals:
            if signal is not None:
                lines += signal.describe()
        shown = set(lines)
        return cls(lines, tuple(r for r in reasons if r not in shown))
