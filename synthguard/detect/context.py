"""Inspecting a file: every signal, then one verdict (the ``inspect`` flow of ARCHITECTURE.md).

``InspectionContext.build`` is the one place an inspection is set up (policy, trust anchors, ledger, which tests
run); ``detect``, ``verify``, the web desk and a Python caller all make one and pass it to ``inspect_file`` for each
file. The models it needs (image and audio watermarkers, detector, text model) are loaded on first need, once.

    with InspectionContext.build(Home.from_env()) as context:
        print(inspect_file("photo.jpg", context).verdict.label)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from synthguard.core.home import Home
from synthguard.core.media import MediaKind, MediaType, decode_image, read_text, sniff
from synthguard.core.torch_utils import torch_threads
from synthguard.detect import rules
from synthguard.detect.fusion import Verdict, decide
from synthguard.detect.image import load_detector, score_classifier, score_watermark
from synthguard.detect.metadata import MetadataSignal, read_declarations
from synthguard.detect.sd_marks import SDMarkSignal, read_sd_marks
from synthguard.detect.signals import (
    AudioSignal,
    ClassifierSignal,
    Findings,
    MachineTextSignal,
    PayloadWatermarkSignal,
    TextWatermarkSignal,
    WatermarkSignal,
)
from synthguard.detect.text import TextChecks, text_checks_for_home
from synthguard.errors import InputError
from synthguard.provenance.identity import TrustAnchors
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.reading import (
    ProvenanceSignal,
    ProvenanceState,
    read_provenance,
    signal_from_ledger_record,
    signal_from_remote_manifest,
)
from synthguard.provenance.resolver import Resolver, look_up
from synthguard.watermark import ImageWatermarker, default_image_watermarker

if TYPE_CHECKING:
    from synthguard.core.audio import AudioClip
    from synthguard.policy import Policy
    from synthguard.watermark.audio.base import AudioWatermarker


@dataclass(frozen=True, eq=False)
class InspectionContext:
    """What every inspection of a run shares. Make it with :meth:`build`; close it (or use ``with``) to close the
    ledger it opened."""

    home: Home
    policy: Policy
    trust: TrustAnchors
    ledger: Ledger | None = None
    watermark: bool = True  # test images, audio and texts for SynthGuard's watermarks (and the policy says so)
    sd_marks: bool = True  # read images for the Stable Diffusion invisible marks (and the policy says so)
    classifier: bool = True  # score images with the detector (and the policy says so)
    detector_path: Path | None = None  # a detector folder; None: the built-in detector
    text_model: str = "builtin"  # the model whose tokenizer re-reads texts for the identity's text watermark
    text_scorer: str | None = None  # the model of the machine-text score; None: no score
    threads: int | None = None  # torch threads for the detector and text models; None: torch's choice
    # Soft Binding Resolution repositories asked for a watermarked file's manifest when neither the file nor the
    # local ledger has one (each caches its answers for the context's lifetime: one run).
    resolvers: tuple[Resolver, ...] = ()
    owns_ledger: bool = field(default=False, repr=False)
    device: str = "cpu"  # where the image detector runs: "cpu" (numpy, no torch), "cuda", "cuda:N", "mps", "auto"

    @classmethod
    def build(cls, home: Home, *, policy: Policy | None = None, trust: tuple[Path, ...] = (),
              ledger: bool | Ledger = True, watermark: bool = True, classifier: bool = True,
              detector: Path | None = None, text_model: str = "builtin", text_scorer: str | None = None,
              threads: int | None = None, resolvers: tuple[str, ...] = (), device: str = "cpu") -> InspectionContext:
        """The context for ``home`` under ``policy`` (None: the default policy). ``trust``: PEM files trusted on
        top of the policy's anchors; ``ledger``: look stripped copies up in the home's ledger (when it has one), or
        the open ledger to use; ``watermark`` / ``classifier`` False skip those tests (the policy can also turn
        them off); ``detector``: a detector folder instead of the built-in one; ``resolvers``: Soft Binding
        Resolution API URLs asked after the policy's own; ``device``: where the image detector runs (the CPU
        scores in numpy; another device uses the torch modules there). Models are loaded on first need, so a folder
        that exists but holds no detector fails on the first image."""
        if detector is not None and not Path(detector).is_dir():
            raise InputError(f"detector folder {detector} does not exist")
        policy = rules.in_force(policy)
        anchors = rules.trust_anchors(policy, home, tuple(Path(t) for t in trust))
        loc = Ledger.location_for(home)
        owns = ledger is True and loc.exists()
        opened = ledger if isinstance(ledger, Ledger) else (Ledger(loc) if owns else None)
        urls = tuple(dict.fromkeys((*policy.resolvers, *(str(u) for u in resolvers))))
        # A bad URL is refused here, before any file; a repository that wants a read token gets
        # SYNTHGUARD_RESOLVER_TOKEN (one token for all of them).
        token = os.environ.get("SYNTHGUARD_RESOLVER_TOKEN") or None
        remote = tuple(Resolver(url, token=token) for url in urls)
        return cls(home, policy, anchors, opened, watermark and policy.detection.watermark,
                   policy.detection.sd_marks, classifier and policy.detection.classifier,
                   None if detector is None else Path(detector), text_model, text_scorer, threads, remote, owns,
                   device)

    @cached_property
    def watermarker(self) -> ImageWatermarker | None:
        return default_image_watermarker() if self.watermark else None

    @cached_property
    def audio_watermarker(self) -> AudioWatermarker | None:
        """SynthGuard's audio watermark detector, made on the first audio file (None when watermarks are off)."""
        if not self.watermark:
            return None
        from synthguard.watermark.audio import default_audio_watermarker  # noqa: PLC0415 (audio files only)

        return default_audio_watermarker()

    @cached_property
    def detector(self):
        """The image detector, loaded on the first image (None when the classifier is off)."""
        return (load_detector(self.detector_path, num_threads=self.threads, device=self.device) if self.classifier
                else None)

    @cached_property
    def text_checks(self) -> TextChecks:
        """The text tests, made on the first text (loads the text model and measures or reads calibrations)."""
        with torch_threads(self.threads):
            return text_checks_for_home(self.home, self.text_model, scorer=self.text_scorer, watermark=self.watermark,
                                        max_p_value=self.policy.detection.text_watermark_max_p_value)

    def score_text(self, text: str) -> tuple[TextWatermarkSignal, MachineTextSignal | None]:
        checks = self.text_checks
        with torch_threads(self.threads):
            return checks.score(text)

    def close(self) -> None:
        if self.owns_ledger and self.ledger is not None:
            self.ledger.close()

    def __enter__(self) -> InspectionContext:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class Inspection:
    file: Path
    media: MediaType
    provenance: ProvenanceSignal
    watermark: WatermarkSignal | None
    verdict: Verdict
    classifier: ClassifierSignal | None = None
    machine_text: MachineTextSignal | None = None
    metadata: MetadataSignal | None = None  # unsigned declarations in the file's metadata (images)
    sd_marks: SDMarkSignal | None = None  # the Stable Diffusion invisible marks (images)
    pixels: np.ndarray | None = field(default=None, repr=False, compare=False)  # decoded RGB, when kept for a report
    audio: AudioSignal | None = None  # what an audio file holds (format, codec, rate, channels, duration)
    clip: AudioClip | None = field(default=None, repr=False, compare=False)  # decoded audio, when kept for a report

    def to_dict(self) -> dict:
        out = {"file": str(self.file), "mime": self.media.mime, "provenance": self.provenance.to_dict(),
               "watermark": self.watermark.to_dict() if self.watermark else None,
               "classifier": self.classifier.to_dict() if self.classifier else None,
               "machine_text": self.machine_text.to_dict() if self.machine_text else None,
               "metadata": self.metadata.to_dict() if self.metadata else None,
               "sd_marks": self.sd_marks.to_dict() if self.sd_marks else None,
               "verdict": self.verdict.to_dict()}
        if self.audio is not None:  # absent for images and texts: their JSON reads as it always did
            out["audio"] = self.audio.to_dict()
        return out

    def findings(self) -> Findings:
        return Findings.of(self.provenance, (self.audio, self.watermark, self.sd_marks, self.metadata,
                                             self.classifier, self.machine_text),
                           self.verdict.reasons)


