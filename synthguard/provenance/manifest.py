"""C2PA manifest definitions built from typed values (never hand-written JSON at call sites).

What a SynthGuard manifest says:
- ``c2pa.actions.v2``: ``c2pa.created`` with the IPTC digital source type of the asset (or ``c2pa.opened`` of the
  parent ingredient + ``c2pa.edited`` when the input already carried a manifest), and ``c2pa.watermarked`` when an
  invisible watermark was embedded. With no source type declared, the manifest says none: c2pa requires one on
  ``c2pa.created``, so the input itself is the ``parentOf`` ingredient (no manifest of its own) and the action is
  ``c2pa.opened``;
- ``io.synthguard.model``: which model made it (name, version, config hash, seed, parameters) when known;
- ``cawg.training-mining``: whether the asset may be used for AI training / data mining / inference (default: not);
- ``c2pa.soft-binding``: the watermark algorithm and payload, so a copy stripped of its manifest can find it again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from synthguard import __version__

IPTC_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
MODEL_ASSERTION = "io.synthguard.model"
UNDECLARED_INPUT = "input"  # the ingredient label of the input, when the manifest declares no source type
CLAIM_GENERATOR = "synthguard"


class DigitalSourceType(str, Enum):
    """IPTC digital source types (https://cv.iptc.org/newscodes/digitalsourcetype/), stored as full URIs."""

    TRAINED_ALGORITHMIC_MEDIA = IPTC_PREFIX + "trainedAlgorithmicMedia"
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = IPTC_PREFIX + "compositeWithTrainedAlgorithmicMedia"
    ALGORITHMIC_MEDIA = IPTC_PREFIX + "algorithmicMedia"
    ALGORITHMICALLY_ENHANCED = IPTC_PREFIX + "algorithmicallyEnhanced"
    COMPOSITE_SYNTHETIC = IPTC_PREFIX + "compositeSynthetic"
    DATA_DRIVEN_MEDIA = IPTC_PREFIX + "dataDrivenMedia"
    DIGITAL_ART = IPTC_PREFIX + "digitalArt"
    DIGITAL_CREATION = IPTC_PREFIX + "digitalCreation"
    DIGITAL_CAPTURE = IPTC_PREFIX + "digitalCapture"
    COMPUTATIONAL_CAPTURE = IPTC_PREFIX + "computationalCapture"
    COMPOSITE_CAPTURE = IPTC_PREFIX + "compositeCapture"
    NEGATIVE_FILM = IPTC_PREFIX + "negativeFilm"
    POSITIVE_FILM = IPTC_PREFIX + "positiveFilm"
    PRINT = IPTC_PREFIX + "print"
    SCREEN_CAPTURE = IPTC_PREFIX + "screenCapture"
    VIRTUAL_RECORDING = IPTC_PREFIX + "virtualRecording"
    HUMAN_EDITS = IPTC_PREFIX + "humanEdits"
    MINOR_HUMAN_EDITS = IPTC_PREFIX + "minorHumanEdits"
    COMPOSITE = IPTC_PREFIX + "composite"

    @property
    def code(self) -> str:
        """The IPTC term, e.g. ``trainedAlgorithmicMedia``."""
        return self.value.rsplit("/", 1)[-1]

    @classmethod
    def parse(cls, value: str) -> DigitalSourceType:
        """Accept a full URI (http or https) or the bare IPTC term, case-insensitively."""
        term = value.strip().rstrip("/").rsplit("/", 1)[-1].lower()
        for member in cls:
            if member.code.lower() == term:
                return member
        raise ValueError(f"unknown digital source type {value!r} (known: {', '.join(m.code for m in cls)})")

    @property
    def is_generative_ai(self) -> bool:
        return self in AI_SOURCE_TYPES

    @property
    def is_capture(self) -> bool:
        return self in CAPTURE_SOURCE_TYPES


# Source types that declare generative-AI content. algorithmicMedia (made by an algorithm *not* trained on sampled
# data, e.g. procedural rendering) and algorithmicallyEnhanced (minor corrections) are deliberately not in this set.
AI_SOURCE_TYPES = frozenset({DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
                             DigitalSourceType.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA})
CAPTURE_SOURCE_TYPES = frozenset({DigitalSourceType.DIGITAL_CAPTURE, DigitalSourceType.COMPUTATIONAL_CAPTURE,
                                  DigitalSourceType.NEGATIVE_FILM, DigitalSourceType.POSITIVE_FILM,
                                  DigitalSourceType.PRINT, DigitalSourceType.COMPOSITE_CAPTURE})


def source_type_is_ai(uri: str | None) -> bool | None:
    """True/False for a known IPTC source type, None when absent or not an IPTC term."""
    if not uri:
        return None
    try:
        return DigitalSourceType.parse(uri).is_generative_ai
    except ValueError:
        return None


class TrainingMining(str, Enum):
    """CAWG training-and-data-mining permission, applied to every use the assertion lists."""

    ALLOWED = "allowed"
    NOT_ALLOWED = "notAllowed"
    CONSTRAINED = "constrained"


TRAINING_MINING_USES = ("cawg.ai_generative_training", "cawg.ai_training", "cawg.ai_inference",
                        "cawg.data_mining")


@dataclass(frozen=True)
class ModelInfo:
    """Which model produced the asset; recorded as the ``io.synthguard.model`` assertion."""

    name: str
    version: str | None = None
    config_hash: str | None = None
    seed: int | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def to_assertion_data(self) -> dict:
        data: dict[str, Any] = {"name": self.name}
        for key in ("version", "config_hash", "seed"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.parameters:
            data["parameters"] = _plain_json(dict(self.parameters))
        return data


def _plain_json(value: Any) -> Any:
    """``value`` with numpy scalars/arrays and tuples turned into plain JSON types (the assertion is CBOR-encoded
    from JSON: anything else would be mangled or refused)."""
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_plain_json(v) for v in value]
        if items and all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
            # c2pa-python 0.38 turns a flat array of numbers in a custom assertion into a CBOR byte string, which
            # reads back as lossy base64 ([256, 256] -> "AAA="); a JSON string keeps the values exactly.
            return json.dumps(items)
        return items
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _plain_json(value.tolist())
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclass(frozen=True)
class SoftBinding:
    """A watermark that carries ``value``, embedded by algorithm ``alg`` (e.g. ``io.synthguard.<name>.<version>``)."""

    alg: str
    value: bytes

    def to_assertion(self) -> dict:
        return {"label": "c2pa.soft-binding",
                "data": {"alg": self.alg,
                         "blocks": [{"scope": {}, "value": base64.b64encode(self.value).decode()}]}}


@dataclass(frozen=True)
class ManifestSpec:
    """Everything a SynthGuard manifest states about one asset."""

    title: str
    digital_source_type: DigitalSourceType | None = DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA  # None: not declared
    model: ModelInfo | None = None
    training_mining: TrainingMining = TrainingMining.NOT_ALLOWED
    soft_binding: SoftBinding | None = None

    def to_manifest(self, *, parent_ingredient: str | None = None) -> dict:
        """The manifest definition for ``c2pa.Builder``.

        ``parent_ingredient`` is the label of the input's own manifest, added as a ``parentOf`` ingredient; the
        actions then say the asset was opened from it and edited, instead of created.
        """
        agent = {"name": CLAIM_GENERATOR, "version": __version__}
        declared = {} if self.digital_source_type is None else {"digitalSourceType": self.digital_source_type.value}
        ingredients: list[dict] = []
        if parent_ingredient is None and self.digital_source_type is None:
            ingredients = [{"title": "input (no content credentials)", "relationship": "parentOf",
                            "label": UNDECLARED_INPUT}]
            actions = [{"action": "c2pa.opened", "softwareAgent": agent,
                        "parameters": {"ingredientIds": [UNDECLARED_INPUT]}}]
        elif parent_ingredient is None:
            actions = [{"action": "c2pa.created", **declared, "softwareAgent": agent}]
        else:
            actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": [parent_ingredient]}},
                       {"action": "c2pa.edited", **declared, "softwareAgent": agent}]
        assertions: list[dict] = []
        if self.soft_binding is not None:
            actions.append({"action": "c2pa.watermarked", "softwareAgent": agent,
                            "parameters": {"alg": self.soft_binding.alg}})
            assertions.append(self.soft_binding.to_assertion())
        # The actions are ours and complete: a created assertion with allActionsIncluded, so a validator (the C2PA
        # Asset Rubric's ambiguousActions signal) does not read them as gathered or partial.
        assertions.insert(0, {"label": "c2pa.actions.v2", "created": True,
                              "data": {"actions": actions, "allActionsIncluded": True}})
        assertions.append({"label": "cawg.training-mining",
                           "data": {"entries": {use: {"use": self.training_mining.value}
                                                for use in TRAINING_MINING_USES}}})
        if self.model is not None:
            assertions.append({"label": MODEL_ASSERTION, "data": self.model.to_assertion_data()})
        definition = {"claim_generator_info": [agent], "title": self.title, "assertions": assertions}
        return {**definition, "ingredients": ingredients} if ingredients else definition
