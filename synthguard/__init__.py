"""SynthGuard: watermark and sign what you generate, verify what you receive.

The public API, loaded on first use (``import synthguard`` imports neither torch nor c2pa)::

    import synthguard as sg

    home = sg.Home.from_env()
    with sg.Stamper.from_home(home) as stamper:                      # the identity, the ledger, the watermark
        stamper.stamp_file("render.png", "render-signed.png", sg.ManifestSpec(title="render"))
    with sg.InspectionContext.build(home) as context:                # policy, trust, ledger, detectors
        print(sg.inspect_file("render-signed.png", context).verdict.label)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that owns it
_EXPORTS = {
    # errors
    "SynthGuardError": "synthguard.errors", "InputError": "synthguard.errors", "IdentityError": "synthguard.errors",
    "ProvenanceError": "synthguard.errors", "WatermarkError": "synthguard.errors", "LedgerError": "synthguard.errors",
    "Hint": "synthguard.errors",
    # state on disk
    "Home": "synthguard.core.home", "procedural_image": "synthguard.core.samples",
    # provenance
    "IdentityStore": "synthguard.provenance.identity", "ManifestSpec": "synthguard.provenance.manifest",
    "ModelInfo": "synthguard.provenance.manifest", "DigitalSourceType": "synthguard.provenance.manifest",
    # stamping: watermark + sign + ledger
    "Stamper": "synthguard.stamp", "StampResult": "synthguard.stamp", "stamp_copy": "synthguard.stamp",
    "mark_file": "synthguard.stamp",
    # generation
    "ImageRequest": "synthguard.generate.runs", "InterpolationRequest": "synthguard.generate.runs",
    "generate_images": "synthguard.generate.runs", "interpolate_images": "synthguard.generate.runs",
    "TextRequest": "synthguard.generate.text", "generate_texts": "synthguard.generate.text",
    "AugmentRequest": "synthguard.generate.augment", "augment_dataset": "synthguard.generate.augment",
    "TextVAERequest": "synthguard.generate.text_vae", "generate_text_vae": "synthguard.generate.text_vae",
    "AudioRequest": "synthguard.generate.audio", "generate_audio": "synthguard.generate.audio",
    # verification
    "InspectionContext": "synthguard.detect.context", "Inspection": "synthguard.detect.context",
    "inspect_file": "synthguard.detect.context", "Verdict": "synthguard.detect.fusion",
    "VerdictLabel": "synthguard.detect.fusion",
    "Policy": "synthguard.policy", "load_policy": "synthguard.policy",
    "VerifySettings": "synthguard.desk.batch", "VerifyLine": "synthguard.desk.batch",
    "VerifyRun": "synthguard.desk.batch", "verify_paths": "synthguard.desk.batch:verify",
}

__all__ = ["__version__", "AudioRequest", "AugmentRequest", "DigitalSourceType", "Hint", "Home", "IdentityError",
           "IdentityStore", "ImageRequest", "InputError", "Inspection", "InspectionContext", "InterpolationRequest",
           "LedgerError", "ManifestSpec", "ModelInfo", "Policy", "ProvenanceError", "StampResult", "Stamper",
           "SynthGuardError", "TextRequest", "TextVAERequest", "Verdict", "VerdictLabel", "VerifyLine", "VerifyRun",
           "VerifySettings", "WatermarkError", "augment_dataset", "generate_audio", "generate_images",
           "generate_text_vae", "generate_texts", "inspect_file", "interpolate_images", "load_policy", "mark_file",
           "procedural_image", "stamp_copy", "verify_paths"]


def __getattr__(name: str):
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'synthguard' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from synthguard.core.home import Home
    from synthguard.core.samples import procedural_image
    from synthguard.desk.batch import VerifyLine, VerifyRun, VerifySettings
    from synthguard.desk.batch import verify as verify_paths
    from synthguard.detect.context import Inspection, InspectionContext, inspect_file
    from synthguard.detect.fusion import Verdict, VerdictLabel
    from synthguard.errors import (
        Hint,
        IdentityError,
        InputError,
        LedgerError,
        ProvenanceError,
        SynthGuardError,
        WatermarkError,
    )
    from synthguard.generate.audio import AudioRequest, generate_audio
    from synthguard.generate.augment import AugmentRequest, augment_dataset
    from synthguard.generate.runs import ImageRequest, InterpolationRequest, generate_images, interpolate_images
    from synthguard.generate.text import TextRequest, generate_texts
    from synthguard.generate.text_vae import TextVAERequest, generate_text_vae
    from synthguard.policy import Policy, load_policy
    from synthguard.provenance.identity import IdentityStore
    from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec, ModelInfo
    from synthguard.stamp import Stamper, StampResult, mark_file, stamp_copy