def inspect_file(path: Path, context: InspectionContext, *, keep_pixels: bool = False,
                 file_sha256: str | None = None) -> Inspection:
    """All signals for one file and the verdict, under the context's policy. ``keep_pixels`` keeps the decoded
    image (or audio clip) on the result (for a report's pictures); ``file_sha256``: the sha256 of the file's bytes
    when the caller hashed them while reading (they are then not hashed again). A file that cannot be read (corrupt,
    truncated, over the pixel or audio budgets) raises ``InputError``."""
    path = Path(path)
    media = sniff(path)
    policy = context.policy
    content, watermark, classifier, pixels, machine, metadata, sd_marks = (None,) * 7
    audio, clip = None, None
    if media.kind is MediaKind.AUDIO:
        from synthguard.detect.audio import inspect_audio  # noqa: PLC0415 (decoders load for audio files only)

        # A corrupt, truncated or over-budget audio file is an input error, as a broken image is.
        found = inspect_audio(path, context.audio_watermarker)
        audio, content = found.info, found.content_sha256
        watermark = rules.apply_to_watermark(policy, found.watermark)
        clip = found.clip if keep_pixels else None
    elif media.kind is MediaKind.IMAGE:
        watermarker, detector = context.watermarker, context.detector
        # A corrupt, truncated or oversized image is an input error, not something to give a verdict on.
        decoded = decode_image(path, keep_rgb=watermarker is not None or detector is not None or keep_pixels
                               or context.sd_marks)
        content = decoded.content_sha256
        pixels = decoded.rgb if keep_pixels else None
        if watermarker is not None:
            watermark = rules.apply_to_watermark(policy, score_watermark(decoded.rgb, watermarker))
        if detector is not None:
            classifier = score_classifier(decoded.rgb, detector, policy.detection.classifier_threshold)
        if context.sd_marks:
            sd_marks = read_sd_marks(decoded.rgb)
        metadata = read_declarations(path, media=media)
    elif media.kind is MediaKind.TEXT:
        text = read_text(path)
        watermark, machine = context.score_text(text)
        watermark = rules.apply_to_watermark(policy, watermark)
    provenance = read_provenance(path, trust=context.trust, ledger=context.ledger, media=media,
                                 content_sha256=content, file_digest=file_sha256)
    if (provenance.state is ProvenanceState.ABSENT and isinstance(watermark, PayloadWatermarkSignal)
            and watermark.detected):
        if context.ledger is not None:
            provenance = _recover_by_watermark(watermark, content, context.ledger, context.trust) or provenance
        if provenance.state is ProvenanceState.ABSENT and context.resolvers:
            provenance = _recover_remotely(path, media, watermark, context, provenance)
    provenance = rules.apply_to_provenance(policy, provenance)
    verdict = decide(provenance, watermark, classifier, machine, metadata=metadata, sd_marks=sd_marks)
    return Inspection(path, media, provenance, watermark, verdict, classifier, machine, metadata, sd_marks, pixels,
                      audio, clip)


