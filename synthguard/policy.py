"""Policies: a desk's written rules as a YAML file, validated on load (unknown keys are errors, named).

It covers trust (whose signatures count as *trusted*) and detection (which tests run, the classifier's
threshold). Desk actions join it with the newsroom workflows. ``policies/default.yaml`` is the file form of :data:`DEFAULT_POLICY`.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthguard.errors import InputError
from synthguard.home import Home
from synthguard.provenance.identity import TrustAnchors


class TrustRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    own_identity: bool = Field(True, description="trust manifests signed by this machine's SynthGuard identity")
    home_anchors: bool = Field(True, description="trust the anchors added with `synthguard keys add-trust`")
    anchors: tuple[str, ...] = Field((), description="PEM files of root certificates to trust, relative to the "
                                                     "policy file")


class DetectionRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    watermark: bool = Field(True, description="test images for SynthGuard's watermark")
    classifier: bool = Field(True, description="score images with the synthetic-image classifier")
    classifier_threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="P(synthetic) at or above which an image without trusted provenance is "
                                          "labelled likely-synthetic; null: the detector's calibrated threshold "
                                          "(about 1% false positives on held-out real images)")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(1, ge=1, le=1)
    name: str = "default"
    description: str = ""
    trust: TrustRules = TrustRules()
    detection: DetectionRules = DetectionRules()
    # Folder the policy was loaded from (relative anchor paths resolve against it); not part of the file.
    base_dir: Path | None = Field(None, exclude=True)

    def trust_anchors(self, home: Home, extra: tuple[Path, ...] = ()) -> TrustAnchors:
        base = self.base_dir or Path.cwd()
        files = tuple(base / a for a in self.trust.anchors) + tuple(extra)
        return TrustAnchors.from_home(home, include_own=self.trust.own_identity,
                                      include_added=self.trust.home_anchors, extra=files)


DEFAULT_POLICY = Policy(description="Trust this machine's own SynthGuard identity and the anchors added with "
                                    "`synthguard keys add-trust`; nothing else.")


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return DEFAULT_POLICY
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
