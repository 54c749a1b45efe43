"""Policies: a desk's written rules as a YAML file, validated on load (unknown keys are errors, named).

A policy says whose signatures count as *trusted* (anchors, and optionally which signers), which trusted signers
may vouch for a capture (``trust.capture_signers``: a capture claim from any other signer is not an authentic
capture), which declared source types need an AI label, which detection tests run and at what thresholds, what each
verdict means for the desk (``publish``, ``label-ai``, ``human-review``, ``reject``) and what the audit log
records.
``policies/default.yaml`` is the file form of :data:`DEFAULT_POLICY`; ``policies/newsroom-*.yaml`` and
``platform-labeling.yaml`` are worked examples. ``synthguard policy check|explain FILE``.

This module is the rules as data; ``synthguard.detect.rules`` applies them to an inspection's signals.
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from synthguard.errors import InputError
from synthguard.provenance.manifest import DigitalSourceType
from synthguard.provenance.trustlist import TrustList


class DeskAction(str, Enum):
    PUBLISH = "publish"
    LABEL_AI = "label-ai"
    HUMAN_REVIEW = "human-review"
    REJECT = "reject"


class TrustRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    own_identity: bool = Field(True, description="trust manifests signed by this machine's SynthGuard identity")
    c2pa_trust_list: bool = Field(True, description="trust signers whose chains end at a certificate of the official "
                                                    "C2PA Trust List (the snapshot that ships with SynthGuard, or a "
                                                    "newer one installed with `synthguard keys trust-list update`)")
    home_anchors: bool = Field(True, description="trust the anchors added with `synthguard keys add-trust`")
    anchors: tuple[str, ...] = Field((), description="PEM files of root certificates to trust, relative to the "
                                                     "policy file")
    signers: tuple[str, ...] = Field((), description="if not empty, only these signers count as trusted (the "
                                                     "certificate's common name or organisation; * and ? wildcards)")
    capture_signers: tuple[str, ...] = Field(
        (), description="the trusted signers whose capture claims (digitalCapture, film, print...) make an "
                        "authentic capture, matched like `signers`; empty: no signer's capture claim does")


class LabelingRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ai_source_types: tuple[str, ...] = Field(
        ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"),
        description="IPTC digital source types (terms or URIs) that make content AI-generated for this desk")

    @field_validator("ai_source_types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(DigitalSourceType.parse(v).code for v in value)  # ValueError names the unknown type


class DetectionRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    watermark: bool = Field(True, description="test images and audio for SynthGuard's watermark")
    watermark_max_p_value: float = Field(1e-6, gt=0.0, le=1e-6, description="a watermark counts as found only "
                                                                           "below this p-value (1e-6 or stricter)")
    text_watermark_max_p_value: float = Field(1e-3, gt=0.0, le=1e-2, description="a text watermark counts as found "
                                                                                "only at or below this p-value")
    sd_marks: bool = Field(True, description="read the Stable Diffusion 1.x / 2.x / XL invisible marks (unsigned "
                                             "declarations: they give ai-declared, never ai-generated)")
    classifier: bool = Field(True, description="score images with the synthetic-image classifier")
    classifier_threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="P(synthetic) at or above which an image without trusted provenance is "
                                          "labelled likely-synthetic; null: the detector's calibrated threshold "
                                          "(about 1% false positives on held-out real images)")


class ActionRules(BaseModel):
    """What each verdict label (and an unreadable file) means for the desk."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    ai_generated: DeskAction = Field(DeskAction.LABEL_AI, alias="ai-generated")
    ai_declared: DeskAction = Field(DeskAction.LABEL_AI, alias="ai-declared",
                                    description="something declares AI (an unsigned watermark), nothing proves it")
    likely_synthetic: DeskAction = Field(DeskAction.HUMAN_REVIEW, alias="likely-synthetic")
    tampered: DeskAction = Field(DeskAction.REJECT)
    authentic_capture: DeskAction = Field(DeskAction.PUBLISH, alias="authentic-capture")
    edited: DeskAction = Field(DeskAction.HUMAN_REVIEW)
    unknown: DeskAction = Field(DeskAction.HUMAN_REVIEW)
    error: DeskAction = Field(DeskAction.REJECT, description="a file that cannot be read or verified")

    def for_label(self, label: str) -> DeskAction:
        return getattr(self, label.replace("-", "_"))


class AuditRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    record: bool = Field(True, description="append every verification to the audit log")
    reasons: bool = Field(True, description="store the verdict's reasons with each entry")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(1, ge=1, le=1)
    name: str = "default"
    description: str = ""
    trust: TrustRules = TrustRules()
    labeling: LabelingRules = LabelingRules()
    detection: DetectionRules = DetectionRules()
    actions: ActionRules = ActionRules()
    audit: AuditRules = AuditRules()
    resolvers: tuple[str, ...] = Field((), description="C2PA Soft Binding Resolution API URLs asked for the manifest "
                                                           "of a watermarked file that carries none")
    # Folder the policy was loaded from (relative anchor paths resolve against it); not part of the file.
    base_dir: Path | None = Field(None, exclude=True)

    @field_validator("resolvers")
    @classmethod
    def _resolver_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return tuple(dict.fromkeys(value))

    def anchor_files(self) -> tuple[Path, ...]:
        """The trust anchor PEM files the policy names, resolved against its folder (else the working folder)."""
        base = self.base_dir or Path.cwd()
        return tuple(base / a for a in self.trust.anchors)

    @property
    def sha256(self) -> str:
        """Hash of the policy's meaning (canonical JSON of every rule, comments and layout aside)."""
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def explain(self, trust_list: TrustList | None = None, tsa_list: TrustList | None = None) -> str:
        """The policy in plain words; ``trust_list`` / ``tsa_list``: the C2PA lists in force on this machine (their
        issue dates and sizes are named)."""
        t, d, a = self.trust, self.detection, self.actions
        anchors = []
        if t.c2pa_trust_list:
            anchors.append("the C2PA Trust List" + (f" ({trust_list.summary()})" if trust_list else ""))
        if t.own_identity:
            anchors.append("this machine's own SynthGuard identity")
        if t.home_anchors:
            anchors.append("the roots added with `synthguard keys add-trust`")
        anchors += [f"the root certificate in {x}" for x in t.anchors]
        lines = [f"Policy {self.name!r} (sha256 {self.sha256[:16]}...)" + (f": {self.description}" if
                                                                           self.description else ""), "",
                 "Trust: a manifest counts as trusted when it is intact and its signer chains to "
                 + (", ".join(anchors) or "nothing (no manifest is ever trusted)") + "."]
        if not t.c2pa_trust_list:
            lines.append("The C2PA Trust List does not count (trust.c2pa_trust_list: false): signers certified by "
                         "the C2PA conformance programme read as unverified unless one of the anchors above covers "
                         "them.")
        if tsa_list is not None:
            lines.append(f"Time-stamps are checked against the {tsa_list.summary()}; an untrusted time-stamp is "
                         "reported, and the signing time it gives is then only the signer's claim.")
        if t.signers:
            lines.append("Only these signers count as trusted: " + ", ".join(t.signers) + "; any other is read as "
                         "an unverified claim.")
        if t.capture_signers:
            lines.append("A trusted manifest's capture claim (camera, film, scan) makes an authentic capture only "
                         "from: " + ", ".join(t.capture_signers) + "; from any other signer it settles nothing.")
        else:
            lines.append("No signer is named as a capture source (trust.capture_signers): a capture claim never "
                         "makes an authentic capture, whoever signed it.")
        if self.resolvers:
            lines.append("A watermarked file without a manifest is looked up at these Soft Binding Resolution "
                         "repositories: " + ", ".join(self.resolvers) + "; what they return is validated here like "
                         "a local manifest, and a repository that fails is reported, never trusted.")
        lines.append("A trusted manifest means AI-generated content when it declares: "
                     + ", ".join(self.labeling.ai_source_types) + ".")
        tests = []
        if d.watermark:
            tests.append(f"SynthGuard's watermark (images and audio: counted when p < {d.watermark_max_p_value:g}; "
                         f"texts: your identity's text watermark, counted when p <= {d.text_watermark_max_p_value:g})")
        if d.classifier:
            tests.append("the synthetic-image classifier (threshold: "
                         + ("the detector's calibrated one, about 1% false positives on real photos" if
                            d.classifier_threshold is None else f"P(synthetic) >= {d.classifier_threshold:g}")
                         + ")")
        lines.append("Images are tested for " + (" and ".join(tests) if tests else "nothing beyond provenance") + ".")
        if d.sd_marks:
            lines.append("Images are read for the Stable Diffusion invisible marks (dwtDct); one found gives "
                         "ai-declared: anyone can write or strip it.")
        if d.watermark:
            lines.append("An image watermark whose AI bit is set, with no trusted manifest behind it, gives "
                         "ai-declared: anyone with SynthGuard can embed that mark.")
        lines.append("")
        lines.append("Desk actions:")
        for label in ("ai-generated", "ai-declared", "likely-synthetic", "tampered", "authentic-capture", "edited",
                      "unknown", "error"):
            lines.append(f"  {label:18} -> {a.for_label(label).value}")
        lines.append("")
        lines.append("Audit: " + ("every verification is appended to the audit log" + (
            ", with its reasons" if self.audit.reasons else "") if self.audit.record else "nothing is recorded") + ".")
        return "\n".join(lines)


DEFAULT_POLICY = Policy(description="Trust this machine's own SynthGuard identity and the anchors added with "
                                    "`synthguard keys add-trust`; nothing else.")


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return DEFAULT_POLICY
    import yaml  # noqa: PLC0415 (only a policy file pays the parser's import; the default policy is data)

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"policy {path}: cannot read ({exc.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"policy {path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise InputError(f"policy {path}: expected a mapping of keys at the top level")
    try:
        return Policy.model_validate({**data, "base_dir": path.parent})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise InputError(f"policy {path}: {problems}") from None


def check_policy(path: Path) -> Policy:
    """``load_policy``, and every trust anchor file it names must exist."""
    policy = load_policy(path)
    missing = [str(a) for a, f in zip(policy.trust.anchors, policy.anchor_files(), strict=True) if not f.is_file()]
    if missing:
        raise InputError(f"policy {path}: trust.anchors: file(s) not found: {', '.join(missing)}")
    return policy