def _recover_remotely(path: Path, media: MediaType, watermark: PayloadWatermarkSignal, context: InspectionContext,
                      absent: ProvenanceSignal) -> ProvenanceSignal:
    """A watermark payload found, no manifest here or in the local ledger: the first manifest a resolver gives
    that validates and is bound to this payload; else the absence, with what each resolver answered."""
    lookup = look_up(context.resolvers, watermark.algorithm, bytes.fromhex(watermark.payload))
    log = list(lookup.describe())
    usable = []
    for remote in lookup.manifests:
        try:
            signal, why = signal_from_remote_manifest(path, media, remote.manifest, watermark.payload, context.trust,
                                                      remote.resolver)
        except Exception as exc:  # noqa: BLE001 (a repository's bytes, whatever they hold, never end the inspection)
            signal, why = None, (f"the manifest from {remote.resolver} cannot be read ({type(exc).__name__}): "
                                 "not used")
        log.append(why)
        if signal is not None:
            usable.append(signal)
    if not lookup.manifests and not lookup.failures:
        log.append("no resolver holds a manifest for this watermark payload")
    if not usable:
        return replace(absent, resolver_log=tuple(log))
    # The best-backed answer, whichever repository gave it: trusted before merely intact, bound to this content
    # before bound only to the payload (an earlier repository's weaker answer never hides a later one's).
    best = min(usable, key=lambda sig: (sig.state is not ProvenanceState.TRUSTED, sig.ledger_content_match is not True))
    if len(usable) > 1:
        log.append(f"{len(usable)} manifests validate; used the one from {best.remote_url} ({best.state.value})")
    return replace(best, resolver_log=tuple(log))


def _recover_by_watermark(watermark: PayloadWatermarkSignal, content_sha256: str | None, ledger: Ledger,
                          trust: TrustAnchors) -> ProvenanceSignal | None:
    """A watermark payload found, no manifest: the ledger's manifest for that payload, checked against this file."""
    records = ledger.find_by_soft_binding(bytes.fromhex(watermark.payload))
    if not records:
        return None
    record = records[0]
    signal = signal_from_ledger_record(record, "soft-binding", trust)
    return replace(signal, ledger_content_match=content_sha256 == record.content_sha256)
